"""Evaluation of sections 4-5: scale recovery from the training set's torso bone lengths, and the pose
error under three named protocols, on (N, 17, 3) arrays in mm:

  "p1"         MPJPE, Protocol 1: both poses translated so that the root (Hip) is at the origin, no other
               alignment; the number the literature quotes for Table 1's other methods, our headline
  "zero_mean"  MPJPE with both poses centred on their joint mean: the paper's own output convention (eq. 7)
  "pa"         PA-MPJPE, Protocol 2: after the best similarity transform (rotation, scale, translation) of
               each prediction onto its ground truth (Procrustes, one batched SVD)

See docs/design.md, "Metrics and reference rows".
"""
from __future__ import annotations

import numpy as np

from .poses import bone_lengths
from .skeleton import JOINTS, TORSO_BONES

ROOT = JOINTS.index("Hip")
PROTOCOLS = ("p1", "zero_mean", "pa")
PROTOCOL_LABELS = {"p1": "MPJPE (P1, root-aligned)", "zero_mean": "MPJPE (zero-mean)", "pa": "PA-MPJPE (P2)"}


def _check_pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (N, J, 3) arrays of one shape, got {pred.shape} and {gt.shape}")
    return pred, gt


def root_aligned(poses: np.ndarray) -> np.ndarray:
    """Poses translated so that the root joint (Hip) is at the origin."""
    poses = np.asarray(poses, dtype=np.float64)
    return poses - poses[..., ROOT:ROOT + 1, :]


def zero_mean(poses: np.ndarray) -> np.ndarray:
    """Poses centred on their joint mean."""
    poses = np.asarray(poses, dtype=np.float64)
    return poses - poses.mean(axis=-2, keepdims=True)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Each predicted pose under the similarity transform that best maps it onto its ground truth (Umeyama:
    rotation without reflection, uniform scale, translation), all poses in one batched SVD."""
    pred, gt = _check_pair(pred, gt)
    x, y = zero_mean(pred), zero_mean(gt)
    u, s, vt = np.linalg.svd(np.swapaxes(x, 1, 2) @ y)  # (N, 3, 3) cross-covariances
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rotation = u @ vt
    norm = np.sum(x ** 2, axis=(1, 2))
    scale = np.where(norm > 0, s.sum(axis=1) / np.where(norm > 0, norm, 1.0), 1.0)
    return scale[:, None, None] * (x @ rotation) + gt.mean(axis=1, keepdims=True)


def per_joint_errors(pred: np.ndarray, gt: np.ndarray, protocol: str) -> np.ndarray:
    """(N, J) Euclidean error of each joint (mm) under `protocol` ("p1", "zero_mean" or "pa")."""
    pred, gt = _check_pair(pred, gt)
    if protocol == "p1":
        pred, gt = root_aligned(pred), root_aligned(gt)
    elif protocol == "zero_mean":
        pred, gt = zero_mean(pred), zero_mean(gt)
    elif protocol == "pa":
        pred = procrustes_align(pred, gt)
    else:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    return np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray, protocol: str) -> float:
    """Mean per joint position error (mm) under `protocol`."""
    return float(per_joint_errors(pred, gt, protocol).mean())


def mpjpe_p1(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE, Protocol 1: root (Hip) aligned."""
    return mpjpe(pred, gt, "p1")


def mpjpe_zero_mean(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE with both poses centred on their joint mean (eq. 7's convention)."""
    return mpjpe(pred, gt, "zero_mean")


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """PA-MPJPE, Protocol 2: after the best similarity transform of each prediction onto its ground truth."""
    return mpjpe(pred, gt, "pa")


def mean_torso_lengths(train_poses_mm: np.ndarray) -> np.ndarray:
    """Mean length (mm) of each torso bone over the training set: what recover_scale matches."""
    return bone_lengths(train_poses_mm, TORSO_BONES).mean(axis=0)


def recover_scale(pred: np.ndarray, mean_torso: np.ndarray) -> np.ndarray:
    """Scale each (unit-norm) predicted pose so its torso bone lengths sum to the training mean's sum.

    s = sum(mean training torso lengths) / sum(predicted torso lengths), per pose (docs/design.md: scale).
    """
    pred = np.asarray(pred, dtype=np.float64)
    mean_torso = np.asarray(mean_torso, dtype=np.float64)
    if mean_torso.shape != (len(TORSO_BONES),):
        raise ValueError(f"mean_torso: expected {len(TORSO_BONES)} torso bone lengths, got {mean_torso.shape}")
    predicted = bone_lengths(pred, TORSO_BONES).sum(axis=1)
    scale = mean_torso.sum() / np.maximum(predicted, 1e-12)
    return pred * scale[:, None, None]
