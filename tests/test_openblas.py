"""The OpenBLAS core choice (layers/openblas.py) and Caffe under a forced core."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO, caffe_env, caffe_home
from layers.openblas import core_to_force, cpu_flags, level_of_core, level_of_flags, loaded_core

XEON_AVX512 = "flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl\n"
ZEN2 = "processor : 0\nflags : fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma sha_ni\n"
SANDY = "flags : fpu sse sse2 ssse3 sse4_1 sse4_2 avx\n"
OLD = "flags : fpu sse sse2 pni ssse3\n"


def _best_core_here():
    level = level_of_flags(cpu_flags())
    if level == "generic":
        pytest.skip("this CPU has no AVX: no OpenBLAS core better than the generic one to force")
    return {"avx": "Sandybridge", "avx2": "Haswell", "avx512": "SkylakeX"}[level]



def test_best_kernels_from_cpu_flags():
    assert level_of_flags(cpu_flags(XEON_AVX512)) == "avx512"
    assert level_of_flags(cpu_flags(ZEN2)) == "avx2"
    assert level_of_flags(cpu_flags(SANDY)) == "avx"
    assert level_of_flags(cpu_flags(OLD)) == "generic"
    # AVX-512 F alone (Knights Landing) is not enough for the SkylakeX kernels
    assert level_of_flags(cpu_flags("flags : avx avx2 fma avx512f avx512cd\n")) == "avx2"


def test_core_forced_only_where_detection_falls_back():
    avx512 = cpu_flags(XEON_AVX512)
    assert core_to_force("Prescott", avx512) == "SkylakeX"  # the fallback the issue measured
    assert core_to_force("Haswell", avx512) == "SkylakeX"
    assert core_to_force("SkylakeX", avx512) is None
    assert core_to_force("Cooperlake", avx512) is None  # as good: left alone
    assert core_to_force("Zen", cpu_flags(ZEN2)) is None
    assert core_to_force("Nehalem", cpu_flags(ZEN2)) == "Haswell"
    assert core_to_force("Prescott", cpu_flags(OLD)) is None  # nothing better to force
    assert core_to_force("Prescott", avx512, user_setting="Haswell") is None  # the user's choice wins
    assert core_to_force(None, avx512) is None
    assert level_of_core("SKYLAKEX") == "avx512" and level_of_core("Katmai") == "generic"


def test_caffe_openblas_honours_a_forced_core_and_the_users_setting():
    """The core set-up would force on this CPU is a name Caffe's OpenBLAS accepts (else forcing does nothing),
    and the venv's caffe wrapper leaves a user's explicit OPENBLAS_CORETYPE alone."""
    best = _best_core_here()
    binary = str(caffe_home() / "bin" / "caffe")
    assert loaded_core([binary, "--version"], {"OPENBLAS_CORETYPE": best}) == best
    wrapper = str(REPO / ".venv" / "bin" / "caffe")
    assert loaded_core([wrapper, "--version"], {"OPENBLAS_CORETYPE": "Sandybridge"}) == "Sandybridge"
    chosen = (REPO / ".venv" / ".openblas-coretype").read_text().strip()
    own = loaded_core([binary, "--version"])
    assert loaded_core([wrapper, "--version"]) == (chosen or own)  # the wrapper runs set-up's choice


def test_caffe_gtests_pass_under_the_forced_core(tmp_path):
    """OpenBLAS builds can compute wrong results on a core forced on them: Caffe's gtests of the nets'
    layers (convolutions and fully connected layers are GEMMs) and of the solver must pass under it. Run as the
    set-up runs them before it forces a core (`python -m layers.openblas verify`), which leaves nothing in TMPDIR."""
    env = {**caffe_env(), "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "layers.openblas", "verify", str(caffe_home()), _best_core_here()],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=3000)
    ran = re.search(r"\[==========\] (\d+) tests? from \d+ test cases? ran", out.stdout)
    assert out.returncode == 0 and ran and int(ran.group(1)) > 500, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"[  PASSED  ] {ran.group(1)} tests." in out.stdout
    assert list(tmp_path.iterdir()) == []


# ---- the patched layers against NumPy ------------------------------------------------------------
