"""The synthetic people's bodies and motion: per-subject bone lengths and clothing colours, action-specific
joint angles over time (a gait cycle for Walking, sitting for Sitting, ...) and the forward kinematics that
places Human3.6M's 32 joints in the world (mm, z up). Deterministic from a seed."""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from .skeleton import H36M_TO_17, JOINTS, NUM_H36M_JOINTS, SUBJECTS

FPS = 50

# The generator's reading of the release's 32 joint slots; the 17 the paper uses (skeleton.H36M_TO_17) carry
# skeleton.JOINTS' names.
J32 = {name: i for i, name in enumerate((
    "Hip", "RHip", "RKnee", "RFoot", "RToe", "RToeTip", "LHip", "LKnee", "LFoot", "LToe", "LToeTip",
    "SpineBase", "Spine", "Thorax", "Neck/Nose", "Head",
    "LCollar", "LShoulder", "LElbow", "LWrist", "LHand", "LHandTip", "LThumb", "LThumbTip",
    "RCollar", "RShoulder", "RElbow", "RWrist", "RHand", "RHandTip", "RThumb", "RThumbTip"))}
assert len(J32) == NUM_H36M_JOINTS and [list(J32)[i] for i in H36M_TO_17] == list(JOINTS)

# Nominal bone lengths (mm) of an adult, scaled per subject.
BASE_LENGTHS = dict(hip_half=130.0, thigh=450.0, shin=440.0, foot=140.0, spine=240.0, upper_spine=250.0,
                    neck=110.0, head=120.0, shoulder_half=160.0, upper_arm=280.0, forearm=250.0, hand=90.0)


@dataclasses.dataclass(frozen=True)
class Body:
    lengths: dict
    shirt: tuple
    trousers: tuple
    skin: tuple


def make_body(subject: str, seed: int) -> Body:
    rng = np.random.default_rng(
        [seed, SUBJECTS.index(subject) if subject in SUBJECTS else zlib.crc32(subject.encode()) % 997]
    )
    height = rng.uniform(0.9, 1.1)
    lengths = {k: v * height * rng.uniform(0.95, 1.05) for k, v in BASE_LENGTHS.items()}
    colour = lambda lo, hi: tuple(int(x) for x in rng.integers(lo, hi, 3))
    return Body(
        lengths,
        colour(40, 230),
        colour(20, 160),
        tuple(int(x) for x in rng.uniform(0.8, 1.2) * np.array([120, 160, 210]).clip(0, 255)),
    )


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
    """Joint angles over time t (s) for an action; every subject and subaction gets its own rng. The random draws
    come in a fixed order (rest pose, walking, sitting down, the arms' rate), which keeps the data bit-identical."""
    style = ACTION_STYLE[action]
    a = _rest_angles(t, rng)
    if style.get("walk", 0.0):
        _walk(a, style["walk"], t, rng)
    _sit(a, style, t, rng)
    w = 2 * np.pi * rng.uniform(0.3, 0.6)  # the rate of the arm and trunk movements below
    for name, move in STYLE_MOVES:
        if style.get(name):
            move(a, w, t)
    _limit_joint_angles(a)
    return {k: np.broadcast_to(np.asarray(v, dtype=np.float64), t.shape).copy() for k, v in a.items()}


def _rest_angles(t: np.ndarray, rng: np.random.Generator) -> dict:
    """Standing, facing a random way, every angle drifting a little (smooth noise)."""
    z = np.zeros_like(t)
    a = dict(
        yaw=rng.uniform(-np.pi, np.pi) + _smooth_noise(rng, t, scale=0.6),
        lean=0.08 + _smooth_noise(rng, t, scale=0.08),
        pelvis_drop=z.copy(),
        x=z.copy(),
        y=z.copy(),
        head=_smooth_noise(rng, t, scale=0.2),
    )
    for side in "LR":
        a[f"hip_{side}"] = 0.05 + _smooth_noise(rng, t, scale=0.1)
        a[f"knee_{side}"] = 0.1 + np.abs(_smooth_noise(rng, t, scale=0.15))
        a[f"shoulder_{side}"] = 0.15 + _smooth_noise(rng, t, scale=0.25)
        a[f"abduct_{side}"] = 0.15 + np.abs(_smooth_noise(rng, t, scale=0.2))
        a[f"elbow_{side}"] = 0.3 + np.abs(_smooth_noise(rng, t, scale=0.4))
    return a


def _walk(a: dict, walk: float, t: np.ndarray, rng: np.random.Generator) -> None:
    """Walking on a circle around the studio centre: legs and arms swing in antiphase at a random cadence."""
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


def _sit(a: dict, style: dict, t: np.ndarray, rng: np.random.Generator) -> None:
    """Sitting (a fixed amount), or sitting down and getting up again over a random period."""
    sit = style.get("sit", 0.0)
    if style.get("sit_down"):
        sit = 0.5 - 0.5 * np.cos(2 * np.pi * t / rng.uniform(3.0, 5.0))
    if np.any(sit):
        for side in "LR":
            a[f"hip_{side}"] = a[f"hip_{side}"] * (1 - sit) + 1.45 * sit
            a[f"knee_{side}"] = a[f"knee_{side}"] * (1 - sit) + 1.5 * sit
        a["pelvis_drop"] = 420.0 * sit
        a["lean"] = a["lean"] + 0.15 * sit


def _point(a, w, t):
    a["shoulder_R"] = 1.2 + 0.3 * np.sin(w * t)
    a["elbow_R"] = 0.1 + 0.1 * np.abs(np.sin(w * t))


def _gesture(a, w, t):
    for side, s in (("L", 0), ("R", 1.7)):
        a[f"shoulder_{side}"] = 0.5 + 0.35 * np.sin(w * t + s)
        a[f"elbow_{side}"] = 1.2 + 0.4 * np.sin(1.3 * w * t + s)


def _hands_to_mouth(a, w, t, sides="LR"):
    cycle = 0.5 + 0.5 * np.sin(w * t)
    for side in sides:
        a[f"shoulder_{side}"] = 0.3 + 0.6 * cycle
        a[f"elbow_{side}"] = 0.6 + 1.8 * cycle


def _smoke(a, w, t):
    _hands_to_mouth(a, w, t, sides="R")


def _phone(a, w, t):
    a["shoulder_R"] = 0.6 + 0.05 * np.sin(w * t)
    a["abduct_R"] = 0.4 + np.zeros_like(t)
    a["elbow_R"] = 2.4 + np.zeros_like(t)


def _wave(a, w, t):
    a["shoulder_R"] = 1.3 + 0.2 * np.sin(0.5 * w * t)
    a["abduct_R"] = 0.8 + 0.4 * np.sin(3 * w * t)
    a["elbow_R"] = 1.0 + 0.3 * np.sin(3 * w * t)


def _camera(a, w, t):
    for side in "LR":
        a[f"shoulder_{side}"] = 1.0 + 0.1 * np.sin(w * t)
        a[f"elbow_{side}"] = 2.0 + np.zeros_like(t)
    a["lean"] = a["lean"] + 0.1 * np.sin(0.5 * w * t)


def _pose(a, w, t):
    for side, s in (("L", 0), ("R", np.pi)):
        a[f"abduct_{side}"] = 1.1 + 0.4 * np.sin(0.5 * w * t + s)
        a[f"elbow_{side}"] = 0.2 + 1.2 * (0.5 + 0.5 * np.sin(0.5 * w * t))
    a["hip_L"] = 0.25 * np.sin(0.5 * w * t)


def _bend(a, w, t):
    bend = 0.5 + 0.5 * np.sin(0.5 * w * t)
    a["lean"] = a["lean"] + 0.9 * bend
    for side in "LR":
        a[f"shoulder_{side}"] = a[f"shoulder_{side}"] + 0.8 * bend


def _sway(a, w, t):
    a["lean"] = a["lean"] + 0.1 * np.sin(0.4 * w * t)
    a["abduct_L"] = a["abduct_L"] + 0.1
    a["knee_L"] = 0.1 + 0.25 * (0.5 + 0.5 * np.sin(0.4 * w * t))


def _leash(a, w, t):
    a["shoulder_R"] = 0.5 + 0.1 * np.sin(w * t)
    a["elbow_R"] = 0.4 + np.zeros_like(t)


# The arm and trunk movements of ACTION_STYLE's flags, applied in this order (a later one overrides an earlier);
# "hands_to_mouth" and "smoke" are one movement (both hands, or the right one only), hands_to_mouth first.
STYLE_MOVES = (("point", _point), ("gesture", _gesture), ("hands_to_mouth", _hands_to_mouth), ("smoke", _smoke),
               ("phone", _phone), ("wave", _wave), ("camera", _camera), ("pose", _pose), ("bend", _bend),
               ("sway", _sway), ("leash", _leash))


def _limit_joint_angles(a: dict) -> None:
    """Knees and elbows only bend one way, hips and shoulders within a human range."""
    for side in "LR":
        a[f"knee_{side}"] = np.clip(a[f"knee_{side}"], 0.0, 2.6)
        a[f"elbow_{side}"] = np.clip(a[f"elbow_{side}"], 0.0, 2.6)
        a[f"hip_{side}"] = np.clip(a[f"hip_{side}"], -0.6, 1.9)
        a[f"shoulder_{side}"] = np.clip(a[f"shoulder_{side}"], -0.8, 2.8)
        a[f"abduct_{side}"] = np.clip(a[f"abduct_{side}"], 0.0, 2.0)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def forward_kinematics(angles: dict, body: Body) -> np.ndarray:
    """(T, 32, 3) world joint positions (mm, z up) in Human3.6M's 32-joint order (J32)."""
    L = body.lengths
    yaw = angles["yaw"]
    frames = len(yaw)
    up = np.broadcast_to([0.0, 0.0, 1.0], (frames, 3))
    fwd = np.stack([np.cos(yaw), np.sin(yaw), np.zeros(frames)], -1)
    left = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros(frames)], -1)
    J = np.zeros((frames, NUM_H36M_JOINTS, 3))
    leg_len = L["thigh"] + L["shin"]
    hip = np.stack([angles["x"], angles["y"], leg_len + 60.0 - angles["pelvis_drop"]], -1)
    J[:, J32["Hip"]] = hip
    col = lambda a: np.asarray(a)[:, None]
    for side, sign in (("R", -1.0), ("L", 1.0)):
        h = hip + sign * left * L["hip_half"]
        a, k = col(angles[f"hip_{side}"]), col(angles[f"knee_{side}"])
        knee = h + L["thigh"] * (-up * np.cos(a) + fwd * np.sin(a))
        foot = knee + L["shin"] * (-up * np.cos(a - k) + fwd * np.sin(a - k))
        toe = foot + L["foot"] * _unit(fwd - 0.3 * up)
        for name, point in (("Hip", h), ("Knee", knee), ("Foot", foot), ("Toe", toe), ("ToeTip", toe + 40.0 * fwd)):
            J[:, J32[side + name]] = point
    lean = col(angles["lean"])
    spine_dir = up * np.cos(lean) + fwd * np.sin(lean)
    J[:, J32["SpineBase"]] = hip + 20.0 * spine_dir
    J[:, J32["Spine"]] = hip + L["spine"] * spine_dir
    thorax = J[:, J32["Spine"]] + L["upper_spine"] * spine_dir
    J[:, J32["Thorax"]] = thorax
    head_dir = _unit(spine_dir + fwd * col(angles["head"]))
    J[:, J32["Neck/Nose"]] = thorax + L["neck"] * head_dir + 35.0 * fwd
    J[:, J32["Head"]] = J[:, J32["Neck/Nose"]] + L["head"] * head_dir
    for side, sign in (("L", 1.0), ("R", -1.0)):
        sh = thorax + sign * left * L["shoulder_half"] - 20.0 * spine_dir
        s, ab, e = col(angles[f"shoulder_{side}"]), col(angles[f"abduct_{side}"]), col(angles[f"elbow_{side}"])
        hang = -spine_dir * np.cos(s) + fwd * np.sin(s)
        upper = _unit(hang * np.cos(ab) + sign * left * np.sin(ab))
        bend_towards = _unit(fwd + 0.3 * up - np.sum((fwd + 0.3 * up) * upper, -1, keepdims=True) * upper)
        fore = _unit(upper * np.cos(e) + bend_towards * np.sin(e))
        elbow = sh + L["upper_arm"] * upper
        wrist = elbow + L["forearm"] * fore
        hand = wrist + L["hand"] * fore
        outward = _unit(fore + sign * left)
        for name, point in (("Collar", thorax), ("Shoulder", sh), ("Elbow", elbow), ("Wrist", wrist), ("Hand", hand),
                            ("HandTip", hand + 20.0 * fore), ("Thumb", wrist + 40.0 * outward),
                            ("ThumbTip", wrist + 60.0 * outward)):
            J[:, J32[side + name]] = point
    return J
