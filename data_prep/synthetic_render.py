"""Drawing a synthetic person into a camera's frame: a textured studio backdrop per camera, the body as shaded
limbs, torso and head (left and right in different shades), nearest parts last, and the person's box."""
from __future__ import annotations

import cv2
import numpy as np

from .cameras import Camera, project
from .synthetic_motion import J32, Body

RADII = dict(thigh=75.0, shin=55.0, foot=35.0, upper_arm=48.0, forearm=40.0, neck=45.0, head=105.0)  # mm
LIMBS = tuple((J32[a], J32[b], radius, part) for a, b, radius, part in (  # drawn as thick lines
    ("RHip", "RKnee", "thigh", "R_leg"), ("RKnee", "RFoot", "shin", "R_leg"), ("RFoot", "RToe", "foot", "R_shoe"),
    ("LHip", "LKnee", "thigh", "L_leg"), ("LKnee", "LFoot", "shin", "L_leg"), ("LFoot", "LToe", "foot", "L_shoe"),
    ("RShoulder", "RElbow", "upper_arm", "R_arm"), ("RElbow", "RWrist", "forearm", "R_arm"),
    ("RWrist", "RHand", "forearm", "R_hand"),
    ("LShoulder", "LElbow", "upper_arm", "L_arm"), ("LElbow", "LWrist", "forearm", "L_arm"),
    ("LWrist", "LHand", "forearm", "L_hand"),
    ("Thorax", "Neck/Nose", "neck", "skin"),
))
TORSO = tuple(J32[j] for j in ("LShoulder", "RShoulder", "RHip", "LHip"))  # a filled polygon


def _shade(colour, factor):
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)


def studio_background(camera: Camera, seed: int) -> np.ndarray:
    """A textured backdrop with a tiled floor, fixed per camera."""
    rng = np.random.default_rng([seed, int(camera.id)])
    h, w = camera.height, camera.width
    noise = cv2.resize(
        rng.uniform(0, 1, (h // 25, w // 25, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC
    )
    fine = rng.uniform(-12, 12, (h, w, 1)).astype(np.float32)
    img = 70 + 70 * noise + fine
    floor_rows = int(h * 0.62)
    tiles = ((np.arange(w)[None, :] // 60 + np.arange(h)[:, None] // 30) % 2).astype(np.float32)
    img[floor_rows:] = (90 + 30 * tiles[..., None] + fine)[floor_rows:]
    return img.clip(0, 255).astype(np.uint8)


def render_frame(
    background: np.ndarray, joints_cam: np.ndarray, camera: Camera, body: Body
) -> tuple[np.ndarray, tuple]:
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
    head, nose, thorax, hip = J32["Head"], J32["Neck/Nose"], J32["Thorax"], J32["Hip"]
    parts.append((np.mean(joints_cam[list(TORSO), 2]) + 30.0, "torso", list(TORSO)))
    parts.append((joints_cam[head, 2], "head", None))
    for _, kind, data in sorted(parts, key=lambda p: -p[0]):
        if kind == "limb":
            a, b, r, colour = data
            pa, pb = tuple(int(v) for v in px[a]), tuple(int(v) for v in px[b])
            cv2.line(img, pa, pb, colour, 2 * r, cv2.LINE_AA)
            cv2.line(img, pa, pb, _shade(colour, 1.25), max(1, r // 2), cv2.LINE_AA)
        elif kind == "torso":
            poly = px[data].astype(np.int32)
            cv2.fillConvexPoly(img, poly, body.shirt, cv2.LINE_AA)
            cv2.line(img, tuple(int(v) for v in px[thorax]), tuple(int(v) for v in px[hip]), _shade(body.shirt, 0.8), 6,
                     cv2.LINE_AA)
        else:
            centre = 0.5 * (px[nose] + px[head])
            r = max(3, int(f * RADII["head"] / joints_cam[head, 2]))
            cv2.circle(img, tuple(int(v) for v in centre), r, body.skin, -1, cv2.LINE_AA)
            cv2.circle(img, tuple(int(v) for v in px[nose]), max(2, r // 4), _shade(body.skin, 0.6), -1, cv2.LINE_AA)
    margin = f * 120.0 / float(np.min(joints_cam[:, 2]))
    x0, y0 = px.min(axis=0) - margin
    x1, y1 = px.max(axis=0) + margin
    box = (max(0, int(x0)), max(0, int(y0)), min(camera.width - 1, int(x1)), min(camera.height - 1, int(y1)))
    return img, box
