"""Person crops of section 4: "cropped using the segmentation information … so that a person is located
around the center", resized to 250x250 (the net then takes a random 225x225 crop)."""
from __future__ import annotations

import numpy as np

CROP_SIZE = 250
# Margin around the bounding box's longer side, so that limbs at the box edge stay inside the crop.
BOX_MARGIN = 1.15


def square_around_box(box, margin: float = BOX_MARGIN) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the square crop around an inclusive box x0, y0, x1, y1."""
    x0, y0, x1, y1 = (float(v) for v in box)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"empty bounding box {box}")
    side = max(x1 - x0 + 1, y1 - y0 + 1) * margin
    return 0.5 * (x0 + x1), 0.5 * (y0 + y1), side


def crop_transform(cx: float, cy: float, side: float, size: int = CROP_SIZE) -> np.ndarray:
    """2x3 affine map from image pixels to crop pixels (pixel centres at integers)."""
    s = size / side
    # the box centre lands on the crop centre, (size - 1) / 2 with pixel centres at integers
    return np.array([[s, 0.0, (size - 1) / 2 - s * cx],
                     [0.0, s, (size - 1) / 2 - s * cy]], dtype=np.float64)


def crop_person(image: np.ndarray, box, size: int = CROP_SIZE, margin: float = BOX_MARGIN):
    """(crop (size, size, 3) uint8, affine (2, 3)) for the person in `box`; outside the image is black."""
    import cv2  # lazy: OpenCV only where images are read

    cx, cy, side = square_around_box(box, margin)
    affine = crop_transform(cx, cy, side, size)
    crop = cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, affine


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(..., 2) points through a 2x3 affine map."""
    points = np.asarray(points, dtype=np.float64)
    return points @ affine[:, :2].T + affine[:, 2]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """The 2x3 affine map undoing `affine` (crop pixels back to image pixels)."""
    linear = np.linalg.inv(affine[:, :2])
    return np.hstack([linear, -linear @ affine[:, 2:]])
