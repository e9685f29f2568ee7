"""tools/benchmark.py: the prepared GPU sections on a CPU-only Caffe."""
from __future__ import annotations

import pytest

from conftest import REPO


def test_benchmark_gpu_sections_on_a_cpu_only_build_are_one_line_before_any_work(tmp_path):
    """The prepared GPU benchmark (issue 9's figures) refuses a CPU-only Caffe in one line, before it makes data."""
    import subprocess

    from layers.device import caffe_has_cuda

    if caffe_has_cuda():
        pytest.skip("this Caffe has CUDA")
    for section in ("gpu-gtests", "caffe-time"):
        out = subprocess.run([str(REPO / ".venv/bin/python"), str(REPO / "tools/benchmark.py"), "--sections", section,
                              "--gpu", "0", "--work", str(tmp_path / section)], capture_output=True, text=True, cwd=REPO)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert "--gpu 0: this Caffe was built CPU-only" in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not any((tmp_path / section).iterdir())
