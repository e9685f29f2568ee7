"""layers/device.py: the CUDA faults a user meets (the card out of memory, no such GPU, a driver older than the
build's CUDA) read from a caffe log and turned into one line. The log lines are Caffe's CUDA_CHECK, CUBLAS_CHECK
and CUDNN_CHECK output as glog writes it (the first was captured from route 13's `caffe train -gpu 0` on a machine
whose driver library is CUDA 12.2's); the error numbers are CUDA's (driver_types.h). The CUDA builds' own runs of
these faults are in tests/test_cuda_build.py. And the set-up's caffe wrapper, which checks the tool's -gpu value
with it first."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, caffe_env
from data_prep.errors import UserError
from layers.device import CudaState, caffe_gpu_fault, cuda_error_advice, cuda_version
from layers.training import raise_for_result

DRIVER_TOO_OLD = ("F20261205 15:13:16.960521 30586 common.cpp:152] Check failed: error == cudaSuccess (35 vs. 0)  "
                  "CUDA driver version is insufficient for CUDA runtime version")
OUT_OF_MEMORY = ("F20261205 15:20:01.000001 30586 syncedmem.cpp:71] Check failed: error == cudaSuccess (2 vs. 0)  "
                 "out of memory")
STACK = ["*** Check failure stack trace: ***", "    @     0x562f86b99ead  main", "    @     0x7f2a76a4524a  (unknown)"]


def test_the_cuda_error_of_a_failed_check_is_read_from_the_log():
    assert caffe_gpu_fault(["I1205 caffe.cpp:206] Using GPUs 0", DRIVER_TOO_OLD, *STACK]) == 35
    assert caffe_gpu_fault([OUT_OF_MEMORY, *STACK]) == 2
    assert caffe_gpu_fault(["F1205 math_functions.cu:30] Check failed: status == CUBLAS_STATUS_SUCCESS (3 vs. 0)  "
                            "CUBLAS_STATUS_ALLOC_FAILED"]) == 2  # cuBLAS's own allocation: the card is full too
    assert caffe_gpu_fault(["F1205 cudnn_conv_layer.cpp:53] Check failed: status == CUDNN_STATUS_SUCCESS (4 vs. 0)  "
                            "CUDNN_STATUS_INTERNAL_ERROR"]) is None  # not one the user can act on
    assert caffe_gpu_fault(["F1205 blob.cpp:33] Check failed: shape[i] >= 0 (-1 vs. 0)", *STACK]) is None


def test_cuda_versions_read_as_people_write_them():
    # CUDA writes 1000 * major + 10 * minor
    assert [cuda_version(v) for v in (11080, 12020, 13000, 0)] == ["11.8", "12.2", "13.0", "0.0"]


def test_each_fault_says_what_to_do():
    old = CudaState(driver=12020, runtime=13000, error=35, count=0)
    advice = cuda_error_advice(35, 0, old)
    assert "CUDA 12.2 at most" in advice and "CUDA 13.0" in advice and "update the driver" in advice
    assert "no NVIDIA driver here" in cuda_error_advice(35, 0, CudaState(0, 13000, 35, 0))
    assert "batch_size" in cuda_error_advice(2, 0) and "nvidia-smi" in cuda_error_advice(2, 0)
    assert "no GPU 1 here" in cuda_error_advice(101, 1)
    assert "PARK3D_CUDA_ARCH" in cuda_error_advice(209, 0)
    assert cuda_error_advice(700, 0) is None  # an illegal address: a bug, not the user's to fix


def test_a_training_run_stopped_by_a_full_card_is_one_line():
    aborted = {"code": -6, "signal": None, "stopped": None, "layer_error": None,
               "tail": ["I1205 solver.cpp:218] Iteration 0 (0 iter/s, 1.2s/20 iters), loss = 3.1", OUT_OF_MEMORY,
                        *STACK]}
    with pytest.raises(UserError) as e:
        raise_for_result(aborted, Path("solver.prototxt"), Path("train.log"), None, 0)
    message = str(e.value)
    assert message.startswith("caffe train stopped on GPU 0: the GPU is out of memory: lower batch_size")
    assert "no complete snapshot yet" in message and "train.log" in message and "\n" not in message


@pytest.mark.parametrize("gpu", [["-gpu", "0"], ["-gpu=1"], ["--gpu", "0,1"], ["--gpu=all"]])
def test_the_users_own_caffe_train_on_a_gpu_this_caffe_cannot_use_is_one_line(gpu):
    """The README's own `caffe train -solver ... -gpu 0`, through the set-up's wrapper, with this CPU-only Caffe:
    before the check, the caffe tool aborted (exit 134) with "Cannot use GPU in CPU-only Caffe" and a stack trace."""
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "train", "-solver", "tests/data/tiny_solver.prototxt",
                          *gpu], cwd=REPO, capture_output=True, text=True, env=caffe_env(), timeout=120)
    first = gpu[-1].split("=")[-1].split(",")[0].replace("all", "0")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (f"caffe: error: -gpu {first}: this Caffe was built CPU-only (no GPU was seen at "
                                  "set-up); drop --gpu, or rebuild with CUDA (docs/gpu.md)"), out.stderr


def test_the_wrapper_leaves_a_run_without_gpu_and_a_value_it_cannot_read_to_caffe():
    wrapper = REPO / ".venv" / "bin" / "caffe"  # "-gpu x": caffe's own failure, not ours
    out = subprocess.run([str(wrapper), "train", "-solver", "tests/data/tiny_solver.prototxt", "-gpu", "x"], cwd=REPO,
                         capture_output=True, text=True, env=caffe_env(), timeout=120)
    assert out.returncode != 2 and "caffe: error" not in out.stderr and "bad lexical cast" in out.stderr, out.stderr
    out = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, env=caffe_env(), timeout=60)
    assert out.returncode == 0 and "caffe: " not in out.stderr, out.stderr
