"""Train the full model for every action (the paper trains each action separately) or a chosen subset
with the `caffe` tool, then evaluate them all and print the Table 1 layout. Resumable: finished actions
are skipped, an interrupted one resumes from its latest snapshot.

  python tools/train_all.py --lmdb-root data/lmdb                  # all 15, prototxt/solver_<action>.prototxt
  python tools/train_all.py --lmdb-root data/lmdb --actions Walking Eating --gpu 0
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.cli import REPO, require_lmdbs, run_tool
from data_prep.errors import UserError
from data_prep.progress import progress_mode
from data_prep.skeleton import ACTIONS, action_slug
from layers.inference import evaluate_and_report
from layers.training import train_to_completion


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS, metavar="ACTION")
    parser.add_argument(
        "--lmdb-root", default=str(REPO / "data" / "lmdb"), help="the LMDBs the solvers' nets name (for evaluation)"
    )
    parser.add_argument("--solver-dir", default=str(REPO / "prototxt"), help="folder with solver_<action>.prototxt")
    parser.add_argument("--deploy", default=str(REPO / "prototxt" / "evaluate_both.prototxt"))
    parser.add_argument("--logs", default=str(REPO / "logs"))
    parser.add_argument("--results", default=str(REPO / "results" / "table1"))
    parser.add_argument("--gpu", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = progress_mode(args.quiet)
    require_lmdbs(args.lmdb_root, args.actions)  # before hours of training fail at the first batch
    weights = {}
    for action in args.actions:
        solver = Path(args.solver_dir) / f"solver_{action_slug(action)}.prototxt"
        if not solver.is_file():
            raise UserError(f"{solver}: missing; run `python -m prototxt.generate` (or pass --solver-dir)")
        if not args.quiet:
            print(f"[{action}] {solver}", flush=True)
        weights[action] = str(train_to_completion(solver, Path(args.logs) / f"{action_slug(action)}_both.log", cwd=REPO,
                                                  gpu=args.gpu, progress=progress,
                                                  desc=f"train {action}"))
    evaluate_and_report(args.deploy, args.lmdb_root, weights, Path(args.results), args.gpu, progress=progress)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
