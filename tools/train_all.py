"""Train the full model for every action (the paper trains each action separately) or a chosen subset
with the `caffe` tool, then evaluate them all and print the Table 1 layout. Resumable: finished actions
are skipped, an interrupted one resumes from its latest snapshot.

  python tools/train_all.py --lmdb-root data/lmdb                  # all 15, prototxt/solver_<action>.prototxt
  python tools/train_all.py --lmdb-root data/lmdb --actions Walking Eating --gpu 0
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import sys
from pathlib import Path

from data_prep.skeleton import ACTIONS, action_slug
from tools.evaluate import evaluate_and_report
from tools.training import REPO, train_to_completion
from data_prep.progress import progress_mode
from data_prep.cli import require_lmdbs, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actions", nargs="+", default=list(ACTIONS), choices=ACTIONS, metavar="ACTION")
    p.add_argument("--lmdb-root", default="data/lmdb", help="the LMDBs the solvers' nets name (for evaluation)")
    p.add_argument("--solver-dir", default=str(REPO / "prototxt"), help="folder with solver_<action>.prototxt")
    p.add_argument("--deploy", default=str(REPO / "prototxt" / "deploy_both.prototxt"))
    p.add_argument("--logs", default=str(REPO / "logs"))
    p.add_argument("--results", default=str(REPO / "results" / "table1"))
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    progress = progress_mode(a.quiet)
    require_lmdbs(a.lmdb_root, a.actions)  # before hours of training fail at the first batch
    weights = {}
    for action in a.actions:
        solver = Path(a.solver_dir) / f"solver_{action_slug(action)}.prototxt"
        if not solver.is_file():
            raise SystemExit(f"{solver}: missing; run `python -m prototxt.generate` (or pass --solver-dir)")
        if not a.quiet:
            print(f"[{action}] {solver}", flush=True)
        weights[action] = str(train_to_completion(solver, Path(a.logs) / f"{action_slug(action)}_both.log", cwd=REPO,
                                                  gpu=a.gpu, progress=progress,
                                                  desc=f"train {action}"))
    evaluate_and_report(a.deploy, a.lmdb_root, weights, Path(a.results), a.gpu, progress=progress, quiet=a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
