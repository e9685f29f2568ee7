"""BatchNorm + Scale folded into the convolution or inner product before them, as pure functions on arrays.

At test time Caffe's BatchNorm is a fixed per-channel affine map, (x - mean) / sqrt(var + eps), and the Scale
layer after it another, gamma * x + beta; both fold into the weights and bias of the layer that feeds them:
    W' = W * gamma / sqrt(var + eps)      (per output channel)
    b' = (b - mean) * gamma / sqrt(var + eps) + beta
The ONNX exporter (layers.onnx_export) uses these, and so do the folded Caffe nets: folded_net_param gives the
net without the BatchNorm and Scale layers (prototxt.generate writes deploy_<variant>_folded.prototxt and
evaluate_<variant>_folded.prototxt with it) and folded_params its weights (layers.deploy.fold_deploy_net).
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


FOLDABLE = ("Convolution", "InnerProduct")


def folded_net_param(net_param):
    """A copy of a net (caffe_pb2.NetParameter) with every Convolution / InnerProduct that is followed, in place,
    by a BatchNorm and a Scale layer replaced by the same layer with a bias and without the two; returns (the
    folded net, [(layer, its BatchNorm, its Scale)] in net order). The other layers are kept as they are."""
    folded = type(net_param)()
    folded.CopyFrom(net_param)
    del folded.layer[:]
    layers, pairs, i = list(net_param.layer), [], 0
    while i < len(layers):
        layer = layers[i]
        follows = layers[i + 1:i + 3]
        if (layer.type in FOLDABLE and [f.type for f in follows] == ["BatchNorm", "Scale"]
                and all(list(f.bottom) == list(f.top) == list(layer.top) for f in follows)
                and len(follows[1].bottom) == 1):
            kept = folded.layer.add()
            kept.CopyFrom(layer)
            p = kept.convolution_param if layer.type == "Convolution" else kept.inner_product_param
            p.bias_term = True
            p.bias_filler.type = "constant"
            pairs.append((layer.name, follows[0].name, follows[1].name))
            i += 3
        else:
            folded.layer.add().CopyFrom(layer)
            i += 1
    return folded, pairs


def folded_params(params: dict, pairs, eps: dict | None = None) -> dict:
    """The folded net's weight and bias {layer: (W', b')} of each (layer, BatchNorm, Scale) in `pairs`, from a
    net's params (layer -> list of arrays: the layer's weight [and bias], the BatchNorm's three blobs, the Scale's
    gamma [and beta]); eps: BatchNorm layer -> its eps (default CAFFE_BN_EPS)."""
    out = {}
    for layer, bn, scale in pairs:
        blobs, scale_blobs = params[layer], params[scale]
        mean, var = batch_norm_statistics(params[bn])
        beta = scale_blobs[1] if len(scale_blobs) > 1 else None
        a, c = batch_norm_affine(mean, var, (eps or {}).get(bn, CAFFE_BN_EPS), np.asarray(scale_blobs[0], np.float64),
                                 None if beta is None else np.asarray(beta, np.float64))
        out[layer] = fold_affine(blobs[0], blobs[1] if len(blobs) > 1 else None, a, c)
    return out
