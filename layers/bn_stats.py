"""BatchNorm statistics re-estimated over the training set after training, the weights fixed.

Caffe's BatchNorm keeps its test-time mean and variance as a moving average with fraction 0.999 per
iteration: over a run of a few hundred iterations that is nearly a plain average over *all* iterations,
the first ones included, when the weights (and so every layer's input statistics) were far from their final
values. The deploy net then normalises with statistics that no longer match its own weights. The remedy
(as in "precise BN"): with the final weights, run the training images once more through a copy of the net
whose BatchNorm layers use each batch's own statistics and sum them (moving_average_fraction 1, so the
stored sums are plain sums over the batches), and use their average at test time. Dropout is off (TEST
phase), as it is at test time. See docs/design.md, "BatchNorm statistics".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from google.protobuf import text_format

from data_prep.batches import BatchSource

from .config import INPUT_SIZE
from .layout import EVALUATION_INPUTS

BN_BATCHES = 100  # training batches the drivers re-estimate the statistics over by default


def statistics_net_text(deploy_prototxt: str) -> str:
    """The deploy net with every BatchNorm layer computing batch statistics and summing them."""
    from caffe.proto import caffe_pb2  # lazy: loads libcaffe (and CUDA)

    net = text_format.Merge(Path(deploy_prototxt).read_text(), caffe_pb2.NetParameter())
    found = 0
    for layer in net.layer:
        if layer.type == "BatchNorm":
            layer.batch_norm_param.use_global_stats = False
            layer.batch_norm_param.moving_average_fraction = 1.0
            found += 1
    if not found:
        raise ValueError(f"{deploy_prototxt}: no BatchNorm layers to re-estimate")
    return text_format.MessageToString(net)


def reestimate_batch_norm(net, deploy_prototxt: str, weights: str, train_lmdb: str, batches: int = 100,
                          batch_size: int = 32, seed: int = 0) -> int:
    """Replace the BatchNorm statistics of `net` (a loaded deploy net) by their average over up to `batches`
    shuffled batches of centre crops of the training LMDB, computed with the same weights. Returns the number
    of training images used."""
    from .deploy import net_from_text  # lazy: imports caffe, which layers.models' onnx route must not need

    stats_net = net_from_text(statistics_net_text(deploy_prototxt), weights)
    stats_net.blobs["data"].reshape(batch_size, 3, INPUT_SIZE, INPUT_SIZE)
    for name in EVALUATION_INPUTS:  # an evaluation net: its error layers run along, on placeholder inputs
        if name in stats_net.blobs:
            stats_net.blobs[name].reshape(batch_size, *stats_net.blobs[name].data.shape[1:])
    stats_net.reshape()
    for name in EVALUATION_INPUTS:
        if name in stats_net.blobs:
            stats_net.blobs[name].data[...] = 1.0
    bn_layers = [name for name, layer in zip(stats_net._layer_names, stats_net.layers) if layer.type == "BatchNorm"]
    for name in bn_layers:
        for blob in stats_net.params[name]:
            blob.data[...] = 0
    # centre crops, no colour augmentation, shuffled so that a partial pass sees every subject and camera
    source = BatchSource(str(train_lmdb), batch_size, INPUT_SIZE, train=False, seed=seed, pca_sigma=0.0)
    order = np.random.default_rng(seed).permutation(len(source.keys))
    source.keys = [source.keys[i] for i in order]
    j = len(source.meta["joints"])
    image = np.empty((batch_size, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    joints, pose = np.empty((batch_size, j, 2), np.float32), np.empty((batch_size, j, 3), np.float32)
    full_batches = min(batches, len(source.keys) // batch_size)
    if full_batches < 1:
        raise ValueError(f"{train_lmdb}: fewer than {batch_size} training images; cannot re-estimate BatchNorm")
    for b in range(full_batches):
        source.fill(b, image, joints, pose)
        stats_net.blobs["data"].data[...] = image
        stats_net.forward()
    for name in bn_layers:
        for k, blob in enumerate(stats_net.params[name]):
            net.params[name][k].data[...] = blob.data
    return full_batches * batch_size


__all__ = ["reestimate_batch_norm", "statistics_net_text"]
