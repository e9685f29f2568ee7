"""The pure functions of eq. (1)-(7) and the metrics, against hand-worked cases."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.metrics import mpjpe, pa_mpjpe, per_joint_errors, recover_scale
from data_prep.poses import bone_lengths, normalise_poses
from data_prep.skeleton import NUM_JOINTS, ROOTS, TORSO_BONES
from layers.targets import (average_roots, drop_root, grid_centres, insert_root, root_average_matrix,
                            root_relative_targets, soft_label_cross_entropy, soft_label_targets)

W = 225 / 16


def test_grid_centres_index_is_y_times_16_plus_x():
    c = grid_centres()
    assert c.shape == (256, 2)
    assert np.allclose(c[3 * 16 + 5], [5.5 * W, 3.5 * W])


def test_soft_label_on_a_cell_centre_is_one_hot():
    t = soft_label_targets(np.array([[[5.5 * W, 3.5 * W]]]))
    assert t.shape == (1, 1, 256)
    assert t[0, 0, 3 * 16 + 5] == 1.0 and t.sum() == 1.0


def test_soft_label_on_a_cell_corner_splits_evenly_over_four_cells():
    t = soft_label_targets(np.array([[[6 * W, 4 * W]]]))[0, 0]
    cells = np.nonzero(t)[0]
    assert sorted(cells.tolist()) == sorted([3 * 16 + 5, 3 * 16 + 6, 4 * 16 + 5, 4 * 16 + 6])
    assert np.allclose(t[cells], 0.25)


def test_soft_label_weights_are_inverse_distances_within_one_cell_width():
    p = np.array([5.5 * W + 0.25 * W, 3.5 * W])  # a quarter cell right of a centre
    t = soft_label_targets(p[None, None])[0, 0]
    # centres within w_g: own (0.25 w), right neighbour (0.75 w); left one is 1.25 w away: excluded
    own, right = 1 / 0.25, 1 / 0.75
    assert np.isclose(t[3 * 16 + 5], own / (own + right)) and np.isclose(t[3 * 16 + 6], right / (own + right))
    assert np.count_nonzero(t) == 2


def test_soft_label_outside_the_image_is_clamped_to_the_border():
    t = soft_label_targets(np.array([[[-40.0, -40.0], [500.0, 100.0]]]))
    assert t[0, 0, 0] == pytest.approx(1 / (1 + 0)) or t[0, 0, 0] > 0.5  # corner cell dominates
    assert np.allclose(t.sum(-1), 1.0)
    row = int(100 // W)
    assert np.argmax(t[0, 1]) in (row * 16 + 15, (row + 1) * 16 + 15, (row - 1) * 16 + 15)


def test_soft_label_cross_entropy_value_and_gradient():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 2, 5))
    targets = rng.dirichlet(np.ones(5), size=(3, 2))
    loss, grad = soft_label_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert loss == pytest.approx(-(targets * np.log(p)).sum() / 3)
    assert np.allclose(grad, (p - targets) / 3)


def test_root_relative_targets_and_drop_insert_roundtrip():
    rng = np.random.default_rng(1)
    pose = rng.normal(size=(2, NUM_JOINTS, 3))
    rel = root_relative_targets(pose, ROOTS)
    assert rel.shape == (2, 6, NUM_JOINTS, 3)
    assert np.allclose(rel[:, 1, 3], pose[:, 3] - pose[:, ROOTS[1]])
    assert np.allclose(rel[:, 1, ROOTS[1]], 0)
    v = drop_root(rel[:, 2], ROOTS[2])
    assert v.shape == (2, 48)
    assert np.allclose(insert_root(v, ROOTS[2], NUM_JOINTS), rel[:, 2])


def test_average_roots_recovers_the_zero_mean_pose():
    rng = np.random.default_rng(2)
    pose = rng.normal(size=(4, NUM_JOINTS, 3))
    est = average_roots(root_relative_targets(pose, ROOTS))
    assert est.shape == (4, NUM_JOINTS, 3)
    assert np.allclose(est, pose - pose.mean(1, keepdims=True))


def test_root_average_matrix_equals_average_roots():
    rng = np.random.default_rng(3)
    preds = rng.normal(size=(5, 6, NUM_JOINTS, 3))
    for r_i, r in enumerate(ROOTS):
        preds[:, r_i, r] = 0.0
    concat = np.concatenate([drop_root(preds[:, i], r) for i, r in enumerate(ROOTS)], axis=1)
    m = root_average_matrix(ROOTS, NUM_JOINTS)
    assert m.shape == (51, 6 * 48)
    assert np.allclose((concat @ m.T).reshape(5, NUM_JOINTS, 3), average_roots(preds))


def test_normalise_poses_zero_mean_unit_norm_and_inverse():
    rng = np.random.default_rng(4)
    pose = rng.normal(scale=400, size=(6, NUM_JOINTS, 3)) + 3000
    n, mean, scale = normalise_poses(pose)
    assert np.allclose(n.mean(1), 0, atol=1e-12)
    assert np.allclose(np.linalg.norm(n.reshape(6, -1), axis=1), 1)
    assert np.allclose(n * scale[:, None, None] + mean[:, None], pose)
    with pytest.raises(ValueError, match="non-finite"):
        normalise_poses(np.where(np.arange(6)[:, None, None] == 2, np.nan, pose))
    with pytest.raises(ValueError, match="expected shape"):
        normalise_poses(pose[:, :16])


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


def test_argmax_joints_2d_gives_the_centre_of_the_best_cell():
    """Cell (x=3, y=5) of the 16x16 grid over 225 pixels: index 5*16+3, centre ((3.5, 5.5) * 225/16)."""
    from layers.targets import argmax_joints_2d

    logits = np.zeros((1, 2, 256))
    logits[0, 0, 5 * 16 + 3] = 2.0
    logits[0, 1, 0] = 1.0
    assert np.allclose(argmax_joints_2d(logits)[0], [[3.5 * 225 / 16, 5.5 * 225 / 16], [225 / 32, 225 / 32]])


def test_invert_affine_undoes_the_crop_map():
    from data_prep.crop import apply_affine, crop_transform, invert_affine

    affine = crop_transform(400.0, 300.0, 500.0)  # scale 0.5: image (400, 300) -> crop centre (124.5, 124.5)
    assert np.allclose(apply_affine([[400.0, 300.0]], affine), [[124.5, 124.5]])
    assert np.allclose(apply_affine([[124.5, 124.5], [0.0, 0.0]], invert_affine(affine)), [[400, 300], [151, 51]])
