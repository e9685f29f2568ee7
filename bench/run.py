"""The benchmark's sections by name, run in order, each row printed as it is measured and then all of them as a
Markdown table (tools/benchmark.py)."""
from __future__ import annotations

import os
from pathlib import Path

from data_prep.errors import UserError
from layers.caffe_build import caffe_home, has_cudnn

from .data_sections import section_data_layer, section_detector, section_lmdb, section_memory
from .model_sections import section_inference, section_parity, section_smoothing
from .speed_sections import (
    section_caffe_time,
    section_eval,
    section_fold,
    section_gpu_gtests,
    section_limit,
    section_setup,
    section_speed,
    section_torch,
    section_train,
)
from .workload import Options

# The sections, in the order they run by default; each is a generator of (measurement, value, unit) rows.
SECTIONS = {"setup": section_setup, "caffe-time": section_caffe_time, "lmdb": section_lmdb, "memory": section_memory,
            "data-layer": section_data_layer, "train": section_train, "eval": section_eval, "torch": section_torch,
            "speed": section_speed, "inference": section_inference, "fold": section_fold, "limit": section_limit,
            "detector": section_detector, "smoothing": section_smoothing, "parity": section_parity,
            "gpu-gtests": section_gpu_gtests}
DEFAULT_SECTIONS = [name for name in SECTIONS if name != "gpu-gtests"]


def shown(value: float) -> str:
    """Two decimals, or four significant digits for the small differences of the parity rows."""
    return f"{value:.4g}" if 0 < abs(value) < 0.01 else f"{value:.2f}"


def require_tf32(opts: Options) -> None:
    """--tf32 is GPU math of the cuDNN build: a UserError without a GPU or cuDNN, else CAFFE_TF32=1 for this
    process's pycaffe and each `caffe time` it starts."""
    if opts.gpu is None or not has_cudnn(caffe_home()):
        raise UserError("--tf32: TF32 is GPU math of the cuDNN build: pass --gpu N, with Caffe set up on the GPU "
                        "machine by PARK3D_CUDNN=9 bash tools/setup.sh")
    os.environ["CAFFE_TF32"] = "1"


def run_sections(names: list, opts: Options) -> list:
    """Each section's rows, printed as they come; then the Markdown table. Returns (section, what, value, unit)."""
    if opts.tf32:
        require_tf32(opts)
    work = Path(opts.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"benchmark on {os.cpu_count()} cores; batch {opts.batch}")
    rows = []
    for name in names:
        for what, value, unit in SECTIONS[name](work, opts):  # each section yields its rows as it measures them
            rows.append((name, what, value, unit))
            print(f"  {name:11s} {what:60s} {shown(value):>10s} {unit}", flush=True)
    print("\n| section | measurement | value | unit |\n|---|---|---:|---|")
    for section, what, value, unit in rows:
        print(f"| {section} | {what} | {shown(value)} | {unit} |")
    return rows
