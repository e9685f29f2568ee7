"""The pose layers (layers/pose_layers.py) in real Caffe nets: numerical gradient check of the loss, the lambda_2D
schedule, the targets layers, the one line of a bad param_str."""
from __future__ import annotations

import json
import textwrap

import caffe
import numpy as np
import pytest

from conftest import numerical_gradient, relative_error
from layers.targets import drop_root, root_relative_targets, soft_label_targets

caffe.set_mode_cpu()


def net_from_string(tmp_path, text, phase=caffe.TEST, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return caffe.Net(str(path), phase)


LOSS_NET = """
    force_backward: true
    layer { name: "logits" type: "Input" top: "logits" input_param { shape { dim: 2 dim: 3 dim: 8 } } }
    layer { name: "targets" type: "Input" top: "targets" input_param { shape { dim: 2 dim: 3 dim: 8 } } }
    layer { name: "loss" type: "Python" bottom: "logits" bottom: "targets" top: "loss" loss_weight: %s
      param { lr_mult: 0 decay_mult: 0 }
      python_param { module: "layers.pose_layers" layer: "SoftLabelCrossEntropyLoss" param_str: '%s' } }
    """


def test_soft_label_loss_gradient_matches_central_differences(tmp_path):
    net = net_from_string(tmp_path, LOSS_NET % (2.0, json.dumps({"lambda_2d": [0.1]})))
    rng = np.random.default_rng(0)
    net.blobs["logits"].data[...] = rng.normal(size=(2, 3, 8))
    net.blobs["targets"].data[...] = rng.dirichlet(np.ones(8), size=(2, 3))
    net.forward()
    net.backward()
    analytic = net.blobs["logits"].diff.copy()

    def loss():
        return 2.0 * float(net.forward()["loss"][0])  # loss_weight scales the objective

    numeric = numerical_gradient(loss, net.blobs["logits"].data, eps=1e-2)
    assert relative_error(analytic, numeric) < 1e-3
    assert np.abs(analytic).max() > 1e-3  # a zero gradient would pass trivially
    numeric_t = numerical_gradient(loss, net.blobs["targets"].data, eps=1e-3)
    assert relative_error(net.blobs["targets"].diff, numeric_t) < 1e-3


def test_lambda_2d_schedule_counts_training_iterations_only(tmp_path):
    params = json.dumps({"lambda_2d": [0.1, 0.01], "lambda_step_iter": 3})
    train = net_from_string(tmp_path, LOSS_NET % (1, params), caffe.TRAIN, "train.prototxt")
    train.blobs["logits"].data[...] = 0
    train.blobs["targets"].data[...] = 1 / 8
    lambdas = [float(train.forward()["loss"][0]) / (3 * np.log(8)) for _ in range(5)]  # 3 joints, batch mean
    assert np.allclose(lambdas, [0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-4)
    assert float(train.params["loss"][0].data[0]) == 5
    test = net_from_string(tmp_path, LOSS_NET % (1, params), caffe.TEST, "test.prototxt")
    test.blobs["targets"].data[...] = 1 / 8
    for _ in range(4):
        test.forward()
    assert float(test.params["loss"][0].data[0]) == 0


def test_bad_param_str_names_the_layer_and_the_key(tmp_path, capfd):
    with pytest.raises(ValueError, match=r"SoftLabelCrossEntropyLoss: unknown param_str keys \['lambda2d'\]"):
        net_from_string(tmp_path, LOSS_NET % (1, '{"lambda2d": [0.1]}'))
    err = capfd.readouterr().err  # what `caffe train` shows, and the drivers' one line
    assert (
        "\nPython layer error: SoftLabelCrossEntropyLoss: unknown param_str keys" in "\n" + err
        and "Traceback" not in err
    )


TARGETS_NET = """
    layer { name: "in" type: "Input" top: "joints" top: "pose" input_param { shape { dim: 2 dim: 17 dim: 2 } shape {
      dim: 2 dim: 17 dim: 3 } } }
    layer { name: "soft" type: "Python" bottom: "joints" top: "soft"
      python_param { module: "layers.pose_layers" layer: "SoftLabelTargets" param_str: '{}' } }
    layer { name: "rel" type: "Python" bottom: "pose" top: "t_hip" top: "t_lelbow"
      python_param { module: "layers.pose_layers" layer: "RootRelativeTargets" param_str: '{"roots": [0, 12]}' } }
    """


def test_target_layers_match_the_pure_functions(tmp_path):
    net = net_from_string(tmp_path, TARGETS_NET)
    rng = np.random.default_rng(1)
    joints, pose = rng.uniform(-10, 240, (2, 17, 2)), rng.normal(size=(2, 17, 3))
    net.blobs["joints"].data[...] = joints
    net.blobs["pose"].data[...] = pose
    out = net.forward()
    assert out["soft"].shape == (2, 17, 256)
    assert np.allclose(out["soft"], soft_label_targets(joints.astype(np.float32)), atol=1e-6)
    rel = root_relative_targets(pose.astype(np.float32), [0, 12])
    assert np.allclose(out["t_hip"], drop_root(rel[:, 0], 0), atol=1e-6)
    assert np.allclose(out["t_lelbow"], drop_root(rel[:, 1], 12), atol=1e-6)
