"""A clip's rendered video (`<name>.pose3d.mp4`, OpenCV's VideoWriter): each frame with the person's box and the
2D joints, beside the 3D skeleton seen from 30 degrees to the side, drawn with axes fixed over the whole clip so
the motion reads (left side red, right side blue, as in the figures)."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import UserError
from .files import no_room, temporary_name
from .skeleton import BONES, LEFT_JOINTS, RIGHT_JOINTS

FULL_BELOW = 4 * 2 ** 20  # a video that lost frames with less free space than this was cut short by a full disk
HEIGHT = 480  # the video's height; the frame is scaled to it, the skeleton panel is HEIGHT x HEIGHT
VIEW_AZIMUTH_DEG = 30.0
COLOURS_BGR = {"left": (40, 40, 220), "right": (220, 90, 30), "centre": (30, 30, 30)}


def _colour(child: int):
    return COLOURS_BGR["left" if child in LEFT_JOINTS else "right" if child in RIGHT_JOINTS else "centre"]


class SkeletonView:
    """The 3D panel's projection, fixed for a clip: a turn about the vertical axis, then x and y to pixels at the
    scale that fits the clip's largest extent."""

    def __init__(self, poses_mm: np.ndarray, size: int = HEIGHT):
        a = np.radians(VIEW_AZIMUTH_DEG)
        self.turn = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        turned = np.asarray(poses_mm, dtype=np.float64) @ self.turn.T
        extent = max(float(np.abs(turned[..., :2]).max()), 1.0)
        self.size, self.scale = size, 0.45 * size / extent

    def pixels(self, pose_mm: np.ndarray) -> np.ndarray:
        xy = (np.asarray(pose_mm, dtype=np.float64) @ self.turn.T)[:, :2]  # camera y points down, as pixels do
        return xy * self.scale + self.size / 2

    def draw(self, pose_mm: np.ndarray) -> np.ndarray:
        import cv2  # lazy: OpenCV only where images are read

        panel = np.full((self.size, self.size, 3), 255, np.uint8)
        c = self.size // 2
        cv2.line(panel, (c, 10), (c, self.size - 10), (220, 220, 220), 1)  # the clip's fixed axes
        cv2.line(panel, (10, c), (self.size - 10, c), (220, 220, 220), 1)
        p = self.pixels(pose_mm)
        for parent, child in BONES:
            cv2.line(panel, tuple(int(v) for v in p[parent]), tuple(int(v) for v in p[child]), _colour(child), 3,
                     cv2.LINE_AA)
        return panel


def frame_panel(image_bgr: np.ndarray, box, joints2d_px) -> np.ndarray:
    """The input frame scaled to HEIGHT (its width to an even number of pixels, as video codecs want) with the box
    (green) and the 2D joints and bones drawn on it."""
    import cv2  # lazy: OpenCV only where images are read

    s = HEIGHT / image_bgr.shape[0]
    out = cv2.resize(image_bgr, (max(2, 2 * round(image_bgr.shape[1] * s / 2)), HEIGHT))
    x0, y0, x1, y1 = (int(round(v * s)) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), (60, 200, 60), 2)
    j = np.asarray(joints2d_px) * s
    for parent, child in BONES:
        cv2.line(out, tuple(int(v) for v in j[parent]), tuple(int(v) for v in j[child]), _colour(child), 2, cv2.LINE_AA)
    for point in j:
        cv2.circle(out, tuple(int(v) for v in point), 3, (0, 200, 255), -1)
    return out


class ClipVideo:
    """Frames appended one by one to a temporary name beside `path` (data_prep.files.temporary_name), renamed to
    `path` on close once the file is read back with every frame (OpenCV's writer drops what does not fit on the
    disk without a word): never a half-written video. `fps`: the clip's fps divided by its frame step."""

    def __init__(self, path: Path, fps: float, view: SkeletonView, frame_width: int):
        import cv2  # lazy: OpenCV only where images are read

        self.path, self.view = Path(path), view
        self.tmp = temporary_name(self.path, ".mp4")
        self.size = (frame_width + view.size, HEIGHT)
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), self.size)
        if not self.writer.isOpened():
            raise OSError(f"{self.tmp}: OpenCV cannot write an mp4 video here")
        self.frames = 0

    def add(self, image_bgr, box, joints2d_px, pose_mm) -> None:
        left = frame_panel(image_bgr, box, joints2d_px)
        frame = np.concatenate([left, self.view.draw(pose_mm)], axis=1)
        if frame.shape[1] != self.size[0]:
            raise ValueError(f"frame {self.frames}: {frame.shape[1]} px wide, the video {self.size[0]}: frames of one "
                             "clip must have one size")
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> Path:
        import cv2  # lazy: OpenCV only where images are read

        self.writer.release()
        stored = cv2.VideoCapture(str(self.tmp))
        count = int(stored.get(cv2.CAP_PROP_FRAME_COUNT)) if stored.isOpened() else 0
        stored.release()
        if count != self.frames:
            free = shutil.disk_usage(self.tmp.parent).free
            self.tmp.unlink(missing_ok=True)
            if free < FULL_BELOW:
                raise no_room(self.path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
            raise UserError(f"{self.path}: OpenCV's writer stored {count} of the {self.frames} frames, and nothing of "
                            "the video is left; check the disk and write it again")
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)
