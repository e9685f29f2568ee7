"""layers/fold.py: BatchNorm + Scale folded into the layer before them, against the three layers applied one after
the other by hand."""
from __future__ import annotations

import numpy as np
import pytest

from layers.fold import batch_norm_affine, batch_norm_statistics, fold_affine


def test_caffe_batch_norm_statistics_are_the_sums_over_the_factor():
    mean, var = batch_norm_statistics([np.array([2.0, 4.0]), np.array([8.0, 1.0]), np.array([2.0])])
    assert mean.tolist() == [1.0, 2.0] and var.tolist() == [4.0, 0.5]
    mean, var = batch_norm_statistics([np.array([2.0]), np.array([8.0]), np.array([0.0])])  # never updated
    assert mean.tolist() == [0.0] and var.tolist() == [0.0]


def test_folded_convolution_equals_convolution_then_batch_norm_then_scale():
    rng = np.random.default_rng(0)
    w, x = rng.normal(size=(4, 3, 2, 2)), rng.normal(size=(3, 5, 5))
    mean, var, gamma, beta = rng.normal(size=4), rng.uniform(0.5, 2, 4), rng.normal(size=4), rng.normal(size=4)

    def conv(weight, bias):  # a 2x2 valid convolution, written out
        out = np.zeros((4, 4, 4))
        for o in range(4):
            for i in range(4):
                for j in range(4):
                    out[o, i, j] = np.sum(weight[o] * x[:, i:i + 2, j:j + 2]) + bias[o]
        return out

    y = conv(w, np.zeros(4))
    by_hand = gamma[:, None, None] * (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) + beta[:, None, None]
    folded = conv(*fold_affine(w, None, *batch_norm_affine(mean, var, 1e-5, gamma, beta)))
    assert np.allclose(folded, by_hand, atol=1e-12)


def test_folded_inner_product_with_bias_and_the_channel_check():
    w, b = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0.5, -0.5])
    a, c = np.array([2.0, -1.0]), np.array([1.0, 0.0])
    fw, fb = fold_affine(w, b, a, c)
    x = np.array([0.3, -0.7])
    assert np.allclose(fw @ x + fb, a * (w @ x + b) + c)
    with pytest.raises(ValueError, match="3 channels of BatchNorm after a layer with 2 outputs"):
        fold_affine(w, b, np.ones(3), np.zeros(3))
