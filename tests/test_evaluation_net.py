"""The evaluation net: section 4's scale recovery and the per-frame P1 / zero-mean errors as native Caffe layers
(so the whole evaluation runs on the device that runs the net), against the NumPy metrics of data_prep.metrics
on random poses and on a pose worked by hand, and a whole LMDB evaluated both ways."""
from __future__ import annotations

import caffe
import numpy as np
import pytest
from caffe import layers as L

from conftest import REPO
from data_prep.metrics import per_joint_errors, recover_scale
from data_prep.poses import bone_lengths, normalise_poses
from data_prep.skeleton import TORSO_BONES
from layers.deploy import set_fixed_maps
from layers.layout import EVALUATION_MAPS
from prototxt.generate import evaluation_tail

caffe.set_mode_cpu()


def tail_net(tmp_path, batch):
    """The evaluation layers alone, fed a pose (N, 51) instead of the deploy net's averaged output."""
    n = caffe.NetSpec()
    n.pose = L.Input(shape=dict(dim=[1, 51]))  # batch 1 like the tail's own inputs; all reshaped below
    evaluation_tail(n, n.pose)
    path = tmp_path / "tail.prototxt"
    path.write_text(str(n.to_proto()))
    net = caffe.Net(str(path), caffe.TEST)
    for name, width in (("pose", 51), ("gt_mm", 51), ("torso_sum", 1)):
        net.blobs[name].reshape(batch, width)
    net.reshape()
    set_fixed_maps(net, EVALUATION_MAPS)
    return net


def run(net, pose, gt_mm, torso_sum):
    net.blobs["pose"].data[...] = pose.reshape(len(pose), -1)
    net.blobs["gt_mm"].data[...] = gt_mm.reshape(len(gt_mm), -1)
    net.blobs["torso_sum"].data[...] = torso_sum
    net.forward()
    return (net.blobs["pose3d_mm"].data.reshape(-1, 17, 3).astype(np.float64),
            net.blobs["mpjpe_p1"].data.astype(np.float64), net.blobs["mpjpe_zero_mean"].data.astype(np.float64))


def test_the_layers_match_the_numpy_metrics_on_random_poses(tmp_path):
    rng = np.random.default_rng(5)
    pose = normalise_poses(rng.normal(0, 300, (16, 17, 3)))[0]
    gt = rng.normal(0, 300, (16, 17, 3)) + [0, 0, 4000]
    mean_torso = rng.uniform(100, 250, len(TORSO_BONES))
    pose_mm, p1, zero_mean = run(tail_net(tmp_path, 16), pose, gt, mean_torso.sum())
    expect_mm = recover_scale(pose, mean_torso)
    assert np.abs(pose_mm - expect_mm).max() < 1e-3
    assert np.abs(p1 - per_joint_errors(expect_mm, gt, "p1").mean(1)).max() < 1e-3
    assert np.abs(zero_mean - per_joint_errors(expect_mm, gt, "zero_mean").mean(1)).max() < 1e-3


def test_the_layers_on_a_pose_worked_by_hand(tmp_path):
    """A prediction whose torso already has the training length (scale 1), against a ground truth equal to it
    but for the Hip, 50 mm off along x. P1 aligns the hips, so the 16 other joints are 50 mm off: 16 * 50 / 17
    = 47.06 mm. Zero-mean: the Hip is 50 * 16/17 off and the others 50/17, so (800/17 + 16 * 50/17) / 17 =
    1600 / 289 = 5.536 mm."""
    rng = np.random.default_rng(1)
    pose = normalise_poses(rng.normal(0, 300, (1, 17, 3)))[0]
    torso_sum = bone_lengths(pose, TORSO_BONES).sum()
    gt = pose.copy()
    gt[0, 0, 0] += 50.0
    pose_mm, p1, zero_mean = run(tail_net(tmp_path, 1), pose, gt, torso_sum)
    assert np.abs(pose_mm - pose).max() < 1e-5  # scale 1
    assert p1[0] == pytest.approx(800 / 17, abs=1e-3)
    assert zero_mean[0] == pytest.approx(1600 / 289, abs=1e-3)


def test_an_lmdb_evaluated_in_the_net_and_in_numpy_agree(tmp_path, lmdb_root):
    from layers.inference import evaluate_action

    out = lmdb_root
    net = caffe.Net(str(REPO / "prototxt/deploy_both.prototxt"), caffe.TEST)
    weights = tmp_path / "random.caffemodel"
    net.save(str(weights))
    lmdb = out / "walking_test.lmdb"
    numpy_pred, numpy_side = evaluate_action(REPO / "prototxt/deploy_both.prototxt", weights, lmdb, batch_size=16)
    net_pred, net_side = evaluate_action(REPO / "prototxt/evaluate_both.prototxt", weights, lmdb, batch_size=16)
    assert net_side["errors_in_net"] and not numpy_side["errors_in_net"]
    assert net_pred.in_net["p1"].shape == (net_side["frames"],) == (numpy_side["frames"],)
    assert np.abs(net_pred.pred_mm - numpy_pred.pred_mm).max() < 1e-3
    for protocol in ("p1", "zero_mean", "pa"):
        assert net_side["mpjpe"][protocol] == pytest.approx(numpy_side["mpjpe"][protocol], abs=1e-3)
    assert (
        np.abs(net_pred.in_net["p1"] - per_joint_errors(numpy_pred.pred_mm, numpy_pred.gt_mm, "p1").mean(1)).max()
        < 1e-3
    )
