"""A trained net for use outside this project's Caffe: an ONNX model (onnxruntime, OpenCV's dnn, TensorRT-style
runtimes) and, with torch installed, a PyTorch state_dict for layers.torch_model.PoseNet.

  python tools/export.py --weights snapshots/walking_both_iter_4564.caffemodel --variant both \\
      --train-lmdb data/lmdb/walking_train.lmdb --onnx walking_both.onnx [--torch walking_both.pt]

The model takes the centre 225x225 of the 250x250 person crop, BGR, minus the training set's mean (it is in the
model's metadata) and gives the 2D softmax, the normalised pose of eq. (7) and the pose in mm (docs/using-a-model.md,
"Using a trained model elsewhere"). BatchNorm's statistics are re-estimated over --bn-batches training batches first, as
tools/evaluate.py does by default, so the exported model gives evaluate's figures (0: the snapshot's own).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from data_prep.cli import REPO, run_tool
from data_prep.errors import UserError
from data_prep.files import write_bytes_atomic
from data_prep.records import read_meta
from layers.bn_stats import BN_BATCHES
from layers.config import VARIANTS
from layers.onnx_export import export_onnx, load_export_source


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="a trained .caffemodel")
    parser.add_argument("--variant", choices=tuple(VARIANTS), default="both",
                        help="the weights' variant: its deploy net is prototxt/deploy_<variant>.prototxt")
    parser.add_argument("--deploy", help="a deploy net instead of --variant's (e.g. one of another width)")
    parser.add_argument("--train-lmdb", required=True, help="the training LMDB (its meta.json: the image mean and "
                        "torso lengths baked into the model; its images: the BatchNorm re-estimation)")
    parser.add_argument("--onnx", help="write the ONNX model here")
    parser.add_argument("--torch", help="write PoseNet's state_dict here (torch must be installed)")
    parser.add_argument("--bn-batches", type=int, default=BN_BATCHES, help="re-estimate BatchNorm's statistics over "
                        "this many training batches first (0: keep the snapshot's moving averages)")
    parser.add_argument(
        "--batch-norm",
        choices=("fold", "node"),
        default="fold",
        help="fold BatchNorm + Scale into the "
        "layer before them (default) or keep them as ONNX BatchNormalization nodes",
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.onnx and not args.torch:
        raise UserError("nothing to write: pass --onnx FILE and/or --torch FILE")
    torch = None
    if args.torch:
        try:
            import torch  # lazy: torch is optional (PARK3D_TORCH=1)
        except ImportError:
            raise UserError("--torch: torch is not installed in this environment; `PARK3D_TORCH=1 bash tools/setup.sh` "
                            "installs the CPU build into .venv (or drop --torch)") from None

    deploy = Path(args.deploy) if args.deploy else REPO / "prototxt" / f"deploy_{args.variant}.prototxt"
    meta = read_meta(args.train_lmdb)
    source = load_export_source(deploy, args.weights, args.bn_batches, args.train_lmdb)
    if args.onnx:
        export_onnx(source, meta, Path(args.onnx), fold=args.batch_norm == "fold")
        print(f"wrote {args.onnx}: {source.layout.variant} variant, BatchNorm {source.batch_norm}, weights sha256 "
              f"{source.weights_sha256[:16]}")
    if torch is not None:
        from layers.torch_model import state_dict_from_caffe  # imports torch (optional)

        state = state_dict_from_caffe(source.params, source.layout.variant, source.width, meta["mean_torso_lengths_mm"])
        buffer = io.BytesIO()
        torch.save(state, buffer)
        write_bytes_atomic(Path(args.torch), buffer.getvalue())
        print(f"wrote {args.torch}: state_dict of layers.torch_model.PoseNet({source.layout.variant!r}, width="
              f"{source.width:g})")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
