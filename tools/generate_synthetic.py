"""Write a synthetic dataset in Human3.6M's official on-disk layout (CDF poses, MP4 videos, v7.3 masks).

  python tools/generate_synthetic.py --out data/synthetic_h36m --actions Walking --frames 250
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from data_prep.cli import run_tool
from data_prep.progress import progress_mode
from data_prep.skeleton import ACTIONS, CAMERAS, SUBJECTS
from data_prep.synthetic import GeneratorConfig, generate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--subjects", nargs="+", default=list(SUBJECTS))
    parser.add_argument("--actions", nargs="+", default=["Walking"], choices=ACTIONS, metavar="ACTION")
    parser.add_argument("--cameras", nargs="+", default=list(CAMERAS), choices=CAMERAS)
    parser.add_argument("--frames", type=int, default=250, help="frames per sequence (50 fps)")
    parser.add_argument("--subactions", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = GeneratorConfig(Path(args.out), tuple(args.subjects), tuple(args.actions), tuple(args.cameras), args.frames,
                          args.subactions, args.seed)
    s = generate(cfg, workers=args.workers, progress=progress_mode(args.quiet))
    print(f"wrote {s['sequences']} sequences x {len(args.cameras)} cameras, {s['frames']} frames to {args.out} "
          f"in {s['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
