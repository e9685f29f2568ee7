"""Pose normalisation (data_prep/poses.py) on hand-checked cases."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.poses import normalise_poses
from data_prep.skeleton import NUM_JOINTS


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
