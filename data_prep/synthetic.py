"""A synthetic stand-in for Human3.6M that writes the release's on-disk layout.

Per subject S*: MyPoseFeatures/D3_Positions/<Action>.cdf (world, mm), MyPoseFeatures/D3_Positions_mono/
<Action>.<camera>.cdf (camera coordinates, mm), MyPoseFeatures/D2_Positions/<Action>.<camera>.cdf
(distorted pixels), Videos/<Action>.<camera>.mp4 (50 fps) and MySegmentsMat/ground_truth_bb/
<Action>.<camera>.mat (MATLAB v7.3, `Masks` cell of bounding-box masks). Same variable names, shapes,
32-joint order, file-name quirks (S1's TakingPhoto/WalkingDog, subaction numbers) and camera models.

People are articulated 32-joint skeletons with per-subject bone lengths and clothing, moving in an
action-specific way (data_prep.synthetic_motion), drawn as shaded figures on a textured studio background
(data_prep.synthetic_render), and written in the release's file formats by the writers beside the readers
they mirror (data_prep.h36m). Deterministic from a seed. Only the data is synthetic: everything downstream
reads it with the real reader.
"""
from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .cameras import CAMERA_MODELS, look_at_extrinsics, project
from .h36m import write_bbox_masks_mat, write_pose_cdf, write_video
from .progress import Progress
from .skeleton import ACTIONS, CAMERAS, SUBJECTS
from .synthetic_motion import FPS, action_angles, forward_kinematics, make_body
from .synthetic_render import render_frame, studio_background


def file_action_names(subject: str, action: str, subactions: int) -> list[str]:
    """File-name stems as the release spells them: S1 says TakingPhoto/WalkingDog; the first
    subaction has no number and later ones are numbered from 1 (as in 'Directions', 'Directions 1')."""
    stem = {"Photo": "TakingPhoto", "WalkDog": "WalkingDog"}.get(action, action) if subject == "S1" else action
    return [stem if i == 0 else f"{stem} {i}" for i in range(subactions)]


@dataclasses.dataclass
class GeneratorConfig:
    root: Path
    subjects: tuple = SUBJECTS
    actions: tuple = ("Walking",)
    cameras: tuple = CAMERAS
    frames: int = 200
    subactions: int = 1
    seed: int = 0


def generate_sequence(cfg: GeneratorConfig, subject: str, action: str, file_action: str, sub_index: int) -> int:
    body = make_body(subject, cfg.seed)
    rng = np.random.default_rng([cfg.seed, SUBJECTS.index(subject) if subject in SUBJECTS else 99,
                                 ACTIONS.index(action), sub_index])
    t = np.arange(cfg.frames) / FPS
    world = forward_kinematics(action_angles(action, t, rng), body)
    sdir = Path(cfg.root) / subject
    write_pose_cdf(sdir / "MyPoseFeatures" / "D3_Positions" / f"{file_action}.cdf", world.reshape(cfg.frames, -1))
    for cam_id in cfg.cameras:
        camera = CAMERA_MODELS[cam_id]
        rotation, translation = look_at_extrinsics(camera)
        cam = world @ rotation.T + translation
        name = f"{file_action}.{cam_id}"
        write_pose_cdf(sdir / "MyPoseFeatures" / "D3_Positions_mono" / f"{name}.cdf", cam.reshape(cfg.frames, -1))
        write_pose_cdf(
            sdir / "MyPoseFeatures" / "D2_Positions" / f"{name}.cdf", project(cam, camera).reshape(cfg.frames, -1)
        )
        background = studio_background(camera, cfg.seed)
        boxes = []

        def frames():
            for joints in cam:
                img, box = render_frame(background, joints, camera, body)
                boxes.append(box)
                yield img

        write_video(sdir / "Videos" / f"{name}.mp4", frames())
        write_bbox_masks_mat(
            sdir / "MySegmentsMat" / "ground_truth_bb" / f"{name}.mat", boxes, camera.width, camera.height
        )
    return cfg.frames * len(cfg.cameras)


def sequence_jobs(cfg: GeneratorConfig) -> list[tuple]:
    return [(subject, action, stem, i) for subject in cfg.subjects for action in cfg.actions
            for i, stem in enumerate(file_action_names(subject, action, cfg.subactions))]


def _run_job(args):
    cfg, job = args
    return generate_sequence(cfg, *job)


def generate(cfg: GeneratorConfig, workers: int = 1, progress: bool | str = True) -> dict:
    """Write the whole layout under cfg.root (atomically per file). Returns a summary."""
    for a in cfg.actions:
        if a not in ACTIONS:
            raise ValueError(f"unknown action {a!r}; expected one of {', '.join(ACTIONS)}")
    for c in cfg.cameras:
        if c not in CAMERA_MODELS:
            raise ValueError(f"unknown camera {c!r}; expected one of {', '.join(CAMERAS)}")
    jobs = sequence_jobs(cfg)
    t0 = time.time()
    frames = 0
    bar = Progress(len(jobs), "synthetic H3.6M", unit="sequences", mode=progress)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for n in pool.map(_run_job, [(cfg, j) for j in jobs]):
                frames += n
                bar.update()
    else:
        for j in jobs:
            frames += generate_sequence(cfg, *j)
            bar.update()
    bar.close()
    return dict(root=str(cfg.root), sequences=len(jobs), frames=frames, seconds=time.time() - t0)


__all__ = ["GeneratorConfig", "generate"]
