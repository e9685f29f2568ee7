"""Write a synthetic dataset in Human3.6M's official on-disk layout (CDF poses, MP4 videos, v7.3 masks).

  python tools/generate_synthetic.py --out data/synthetic_h36m --actions Walking --frames 250
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from data_prep.skeleton import ACTIONS, CAMERAS, SUBJECTS
from data_prep.synthetic import GeneratorConfig, generate
from data_prep.progress import progress_mode
from data_prep.cli import run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--subjects", nargs="+", default=list(SUBJECTS))
    p.add_argument("--actions", nargs="+", default=["Walking"], choices=ACTIONS, metavar="ACTION")
    p.add_argument("--cameras", nargs="+", default=list(CAMERAS), choices=CAMERAS)
    p.add_argument("--frames", type=int, default=250, help="frames per sequence (50 fps)")
    p.add_argument("--subactions", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    cfg = GeneratorConfig(Path(a.out), tuple(a.subjects), tuple(a.actions), tuple(a.cameras), a.frames,
                          a.subactions, a.seed)
    s = generate(cfg, workers=a.workers, progress=progress_mode(a.quiet))
    if not a.quiet:
        print(f"wrote {s['sequences']} sequences x {len(a.cameras)} cameras, {s['frames']} frames to {a.out} "
              f"in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
