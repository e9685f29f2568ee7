"""The pure functions of eq. (1)-(7) behind the Python layers (layers/targets.py), against hand-worked cases."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.skeleton import NUM_JOINTS, ROOTS
from layers.targets import (
    average_roots,
    drop_root,
    grid_centres,
    insert_root,
    root_average_matrix,
    root_relative_targets,
    soft_label_cross_entropy,
    soft_label_targets,
)

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


def test_argmax_joints_2d_gives_the_centre_of_the_best_cell():
    """Cell (x=3, y=5) of the 16x16 grid over 225 pixels: index 5*16+3, centre ((3.5, 5.5) * 225/16)."""
    from layers.targets import argmax_joints_2d

    logits = np.zeros((1, 2, 256))
    logits[0, 0, 5 * 16 + 3] = 2.0
    logits[0, 1, 0] = 1.0
    assert np.allclose(argmax_joints_2d(logits)[0], [[3.5 * 225 / 16, 5.5 * 225 / 16], [225 / 32, 225 / 32]])
