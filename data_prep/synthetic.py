"""A synthetic stand-in for Human3.6M that writes the release's on-disk layout.

Per subject S*: MyPoseFeatures/D3_Positions/<Action>.cdf (world, mm), MyPoseFeatures/D3_Positions_mono/
<Action>.<camera>.cdf (camera coordinates, mm), MyPoseFeatures/D2_Positions/<Action>.<camera>.cdf
(distorted pixels), Videos/<Action>.<camera>.mp4 (50 fps) and MySegmentsMat/ground_truth_bb/
<Action>.<camera>.mat (MATLAB v7.3, `Masks` cell of bounding-box masks). Same variable names, shapes,
32-joint order, file-name quirks (S1's TakingPhoto/WalkingDog, subaction numbers) and camera models.

People are articulated 32-joint skeletons with per-subject bone lengths and clothing, moving in an
action-specific way (a gait cycle for Walking, sitting for Sitting, ...), drawn as shaded figures on a
textured studio background, left and right limbs in different shades. Deterministic from a seed.
Only the data is synthetic: everything downstream reads it with the real reader.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import time
from pathlib import Path

import cv2
import h5py
import numpy as np

from .cameras import CAMERA_MODELS, Camera, look_at_extrinsics, project
from .skeleton import ACTIONS, CAMERAS, H36M_TO_17, NUM_H36M_JOINTS, SUBJECTS

FPS = 50

# Nominal bone lengths (mm) of an adult, scaled per subject.
BASE_LENGTHS = dict(hip_half=130.0, thigh=450.0, shin=440.0, foot=140.0, spine=240.0, upper_spine=250.0,
                    neck=110.0, head=120.0, shoulder_half=160.0, upper_arm=280.0, forearm=250.0, hand=90.0)
RADII = dict(thigh=75.0, shin=55.0, foot=35.0, upper_arm=48.0, forearm=40.0, neck=45.0, head=105.0)


@dataclasses.dataclass(frozen=True)
class Body:
    lengths: dict
    shirt: tuple
    trousers: tuple
    skin: tuple


def make_body(subject: str, seed: int) -> Body:
    rng = np.random.default_rng([seed, SUBJECTS.index(subject) if subject in SUBJECTS else hash(subject) % 997])
    height = rng.uniform(0.9, 1.1)
    lengths = {k: v * height * rng.uniform(0.95, 1.05) for k, v in BASE_LENGTHS.items()}
    colour = lambda lo, hi: tuple(int(x) for x in rng.integers(lo, hi, 3))
    return Body(lengths, colour(40, 230), colour(20, 160), tuple(int(x) for x in rng.uniform(0.8, 1.2) * np.array([120, 160, 210]).clip(0, 255)))


# --- motion -------------------------------------------------------------------------------------
# Per action: which gesture the arms make, whether the person walks, sits, bends. Angles in radians.
ACTION_STYLE = {
    "Directions": dict(point=1.0), "Discussion": dict(gesture=1.0), "Eating": dict(hands_to_mouth=1.0, sit=0.6),
    "Greeting": dict(wave=1.0, walk=0.3), "Phoning": dict(phone=1.0), "Photo": dict(camera=1.0),
    "Posing": dict(pose=1.0), "Purchases": dict(bend=1.0, walk=0.3), "Sitting": dict(sit=1.0, gesture=0.3),
    "SittingDown": dict(sit_down=1.0), "Smoking": dict(smoke=1.0), "Waiting": dict(sway=1.0),
    "WalkDog": dict(walk=1.0, leash=1.0), "Walking": dict(walk=1.0), "WalkTogether": dict(walk=0.7, gesture=0.3),
}


def _smooth_noise(rng, t, n=3, scale=1.0):
    freqs = rng.uniform(0.05, 0.4, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    amps = rng.uniform(0.3, 1.0, n) / n
    return scale * sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in zip(amps, freqs, phases))


def action_angles(action: str, t: np.ndarray, rng: np.random.Generator) -> dict:
    """Joint angles over time t (s) for an action; every subject and subaction gets its own rng."""
    style = ACTION_STYLE[action]
    z = np.zeros_like(t)
    a = dict(yaw=rng.uniform(-np.pi, np.pi) + _smooth_noise(rng, t, scale=0.6), lean=0.08 + _smooth_noise(rng, t, scale=0.08),
             pelvis_drop=z.copy(), x=z.copy(), y=z.copy(), head=_smooth_noise(rng, t, scale=0.2))
    for side in "LR":
        a[f"hip_{side}"] = 0.05 + _smooth_noise(rng, t, scale=0.1)
        a[f"knee_{side}"] = 0.1 + np.abs(_smooth_noise(rng, t, scale=0.15))
        a[f"shoulder_{side}"] = 0.15 + _smooth_noise(rng, t, scale=0.25)
        a[f"abduct_{side}"] = 0.15 + np.abs(_smooth_noise(rng, t, scale=0.2))
        a[f"elbow_{side}"] = 0.3 + np.abs(_smooth_noise(rng, t, scale=0.4))
    walk = style.get("walk", 0.0)
    if walk:
        cadence = rng.uniform(0.8, 1.0) * 2 * np.pi * walk
        phase = cadence * t
        radius = rng.uniform(800, 1300)
        speed = walk * 1100.0 / radius  # rad/s along a circle around the studio centre
        ang = speed * t + rng.uniform(0, 2 * np.pi)
        a["x"], a["y"] = radius * np.cos(ang), radius * np.sin(ang)
        a["yaw"] = ang + np.pi / 2 + 0.05 * np.sin(phase)
        for side, s in (("L", 0.0), ("R", np.pi)):
            a[f"hip_{side}"] = 0.45 * walk * np.sin(phase + s)
            a[f"knee_{side}"] = 0.15 + 0.55 * walk * np.clip(np.sin(phase + s - 1.2), 0, None)
            a[f"shoulder_{side}"] = -0.35 * walk * np.sin(phase + s)
            a[f"elbow_{side}"] = 0.3 + 0.2 * walk * np.clip(np.sin(phase + s), 0, None)
    sit = style.get("sit", 0.0)
    if style.get("sit_down"):
        sit = 0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(3.0, 5.0))
    if np.any(sit):
        for side in "LR":
            a[f"hip_{side}"] = a[f"hip_{side}"] * (1 - sit) + 1.45 * sit
            a[f"knee_{side}"] = a[f"knee_{side}"] * (1 - sit) + 1.5 * sit
        a["pelvis_drop"] = 420.0 * sit
        a["lean"] = a["lean"] + 0.15 * sit
    w = 2 * np.pi * rng.uniform(0.3, 0.6)
    if style.get("point"):
        a["shoulder_R"] = 1.2 + 0.3 * np.sin(w * t)
        a["elbow_R"] = 0.1 + 0.1 * np.abs(np.sin(w * t))
    if style.get("gesture"):
        for side, s in (("L", 0), ("R", 1.7)):
            a[f"shoulder_{side}"] = 0.5 + 0.35 * np.sin(w * t + s)
            a[f"elbow_{side}"] = 1.2 + 0.4 * np.sin(1.3 * w * t + s)
    if style.get("hands_to_mouth") or style.get("smoke"):
        sides = "LR" if style.get("hands_to_mouth") else "R"
        cycle = 0.5 + 0.5 * np.sin(w * t)
        for side in sides:
            a[f"shoulder_{side}"] = 0.3 + 0.6 * cycle
            a[f"elbow_{side}"] = 0.6 + 1.8 * cycle
    if style.get("phone"):
        a["shoulder_R"] = 0.6 + 0.05 * np.sin(w * t)
        a["abduct_R"] = 0.4 + z
        a["elbow_R"] = 2.4 + z
    if style.get("wave"):
        a["shoulder_R"] = 1.3 + 0.2 * np.sin(0.5 * w * t)
        a["abduct_R"] = 0.8 + 0.4 * np.sin(3 * w * t)
        a["elbow_R"] = 1.0 + 0.3 * np.sin(3 * w * t)
    if style.get("camera"):
        for side in "LR":
            a[f"shoulder_{side}"] = 1.0 + 0.1 * np.sin(w * t)
            a[f"elbow_{side}"] = 2.0 + z
        a["lean"] = a["lean"] + 0.1 * np.sin(0.5 * w * t)
    if style.get("pose"):
        for side, s in (("L", 0), ("R", np.pi)):
            a[f"abduct_{side}"] = 1.1 + 0.4 * np.sin(0.5 * w * t + s)
            a[f"elbow_{side}"] = 0.2 + 1.2 * (0.5 + 0.5 * np.sin(0.5 * w * t))
        a["hip_L"] = 0.25 * np.sin(0.5 * w * t)
    if style.get("bend"):
        bend = 0.5 + 0.5 * np.sin(0.5 * w * t)
        a["lean"] = a["lean"] + 0.9 * bend
        for side in "LR":
            a[f"shoulder_{side}"] = a[f"shoulder_{side}"] + 0.8 * bend
    if style.get("sway"):
        a["lean"] = a["lean"] + 0.1 * np.sin(0.4 * w * t)
        a["abduct_L"] = a["abduct_L"] + 0.1
        a["knee_L"] = 0.1 + 0.25 * (0.5 + 0.5 * np.sin(0.4 * w * t))
    if style.get("leash"):
        a["shoulder_R"] = 0.5 + 0.1 * np.sin(w * t)
        a["elbow_R"] = 0.4 + z
    # Joint-angle limits: knees and elbows only bend one way, hips and shoulders within a human range.
    for side in "LR":
        a[f"knee_{side}"] = np.clip(a[f"knee_{side}"], 0.0, 2.6)
        a[f"elbow_{side}"] = np.clip(a[f"elbow_{side}"], 0.0, 2.6)
        a[f"hip_{side}"] = np.clip(a[f"hip_{side}"], -0.6, 1.9)
        a[f"shoulder_{side}"] = np.clip(a[f"shoulder_{side}"], -0.8, 2.8)
        a[f"abduct_{side}"] = np.clip(a[f"abduct_{side}"], 0.0, 2.0)
    return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), t.shape).copy() for k, v in a.items()}


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def forward_kinematics(angles: dict, body: Body) -> np.ndarray:
    """(T, 32, 3) world joint positions (mm, z up) in Human3.6M's 32-joint order."""
    L = body.lengths
    yaw = angles["yaw"]
    T = len(yaw)
    up = np.broadcast_to([0.0, 0.0, 1.0], (T, 3))
    fwd = np.stack([np.cos(yaw), np.sin(yaw), np.zeros(T)], -1)
    left = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros(T)], -1)
    J = np.zeros((T, NUM_H36M_JOINTS, 3))
    leg_len = L["thigh"] + L["shin"]
    hip = np.stack([angles["x"], angles["y"], leg_len + 60.0 - angles["pelvis_drop"]], -1)
    J[:, 0] = hip
    col = lambda a: np.asarray(a)[:, None]
    for side, sign, base in (("R", -1.0, 1), ("L", 1.0, 6)):
        h = hip + sign * left * L["hip_half"]
        a, k = col(angles[f"hip_{side}"]), col(angles[f"knee_{side}"])
        knee = h + L["thigh"] * (-up * np.cos(a) + fwd * np.sin(a))
        foot = knee + L["shin"] * (-up * np.cos(a - k) + fwd * np.sin(a - k))
        toe = foot + L["foot"] * _unit(fwd - 0.3 * up)
        J[:, base], J[:, base + 1], J[:, base + 2], J[:, base + 3] = h, knee, foot, toe
        J[:, base + 4] = toe + 40.0 * fwd
    lean = col(angles["lean"])
    spine_dir = up * np.cos(lean) + fwd * np.sin(lean)
    J[:, 11] = hip + 20.0 * spine_dir
    J[:, 12] = hip + L["spine"] * spine_dir
    thorax = J[:, 12] + L["upper_spine"] * spine_dir
    J[:, 13] = thorax
    head_dir = _unit(spine_dir + fwd * col(angles["head"]))
    J[:, 14] = thorax + L["neck"] * head_dir + 35.0 * fwd
    J[:, 15] = J[:, 14] + L["head"] * head_dir
    for side, sign, anchor in (("L", 1.0, 16), ("R", -1.0, 24)):
        J[:, anchor] = thorax
        sh = thorax + sign * left * L["shoulder_half"] - 20.0 * spine_dir
        s, ab, e = col(angles[f"shoulder_{side}"]), col(angles[f"abduct_{side}"]), col(angles[f"elbow_{side}"])
        hang = -spine_dir * np.cos(s) + fwd * np.sin(s)
        upper = _unit(hang * np.cos(ab) + sign * left * np.sin(ab))
        bend_towards = _unit(fwd + 0.3 * up - np.sum((fwd + 0.3 * up) * upper, -1, keepdims=True) * upper)
        fore = _unit(upper * np.cos(e) + bend_towards * np.sin(e))
        elbow = sh + L["upper_arm"] * upper
        wrist = elbow + L["forearm"] * fore
        hand = wrist + L["hand"] * fore
        J[:, anchor + 1], J[:, anchor + 2], J[:, anchor + 3] = sh, elbow, wrist
        J[:, anchor + 4], J[:, anchor + 5] = hand, hand + 20.0 * fore
        J[:, anchor + 6], J[:, anchor + 7] = wrist + 40.0 * _unit(fore + sign * left), wrist + 60.0 * _unit(fore + sign * left)
    return J


# --- rendering ----------------------------------------------------------------------------------
LIMBS = (  # (32-joint a, b, radius key, part)
    (1, 2, "thigh", "R_leg"), (2, 3, "shin", "R_leg"), (3, 4, "foot", "R_shoe"),
    (6, 7, "thigh", "L_leg"), (7, 8, "shin", "L_leg"), (8, 9, "foot", "L_shoe"),
    (25, 26, "upper_arm", "R_arm"), (26, 27, "forearm", "R_arm"), (27, 28, "forearm", "R_hand"),
    (17, 18, "upper_arm", "L_arm"), (18, 19, "forearm", "L_arm"), (19, 20, "forearm", "L_hand"),
    (13, 14, "neck", "skin"),
)


def _shade(colour, factor):
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def studio_background(camera: Camera, seed: int) -> np.ndarray:
    """A textured backdrop with a tiled floor, fixed per camera."""
    rng = np.random.default_rng([seed, int(camera.id)])
    h, w = camera.height, camera.width
    noise = cv2.resize(rng.uniform(0, 1, (h // 25, w // 25, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    fine = rng.uniform(-12, 12, (h, w, 1)).astype(np.float32)
    img = 70 + 70 * noise + fine
    floor_rows = int(h * 0.62)
    tiles = ((np.arange(w)[None, :] // 60 + np.arange(h)[:, None] // 30) % 2).astype(np.float32)
    img[floor_rows:] = (90 + 30 * tiles[..., None] + fine)[floor_rows:]
    return img.clip(0, 255).astype(np.uint8)


def render_frame(background: np.ndarray, joints_cam: np.ndarray, camera: Camera, body: Body) -> tuple[np.ndarray, tuple]:
    """Draw one person (32 camera-coordinate joints, mm) over the background; returns the image and
    the person's bounding box (x0, y0, x1, y1) in pixels."""
    img = background.copy()
    px = project(joints_cam, camera)
    f = float(np.mean(camera.focal_length))
    colours = {"R_leg": body.trousers, "L_leg": _shade(body.trousers, 0.65), "R_arm": body.shirt,
               "L_arm": _shade(body.shirt, 0.6), "R_hand": body.skin, "L_hand": _shade(body.skin, 0.8),
               "R_shoe": (30, 30, 30), "L_shoe": (60, 60, 90), "skin": body.skin}
    parts = []
    for a, b, rkey, part in LIMBS:
        z = 0.5 * (joints_cam[a, 2] + joints_cam[b, 2])
        parts.append((z, "limb", (a, b, max(2, int(f * RADII[rkey] / z)), colours[part])))
    torso = [17, 25, 1, 6]
    parts.append((np.mean(joints_cam[torso, 2]) + 30.0, "torso", torso))
    parts.append((joints_cam[15, 2], "head", None))
    for _, kind, data in sorted(parts, key=lambda p: -p[0]):
        if kind == "limb":
            a, b, r, colour = data
            pa, pb = tuple(int(v) for v in px[a]), tuple(int(v) for v in px[b])
            cv2.line(img, pa, pb, colour, 2 * r, cv2.LINE_AA)
            cv2.line(img, pa, pb, _shade(colour, 1.25), max(1, r // 2), cv2.LINE_AA)
        elif kind == "torso":
            poly = px[data].astype(np.int32)
            cv2.fillConvexPoly(img, poly, body.shirt, cv2.LINE_AA)
            cv2.line(img, tuple(int(v) for v in px[13]), tuple(int(v) for v in px[0]), _shade(body.shirt, 0.8), 6, cv2.LINE_AA)
        else:
            centre = 0.5 * (px[14] + px[15])
            r = max(3, int(f * RADII["head"] / joints_cam[15, 2]))
            cv2.circle(img, tuple(int(v) for v in centre), r, body.skin, -1, cv2.LINE_AA)
            cv2.circle(img, tuple(int(v) for v in px[14]), max(2, r // 4), _shade(body.skin, 0.6), -1, cv2.LINE_AA)
    margin = f * 120.0 / float(np.min(joints_cam[:, 2]))
    x0, y0 = px.min(axis=0) - margin
    x1, y1 = px.max(axis=0) + margin
    box = (max(0, int(x0)), max(0, int(y0)), min(camera.width - 1, int(x1)), min(camera.height - 1, int(y1)))
    return img, box


# --- file writers (the release's formats) ---------------------------------------------------------
def write_pose_cdf(path: Path, poses: np.ndarray) -> None:
    """CDF with variable `Pose` of shape (1, frames, width), as in the release."""
    from cdflib.cdfwrite import CDF

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(poses, dtype=np.float32).reshape(1, len(poses), -1)
    tmp = path.with_name(path.stem + ".partial.cdf")
    if tmp.exists():
        tmp.unlink()
    cdf = CDF(str(tmp))
    cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                   "Dim_Sizes": list(data.shape[1:])}, var_attrs={}, var_data=data)
    cdf.close()
    os.replace(tmp, path)


MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def write_bbox_masks_mat(path: Path, boxes: list, width: int, height: int) -> None:
    """MATLAB v7.3 file whose cell `Masks` holds one (height, width) logical mask per frame, stored
    column-major as MATLAB does (so a reader gets f[f['Masks'][i, 0]] transposed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.mat")
    with h5py.File(tmp, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        ref_ds = f.create_dataset("Masks", (len(boxes), 1), dtype=h5py.ref_dtype)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            mask = np.zeros((width, height), dtype=np.uint8)  # MATLAB's (rows, cols) transposed
            mask[x0:x1 + 1, y0:y1 + 1] = 1
            d = refs.create_dataset(f"m{i}", data=mask, compression="gzip", compression_opts=1, chunks=True)
            d.attrs["MATLAB_class"] = np.bytes_("logical")
            ref_ds[i, 0] = d.ref
        ref_ds.attrs["MATLAB_class"] = np.bytes_("cell")
    with open(tmp, "r+b") as fh:
        header = MAT73_HEADER.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
        fh.write(header.ljust(512, b"\x00"))
    os.replace(tmp, path)


def write_video(path: Path, frames) -> int:
    """MPEG-4 video at 50 fps; returns the number of frames written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.mp4")
    writer, n = None, 0
    for frame in frames:
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
            if not writer.isOpened():
                raise RuntimeError(f"{tmp}: OpenCV cannot write MPEG-4 video here")
        writer.write(frame)
        n += 1
    if writer is not None:
        writer.release()
        os.replace(tmp, path)
    return n


# --- the layout -----------------------------------------------------------------------------------
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
        write_pose_cdf(sdir / "MyPoseFeatures" / "D2_Positions" / f"{name}.cdf", project(cam, camera).reshape(cfg.frames, -1))
        background = studio_background(camera, cfg.seed)
        boxes = []

        def frames():
            for joints in cam:
                img, box = render_frame(background, joints, camera, body)
                boxes.append(box)
                yield img

        write_video(sdir / "Videos" / f"{name}.mp4", frames())
        write_bbox_masks_mat(sdir / "MySegmentsMat" / "ground_truth_bb" / f"{name}.mat", boxes, camera.width, camera.height)
    return cfg.frames * len(cfg.cameras)


def sequence_jobs(cfg: GeneratorConfig) -> list[tuple]:
    return [(subject, action, stem, i) for subject in cfg.subjects for action in cfg.actions
            for i, stem in enumerate(file_action_names(subject, action, cfg.subactions))]


def _run_job(args):
    cfg, job = args
    return generate_sequence(cfg, *job)


def generate(cfg: GeneratorConfig, workers: int = 1, progress: bool | str = True) -> dict:
    """Write the whole layout under cfg.root (atomically per file). Returns a summary."""
    from concurrent.futures import ProcessPoolExecutor

    from .progress import Progress

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


def remove_tree(path: Path) -> None:
    if Path(path).exists():
        shutil.rmtree(path)


__all__ = ["GeneratorConfig", "generate", "forward_kinematics", "action_angles", "make_body", "H36M_TO_17"]
