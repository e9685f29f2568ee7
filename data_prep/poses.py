"""3D pose normalisation of section 4: "translated so that the mean of the joints is at the origin …
scaled the 3D shape so that the Frobenius norm of the 3D shape becomes 1", and bone lengths for the
scale recovery at test time.
"""
from __future__ import annotations

import numpy as np

from .skeleton import BONES, NUM_JOINTS


def check_poses(poses: np.ndarray, what: str = "poses") -> np.ndarray:
    """(N, 17, 3) finite float array, or a ValueError naming `what`."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"{what}: expected shape (N, {NUM_JOINTS}, 3), got {poses.shape}")
    if not np.all(np.isfinite(poses)):
        bad = np.unique(np.nonzero(~np.isfinite(poses))[0])
        raise ValueError(f"{what}: non-finite values in frames {bad[:10].tolist()}")
    return poses


def normalise_poses(poses_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero mean over joints, unit Frobenius norm per pose.

    Returns (normalised (N, 17, 3), mean (N, 3) in mm, scale (N,) in mm) with
    poses_mm == normalised * scale[:, None, None] + mean[:, None, :].
    """
    poses = check_poses(poses_mm, "poses_mm")
    mean = poses.mean(axis=1)
    centred = poses - mean[:, None, :]
    scale = np.linalg.norm(centred.reshape(len(poses), -1), axis=1)
    if np.any(scale <= 0):
        raise ValueError("poses_mm: a pose has all joints at one point (zero Frobenius norm)")
    return centred / scale[:, None, None], mean, scale


def bone_lengths(poses: np.ndarray, bones=BONES) -> np.ndarray:
    """(N, len(bones)) Euclidean lengths of the given (parent, child) bones."""
    poses = np.asarray(poses, dtype=np.float64)
    idx = np.asarray(bones)
    return np.linalg.norm(poses[:, idx[:, 1]] - poses[:, idx[:, 0]], axis=-1)
