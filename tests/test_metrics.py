"""Pose errors under the three protocols (data_prep.metrics) on poses whose answer is worked out by hand,
the scale recovery, and the reference rows of the evaluation (training mean pose, scale floor)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.metrics import (
    mpjpe,
    mpjpe_p1,
    mpjpe_zero_mean,
    pa_mpjpe,
    per_joint_errors,
    procrustes_align,
    recover_scale,
)
from data_prep.poses import bone_lengths
from data_prep.skeleton import NUM_JOINTS, TORSO_BONES

J = NUM_JOINTS


def line_pose(step_mm: float, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Joint k at origin + (k * step, 0, 0): the root (Hip, joint 0) at the origin."""
    return np.asarray(origin) + np.stack([np.arange(J) * step_mm, np.zeros(J), np.zeros(J)], axis=1)


def test_hip_off_by_50_mm_root_aligned_vs_zero_mean():
    """Only the Hip 50 mm off. P1 moves the whole prediction with its hip: 16 joints 50 mm off, the hip 0,
    so 16 * 50 / 17 = 47.06 mm. Zero-mean: the centroid moves by 50/17, so the hip is 50 * 16/17 off and the
    other 16 joints 50/17 each: (50 * 16/17 + 16 * 50/17) / 17 = 5.54 mm."""
    gt = line_pose(100.0, origin=(300.0, -200.0, 4000.0))[None]
    pred = gt.copy()
    pred[0, 0] += [50.0, 0.0, 0.0]
    assert mpjpe_p1(pred, gt) == pytest.approx(16 * 50 / 17)
    assert mpjpe_zero_mean(pred, gt) == pytest.approx((50 * 16 / 17 + 16 * 50 / 17) / 17)
    assert per_joint_errors(pred, gt, "p1")[0, 0] == 0 and per_joint_errors(pred, gt, "p1")[0, 5] == pytest.approx(50)
    # a translation of the whole pose costs nothing under any protocol
    moved = gt + [10.0, 20.0, -30.0]
    for protocol in ("p1", "zero_mean", "pa"):
        assert mpjpe(moved, gt, protocol) == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="protocol"):
        mpjpe(pred, gt, "p3")


def test_pa_mpjpe_hand_cases():
    """A cross of four points, (+-1, 0, 0) and (0, +-1, 0); the prediction keeps the x arm and collapses the y
    arm onto the centre. The best similarity keeps it as it is (rotations about x do not move it, the x arm
    fixes the scale at 1), so the error is 0, 0, 1, 1: PA-MPJPE 0.5."""
    gt = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]]])
    pred = np.array([[[1.0, 0, 0], [-1, 0, 0], [0, 0, 0], [0, 0, 0]]])
    assert pa_mpjpe(pred, gt) == pytest.approx(0.5)
    np.testing.assert_allclose(procrustes_align(pred, gt), pred, atol=1e-12)
    # a rotation by 90 degrees about z, a scale of 3 and a shift are undone exactly; a reflection is not
    rot = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    rng = np.random.default_rng(0)
    poses = rng.normal(scale=200, size=(5, J, 3))
    assert pa_mpjpe(3 * poses @ rot.T + 70, poses) == pytest.approx(0, abs=1e-9)
    assert pa_mpjpe(poses * [1, 1, -1], poses) > 1.0


def test_batched_procrustes_matches_one_pose_at_a_time():
    rng = np.random.default_rng(1)
    gt = rng.normal(scale=300, size=(6, J, 3))
    pred = gt + rng.normal(scale=80, size=gt.shape)
    batched = procrustes_align(pred, gt)
    for i in range(len(gt)):
        np.testing.assert_allclose(procrustes_align(pred[i:i + 1], gt[i:i + 1])[0], batched[i], atol=1e-9)


def test_pose_statistics_mean_pose_is_root_centred_and_unscaled():
    from data_prep.lmdb_build import pose_statistics

    # two walkers at different places in the room, one 3x the other's size along x
    poses = np.stack([line_pose(10.0, (100.0, 200.0, 5000.0)), line_pose(30.0, (-50.0, 0.0, 4000.0))])
    stats = pose_statistics(poses)
    np.testing.assert_allclose(stats["mean_pose_root_centred_mm"], line_pose(20.0), atol=1e-9)


def _write_lmdb(path, poses, meta):
    import lmdb

    from data_prep.records import encode_record, record_key

    path.mkdir()
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, pose in enumerate(poses):
            crop = np.zeros((8, 8, 3), np.uint8)
            txn.put(record_key("S1/Walking/54138969", i),
                    encode_record(crop, i, joints2d=np.zeros((J, 2)), pose3d=np.zeros((J, 3)), pose3d_mm=pose,
                                  mean_mm=np.zeros(3), scale_mm=np.ones(1)))
    env.close()
    (path / "meta.json").write_text(json.dumps(meta))


def test_mean_pose_reference_row_on_a_hand_made_lmdb(tmp_path):
    """An LMDB made before meta.json stored the mean pose: it is computed from the training records. The mean
    of the two training poses is joint k at (20 k, 0, 0) from the hip; the test pose is that plus 10 mm in z on
    every joint but the hip, so the mean-pose row scores 16 * 10 / 17 mm under P1."""
    from layers.inference import Predictions, error_summary, train_mean_pose_mm

    train = [line_pose(10.0, (100.0, 200.0, 5000.0)), line_pose(30.0, (-50.0, 0.0, 4000.0))]
    meta = {"joints": list(range(J))}
    _write_lmdb(tmp_path / "walking_train.lmdb", train, meta)
    test_pose = line_pose(20.0, (0.0, 0.0, 4500.0)) + np.r_[[[0, 0, 0]], [[0, 0, 10.0]] * (J - 1)]
    _write_lmdb(tmp_path / "walking_test.lmdb", [test_pose], meta)
    mean_pose = train_mean_pose_mm(meta, tmp_path / "walking_test.lmdb")
    np.testing.assert_allclose(mean_pose, line_pose(20.0), atol=1e-4)
    torso = np.ones(6)
    gt = test_pose[None]
    normalised = (gt - gt.mean(1, keepdims=True)) / np.linalg.norm(gt - gt.mean(1, keepdims=True))
    p = Predictions(["k"], normalised, gt.copy(), gt, normalised)
    summary = error_summary(p, mean_pose, torso)
    assert summary["mean_pose"]["p1"] == pytest.approx(16 * 10 / 17, abs=1e-3)
    assert summary["mpjpe"]["p1"] == pytest.approx(0, abs=1e-9)  # the prediction is the ground truth
    # stored in meta.json, it is used as it is
    assert train_mean_pose_mm({"mean_pose_root_centred_mm": [[1, 2, 3]] * J}, tmp_path / "x_test.lmdb")[4, 2] == 3


def test_scale_floor_is_zero_when_the_torso_matches_the_training_mean():
    """The scale floor rescales the normalised ground truth so its torso bones sum to the training mean's
    sum: for a test subject of the training mean's size it is exact (0 mm); for one 10 % larger every joint
    of the root-centred pose is 1/1.1 of its length, so the P1 error is the mean joint distance from the hip
    times 1 - 1/1.1."""
    from data_prep.poses import bone_lengths
    from data_prep.skeleton import TORSO_BONES
    from layers.inference import Predictions, error_summary

    rng = np.random.default_rng(3)
    gt = rng.normal(scale=300, size=(1, J, 3)) + [0, 0, 4000]
    centred = gt - gt.mean(1, keepdims=True)
    normalised = centred / np.linalg.norm(centred)
    torso = bone_lengths(gt, TORSO_BONES)[0]
    p = Predictions(["k"], normalised, gt, gt, normalised)
    assert error_summary(p, np.zeros((J, 3)), torso)["scale_floor"]["p1"] == pytest.approx(0, abs=1e-9)
    floor = error_summary(p, np.zeros((J, 3)), torso / 1.1)["scale_floor"]["p1"]
    from_hip = np.linalg.norm(gt[0] - gt[0, 0], axis=1).mean()
    assert floor == pytest.approx(from_hip * (1 - 1 / 1.1))


def test_zero_mean_mpjpe_ignores_translation_and_measures_offsets():
    rng = np.random.default_rng(5)
    gt = rng.normal(scale=300, size=(3, NUM_JOINTS, 3))
    assert mpjpe(gt + [100.0, -50.0, 7.0], gt, "zero_mean") == pytest.approx(0, abs=1e-9)
    moved = gt.copy()
    moved[:, 4] += [0.0, 0.0, 170.0]  # one joint 170 mm off; centring spreads it, so compute by hand
    expect = np.linalg.norm((moved - moved.mean(1, keepdims=True)) - (gt - gt.mean(1, keepdims=True)), axis=-1).mean()
    assert mpjpe(moved, gt, "zero_mean") == pytest.approx(expect)
    assert per_joint_errors(moved, gt, "zero_mean").shape == (3, NUM_JOINTS)


def test_pa_mpjpe_removes_a_known_rotation_and_scale():
    rng = np.random.default_rng(6)
    gt = rng.normal(scale=300, size=(2, NUM_JOINTS, 3))
    a = 0.7
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    pred = 0.6 * gt @ rot.T + 40.0
    assert mpjpe(pred, gt, "zero_mean") > 50
    assert pa_mpjpe(pred, gt) == pytest.approx(0, abs=1e-6)
    reflected = gt * [1, 1, -1]  # a reflection is not a rotation: PA must not undo it
    assert pa_mpjpe(reflected, gt) > 1.0


def test_recover_scale_undoes_a_known_factor():
    rng = np.random.default_rng(7)
    gt = rng.normal(scale=300, size=(4, NUM_JOINTS, 3))
    mean_torso = bone_lengths(gt, TORSO_BONES)[0]
    pred = recover_scale(gt[:1] / 1234.0, mean_torso)
    assert np.allclose(pred, gt[:1])
    with pytest.raises(ValueError, match="torso"):
        recover_scale(gt, mean_torso[:3])
