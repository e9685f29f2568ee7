"""tools/generate_synthetic.py and the generator behind it: the release's layout for the subjects, actions and
cameras asked, the same files for the same seed whatever the number of workers, the synthetic motion within human
joint limits, and each frame's person inside the box it reports."""
from __future__ import annotations

import numpy as np

from data_prep.cameras import CAMERA_MODELS, look_at_extrinsics, project
from data_prep.h36m import discover, read_pose_cdf
from data_prep.skeleton import CAMERAS
from data_prep.synthetic_motion import ACTION_STYLE, action_angles, forward_kinematics, make_body
from data_prep.synthetic_render import render_frame, studio_background
from tools import generate_synthetic


def test_the_layout_asked_for_and_the_same_files_whatever_the_workers(tmp_path, capsys):
    common = ["--subjects", "S1", "--actions", "Walking", "Phoning", "--cameras", *CAMERAS[:2], "--frames", "6",
              "--seed", "4", "--quiet"]
    assert generate_synthetic.main(["--out", str(tmp_path / "a"), "--workers", "1", *common]) == 0
    assert generate_synthetic.main(["--out", str(tmp_path / "b"), "--workers", "2", *common]) == 0
    assert "wrote 2 sequences x 2 cameras" in capsys.readouterr().out
    found = discover(tmp_path / "a", ("S1",), ("Walking", "Phoning")).sequences
    assert sorted((s.action, s.camera) for s in found) == sorted((a, c) for a in ("Walking", "Phoning")
                                                                 for c in CAMERAS[:2])
    rel = f"S1/MyPoseFeatures/D3_Positions_mono/Phoning.{CAMERAS[1]}.cdf"
    a, b = read_pose_cdf(tmp_path / "a" / rel, 96), read_pose_cdf(tmp_path / "b" / rel, 96)
    assert a.shape == (6, 96) and np.array_equal(a, b)


def test_every_action_moves_within_human_joint_limits():
    """Knees and elbows bend one way only (0 to 2.6 rad), whatever the action and seed; a walker moves on a circle
    of 0.8 to 1.3 m around the studio centre."""
    t = np.arange(0, 4, 0.02)
    for action in ACTION_STYLE:
        for seed in range(3):
            a = action_angles(action, t, np.random.default_rng(seed))
            for side in "LR":
                for joint in ("knee", "elbow"):
                    assert (a[f"{joint}_{side}"] >= 0).all() and (a[f"{joint}_{side}"] <= 2.6).all()
            if ACTION_STYLE[action].get("walk"):
                radius = np.hypot(a["x"], a["y"])
                assert np.ptp(radius) < 1e-6 and 800 <= radius[0] <= 1300


def test_the_person_is_drawn_inside_the_box_it_reports():
    """render_frame's box holds every projected joint and every pixel the person changed (the mask's box)."""
    body = make_body("S1", 0)
    t = np.arange(0, 2, 0.5)
    world = forward_kinematics(action_angles("Walking", t, np.random.default_rng(1)), body)
    camera = CAMERA_MODELS[CAMERAS[0]]
    rotation, translation = look_at_extrinsics(camera)
    background = studio_background(camera, 0)
    for joints in world @ rotation.T + translation:
        image, (x0, y0, x1, y1) = render_frame(background, joints, camera, body)
        px = project(joints, camera)
        assert (px[:, 0] >= x0 - 1).all() and (px[:, 0] <= x1 + 1).all()
        assert (px[:, 1] >= y0 - 1).all() and (px[:, 1] <= y1 + 1).all()
        ys, xs = np.nonzero((image != background).any(-1))
        assert len(xs) > 1000 and x0 - 1 <= xs.min() and xs.max() <= x1 + 1
        assert y0 - 1 <= ys.min() and ys.max() <= y1 + 1
