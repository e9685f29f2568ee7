"""Speed figures the issues ask for, printed as a Markdown table (copy them into docs/benchmarks.md).

  python tools/benchmark.py                      # every section, on a small synthetic dataset in out/bench
  python tools/benchmark.py --sections caffe-time data-layer

Sections:
  setup       warm `tools/setup.sh` (the cold build time is printed by setup.sh itself)
  caffe-time  `caffe time` forward/backward per batch: a ZFNet-like net and the paper's four variants (--gpu N)
  lmdb        LMDB build frames/s with 1 and 2 workers vs raw video decode frames/s; bytes per record (raw, JPEG)
  memory      make_lmdb.py's peak resident memory (all processes) at frame step 1 on long sequences, 2 workers
  data-layer  PoseDataLayer images/s (TRAIN, augmentation, decoding) with 0, 1, 2 worker processes, raw and JPEG
  train       images/s of the full model's SGD steps (pycaffe's solver, timed per iteration; --gpu N)
  eval        evaluation images/s, deploy net (errors in NumPy) and evaluation net (errors in the net; --gpu N)
  torch       the same net in PyTorch, training images/s (tools/peer_pytorch.py in the torch venv; --gpu N)
  gpu-gtests  Caffe's own gtests of the nets' layer types, their GPU instances (--gpu N; a CUDA build)
  inference   the full model's inference img/s at batch 1 and 32 on the same weights: pycaffe's deploy net,
              onnxruntime on tools/export.py's model (BatchNorm folded, and as BatchNormalization nodes), and,
              where torch is installed, PyTorch eager and onnxruntime on torch's own export of the same net
  fold        the deploy and evaluation nets with BatchNorm + Scale folded (evaluate's and predict's default)
              against the nets as trained, pycaffe forward img/s on the same weights, interleaved (--batch)
  limit       the machine's limit: a large GEMM through Caffe's own BLAS, the full model's FLOPs from its shapes,
              and Caffe's training and inference rates as fractions of that GEMM rate (--batch)
  detector    person detectors on synthetic frames of walking, sitting, sitting down and bending people: HOG
              (predict.py's) and OpenCV's full-body Haar cascade, against the mask boxes (found, IoU >= 0.5)
  smoothing   a clip's temporal smoothing on the demo's weights and a test video of its synthetic data: jitter
              (mean frame-to-frame acceleration) and P1 MPJPE, without and with Savitzky-Golay windows
  parity      tools/export.py's model against pycaffe on trained weights over a whole test LMDB: the largest
              pose and softmax differences, the MPJPE differences (--weights, --lmdb-root; default: the demo's)
  speed       Caffe against the PyTorch peer in one run, on this CPU: the full model's forward+backward
              (`caffe time`, TRAIN) and the deploy net's forward (TEST), per layer type, the OpenBLAS core
              in use, and the ratios Caffe / PyTorch (> 1: Caffe is faster)

The PyTorch peer runs in its own venv (torch is not a project dependency): `--install-torch` makes it at
--torch-venv (default ~/.cache/park3dpose/torch-venv) with torch 2.13.0 (CPU build). `--caffe-home DIR`
times another Caffe build (a cache folder of tools/setup.sh) in the speed section, for before/after tables.
On a GPU (issue 9's figures: batch 128; each row names the card, whether the build has cuDNN, FP32 or TF32):
  python tools/benchmark.py --gpu 0 --batch 128 --sections gpu-gtests caffe-time train eval torch
  ... --tf32      (a cuDNN build, PARK3D_CUDNN=9: Caffe with CAFFE_TF32=1, the peer with TF32)
"""
from __future__ import annotations

import argparse
import sys

from bench.measure import TORCH_PIN
from bench.run import DEFAULT_SECTIONS, SECTIONS, run_sections
from bench.workload import Options
from data_prep.cli import run_tool


def main(argv=None) -> int:
    d = Options()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=DEFAULT_SECTIONS, choices=list(SECTIONS))
    parser.add_argument("--work", default=str(d.work))
    parser.add_argument("--batch", type=int, default=d.batch)
    parser.add_argument("--frames", type=int, default=d.frames, help="frames per synthetic sequence")
    parser.add_argument("--batches", type=int, default=d.batches, help="data-layer batches to time")
    parser.add_argument("--long-frames", type=int, default=d.long_frames, help="memory section: frames per sequence")
    parser.add_argument("--gpu", type=int, default=None, help="caffe-time, train, eval, torch, gpu-gtests: on this GPU "
                        "(Caffe built with CUDA; torch from a CUDA build)")
    parser.add_argument(
        "--tf32",
        action="store_true",
        help="with --gpu and a cuDNN build (PARK3D_CUDNN=9): Caffe with "
        "CAFFE_TF32=1 and the PyTorch peer with TF32, tensor-core math for FP32 (results change; default FP32)",
    )
    parser.add_argument("--train-iters", type=int, default=d.train_iters)
    parser.add_argument("--torch-iters", type=int, default=d.torch_iters)
    parser.add_argument("--torch-venv", default=str(d.torch_venv), help="venv holding torch for the PyTorch peer")
    parser.add_argument("--install-torch", action="store_true", help=f"create --torch-venv with {TORCH_PIN} if missing")
    parser.add_argument("--caffe-home", help="speed section: time this Caffe build folder instead of the venv's")
    parser.add_argument("--speed-iters", type=int, default=d.speed_iters, help="speed section: iterations per timing")
    parser.add_argument(
        "--speed-rounds", type=int, default=d.speed_rounds, help="speed section: interleaved Caffe/PyTorch rounds"
    )
    parser.add_argument("--weights", help="parity section: a trained full-model .caffemodel (default: the demo's)")
    parser.add_argument("--lmdb-root", help="parity section: the folder of its walking_train/test.lmdb")
    args = parser.parse_args(argv)
    run_sections(args.sections, Options(**{k: v for k, v in vars(args).items() if k != "sections"}))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
