"""layers.device_parity: the gap between two evaluations of the same weights, hand-worked."""
from __future__ import annotations

import numpy as np
import pytest

from layers.device_parity import METRIC_TOL_MM, POSE_TOL_MM, compare, main


def run(poses, p1=50.0, zero_mean=45.0, pa=40.0, keys=("a", "b")):
    return {"pred_mm": np.asarray(poses, np.float32), "keys": np.asarray(keys), "mpjpe_p1": p1,
            "mpjpe_zero_mean": zero_mean, "mpjpe_pa": pa}


def test_a_joint_moved_by_a_3_4_5_triangle_is_5_mm_apart():
    poses = np.zeros((2, 17, 3))
    moved = poses.copy()
    moved[1, 4] = [3.0, 4.0, 0.0]
    gap = compare(run(poses), run(moved, p1=50.002))
    assert gap["frames"] == 2
    assert gap["max_joint_gap_mm"] == pytest.approx(5.0)
    assert gap["mean_joint_gap_mm"] == pytest.approx(5.0 / 34)
    assert gap["mpjpe_gap_mm"]["p1"] == pytest.approx(0.002) and gap["mpjpe_gap_mm"]["pa"] == 0
    assert not gap["rounding"]  # 5 mm is more than POSE_TOL_MM


def test_rounding_means_both_limits_hold():
    poses = np.full((2, 17, 3), 1000.0)
    near = poses + POSE_TOL_MM / 2 / np.sqrt(3)
    assert compare(run(poses), run(near, pa=40.0 + METRIC_TOL_MM / 2))["rounding"]
    assert not compare(run(poses), run(near, pa=40.0 + 2 * METRIC_TOL_MM))["rounding"]


def test_different_frames_are_refused():
    with pytest.raises(ValueError, match="different frames"):
        compare(run(np.zeros((2, 17, 3))), run(np.zeros((2, 17, 3)), keys=("a", "c")))


def test_compare_exits_1_beyond_rounding(tmp_path, capsys):
    poses = np.zeros((2, 17, 3))
    moved = poses + 1.0
    for name, p in (("a", poses), ("b", poses), ("c", moved)):
        np.savez(tmp_path / f"{name}.npz", **run(p))
    assert main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]) == 0
    assert "float rounding" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "c.npz")]) == 1
    assert "MORE than float rounding" in capsys.readouterr().out
