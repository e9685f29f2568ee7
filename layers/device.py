"""CPU or one GPU for pycaffe and `caffe train`: the one place the tools' --gpu goes through, with one clear
line when it cannot be (a CPU-only Caffe, no NVIDIA driver or one too old for this Caffe's CUDA, no such GPU, a
card this Caffe holds no GPU code for), and the same advice for the CUDA errors that stop the caffe tool (the
card out of memory, among them)."""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import re
import struct
import sys
from pathlib import Path

from data_prep.errors import UserError

from .caffe_build import describe_gpu_code, gpu_code, runs_on

# cudaError_t values a user can act on (CUDA's driver_types.h; the same numbers in CUDA 11.8 and 13)
CUDA_OUT_OF_MEMORY, CUDA_INSUFFICIENT_DRIVER, CUDA_NO_DEVICE, CUDA_INVALID_DEVICE, CUDA_NO_KERNEL_IMAGE = \
    2, 35, 100, 101, 209
# cudaDeviceAttr values (the same in CUDA 11.8 and 13)
CUDA_ATTR_COMPUTE_CAPABILITY_MAJOR, CUDA_ATTR_COMPUTE_CAPABILITY_MINOR = 75, 76
# what to do about a card the build has no code for (CUDA error 209, or found before the run)
SET_UP_FOR_THIS_CARD = "run tools/setup.sh again on this machine (it adds the architecture of each GPU it sees)"

# Caffe's CUDA_CHECK, CUBLAS_CHECK and CUDNN_CHECK lines, as glog writes them:
#   "Check failed: error == cudaSuccess (2 vs. 0)  out of memory"
#   "Check failed: status == CUBLAS_STATUS_SUCCESS (3 vs. 0)  CUBLAS_STATUS_ALLOC_FAILED"
_CUDA_CHECK = re.compile(r"Check failed: error == cudaSuccess \((\d+) vs\. 0\)")
_LIBRARY_ALLOC_FAILED = re.compile(r"Check failed: status == (?:CUBLAS|CUDNN)_STATUS_SUCCESS \(\d+ vs\. 0\)\s+"
                                   r"(?:CUBLAS|CUDNN)_STATUS_ALLOC_FAILED")


def caffe_has_cuda() -> bool:
    """Whether the loaded Caffe was built with CUDA (its library pulled in libcudart)."""
    return cudart_path() is not None


def cudart_path() -> str | None:
    """The CUDA runtime library the loaded Caffe uses (None for a CPU-only Caffe)."""
    import caffe  # noqa: F401  (loads libcaffe)

    return loaded_library("libcudart")


def loaded_library(name: str) -> str | None:
    """The path of the first library mapped into this process whose path holds `name` (None for none)."""
    with open("/proc/self/maps") as f:
        for line in f:
            if name in line:
                return line.split()[-1]
    return None


@dataclasses.dataclass(frozen=True)
class CudaState:
    """What this process's CUDA runtime reports: versions as CUDA writes them (13000 = 13.0; driver 0 = no
    driver library found), and cudaGetDeviceCount's error code and count."""
    driver: int
    runtime: int
    error: int
    count: int


def cuda_state(cudart: str) -> CudaState:
    """Ask the CUDA runtime the loaded Caffe uses (cudart_path(); it reports errors as codes where Caffe's own
    calls abort)."""
    rt = ctypes.CDLL(cudart)
    driver, runtime, count = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    rt.cudaDriverGetVersion(ctypes.byref(driver))
    rt.cudaRuntimeGetVersion(ctypes.byref(runtime))
    error = rt.cudaGetDeviceCount(ctypes.byref(count))
    return CudaState(driver.value, runtime.value, error, count.value if error == 0 else 0)


def compute_capability(cudart: str, gpu: int) -> tuple[int, int] | None:
    """GPU `gpu`'s compute capability, (9, 0) for an H100, asked of the CUDA runtime `cudart`; None when it
    cannot say (no such GPU, no driver)."""
    rt = ctypes.CDLL(cudart)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    if (rt.cudaDeviceGetAttribute(ctypes.byref(major), CUDA_ATTR_COMPUTE_CAPABILITY_MAJOR, gpu)
            or rt.cudaDeviceGetAttribute(ctypes.byref(minor), CUDA_ATTR_COMPUTE_CAPABILITY_MINOR, gpu)
            or major.value < 1):
        return None
    return major.value, minor.value


@functools.cache
def loaded_gpu_code() -> frozenset:
    """The machine code and PTX of the loaded libcaffe (gpu_code()), read once a process; empty where it cannot be
    read (no libcaffe loaded, or not the ELF it should be)."""
    library = loaded_library("libcaffe.so")
    try:
        return frozenset(c for c in gpu_code(Path(library)) if c[0] in ("ELF", "PTX")) if library else frozenset()
    except (OSError, ValueError, struct.error):
        return frozenset()


def gpu_code_advice(gpu: int, capability: tuple[int, int]) -> str | None:
    """What to do when the loaded Caffe holds no GPU code that runs on a card of this compute capability (which
    would stop its first layer with CUDA error 209, and abort a pycaffe process with no line of ours); None when
    it does, or when the library's GPU code cannot be read (the check is left out)."""
    codes = loaded_gpu_code()
    if not codes or runs_on(codes, capability):
        return None
    major, minor = capability
    return (f"GPU {gpu} has compute capability {major}.{minor} and this Caffe holds GPU code for "
            f"{describe_gpu_code(codes)} only, none of which runs on it: {SET_UP_FOR_THIS_CARD}, or with "
            f"PARK3D_CUDA_ARCH={major}{minor} (docs/gpu.md)")


def cuda_version(v: int) -> str:
    """CUDA's version integer as people write it: 12020 -> "12.2"."""
    return f"{v // 1000}.{v % 1000 // 10}"


def cuda_error_advice(error: int, gpu: int, state: CudaState | None = None) -> str | None:
    """What to do about a CUDA runtime error a user can act on; None for the others. `state` (cuda_state())
    names the versions when the driver is the cause."""
    if error == CUDA_OUT_OF_MEMORY:
        return ("the GPU is out of memory: lower batch_size in the nets (prototxt/generate.py's Schedule, or the "
                "train net's data layer) or stop what else holds the card (nvidia-smi lists it)")
    if error == CUDA_INSUFFICIENT_DRIVER:
        if state is None:
            return ("the NVIDIA driver is missing or older than this Caffe's CUDA needs: update the driver, or set "
                    "up the other CUDA route (docs/gpu.md, the driver each route needs)")
        if state.driver == 0:
            return ("no NVIDIA driver here (libcuda.so.1 not found): install the card's driver, or drop --gpu for "
                    "the CPU")
        return (f"the NVIDIA driver here runs CUDA {cuda_version(state.driver)} at most and this Caffe is built with "
                f"CUDA {cuda_version(state.runtime)}: update the driver, or set up the route it runs "
                f"(docs/gpu.md, the driver each route needs)")
    if error == CUDA_NO_DEVICE:
        return ("the CUDA runtime sees no GPU (nvidia-smi lists none, or CUDA_VISIBLE_DEVICES hides them); drop "
                "--gpu for the CPU")
    if error == CUDA_INVALID_DEVICE:
        return f"there is no GPU {gpu} here (nvidia-smi lists the ids); pass one of those"
    if error == CUDA_NO_KERNEL_IMAGE:
        return (f"this Caffe holds no GPU code for this card: {SET_UP_FOR_THIS_CARD}, or with PARK3D_CUDA_ARCH set "
                "to the card's compute capability (docs/gpu.md)")
    return None


def caffe_gpu_fault(lines) -> int | None:
    """The CUDA error code of the first CUDA, cuBLAS or cuDNN check that failed in a caffe log's lines (a cuBLAS
    or cuDNN allocation failure counts as out of memory); None when there is none."""
    for line in lines:
        m = _CUDA_CHECK.search(line)
        if m:
            return int(m.group(1))
        if _LIBRARY_ALLOC_FAILED.search(line):
            return CUDA_OUT_OF_MEMORY
    return None


def caffe_fault_advice(lines, gpu: int | None) -> str | None:
    """What to do about the CUDA fault that stopped a caffe tool run, from its log's lines; None for none."""
    fault = caffe_gpu_fault(lines)
    if fault is None:
        return None
    cudart = cudart_path() if fault == CUDA_INSUFFICIENT_DRIVER else None
    return cuda_error_advice(fault, gpu, cuda_state(cudart) if cudart else None)


def require_gpu(gpu: int) -> None:
    """UserError unless GPU `gpu` can be used by this Caffe: asked of its CUDA runtime, whose error codes
    become one line (cuda_error_advice), and checked against the GPU code the library holds (gpu_code_advice)."""
    if gpu < 0:
        raise UserError(f"--gpu {gpu}: a GPU id is 0 or more")
    cudart = cudart_path()
    if cudart is None:
        raise UserError(f"--gpu {gpu}: this Caffe was built CPU-only (no GPU was seen at set-up); drop --gpu, or "
                        "rebuild with CUDA (docs/gpu.md)")
    state = cuda_state(cudart)
    if state.error:
        advice = cuda_error_advice(state.error, gpu, state) or f"the CUDA runtime reports error {state.error}"
        raise UserError(f"--gpu {gpu}: {advice}")
    if gpu >= state.count:
        raise UserError(f"--gpu {gpu}: {state.count} GPU(s) visible to this process; pass a GPU id below "
                        f"{state.count} or drop --gpu")
    capability = compute_capability(cudart, gpu)
    advice = gpu_code_advice(gpu, capability) if capability else None
    if advice:
        raise UserError(f"--gpu {gpu}: {advice}")


def check_caffe_gpu_flag(value: str) -> None:
    """UserError unless every GPU of the caffe tool's -gpu value ("0", "0,1" or "all") can be used, as require_gpu
    checks one: what the set-up's caffe wrapper asks before it starts the tool, so that a user's own `caffe train
    -gpu N` gets the drivers' one line. A value that is no list of ids is left to the caffe tool."""
    if value == "all":
        require_gpu(0)  # a GPU at all, or the one line why not
        ids = range(1, cuda_state(cudart_path()).count)
    else:
        try:
            ids = [int(v) for v in value.split(",")]
        except ValueError:
            return
    for gpu in ids:
        require_gpu(gpu)


def main(argv=None) -> int:
    """python -m layers.device GPU_VALUE (the set-up's caffe wrapper): check_caffe_gpu_flag; its UserError one line
    on stderr and exit code 2. A check that breaks is a note and exit code 0: it never stops a run it cannot judge."""
    value, = sys.argv[1:] if argv is None else argv
    try:
        check_caffe_gpu_flag(value)
    except UserError as e:
        print(f"caffe: error: {str(e).removeprefix('-')}", file=sys.stderr)  # "-gpu 1: ...", as caffe spells it
        return 2
    except Exception as e:  # noqa: BLE001 (the caffe tool then runs, and says what it finds)
        print(f"caffe: note: the set-up's GPU check could not run ({type(e).__name__}: {e})", file=sys.stderr)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
