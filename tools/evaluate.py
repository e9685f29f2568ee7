"""Evaluate trained nets on the test LMDBs: MPJPE per action in the layout of the paper's Table 1 under
Protocol 1 (root-aligned; the headline, beside the paper's rows), the zero-mean variant and PA-MPJPE (P2),
per-joint errors, and two reference rows on the same frames: the training mean pose (mm, unscaled) and the
scale floor (the ground truth through the same scale recovery). Writes results.json and results.csv next
to the (first) weights.

  python tools/evaluate.py --lmdb-root data/lmdb [--gpu 0] \\
      --weights Walking=snapshots/walking_both_iter_4564.caffemodel Eating=snapshots/eating_both_iter_...
  python tools/evaluate.py --lmdb-root data/lmdb --backend onnx --weights Walking=walking_both.onnx

With --backend onnx the weights are models tools/export.py wrote, run by onnxruntime (--gpu: its CUDA provider);
their BatchNorm statistics are those exported (tools/export.py --bn-batches, the same default as here).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.cli import REPO, require_lmdbs, run_tool
from data_prep.errors import UserError
from data_prep.progress import progress_mode
from data_prep.skeleton import ACTIONS
from layers.bn_stats import BN_BATCHES
from layers.inference import evaluate_and_report
from layers.models import BACKENDS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--deploy",
        default=str(REPO / "prototxt" / "evaluate_both.prototxt"),
        help="--backend caffe: an evaluation net (scale recovery and P1 / zero-mean errors inside the net, so on the "
        "GPU with --gpu) or a deploy net (errors in NumPy); the variant must match the weights",
    )
    parser.add_argument("--lmdb-root", required=True, help="folder with <action>_test.lmdb")
    parser.add_argument("--weights", nargs="+", required=True, metavar="ACTION=CAFFEMODEL",
                        help="ACTION=path: .caffemodel files, or with --backend onnx exported .onnx models")
    parser.add_argument("--backend", choices=BACKENDS, default="caffe")
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA, or onnxruntime-gpu with "
                        "--backend onnx); default CPU")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--bn-batches", type=int, default=BN_BATCHES,
                        help="re-estimate BatchNorm's statistics over this many training batches (<action>_train.lmdb "
                             "beside the test LMDB) before testing; 0 keeps the snapshot's moving averages (--backend "
                             "caffe; an exported model has its statistics)")
    parser.add_argument("--no-fold", action="store_true", help="--backend caffe: run the net as trained, BatchNorm and "
                        "Scale as layers (default: folded into the layers before them, the same outputs, faster)")
    parser.add_argument("--out", help="folder for results.json/.csv (default: beside the first weights)")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def parse_weights(items) -> dict:
    weights = {}
    for item in items:
        action, sep, path = item.partition("=")
        if not sep or action not in ACTIONS:
            raise UserError(
                f"--weights {item!r}: expected ACTION=path.caffemodel with ACTION one of {', '.join(ACTIONS)}"
            )
        if not Path(path).is_file():
            raise UserError(f"--weights {item!r}: {path} does not exist")
        weights[action] = path
    return weights


def main(argv=None) -> int:
    args = parse_args(argv)
    weights = parse_weights(args.weights)
    require_lmdbs(args.lmdb_root, weights, splits=("test",))
    out = Path(args.out) if args.out else Path(next(iter(weights.values()))).parent
    evaluate_and_report(args.deploy, args.lmdb_root, weights, out, args.gpu, args.batch_size,
                        progress=progress_mode(args.quiet), bn_batches=args.bn_batches,
                        backend=args.backend, fold=not args.no_fold)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
