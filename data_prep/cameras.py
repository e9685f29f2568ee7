"""The four Human3.6M camera models: intrinsics and distortion as published in the release's metadata.

D3_Positions_mono poses are in each camera's coordinates (mm), so projecting them needs only the
intrinsics. Human3.6M's distortion is its own (the release's MATLAB ProjectPointRadial): radial
distortion on normalised coordinates, then a tangential term, with the tangential pair in the
metadata's order (p[0], p[1]). It is not cv2.projectPoints; VideoPose3D lists the same pair reversed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    id: str
    focal_length: tuple[float, float]
    center: tuple[float, float]
    radial: tuple[float, float, float]
    tangential: tuple[float, float]  # metadata order
    width: int
    height: int
    azimuth_deg: float  # where the camera stands around the capture area (synthetic extrinsics)


CAMERA_MODELS = {
    c.id: c for c in (
        Camera("54138969", (1145.0494384765625, 1143.7811279296875), (512.54150390625, 515.4514770507812),
               (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
               (-0.00142447161488235, -0.0009756988729350269), 1000, 1002, 70.0),
        Camera("55011271", (1149.6756591796875, 1147.5916748046875), (508.8486328125, 508.0649108886719),
               (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
               (-0.0027408944442868233, -0.0016190266469493508), 1000, 1000, -70.0),
        Camera("58860488", (1149.1407470703125, 1148.7989501953125), (519.8158569335938, 501.40264892578125),
               (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
               (-0.0007599993259645998, 0.0014843869721516967), 1000, 1000, 110.0),
        Camera("60457274", (1145.5113525390625, 1144.77392578125), (514.9682006835938, 501.88201904296875),
               (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
               (-0.0018133620033040643, -0.0005872055771760643), 1000, 1002, -110.0),
    )
}


def project(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """Project (..., 3) camera-coordinate points (mm, z forward) to (..., 2) distorted pixels."""
    p = np.asarray(points_cam, dtype=np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"project: expected (..., 3) points, got shape {p.shape}")
    z = p[..., 2]
    if np.any(z <= 0):
        raise ValueError("project: a point lies behind the camera (z <= 0)")
    xy = p[..., :2] / z[..., None]
    r2 = np.sum(xy ** 2, axis=-1)
    k1, k2, k3 = camera.radial
    p0, p1 = camera.tangential
    radial = 1.0 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
    tan = p0 * xy[..., 1] + p1 * xy[..., 0]
    distorted = xy * (radial + tan)[..., None] + np.stack([p1 * r2, p0 * r2], axis=-1)
    return distorted * np.asarray(camera.focal_length) + np.asarray(camera.center)


def look_at_extrinsics(camera: Camera, distance_mm: float = 5000.0, height_mm: float = 1500.0,
                       target=(0.0, 0.0, 900.0)) -> tuple[np.ndarray, np.ndarray]:
    """Plausible extrinsics for the synthetic studio: the camera stands at its azimuth around the
    capture area (world z up, mm) and looks at `target`. Returns R (3, 3), t (3,) with
    x_cam = R @ x_world + t, camera axes x right, y down, z forward as in Human3.6M."""
    a = np.deg2rad(camera.azimuth_deg)
    centre = np.array([distance_mm * np.cos(a), distance_mm * np.sin(a), height_mm])
    forward = np.asarray(target, dtype=float) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return rotation, -rotation @ centre
