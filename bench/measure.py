"""What the benchmark (bench/, tools/benchmark.py) measures with: `caffe time` and its per-layer lines (summed by
layer type), the CPU's
model, a device's name once it is checked, a process tree's peak resident memory, and the PyTorch peer run in
its own venv (torch is no dependency of the project)."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import caffe
import numpy as np
from caffe import layers as L
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from bench.layer_profile import by_type, layer_times
from data_prep.cli import REPO
from layers.caffe_build import caffe_binary, caffe_env, caffe_home, has_cudnn
from layers.deploy import net_from_text
from layers.device import require_gpu


def caffe_time(model: Path, iterations: int = 5, gpu: int | None = None) -> tuple[float, float]:
    """Average forward and backward ms of `caffe time` (TRAIN phase) with the venv's Caffe (on GPU `gpu`)."""
    t = caffe_time_layers(None, model, iterations, "TRAIN", gpu)
    return t["forward"], t["backward"]


def caffe_cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    m = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    return m.group(1).strip() if m else "unknown CPU"


def caffe_time_layers(
    caffe_home: Path | None, model: Path, iterations: int, phase: str, gpu: int | None = None
) -> dict:
    """`caffe time` of `model` with the per-layer lines: {'forward': ms, 'backward': ms, 'layers': {(name, dir): ms},
    'core': the OpenBLAS core it ran}. caffe_home: another build's folder instead of the venv's caffe; gpu: on it."""
    env = caffe_env(GLOG_minloglevel="0", OPENBLAS_VERBOSE="2")
    binary = caffe_binary()
    if caffe_home is not None:
        binary = str(caffe_home / "bin" / "caffe")
        env["PYTHONPATH"] = ":".join(str(p) for p in caffe_home.glob("lib/python3*/dist-packages"))
    on_gpu = [] if gpu is None else ["-gpu", str(gpu)]
    out = subprocess.run(
        [binary, "time", "-model", str(model), "-iterations", str(iterations), "-phase", phase, *on_gpu],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    log = out.stdout + out.stderr
    layers = layer_times(log)
    core = re.search(r"^Core: (\S+)", log, re.M)
    return {"forward": float(re.search(r"Average Forward pass: ([0-9.]+) ms", log).group(1)),
            "backward": float(re.search(r"Average Backward pass: ([0-9.]+) ms", log).group(1)),
            "layers": layers, "core": core.group(1) if core else "unknown"}


def by_layer_type(model: Path, layers: dict) -> dict:
    """Per-layer times summed by Caffe layer type (Python layers by their class)."""
    net = text_format.Merge(model.read_text(), caffe_pb2.NetParameter())
    return by_type({l.name: (f"Python:{l.python_param.layer}" if l.type == "Python" else l.type) for l in net.layer},
                   layers)


def checked_device(gpu: int | None) -> str:
    """'CPU', or 'GPU n (card name; cuDNN or not, FP32 or TF32)' once layers/device.py has checked that this Caffe
    can use GPU n."""
    if gpu is None:
        return "CPU"
    require_gpu(gpu)
    name = subprocess.run(["nvidia-smi", "-i", str(gpu), "--query-gpu=name", "--format=csv,noheader"],
                          capture_output=True, text=True).stdout.strip()
    cudnn = has_cudnn(caffe_home())  # CAFFE_TF32 is an option of the cuDNN builds; the others ignore it
    math = "TF32" if cudnn and os.environ.get("CAFFE_TF32") == "1" else "FP32"
    return f"GPU {gpu} ({name or 'unnamed'}; {'cuDNN' if cudnn else 'no cuDNN'}, {math})"


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (shared pages counted in each: an upper bound)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        pid_now = todo.pop()
        todo.extend(children.get(pid_now, []))
        try:
            total += int(Path(f"/proc/{pid_now}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def peak_rss_of(command: list) -> tuple[float, float]:
    """(peak MiB of the process tree's resident memory, seconds) of a command, sampled every 50 ms."""
    t0 = time.time()
    proc = subprocess.Popen(command, cwd=REPO)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_bytes(proc.pid))
        time.sleep(0.05)
    if proc.returncode:
        raise RuntimeError(f"{command}: exit code {proc.returncode}")
    return peak / 2**20, time.time() - t0


CACHE = Path(
    os.environ.get("PARK3D_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "park3dpose")
)
TORCH_PIN = next(
    line for line in (REPO / "requirements-torch.txt").read_text().splitlines() if line.startswith("torch==")
)


def torch_python(venv: Path, install: bool = False) -> Path | None:
    """This interpreter when it has torch (PARK3D_TORCH=1 bash tools/setup.sh), else the torch venv's, made first
    when `install`; None when there is none."""
    if importlib.util.find_spec("torch") is not None:
        return Path(sys.executable)
    venv = Path(venv)
    py = venv / "bin" / "python"
    if not py.is_file() and install:
        print(f"  installing {TORCH_PIN} (CPU build) into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", TORCH_PIN, "numpy==1.26.4"], check=True)
    return py if py.is_file() else None


def run_peer(
    venv: Path, install: bool, batch: int, iters: int, device: str | None = None, tf32: bool = False
) -> dict | None:
    """tools/peer_pytorch.py (the same net in PyTorch) in the torch venv: its JSON line, or None (said why).
    tf32: let its GPU matrix products and convolutions use TF32 (else FP32, as Caffe's)."""
    py = torch_python(venv, install)
    if py is None:
        print(f"  torch       no torch venv at {venv} (pass --install-torch); skipped")
        return None
    out = subprocess.run(
        [
            str(py),
            str(REPO / "tools" / "peer_pytorch.py"),
            "--batch",
            str(batch),
            "--iters",
            str(iters),
            "--device",
            device or "cpu",
            "--tf32",
            "on" if tf32 else "off",
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        why = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
        print(f"  torch       peer failed, skipped: {why}")
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_rate(fn, batch: int, iters: int, rounds: int = 2) -> float:
    """Images per second of fn() on `batch` images: the median of `iters` timed calls after a warm-up, the best of
    `rounds` such medians (the machines here are shared: the best round is the least disturbed)."""
    fn()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians.append(sorted(times)[len(times) // 2])
    return batch / min(medians)


def peer_onnx_export(state: dict, variant: str, out: Path) -> Path:
    """The PyTorch net (layers.torch_model.PoseNet) with `state`, exported by torch's own ONNX exporter (the
    TorchScript one: it needs no extra package): what a user of the PyTorch peer would run in onnxruntime."""
    import torch  # optional (PARK3D_TORCH=1 bash tools/setup.sh): imported only where the peer runs

    from layers.torch_model import PoseNet  # imports torch

    net = PoseNet(variant)
    net.load_state_dict(state)
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 225, 225),), str(out), dynamo=False, opset_version=17,
                          input_names=["data"], output_names=["softmax_2d", "pose3d", "pose3d_mm"],
                          dynamic_axes={"data": {0: "batch"}})
    return out


def forward_flops(net) -> float:
    """Multiply-adds x 2 of one image's forward pass through a pycaffe net's Convolution and InnerProduct layers,
    from their blob shapes (the nets' other layers are a few passes over the activations)."""
    total = 0.0
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type not in ("Convolution", "InnerProduct"):
            continue
        top = net.blobs[net.top_names[name][0]].data
        weight = net.params[name][0].data
        total += 2.0 * weight.size * (top.shape[2] * top.shape[3] if layer.type == "Convolution" else 1)
    return total


def training_flops(net, first_layer: str) -> float:
    """One training image's forward and backward: every product three times (forward, the weights' gradient, the
    input's gradient) except that the first layer passes no gradient to the image."""
    first = net.params[first_layer][0].data
    top = net.blobs[net.top_names[first_layer][0]].data
    return 3 * forward_flops(net) - 2.0 * first.size * top.shape[2] * top.shape[3]


def caffe_gemm_rate(size: int = 2048, iters: int = 5) -> float:
    """GFLOP/s of one large single-precision GEMM (size^3) through Caffe's own BLAS: an InnerProduct layer's
    forward in pycaffe, the product Caffe's fully connected layers and its im2col convolutions call."""
    n = caffe.NetSpec()
    n.x = L.Input(shape=dict(dim=[size, size]))
    n.y = L.InnerProduct(n.x, num_output=size, bias_term=False, weight_filler=dict(type="gaussian", std=0.01))
    net = net_from_text(str(n.to_proto()))
    net.blobs["x"].data[...] = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
    return best_rate(net.forward, 1, iters, rounds=2) * 2.0 * size ** 3 / 1e9
