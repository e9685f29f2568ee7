"""The paper's figures from our runs.

Figure 4: train and test 3D losses (sum over the roots' EuclideanLoss outputs) from Caffe's logs, with and
without the 2D classification input. Figure 5: input crop, ground truth, and each model's 3D estimate,
left side red, right side blue.

  python tools/figures.py fig4 --log "2D-cls=logs/walking_2dcls.log" --log "Baseline=logs/walking_baseline.log" \\
      --out fig4.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.cli import run_tool
from data_prep.drawing import plot_fig4
from data_prep.errors import UserError
from layers.caffe_log import fig4_curves


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="figure", required=True)
    fig4 = sub.add_parser("fig4", help="3D loss curves from caffe train logs")
    fig4.add_argument("--log", action="append", required=True, metavar="LABEL=LOGFILE")
    fig4.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logs = dict(item.split("=", 1) for item in args.log)
    for label, path in logs.items():
        if not Path(path).is_file():
            raise UserError(f"--log {label}={path}: no such file; pass a `caffe train` log")
    print(plot_fig4(fig4_curves(logs), Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
