"""The Caffe build tools/setup.sh made: where its `caffe` tool and build folder are, the environment the tool runs
in, and Caffe's own gtests (their filters in one place)."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

from data_prep.cli import REPO, UserError



def gtest_filters() -> dict:
    """Which of Caffe's gtests run where, from third_party/caffe/gtest_filters.env (the set-up and the GPU-machine
    kit read the same file): GTEST_FILTER_CPU_BUILD, GTEST_FILTER_CUDA_BUILD_CPU_CASES, GTEST_FILTER_GPU_CASES."""
    text = (REPO / "third_party" / "caffe" / "gtest_filters.env").read_text()
    return dict(re.findall(r"^(GTEST_\w+)='([^']*)'", text, re.M))


def caffe_binary() -> str:
    local = REPO / ".venv" / "bin" / "caffe"
    return str(local) if local.is_file() else "caffe"


def caffe_env(**overrides) -> dict:
    """The environment for the caffe tool: the venv first on PATH (its embedded Python then finds the
    venv, see tools/setup.sh), plus `overrides`."""
    env = {**os.environ, **overrides}
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def caffe_home(venv: Path = REPO / ".venv") -> Path:
    """The Caffe build folder tools/setup.sh linked into `venv` (it writes <venv>/.caffe-home)."""
    marker = Path(venv) / ".caffe-home"
    if not marker.is_file():
        raise UserError(f"{marker}: missing; run tools/setup.sh first")
    return Path(marker.read_text().strip())


@dataclasses.dataclass
class GtestRun:
    returncode: int
    log: str
    ran: int  # tests that ran
    passed: int
    failed: list  # names of the failed tests


def run_caffe_gtests(home: Path, gtest_filter: str, device: int | None = None, env: dict | None = None,
                     timeout: float = 3000) -> GtestRun:
    """Caffe's own gtests the set-up built into `home` (bin/caffe_layer_tests: the nets' layer types, the SGD
    solver, the math functions), run from share/caffe_gtest_root, where the solver tests find their data.
    device: the GPU for the GPU cases (the test binary takes it as its first plain argument)."""
    home = Path(home)
    command = [str(home / "bin" / "caffe_layer_tests"), f"--gtest_filter={gtest_filter}"]
    out = subprocess.run(command + ([] if device is None else [str(device)]), capture_output=True, text=True,
                         timeout=timeout, cwd=home / "share" / "caffe_gtest_root",
                         env={**(os.environ if env is None else env), "LD_LIBRARY_PATH": str(home / "lib")})
    log = out.stdout + out.stderr
    ran = re.search(r"\[==========\] (\d+) tests? from (\d+) test cases? ran", log)
    passed = re.search(r"\[  PASSED  \] (\d+) tests?", log)
    failed = sorted(set(re.findall(r"^\[  FAILED  \] ([A-Za-z]\S*)", log, re.M)))  # not the "N tests, listed below"
    return GtestRun(out.returncode, log, int(ran.group(1)) if ran else 0, int(passed.group(1)) if passed else 0, failed)


def has_cudnn(home: Path) -> bool:
    """Whether the build in `home` links cuDNN (a PARK3D_CUDNN=9 build: its GPU convolutions run through cuDNN,
    and CAFFE_TF32=1 lets cuBLAS and cuDNN use TF32 tensor cores, third_party/caffe/patches-cudnn/0007)."""
    ldd = subprocess.run(["ldd", str(Path(home) / "lib" / "libcaffe.so")], capture_output=True, text=True).stdout
    return "libcudnn.so" in ldd


def gtest_cpu_filter(home: Path) -> str:
    """The filter of the gtests that run without a GPU, as the set-up recorded it for the build in `home`."""
    recorded = Path(home) / "share" / "caffe_gtest_cpu_filter.txt"
    return recorded.read_text().strip() if recorded.is_file() else gtest_filters()["GTEST_FILTER_CPU_BUILD"]
