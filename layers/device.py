"""CPU or one GPU for pycaffe and `caffe train`: the one place the tools' --gpu goes through, with one clear
line when it cannot be (a CPU-only Caffe, no such GPU)."""
from __future__ import annotations

import glob
import os

from data_prep.errors import UserError


def caffe_has_cuda() -> bool:
    """Whether the loaded Caffe was built with CUDA (its library pulled in libcudart)."""
    import caffe  # noqa: F401  (loads libcaffe)

    with open("/proc/self/maps") as f:
        return "libcudart" in f.read()


def visible_gpus() -> int:
    """How many NVIDIA GPUs this process may use (CUDA_VISIBLE_DEVICES, else the /dev/nvidiaN devices)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return len([d for d in listed.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/dev/nvidia[0-9]*"))


def require_gpu(gpu: int) -> None:
    """UserError unless GPU `gpu` can be used by this Caffe."""
    if gpu < 0:
        raise UserError(f"--gpu {gpu}: a GPU id is 0 or more")
    if not caffe_has_cuda():
        raise UserError(f"--gpu {gpu}: this Caffe was built CPU-only (no GPU was seen at set-up); drop --gpu, or "
                        "rebuild with CUDA (docs/gpu.md)")
    found = visible_gpus()
    if gpu >= found:
        raise UserError(f"--gpu {gpu}: {found} GPU(s) visible to this process; pass a GPU id below {found} "
                        "or drop --gpu")


def use_device(gpu: int | None) -> str:
    """Set pycaffe's mode: the CPU when gpu is None, else that GPU (checked first). Returns what was set."""
    import caffe  # lazy: loads libcaffe (and CUDA)

    if gpu is None:
        caffe.set_mode_cpu()
        return "CPU"
    require_gpu(gpu)
    caffe.set_mode_gpu()
    caffe.set_device(gpu)
    return f"GPU {gpu}"
