"""A clip (a video, or a folder of frames) as one result: the boxes each frame used and where they came from,
the frames' poses in one file (`<name>.pose3d.npz` and its JSON twin), optional temporal smoothing, jitter.

Boxes from the user's own detector (`--boxes`) are COCO-style detections, a JSON list of
  {"image_id": <frame index> or "file_name": <image file name>, "bbox": [x, y, w, h], "score": s[, "category_id": 1]}
(or a dict with such a list under "annotations"); per frame the highest-scoring person counts. A frame without
one takes the previous frame's box, frames before the first detection the first detection's box — never the
whole image, which would put the person at a fraction of the crop.
"""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import write_bytes_atomic, write_text_atomic

BOX_PREVIOUS, BOX_NEXT = "previous frame's box (nobody detected)", "first later detection's box (nobody detected yet)"
PERSON_CATEGORY = 1  # COCO's "person"
AXES = ("pose3d_mm: millimetres, camera axes (x right, y down, z forward), root-relative (the Hip, joint 0, at the "
        "origin), at the training set's mean torso size; joints2d_px: image pixels; boxes_xyxy: inclusive x0 y0 x1 y1")


def load_boxes(path: Path) -> dict:
    """{frame index or file name: (x0, y0, x1, y1) inclusive, score} of the best person per frame in a COCO-style
    detections file; a damaged file or detection is one UserError naming it."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"--boxes {path}: cannot be read ({e.strerror})") from None
    except ValueError as e:
        raise UserError(f"--boxes {path}: not JSON ({e}); expected a list of COCO-style detections") from None
    detections = doc.get("annotations") if isinstance(doc, dict) else doc
    if not isinstance(detections, list):
        raise UserError(f"--boxes {path}: expected a list of detections (or a dict with one under \"annotations\")")
    best = {}
    for n, d in enumerate(detections):
        try:
            key = d["image_id"] if "image_id" in d else d["file_name"]
            x, y, w, h = (float(v) for v in d["bbox"])
            score = float(d.get("score", 1.0))
            category = d.get("category_id", PERSON_CATEGORY)
        except (KeyError, TypeError, ValueError):
            raise UserError(
                f"--boxes {path}: detection {n} is not {{\"image_id\" or \"file_name\", \"bbox\": [x, y, w, h], "
                "\"score\"}"
            ) from None
        if category != PERSON_CATEGORY:
            continue
        if w <= 0 or h <= 0:
            raise UserError(f"--boxes {path}: detection {n} has an empty bbox {d['bbox']}")
        if key not in best or score > best[key][1]:
            best[key] = ((x, y, x + w - 1, y + h - 1), score)
    return best


def fill_missing_boxes(boxes: list, sources: list) -> tuple[list, list]:
    """Per frame a box or None (nobody found) and where it came from: the previous frame's box where there is
    none, the first later one before the first detection. Returns new lists; all None stays None."""
    boxes, sources = list(boxes), list(sources)
    first = next((i for i, b in enumerate(boxes) if b is not None), None)
    if first is None:
        return boxes, sources
    for i in range(first):
        boxes[i], sources[i] = boxes[first], BOX_NEXT
    for i in range(first + 1, len(boxes)):
        if boxes[i] is None:
            boxes[i], sources[i] = boxes[i - 1], BOX_PREVIOUS
    return boxes, sources


def savitzky_golay(x: np.ndarray, window: int, order: int = 2) -> np.ndarray:
    """x (F, ...) smoothed over its first axis: at each frame the least-squares polynomial of `order` through the
    `window` frames around it (the first and last window at the clip's ends) evaluated there."""
    x = np.asarray(x, dtype=np.float64)
    frames = len(x)
    if window % 2 == 0 or window <= order:
        raise ValueError(f"the smoothing window must be odd and larger than {order}, got {window}")
    if frames < window:
        return x.copy()
    half = window // 2
    t = np.arange(window, dtype=np.float64)
    fit = np.linalg.pinv(np.vander(t, order + 1))  # (order + 1, window): polynomial coefficients from samples
    out = np.empty_like(x)
    flat = x.reshape(frames, -1)
    for i in range(frames):
        lo = min(max(i - half, 0), frames - window)
        coefficients = fit @ flat[lo:lo + window]
        out.reshape(frames, -1)[i] = np.vander(np.array([float(i - lo)]), order + 1) @ coefficients
    return out


def jitter(poses_mm: np.ndarray) -> float:
    """Mean frame-to-frame acceleration: the mean over frames and joints of |p[t+1] - 2 p[t] + p[t-1]| (mm)."""
    p = np.asarray(poses_mm, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    return float(np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean())


@dataclasses.dataclass
class Clip:
    """One clip's result (write_clip)."""
    source: str
    frame_indices: np.ndarray  # (F,) the input's frame numbers (a video's, or a folder's sorted position)
    fps: float  # the input's frames per second (a folder: the --fps given)
    frame_step: int
    image_size_wh: tuple
    boxes_xyxy: np.ndarray  # (F, 4)
    box_sources: list  # F strings
    pose3d_mm: np.ndarray  # (F, 17, 3) root-relative (AXES)
    joints2d_px: np.ndarray  # (F, 17, 2)
    joints: tuple
    parents: tuple
    variant: str
    weights_sha256: str
    smoothing: str = "none"

    def summary(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if not isinstance(v, np.ndarray)}


def write_clip(clip: Clip, stem: Path) -> tuple[Path, Path]:
    """`<stem>.pose3d.npz` (arrays, and the fields as a JSON string under "info") and `<stem>.pose3d.json` (the same,
    as lists), each written whole or not at all."""
    info = {**clip.summary(), "units": "mm (pose3d_mm), pixels (joints2d_px, boxes_xyxy)", "axes": AXES}
    arrays = {"pose3d_mm": clip.pose3d_mm.astype(np.float32), "joints2d_px": clip.joints2d_px.astype(np.float32),
              "boxes_xyxy": clip.boxes_xyxy.astype(np.float32), "frame_indices": clip.frame_indices.astype(np.int64),
              "parents": np.asarray(clip.parents, np.int64)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, info=np.array(json.dumps(info)), **arrays)
    npz = write_bytes_atomic(Path(f"{stem}.pose3d.npz"), buffer.getvalue())
    doc = {**info, **{k: np.round(v, 2).tolist() if v.dtype.kind == "f" else v.tolist() for k, v in arrays.items()}}
    return npz, write_text_atomic(Path(f"{stem}.pose3d.json"), json.dumps(doc))


def read_clip(path: Path) -> dict:
    """A `.pose3d.npz` back: its arrays and its info fields in one dict."""
    with np.load(path) as f:
        out = {k: f[k] for k in f.files if k != "info"}
        out.update(json.loads(str(f["info"])))
    return out
