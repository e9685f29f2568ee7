"""BatchNorm + Scale folded into the convolution or inner product before them, as pure functions on arrays.

At test time Caffe's BatchNorm is a fixed per-channel affine map, (x - mean) / sqrt(var + eps), and the Scale
layer after it another, gamma * x + beta; both fold into the weights and bias of the layer that feeds them:
    W' = W * gamma / sqrt(var + eps)      (per output channel)
    b' = (b - mean) * gamma / sqrt(var + eps) + beta
The ONNX exporter (layers.onnx_export) and the PyTorch state_dict (layers.torch_model) use these.
"""
from __future__ import annotations

import numpy as np

CAFFE_BN_EPS = 1e-5  # BatchNormParameter.eps's default


def batch_norm_statistics(blobs) -> tuple[np.ndarray, np.ndarray]:
    """(mean, variance) of a Caffe BatchNorm layer from its three blobs: the running sums of the mean and the
    variance and their common scale factor (the statistics are sum / factor; a factor 0 means zero statistics,
    as Caffe reads it)."""
    mean_sum, var_sum, factor = (np.asarray(b, dtype=np.float64) for b in blobs)
    scale = 0.0 if float(factor.reshape(-1)[0]) == 0 else 1.0 / float(factor.reshape(-1)[0])
    return mean_sum * scale, var_sum * scale


def batch_norm_affine(mean, var, eps: float = CAFFE_BN_EPS, gamma=None, beta=None) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) with BatchNorm (and the Scale layer's gamma, beta when given) = a * x + c, per channel."""
    a = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    c = -np.asarray(mean, dtype=np.float64) * a
    if gamma is not None:
        a, c = a * gamma, c * gamma
    if beta is not None:
        c = c + beta
    return a, c


def fold_affine(weight: np.ndarray, bias, a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') of a layer (weight with the output channel first: a convolution's (out, in, kh, kw) or an
    inner product's (out, in); bias None when it has none) followed by the per-channel map a * y + c."""
    weight = np.asarray(weight, dtype=np.float64)
    if a.shape != (weight.shape[0],):
        raise ValueError(f"fold_affine: {a.shape[0] if a.ndim == 1 else a.shape} channels of BatchNorm after a layer "
                         f"with {weight.shape[0]} outputs")
    bias = np.zeros(weight.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    return weight * a.reshape(-1, *([1] * (weight.ndim - 1))), bias * a + c
