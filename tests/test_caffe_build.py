"""Issue 2: the project's Caffe build: pycaffe, the layer types the nets use, Caffe's own tests of
those layers, and a net with this repo's Python layers trained by the caffe tool and by pycaffe."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import REPO, caffe_env, caffe_home

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
    """Caffe's gtest files for every layer type the nets use (third_party/caffe/build_options.env)."""
    home = caffe_home()
    subset = (home / "share" / "caffe_layer_tests.txt").read_text().strip()
    assert "batch_norm_layer" in subset and "euclidean_loss_layer" in subset
    out = subprocess.run([str(home / "bin" / "caffe_layer_tests"), "--gtest_filter=-*GPU*"],
                         capture_output=True, text=True, timeout=1800,
                         env={**caffe_env(), "LD_LIBRARY_PATH": str(home / "lib")})  # built, not installed, by CMake
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    passed = re.search(r"\[  PASSED  \] (\d+) tests", log)
    ran = re.search(r"\[==========\] (\d+) tests from (\d+) test cases? ran", log)
    assert passed and ran and passed.group(1) == ran.group(1) and int(ran.group(1)) > 300, log[-2000:]


def test_caffe_own_python_layer_tests_pass():
    import caffe

    test_file = caffe_home() / "share" / "caffe_python_tests" / "test_python_layer.py"
    out = subprocess.run([sys.executable, "-m", "unittest", "-v", str(test_file)], capture_output=True, text=True,
                         cwd=test_file.parent, env=caffe_env())
    assert out.returncode == 0 and "OK" in out.stderr, out.stderr[-2000:]
    assert caffe is not None


# A tiny net: a constant input, one InnerProduct producing 2 joints x 16 classes, and this repo's
# SoftLabelTargets and SoftLabelCrossEntropyLoss: the loss must fall as the logits fit the soft labels.
TINY_NET = textwrap.dedent("""
    name: "tiny"
    layer { name: "x" type: "DummyData" top: "x" top: "joints"
      dummy_data_param { shape { dim: 4 dim: 8 } shape { dim: 4 dim: 2 dim: 2 }
        data_filler { type: "constant" value: 1 } data_filler { type: "constant" value: 5 } } }
    layer { name: "fc" type: "InnerProduct" bottom: "x" top: "fc"
      inner_product_param { num_output: 32 weight_filler { type: "gaussian" std: 0.1 } } }
    layer { name: "logits" type: "Reshape" bottom: "fc" top: "logits" reshape_param { shape { dim: 0 dim: 2 dim: 16 } } }
    layer { name: "targets" type: "Python" bottom: "joints" top: "targets"
      python_param { module: "layers.pose_layers" layer: "SoftLabelTargets" param_str: '{"image_size": 16, "grid": 4}' } }
    layer { name: "loss" type: "Python" bottom: "logits" bottom: "targets" top: "loss" loss_weight: 1
      param { lr_mult: 0 decay_mult: 0 }
      python_param { module: "layers.pose_layers" layer: "SoftLabelCrossEntropyLoss" param_str: '{"lambda_2d": [1.0]}' } }
    """)


def _write_tiny(tmp_path, iters=20):
    net = tmp_path / "tiny.prototxt"
    net.write_text(TINY_NET)
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{net}"\nbase_lr: 0.5\nlr_policy: "fixed"\nmax_iter: {iters}\ndisplay: 1\n'
                      f'solver_mode: CPU\nsnapshot_prefix: "{tmp_path}/tiny"\nrandom_seed: 1\n')
    return solver


def test_python_layer_net_trains_with_caffe_tool(tmp_path):
    solver = _write_tiny(tmp_path)
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "train", "-solver", str(solver)], cwd=tmp_path,
                         capture_output=True, text=True, env={**caffe_env(), "GLOG_minloglevel": "0"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(v) for v in re.findall(r"Iteration \d+ .*loss = ([0-9.e+-]+)", out.stderr)]
    assert len(losses) >= 10 and losses[-1] < 0.5 * losses[0], losses


def test_python_layer_net_trains_with_pycaffe(tmp_path):
    import caffe

    caffe.set_mode_cpu()
    solver = caffe.SGDSolver(str(_write_tiny(tmp_path)))
    first = None
    for _ in range(20):
        solver.step(1)
        first = first if first is not None else float(solver.net.blobs["loss"].data[0])
    assert float(solver.net.blobs["loss"].data[0]) < 0.5 * first
    assert np.isfinite(solver.net.blobs["loss"].data).all()
