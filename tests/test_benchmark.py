"""tools/benchmark.py and bench/: every section documented, the reference net built from the paper's trunk, and the
prepared GPU sections refused on a CPU-only Caffe."""
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
        out = subprocess.run(
            [
                str(REPO / ".venv/bin/python"),
                str(REPO / "tools/benchmark.py"),
                "--sections",
                section,
                "--gpu",
                "0",
                "--work",
                str(tmp_path / section),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert "--gpu 0: this Caffe was built CPU-only" in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not any((tmp_path / section).iterdir())


def test_tf32_needs_a_gpu_and_a_cudnn_build_and_says_so_in_one_line(tmp_path):
    """--tf32 is the cuDNN build's GPU option (CAFFE_TF32=1): without --gpu, or with a Caffe that has no cuDNN,
    it is one line naming the set-up that has it, exit code 2, before any work."""
    import subprocess

    from layers.caffe_build import caffe_home, has_cudnn

    if has_cudnn(caffe_home()):
        pytest.skip("this Caffe has cuDNN")
    for gpu in ([], ["--gpu", "0"]):
        out = subprocess.run(
            [
                str(REPO / ".venv/bin/python"),
                str(REPO / "tools/benchmark.py"),
                "--sections",
                "caffe-time",
                "--tf32",
                *gpu,
                "--work",
                str(tmp_path / "w"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "--tf32: TF32 is GPU math of the cuDNN build" in out.stderr and "PARK3D_CUDNN=9" in out.stderr
        assert not (tmp_path / "w").exists()


def test_every_section_is_documented_and_lives_in_a_section_module():
    from bench.run import DEFAULT_SECTIONS, SECTIONS

    doc = (REPO / "tools" / "benchmark.py").read_text().split('"""')[1]
    for name, section in SECTIONS.items():
        assert f"\n  {name} " in doc, f"section {name} is not described in tools/benchmark.py's help"
        assert section.__module__ in ("bench.data_sections", "bench.model_sections", "bench.speed_sections")
    assert "gpu-gtests" in SECTIONS and "gpu-gtests" not in DEFAULT_SECTIONS  # a CUDA build's, asked for by name


def test_the_reference_net_is_the_papers_trunk_without_batchnorm():
    """The ZFNet-like rows' net: layers.config's convolutions (maps, kernels, strides, pads, which pool), ReLUs,
    then fc 1024, with no BatchNorm."""
    from bench.workload import zfnet_like
    from layers.config import CONV_LAYERS

    net = zfnet_like(4)
    convs = [layer for layer in net.layer if layer.type == "Convolution"]
    assert [(c.name, c.convolution_param.num_output, c.convolution_param.kernel_size[0],
             c.convolution_param.stride[0], c.convolution_param.pad[0] if c.convolution_param.pad else 0)
            for c in convs] == [row[:5] for row in CONV_LAYERS]
    pools = [layer.bottom[0] for layer in net.layer if layer.type == "Pooling"]
    assert pools == [name for name, *_, pool in CONV_LAYERS if pool]  # in place: a pool reads its conv's top
    assert not any(layer.type == "BatchNorm" for layer in net.layer)
    assert [layer.inner_product_param.num_output for layer in net.layer if layer.type == "InnerProduct"] == [1024]
