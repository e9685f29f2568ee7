"""The project's Caffe build: pycaffe, the layer types the nets use, Caffe's own tests of
those layers, and a net with this repo's Python layers trained by the caffe tool and by pycaffe."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np

from conftest import REPO, caffe_env, caffe_home, run_caffe_gtests

LAYER_TYPES = ["Convolution", "Pooling", "BatchNorm", "Scale", "InnerProduct", "ReLU", "Dropout", "Concat",
               "Softmax", "EuclideanLoss", "Reshape", "Python", "Input", "Split"]


def test_pycaffe_imports_with_layer_types():
    import caffe

    assert caffe.__version__.startswith("1.0")
    missing = set(LAYER_TYPES) - set(caffe.layer_type_list())
    assert not missing


def test_caffe_tool_runs_from_the_venv():
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "--version"], capture_output=True, text=True,
                         env=caffe_env(), check=True)
    assert "caffe version 1.0.0" in (out.stdout + out.stderr)


def test_caffe_own_layer_tests_pass():
    """Caffe's gtest files for every layer type the nets use, the SGD solver and the math functions
    (third_party/caffe/build_options.env)."""
    subset = (caffe_home() / "share" / "caffe_layer_tests.txt").read_text().strip()
    assert "batch_norm_layer" in subset and "euclidean_loss_layer" in subset and "gradient_based_solver" in subset
    code, log, ran, passed = run_caffe_gtests()
    assert code == 0, log[-3000:]
    assert ran == passed and ran > 500, log[-2000:]


def test_caffe_own_python_layer_tests_pass():
    import caffe

    test_file = caffe_home() / "share" / "caffe_python_tests" / "test_python_layer.py"
    out = subprocess.run([sys.executable, "-m", "unittest", "-v", str(test_file)], capture_output=True, text=True,
                         cwd=test_file.parent, env=caffe_env())
    assert out.returncode == 0 and "OK" in out.stderr, out.stderr[-2000:]
    assert caffe is not None


SOLVER = REPO / "tests" / "data" / "tiny_solver.prototxt"  # constant input -> 2 joints x 16 classes, this repo's
# SoftLabelTargets and SoftLabelCrossEntropyLoss: the loss must fall as the logits fit the soft labels.


def test_python_layer_net_trains_with_caffe_tool():
    """As the README's check: `.venv/bin/caffe train -solver tests/data/tiny_solver.prototxt` from the repo root."""
    out = subprocess.run([".venv/bin/caffe", "train", "-solver", "tests/data/tiny_solver.prototxt"], cwd=REPO,
                         capture_output=True, text=True, env={**caffe_env(), "GLOG_minloglevel": "0"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"Iteration \d+ .*loss = ([0-9.e+-]+)", out.stderr)]
    assert len(losses) >= 10 and losses[-1] < 0.5 * losses[0], losses


def test_python_layer_net_trains_with_pycaffe(monkeypatch):
    import caffe

    caffe.set_mode_cpu()
    monkeypatch.chdir(REPO)  # the solver names its net relative to the repo root
    solver = caffe.SGDSolver(str(SOLVER))
    first = None
    for _ in range(20):
        solver.step(1)
        first = first if first is not None else float(solver.net.blobs["loss"].data[0])
    assert float(solver.net.blobs["loss"].data[0]) < 0.5 * first
    assert np.isfinite(solver.net.blobs["loss"].data).all()
