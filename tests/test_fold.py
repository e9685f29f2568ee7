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
    by_hand = (
        gamma[:, None, None] * (y - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) + beta[:, None, None]
    )
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


def test_folded_net_drops_exactly_each_batch_norm_and_scale_after_a_layer():
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format

    from conftest import REPO
    from layers.fold import folded_net_param
    from layers.layout import read_layout

    path = REPO / "prototxt/evaluate_both.prototxt"
    net = text_format.Merge(path.read_text(), caffe_pb2.NetParameter())
    folded, pairs = folded_net_param(net)
    assert len(pairs) == 15 and len(folded.layer) == len(net.layer) - 30
    assert [l.type for l in folded.layer].count("Scale") == 1  # the evaluation tail's pose3d_mm scaling stays
    assert not any(l.type == "BatchNorm" for l in folded.layer)
    assert all(l.convolution_param.bias_term or l.inner_product_param.bias_term
               for l in folded.layer if l.name in {p[0] for p in pairs})
    committed = read_layout(REPO / "prototxt/evaluate_both_folded.prototxt")
    assert committed.folded and committed == read_layout(path).folded_by(pairs)


@pytest.mark.parametrize("split", ["deploy", "evaluate"])
def test_folded_caffe_net_gives_the_unfolded_outputs(split, trained_variants, lmdb_root, tmp_path):
    """Trained weights with the Scale layers set far from gamma 1, beta 0: every output of the folded net (the pose,
    the 2D scores, in an evaluation net the pose in mm and the errors) within 1e-4 of the unfolded net's."""
    from conftest import EXPORT_WIDTH, lmdb_test_images
    from layers.deploy import fold_deploy_net, load_deploy_net
    from prototxt.generate import build_net, write_net

    _, weights = trained_variants["both"]
    net_path = write_net(
        tmp_path / f"{split}.prototxt", build_net(split, multi_root=True, use_2d_cls=True, width=EXPORT_WIDTH)
    )
    images, gt_mm = lmdb_test_images(lmdb_root)
    net, layout = load_deploy_net(net_path, weights, batch_size=len(images))
    rng = np.random.default_rng(2)
    for name in (n for n in net.params if n.endswith("_scale")):
        net.params[name][0].data[...] = rng.uniform(0.5, 1.5, net.params[name][0].data.shape)
        net.params[name][1].data[...] = rng.normal(0, 0.5, net.params[name][1].data.shape)

    def outputs(n):
        n.blobs["data"].data[...] = images
        if layout.evaluation:
            n.blobs["gt_mm"].data[...] = gt_mm.reshape(len(gt_mm), -1)
            n.blobs["torso_sum"].data[...] = 800.0
        return {k: v.copy() for k, v in n.forward(blobs=["logits_2d"] + ["pose3d_mm"] * layout.evaluation).items()}

    want = outputs(net)
    fnet, flayout = fold_deploy_net(net, layout, net_path)
    assert flayout.folded and not any(t == "BatchNorm" for t in (layer.type for layer in fnet.layers))
    got = outputs(fnet)
    assert set(got) == set(want) == ({"logits_2d", "pose3d", "pose3d_mm", "mpjpe_p1", "mpjpe_zero_mean"}
                                     if layout.evaluation else {"logits_2d", "pose3d"})
    for key in want:
        assert np.abs(got[key] - want[key]).max() <= 1e-4 * np.abs(want[key]).max(), key
