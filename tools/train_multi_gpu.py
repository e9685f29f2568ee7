"""Train one net on several GPUs of one machine (data-parallel, NCCL), as BVLC's python/train.py does.

  python -m prototxt.generate ...                # or write_experiment(..., schedule=Schedule(batch_size=32, ranks=4))
  python tools/train_multi_gpu.py --solver prototxt/solver_walking.prototxt --gpus 0 1 2 3 [--snapshot S.solverstate]

Every GPU runs the solver's batch each step and the gradients are averaged, so the effective batch is the
solver's batch times the number of GPUs: generate the solver with Schedule(batch_size=B, ranks=k) so that its
learning rate (0.01 x B k / 128) and epoch length follow the effective batch; B = 128 / k keeps the paper's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.cli import run_tool
from data_prep.errors import UserError
from layers.multi_gpu import train_data_parallel


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--solver", required=True)
    parser.add_argument("--gpus", type=int, nargs="+", required=True, help="GPU ids, two or more")
    parser.add_argument("--snapshot", help="resume from this .solverstate (default: the latest snapshot of the "
                        "solver's prefix that verifies, as the other drivers)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    for path, what in ((args.solver, "--solver"), (args.snapshot, "--snapshot")):
        if path and not Path(path).is_file():
            raise UserError(f"{what} {path}: no such file")
    final = train_data_parallel(
        Path(args.solver).resolve(), args.gpus, Path(args.snapshot).resolve() if args.snapshot else None, cwd=Path.cwd()
    )
    print(f"trained: {final}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
