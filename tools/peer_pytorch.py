"""The paper's full model (six roots + 2D-cls) in PyTorch, timed on the CPU (or --device cuda:N): the peer a user
would pick
instead of Caffe, for tools/benchmark.py's ratios. Runs where torch is (the project's venv after
`PARK3D_TORCH=1 bash tools/setup.sh`, or a venv of its own: torch is not a project dependency); the net is
layers/torch_model.PoseNet, built from layers/config.py, the numbers prototxt/generate.py builds the Caffe nets from.

  TORCH_VENV/bin/python tools/peer_pytorch.py --batch 32 --iters 5     # prints one JSON line
  TORCH_VENV/bin/python tools/peer_pytorch.py --batch 128 --device cuda:0  # needs a CUDA build of torch

On a GPU the matrix products and convolutions run in FP32 by default, as Caffe's do (torch's own default lets cuDNN
use TF32 on Ampere and later); --tf32 on lets both use TF32 tensor cores, the peer of Caffe with CAFFE_TF32=1.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from layers import config  # noqa: E402  (after the path set-up: this may run outside the project's venv)
from layers.config import NUM_JOINTS  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:N (a CUDA build of torch)")
    parser.add_argument("--tf32", choices=("off", "on"), default="off",
                        help="TF32 tensor cores in cuBLAS and cuDNN (a GPU from Ampere on; default off: FP32 math)")
    args = parser.parse_args(argv)
    import torch  # lazy: torch is optional (PARK3D_TORCH=1)

    from layers.torch_model import PoseNet, fold_batch_norms  # imports torch (optional)

    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"peer_pytorch.py: --device {args.device}: torch {torch.__version__} has no usable CUDA (a CPU build, "
            "or no GPU visible); install a CUDA build of torch in this venv, or drop --device",
            file=sys.stderr,
        )
        return 2
    net = PoseNet("both", mean_torso_lengths=[1.0] * 6).to(device)
    opt = torch.optim.SGD(
        net.parameters(),
        lr=config.BASE_LR * args.batch / config.BATCH_SIZE,
        momentum=config.MOMENTUM,
        weight_decay=config.WEIGHT_DECAY,
    )
    x = torch.randn(args.batch, 3, config.INPUT_SIZE, config.INPUT_SIZE, device=device)
    t2 = torch.softmax(torch.randn(args.batch, NUM_JOINTS, config.NUM_CLASSES_2D, device=device), 2)
    t3 = torch.randn(args.batch, config.OUTPUT_3D, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)  # GPU work is asynchronous

    def forward_backward():
        logits, outs = net.train_outputs(x)
        loss = config.LAMBDA_2D[0] * -(t2 * torch.log_softmax(logits, 2)).sum() / args.batch
        loss = loss + sum(config.LAMBDA_3D * ((o - t3) ** 2).sum() / args.batch for o in outs)
        loss.backward()

    def timed(fn, iters):
        fn()  # warm-up
        sync()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return 1000 * sum(times) / len(times)

    net.train()

    def train_step():
        opt.zero_grad()
        forward_backward()
        opt.step()

    def fwd_bwd():
        net.zero_grad()
        forward_backward()

    result = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "tf32": args.tf32,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "forward_backward_ms": timed(fwd_bwd, args.iters),
        "train_step_ms": timed(train_step, args.iters),
    }
    net.eval()
    with torch.no_grad():
        result["deploy_forward_ms"] = timed(lambda: net(x), args.iters)
        # with each BatchNorm folded into the layer before it, as Caffe's prediction and evaluation nets are
        fold_batch_norms(net)
        result["deploy_forward_folded_ms"] = timed(lambda: net(x), args.iters)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
