"""Targets and losses of section 3 as pure NumPy functions (used by the Python layers, the deploy net's
fixed root-averaging weights, evaluation and tests; no Caffe needed).

Grid geometry (docs/design.md: soft labels): the 225-pixel input is split into 16x16 cells of width
w_g = 225/16; cell (x, y) covers [x*w_g, (x+1)*w_g) in crop pixel coordinates and has index y*16 + x.
"""
from __future__ import annotations

import numpy as np

from . import layout as L
from .config import GRID, INPUT_SIZE


def grid_centres(image_size: float = INPUT_SIZE, grid: int = GRID) -> np.ndarray:
    """(grid*grid, 2) cell centres (x, y), index y*grid + x."""
    w = image_size / grid
    c = (np.arange(grid) + 0.5) * w
    ys, xs = np.meshgrid(c, c, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def soft_label_targets(joints2d: np.ndarray, image_size: float = INPUT_SIZE, grid: int = GRID) -> np.ndarray:
    """Eq. (1)-(2): (N, J, 2) joint pixels -> (N, J, grid*grid) target probabilities.

    Each cell whose centre is closer than the cell width w_g gets weight 1/d, normalised to sum 1.
    A joint exactly on a centre (d = 0, the limit of eq. 1) gets probability 1 there. A joint outside
    the crop is clamped to the crop's border first (docs/design.md), so every joint has a distribution.
    """
    joints2d = np.asarray(joints2d, dtype=np.float64)
    if joints2d.ndim != 3 or joints2d.shape[-1] != 2:
        raise ValueError(f"soft_label_targets: expected (N, J, 2) joints, got {joints2d.shape}")
    w = image_size / grid
    p = np.clip(joints2d, 0.0, np.nextafter(image_size, 0))
    d = np.linalg.norm(p[:, :, None, :] - grid_centres(image_size, grid)[None, None], axis=-1)
    on_centre = d < 1e-9 * w
    inv = np.where(d < w, 1.0 / np.maximum(d, 1e-300), 0.0)
    inv = np.where(on_centre.any(-1, keepdims=True), on_centre.astype(np.float64), inv)
    return inv / inv.sum(-1, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def soft_label_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Eq. (3) summed over joints, averaged over the batch: (loss, d loss / d logits).

    logits, targets: (N, J, C); the softmax is over the last axis (one per joint)."""
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if logits.shape != targets.shape:
        raise ValueError(f"soft_label_cross_entropy: logits {logits.shape} and targets {targets.shape} differ")
    n = logits.shape[0]
    logp = log_softmax(logits)
    loss = -np.sum(targets * logp) / n
    grad = (np.exp(logp) * targets.sum(-1, keepdims=True) - targets) / n
    return float(loss), grad


def root_relative_targets(pose3d: np.ndarray, roots) -> np.ndarray:
    """Eq. (4): (N, J, 3) -> (N, len(roots), J, 3), J_j - J_r for each root r (zero at the root)."""
    pose3d = np.asarray(pose3d)
    roots = np.asarray(roots, dtype=int)
    return pose3d[:, None, :, :] - pose3d[:, roots, None, :]


def drop_root(relative: np.ndarray, root: int) -> np.ndarray:
    """(N, J, 3) root-relative pose -> (N, 3*(J-1)): the regression target of one root (its zero row removed)."""
    return np.delete(relative, root, axis=1).reshape(len(relative), -1)


def insert_root(vector: np.ndarray, root: int, num_joints: int) -> np.ndarray:
    """Inverse of drop_root: (N, 3*(J-1)) -> (N, J, 3) with a zero row at the root."""
    v = np.asarray(vector).reshape(len(vector), num_joints - 1, 3)
    return np.insert(v, root, 0.0, axis=1)


def average_roots(preds: np.ndarray) -> np.ndarray:
    """Eq. (7): (N, R, J, 3) root-relative predictions -> (N, J, 3), each translated to zero mean, averaged."""
    preds = np.asarray(preds, dtype=np.float64)
    if preds.ndim != 4 or preds.shape[-1] != 3:
        raise ValueError(f"average_roots: expected (N, R, J, 3), got {preds.shape}")
    return (preds - preds.mean(axis=2, keepdims=True)).mean(axis=1)


def root_average_matrix(roots, num_joints: int) -> np.ndarray:
    """The fixed linear map of eq. (7) for the deploy net: concatenated per-root outputs
    (R * 3*(J-1)) -> averaged zero-mean pose (3*J), as an InnerProduct weight of shape (3J, R*3(J-1))."""
    roots = list(roots)
    k = 3 * (num_joints - 1)
    rows = []
    for r in roots:
        full = insert_root(np.eye(k), r, num_joints)  # response to each unit input of this root: (k, J, 3)
        rows.append(full - full.mean(axis=1, keepdims=True))
    m = np.concatenate(rows, axis=0) / len(roots)  # (R*k, J, 3)
    return m.reshape(len(roots) * k, 3 * num_joints).T


def argmax_joints_2d(logits: np.ndarray, image_size: float = INPUT_SIZE, grid: int = GRID) -> np.ndarray:
    """(N, J, grid*grid) 2D-branch scores -> (N, J, 2) pixels of the input crop: the centre of each joint's
    most probable cell (the softmax is monotone, so the argmax of the logits is the argmax of eq. (2)'s
    probabilities)."""
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[-1] != grid * grid:
        raise ValueError(f"argmax_joints_2d: expected (N, J, {grid * grid}) scores, got {logits.shape}")
    return grid_centres(image_size, grid)[logits.argmax(-1)]


# The evaluation net's fixed maps (prototxt.generate: build_net("evaluate")): scale recovery and the per-frame
# errors as InnerProduct layers with frozen weights of shape (outputs, inputs), on flattened (N, 3J) poses.

def torso_bone_matrix(bones, num_joints: int) -> np.ndarray:
    """(3 * bones, 3J): each bone's vector p_b - p_a, (x, y, z) per bone."""
    m = np.zeros((3 * len(bones), 3 * num_joints))
    for k, (a, b) in enumerate(bones):
        for c in range(3):
            m[3 * k + c, 3 * b + c], m[3 * k + c, 3 * a + c] = 1.0, -1.0
    return m


def block_sum_matrix(blocks: int, size: int) -> np.ndarray:
    """(blocks, blocks * size): the sum of each run of `size` consecutive inputs."""
    return np.kron(np.eye(blocks), np.ones((1, size)))


def root_align_matrix(root: int, num_joints: int) -> np.ndarray:
    """(3J, 3J): every joint minus the root joint (P1's alignment)."""
    return np.eye(3 * num_joints) - np.kron(np.ones((num_joints, 1)) @ np.eye(num_joints)[root:root + 1], np.eye(3))


def centring_matrix(num_joints: int) -> np.ndarray:
    """(3J, 3J): every joint minus the joint mean (the zero-mean protocol)."""
    return np.eye(3 * num_joints) - np.kron(np.full((num_joints, num_joints), 1.0 / num_joints), np.eye(3))


def evaluation_maps(num_joints: int, torso_bones, root: int) -> dict:
    """Layer name (layers.layout) -> weight of the evaluation net's frozen InnerProduct layers."""
    return {L.TORSO_BONES_MAP: torso_bone_matrix(torso_bones, num_joints),
            L.TORSO_LENGTHS_MAP: block_sum_matrix(len(torso_bones), 3),
            L.TORSO_SUM_MAP: np.ones((1, len(torso_bones))),
            L.ERROR_MAPS["p1"]: root_align_matrix(root, num_joints),
            L.ERROR_MAPS["zero_mean"]: centring_matrix(num_joints),
            L.JOINT_ERROR_MAPS["p1"]: block_sum_matrix(num_joints, 3),
            L.JOINT_ERROR_MAPS["zero_mean"]: block_sum_matrix(num_joints, 3)}
