"""Human3.6M (official layout) -> per-action LMDBs of person crops, 2D joints and normalised 3D poses.

  python tools/make_lmdb.py --h36m /data/h36m --out data/lmdb --actions Walking Eating --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from data_prep.cli import run_tool
from data_prep.errors import UserError
from data_prep.lmdb_build import DEFAULT_FRAME_STEP, build_lmdbs
from data_prep.progress import progress_mode
from data_prep.records import DEFAULT_ENCODING, ENCODINGS, JPEG_QUALITY
from data_prep.skeleton import ACTIONS, TEST_SUBJECTS, TRAIN_SUBJECTS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--h36m", required=True, help="folder holding S1, S5, ..., S11 in the release's layout")
    parser.add_argument("--out", required=True, help="output folder for <action>_{train,test}.lmdb")
    parser.add_argument("--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS, metavar="ACTION")
    parser.add_argument("--frame-step", type=int, default=DEFAULT_FRAME_STEP, help="use every N-th frame (default 5)")
    parser.add_argument("--train-subjects", nargs="+", default=list(TRAIN_SUBJECTS))
    parser.add_argument("--test-subjects", nargs="+", default=list(TEST_SUBJECTS))
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel sequences (default: all cores)")
    parser.add_argument("--encoding", choices=ENCODINGS, default=DEFAULT_ENCODING,
                   help=f"crop storage: JPEG quality {JPEG_QUALITY} (about 7x smaller) or raw bytes (default "
                        f"{DEFAULT_ENCODING}); the data layer reads either")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    root = Path(args.h36m)
    if re.fullmatch(r"S\d+", root.name) and (root / "MyPoseFeatures").is_dir():
        raise UserError(
            f"--h36m {root}: this is one subject's folder; pass the folder that holds it: --h36m {root.parent}"
        )
    summary = build_lmdbs(args.h36m, args.out, actions=args.actions, step=args.frame_step, workers=args.workers,
                          train_subjects=args.train_subjects, test_subjects=args.test_subjects,
                          encoding=args.encoding, progress=progress_mode(args.quiet))
    with open(os.path.join(args.out, "build_summary.json"), "w") as f:
        json.dump(summary.as_dict(), f, indent=1)
    print(f"{summary.sequences} sequences, {summary.frames} frames, {len(summary.skipped)} sequences skipped, "
          f"{summary.seconds:.1f} s ({summary.frames_per_second:.1f} frames/s); wrote {args.out}")
    if not args.quiet:
        for s in summary.skipped:
            print(f"  skipped: {s}")
        for n in summary.notes:
            print(f"  note: {n}")
        if summary.drops:
            print(f"  {summary.dropped_frames} frames dropped in {len(summary.drops)} sequences:")
            for d in summary.drops:
                print(f"    {'WARNING, over 5 %: ' if d in summary.loud_drops else ''}{d}")
        if summary.unmatched:
            print(f"  {len(summary.unmatched)} files matched none of the 15 actions, e.g. {summary.unmatched[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
