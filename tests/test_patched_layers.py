"""The OpenMP/fused CPU loops of third_party/caffe/patches/0003 (BatchNorm, Scale, ReLU, Dropout, max pooling,
im2col) in the project's Caffe build, checked against NumPy references written here from the layers'
definitions (forward, numerical gradients), and BatchNorm's and Dropout's behaviour the nets rely on."""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import numerical_gradient

NET = """name: "patched" force_backward: true
layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 3 dim: 2 dim: 9 dim: 9 } } }
layer { name: "conv" type: "Convolution" bottom: "x" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 bias_term: false
    weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true
    filler { type: "uniform" min: 0.5 max: 1.5 } bias_filler { type: "uniform" min: -0.5 max: 0.5 } } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 6 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "gaussian" std:
    0.1 } } }
layer { name: "fc_bn" type: "BatchNorm" bottom: "fc" top: "fc" }
layer { name: "fc_scale" type: "Scale" bottom: "fc" top: "fc" scale_param { bias_term: true
    filler { type: "uniform" min: 0.5 max: 1.5 } bias_filler { type: "uniform" min: -0.5 max: 0.5 } } }
"""
EPS = 1e-5  # Caffe's BatchNorm default


def conv2d(x, w, stride, pad):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    oh = (x.shape[2] - k) // stride + 1
    ow = (x.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out


def batch_norm_train(x):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + EPS), mean, var


def max_pool_ceil(x, k, s):
    """Caffe's pooling: output size rounded up, windows clipped to the input."""
    oh = math.ceil((x.shape[2] - k) / s) + 1
    ow = math.ceil((x.shape[3] - k) / s) + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * s : min(i * s + k, x.shape[2]), j * s : min(j * s + k, x.shape[3])].max(
                axis=(2, 3)
            )
    return out


def reference_forward(x, p):
    h = conv2d(x, p["conv"][0], 2, 1)
    h, mean, var = batch_norm_train(h)
    h = np.maximum(h * p["scale"][0][None, :, None, None] + p["scale"][1][None, :, None, None], 0)
    h = max_pool_ceil(h, 3, 2)
    f = h.reshape(len(h), -1) @ p["fc"][0].T + p["fc"][1]
    f, _, _ = batch_norm_train(f)
    return f * p["fc_scale"][0] + p["fc_scale"][1], mean, var


@pytest.fixture()
def patched_net(tmp_path):
    import caffe

    caffe.set_mode_cpu()
    caffe.set_random_seed(5)
    path = tmp_path / "patched.prototxt"
    path.write_text(NET)
    net = caffe.Net(str(path), caffe.TRAIN)
    rng = np.random.default_rng(0)
    net.blobs["x"].data[...] = rng.normal(size=net.blobs["x"].data.shape)
    return net


def params_of(net):
    return {name: [np.array(b.data, np.float64) for b in blobs] for name, blobs in net.params.items()}


def test_patched_layers_forward_matches_numpy(patched_net):
    net = patched_net
    out = np.array(net.forward()["fc"], np.float64)
    expected, mean, var = reference_forward(np.array(net.blobs["x"].data, np.float64), params_of(net))
    np.testing.assert_allclose(out, expected, atol=2e-4)
    # the statistics BatchNorm stores: running sums with count 1 after one pass; variance with m/(m-1)
    m = 3 * 5 * 5
    bn = net.params["bn"]
    assert bn[2].data[0] == pytest.approx(1.0)
    np.testing.assert_allclose(bn[0].data, mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn[1].data, var * m / (m - 1), rtol=1e-4, atol=1e-5)


def test_patched_layers_backward_matches_numerical_gradient(patched_net):
    """Gradient of sum(fc * R) with respect to the input and to the Scale layers' parameters, against central
    differences of the NumPy reference (float64)."""
    net = patched_net
    rng = np.random.default_rng(1)
    r = rng.normal(size=net.blobs["fc"].data.shape)
    net.forward()
    net.blobs["fc"].diff[...] = r
    for blobs in net.params.values():
        for b in blobs:
            b.diff[...] = 0
    net.backward()
    x = np.array(net.blobs["x"].data, np.float64)
    p = params_of(net)

    def loss():
        return float((reference_forward(x, p)[0] * r).sum())

    np.testing.assert_allclose(net.blobs["x"].diff, numerical_gradient(loss, x, 1e-5), rtol=2e-3, atol=2e-4)
    for layer in ("scale", "fc_scale"):
        for k in range(2):  # scale, then bias
            np.testing.assert_allclose(net.params[layer][k].diff, numerical_gradient(loss, p[layer][k], 1e-5),
                                       rtol=2e-3, atol=2e-4)


def test_batch_norm_global_statistics_in_test_phase(tmp_path):
    """TEST phase: y = (x - mean/count) / sqrt(var/count + eps) per channel, and the gradient divides by the same."""
    import caffe

    path = tmp_path / "bn.prototxt"
    path.write_text(
        'force_backward: true\n'
        'layer { name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }\n'
        'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" }\n'
    )
    net = caffe.Net(str(path), caffe.TEST)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 4, 5))
    mean, var, count = np.array([0.5, -1.0, 2.0]), np.array([1.0, 4.0, 0.25]), 2.0
    net.params["bn"][0].data[...] = mean * count
    net.params["bn"][1].data[...] = var * count
    net.params["bn"][2].data[...] = count
    net.blobs["x"].data[...] = x
    y = net.forward()["y"]
    sd = np.sqrt(var + EPS)[None, :, None, None]
    np.testing.assert_allclose(y, (x - mean[None, :, None, None]) / sd, rtol=1e-5, atol=1e-6)
    dy = rng.normal(size=y.shape)
    net.blobs["y"].diff[...] = dy
    net.backward()
    np.testing.assert_allclose(net.blobs["x"].diff, dy / sd, rtol=1e-5, atol=1e-6)


def test_dropout_scales_kept_units_and_their_gradient(tmp_path):
    import caffe

    caffe.set_random_seed(3)
    path = tmp_path / "drop.prototxt"
    path.write_text(
        'force_backward: true\nlayer { name: "x" type: "Input" top: "x" input_param { shape { dim: 64 dim: 512 } } }\n'
        'layer { name: "drop" type: "Dropout" bottom: "x" top: "y" dropout_param { dropout_ratio: 0.3 } }\n'
    )
    net = caffe.Net(str(path), caffe.TRAIN)
    x = np.random.default_rng(4).uniform(1, 2, size=(64, 512))
    net.blobs["x"].data[...] = x
    y = np.array(net.forward()["y"], np.float64)
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01  # 32768 draws: 0.7 +- 0.0025 (1 sd)
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    dy = np.random.default_rng(5).normal(size=y.shape)
    net.blobs["y"].diff[...] = dy
    net.backward()
    np.testing.assert_allclose(net.blobs["x"].diff, np.where(kept, dy / 0.7, 0), rtol=1e-6, atol=1e-7)
