"""Which OpenBLAS kernels Caffe (and NumPy) run: OpenBLAS's own CPU detection, checked against the CPU's
flags, and the OPENBLAS_CORETYPE to set where the detection falls back to generic code.

OpenBLAS built with DYNAMIC_ARCH (Debian's, NumPy's wheels) picks its kernels at load time from CPUID. On
CPUs it does not know (newer or virtualised ones) it falls back to a generic core such as Prescott (SSE3),
and every GEMM of a convolution runs about 2x slower. OPENBLAS_CORETYPE overrides the detection; it is read
once, when the library loads, so it must be in the environment before the process starts (the `caffe`
wrapper) or before NumPy/pycaffe are imported (the venv's start-up hook). tools/setup.sh decides once per
machine with `python -m layers.openblas choose`, checks the choice with Caffe's own gtests (`verify`), and
records it.
A user's explicit OPENBLAS_CORETYPE always wins. See docs/design.md, "CPU speed".

  python -m layers.openblas report [CAFFE]  # CPU flags' best core, what NumPy's (and Caffe's) OpenBLAS picked
  python -m layers.openblas choose CAFFE    # print the core to force for the caffe binary CAFFE, or nothing
  python -m layers.openblas verify HOME CORE  # Caffe's CPU gtests of the build in HOME under that core: exit 0 if
                                              # all pass (their log on stdout), 1 if not
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from layers.caffe_build import gtest_cpu_filter, run_caffe_gtests

# Kernel families, weakest first. Each level lists the OpenBLAS core names (lower case) that use it:
# SkylakeX-class cores need AVX-512 F/CD/BW/DQ/VL, Haswell-class AVX2 + FMA, Sandybridge-class AVX.
LEVELS = (
    ("generic", ()),
    ("avx", ("sandybridge", "bulldozer", "piledriver", "steamroller", "excavator")),
    ("avx2", ("haswell", "zen")),
    ("avx512", ("skylakex", "cooperlake", "sapphirerapids")),
)
# The core to force at each level: the one with the most testing behind it in OpenBLAS 0.3.x.
FORCE = {"avx": "Sandybridge", "avx2": "Haswell", "avx512": "SkylakeX"}
AVX512_FLAGS = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The flags of the first CPU in /proc/cpuinfo (or in the given text)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    m = re.search(r"^flags\s*:(.*)$", cpuinfo, re.M)
    return set(m.group(1).split()) if m else set()


def level_of_flags(flags: set[str]) -> str:
    """The best kernel family the CPU's flags allow."""
    if AVX512_FLAGS <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    if "avx" in flags:
        return "avx"
    return "generic"


def level_of_core(core: str) -> str:
    """The kernel family of an OpenBLAS core name; unknown names count as generic."""
    name = core.strip().lower()
    for level, names in LEVELS:
        if name in names:
            return level
    return "generic"


def _rank(level: str) -> int:
    return [lv for lv, _ in LEVELS].index(level)


def core_to_force(detected: str | None, flags: set[str], user_setting: str | None = None) -> str | None:
    """The OPENBLAS_CORETYPE to set, or None to leave OpenBLAS's own choice alone: None when the user
    set one, when the detection is unknown, or when the detected core is already as good as the flags allow."""
    if user_setting or not detected:
        return None
    best = level_of_flags(flags)
    if _rank(level_of_core(detected)) >= _rank(best):
        return None
    return FORCE.get(best)


def loaded_core(cmd: list[str], env: dict | None = None) -> str | None:
    """The core OpenBLAS reports (OPENBLAS_VERBOSE=2 prints `Core: <name>` when it loads) in the process
    `cmd`, with OPENBLAS_CORETYPE taken from `env` (removed when env does not set it)."""
    run_env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    run_env.update(env or {})
    run_env["OPENBLAS_VERBOSE"] = "2"
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^Core: (\S+)", out.stdout + out.stderr, re.M)
    return m.group(1) if m else None


def numpy_cmd() -> list[str]:
    return [sys.executable, "-c", "import numpy"]


def verify(home: Path, core: str) -> int:
    """Caffe's gtests that run on the CPU (the nets' layers, whose convolutions and fully connected layers are
    GEMMs, the solver, the math functions) under OPENBLAS_CORETYPE=core: an OpenBLAS can compute wrong results on a
    core forced on it. Their log on stdout; 0 when every case ran and passed."""
    run = run_caffe_gtests(home, gtest_cpu_filter(home), env={**os.environ, "OPENBLAS_CORETYPE": core})
    print(run.log)
    if run.returncode == 0 and run.ran == run.passed > 0:
        return 0
    print(f"Caffe's gtests under OPENBLAS_CORETYPE={core}: {run.passed} of {run.ran} passed (exit {run.returncode}; "
          f"failed: {', '.join(run.failed) or 'none named'})")
    return 1


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    arity = {"report": (1, 2), "choose": (2,), "verify": (3,)}
    if not args or len(args) not in arity.get(args[0], ()):
        print("usage: python -m layers.openblas report [CAFFE_BINARY] | choose CAFFE_BINARY | verify CAFFE_HOME CORE",
              file=sys.stderr)
        return 2
    if args[0] == "verify":
        return verify(Path(args[1]), args[2])
    flags = cpu_flags()
    if args[0] == "choose":
        # PARK3D_OPENBLAS_DETECTED stands in for the detection, to try the fallback path on a CPU OpenBLAS knows.
        detected = os.environ.get("PARK3D_OPENBLAS_DETECTED") or loaded_core([args[1], "--version"])
        print(core_to_force(detected, flags) or "")
        return 0
    print(f"CPU flags allow: {level_of_flags(flags)} kernels ({FORCE.get(level_of_flags(flags), 'generic')})")
    print(f"OPENBLAS_CORETYPE in this environment: {os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"NumPy's OpenBLAS, own detection: {loaded_core(numpy_cmd())}")
    if len(args) > 1:
        print(f"Caffe's OpenBLAS, own detection: {loaded_core([args[1], '--version'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
