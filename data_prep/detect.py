"""The person's box in a user's own image when none is given: OpenCV's built-in HOG people detector
(Dalal and Triggs' linear SVM trained on INRIA pedestrians, shipped inside OpenCV: no weights to download).

The detector scores 64x128 windows in which the INRIA training people stand about 96 pixels tall, a 16-pixel
border above and below. On the synthetic frames the best window is about 1.13 times the height of the person's
mask box, less than that border suggests, so half the border, 8 pixels of 128 at the top and at the bottom, is
taken off to give the person's box, and the square crop around it (data_prep.crop) frames the person about as
the training crops around the mask boxes do. The width is kept: a walking person's arms and legs fill the
window's width. The image is searched at a few sizes and the best-scoring window wins. A wrong or missing
detection is possible (a partial body, an unusual pose): pass --bbox to tools/predict.py for exact boxes.
"""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

DETECT_SIDES = (400, 560)  # the image's longer side is scaled to each of these for the search
WINDOW_BORDER = (0.0, 8 / 128)  # taken off the window on each side, as a fraction of it (x, y)


@dataclasses.dataclass
class Detection:
    box: tuple  # the person: inclusive x0, y0, x1, y1 in image pixels
    window: tuple  # the detector's window, same convention
    score: float  # the SVM's margin (higher: more confident)


def person_box_from_window(window) -> tuple:
    """The detector window (x0, y0, x1, y1) shrunk by INRIA's border to the person inside it."""
    x0, y0, x1, y1 = (float(v) for v in window)
    bx, by = WINDOW_BORDER[0] * (x1 - x0 + 1), WINDOW_BORDER[1] * (y1 - y0 + 1)
    return (x0 + bx, y0 + by, x1 - bx, y1 - by)


@functools.lru_cache(maxsize=1)
def _people_detector():
    """OpenCV's HOG descriptor with its default people SVM, made once (predict.py calls per video frame)."""
    import cv2  # lazy: OpenCV only where images are read

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def detect_person(image_bgr: np.ndarray) -> Detection | None:
    """The most confident person in the image, or None when the detector finds nobody."""
    import cv2  # lazy: OpenCV only where images are read

    hog = _people_detector()
    best = None
    for side in DETECT_SIDES:
        scale = side / max(image_bgr.shape[:2])
        small = cv2.resize(
            image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        )
        if min(small.shape[:2]) < 128:
            continue
        rects, weights = hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
        for (x, y, w, h), score in zip(rects, np.ravel(weights)):
            if best is None or score > best.score:
                window = (x / scale, y / scale, (x + w) / scale - 1, (y + h) / scale - 1)
                best = Detection(person_box_from_window(window), window, float(score))
    return best


@functools.lru_cache(maxsize=1)
def _haar_full_body():
    import cv2  # lazy: OpenCV only where images are read

    return cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_fullbody.xml"))


def detect_person_haar(image_bgr: np.ndarray) -> Detection | None:
    """The largest full-body detection of the Haar cascade that ships inside OpenCV (haarcascade_fullbody.xml,
    Kruppa et al.), the other detector with its weights in a package we already install; for the benchmark's
    comparison (docs/benchmarks.md, "Person detectors"). Its window is the box."""
    import cv2  # lazy: OpenCV only where images are read

    scale = DETECT_SIDES[-1] / max(image_bgr.shape[:2])
    small = cv2.resize(
        image_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    found = _haar_full_body().detectMultiScale(
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), scaleFactor=1.05, minNeighbors=3
    )
    if len(found) == 0:
        return None
    x, y, w, h = max(found, key=lambda r: r[2] * r[3])
    box = (x / scale, y / scale, (x + w) / scale - 1, (y + h) / scale - 1)
    return Detection(box, box, float(w * h))


def box_iou(a, b) -> float:
    """Intersection over union of two inclusive x0, y0, x1, y1 boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0]) + 1
    h = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if w <= 0 or h <= 0:
        return 0.0
    area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
    return float(w * h / (area(a) + area(b) - w * h))
