"""Evaluation of section 4-5: scale recovery from the training set's torso bone lengths, MPJPE, and
Procrustes-aligned MPJPE (PA-MPJPE). All on (N, 17, 3) arrays in mm.

Both prediction and ground truth are centred on their joint mean before the error (paper-notes:
metric): the network predicts a pose up to translation, and the training targets are zero-mean.
"""
from __future__ import annotations

import numpy as np

from .poses import bone_lengths
from .skeleton import TORSO_BONES


def _centre(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    return poses - poses.mean(axis=-2, keepdims=True)


def per_joint_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, 17) Euclidean error of each joint after centring both poses on their joint mean."""
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"expected two (N, J, 3) arrays of one shape, got {pred.shape} and {gt.shape}")
    return np.linalg.norm(_centre(pred) - _centre(gt), axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per joint position error (mm), poses centred on their joint mean."""
    return float(per_joint_errors(pred, gt).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """pred rigidly aligned (rotation, uniform scale, translation) to gt, per pose (Umeyama)."""
    pred, gt = _centre(pred), _centre(gt)
    aligned = np.empty_like(pred)
    for i, (x, y) in enumerate(zip(pred, gt)):
        u, s, vt = np.linalg.svd(x.T @ y)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        rotation = u @ vt
        norm = np.sum(x ** 2)
        scale = s.sum() / norm if norm > 0 else 1.0
        aligned[i] = scale * x @ rotation
    return aligned


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """MPJPE after the best similarity transform of each predicted pose onto its ground truth."""
    return mpjpe(procrustes_align(pred, gt), gt)


def mean_torso_lengths(train_poses_mm: np.ndarray) -> np.ndarray:
    """Mean length (mm) of each torso bone over the training set: what recover_scale matches."""
    return bone_lengths(train_poses_mm, TORSO_BONES).mean(axis=0)


def recover_scale(pred: np.ndarray, mean_torso: np.ndarray) -> np.ndarray:
    """Scale each (unit-norm) predicted pose so its torso bone lengths sum to the training mean's sum.

    s = sum(mean training torso lengths) / sum(predicted torso lengths), per pose (paper-notes: scale).
    """
    pred = np.asarray(pred, dtype=np.float64)
    mean_torso = np.asarray(mean_torso, dtype=np.float64)
    if mean_torso.shape != (len(TORSO_BONES),):
        raise ValueError(f"mean_torso: expected {len(TORSO_BONES)} torso bone lengths, got {mean_torso.shape}")
    predicted = bone_lengths(pred, TORSO_BONES).sum(axis=1)
    scale = mean_torso.sum() / np.maximum(predicted, 1e-12)
    return pred * scale[:, None, None]
