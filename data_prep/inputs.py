"""What tools/predict.py reads: an image, a folder of images (one clip) or a video (Inputs), and the person's box
in each frame (find_boxes: a given box, a COCO-style detections file, else OpenCV's HOG people detector)."""
from __future__ import annotations

from pathlib import Path

import cv2

from .clips import fill_missing_boxes, load_boxes
from .detect import detect_person
from .errors import UserError
from .files import native_stderr_silenced

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BOX_GIVEN, BOX_FILE, BOX_DETECTED = "--bbox", "--boxes", "HOG people detector"
BOX_WHOLE_IMAGE = "whole image (no person detected)"


class Inputs:
    """An image, a folder of images or a video: kind, and frames() -> (name, frame number, image) afresh each call
    (a clip is read once for the boxes, once for the poses and once for its video). Unreadable images of a folder
    are left out and named in `skipped`."""

    def __init__(self, path: Path, frame_step: int = 1, max_frames: int = 0, fps: float = 25.0):
        self.path, self.frame_step, self.max_frames, self.skipped = path, frame_step, max_frames, []
        if frame_step < 1:
            raise UserError(f"--frame-step must be at least 1, got {frame_step}")
        if path.is_dir():
            self.files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise UserError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            self.kind, self.fps, self.count = "folder", fps, len(self.files)
            return
        if not path.is_file():
            raise UserError(f"{path}: no such file or folder; pass an image, a folder of images or a video")
        with native_stderr_silenced():  # FFmpeg's and libjpeg's own lines for a damaged file: ours says it
            if path.suffix.lower() in IMAGE_SUFFIXES and cv2.imread(str(path), cv2.IMREAD_COLOR) is not None:
                self.kind, self.fps, self.count = "image", fps, 1
                return
            cap = cv2.VideoCapture(str(path))
            ok, _ = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise UserError(f"{path}: not a readable image or video")
        self.kind, self.fps = "video", float(cap.get(cv2.CAP_PROP_FPS) or fps)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        self.count = -(-total // frame_step) if total else 0
        if max_frames:
            self.count = min(self.count, max_frames) if self.count else max_frames

    def frames(self):
        if self.kind == "image":
            yield self.path.stem, 0, cv2.imread(str(self.path), cv2.IMREAD_COLOR)
            return
        if self.kind == "folder":
            for index, f in enumerate(self.files):
                with native_stderr_silenced():  # a damaged image is named among the skipped ones instead
                    image = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if image is None:
                    if f.name not in self.skipped:
                        self.skipped.append(f.name)
                    continue
                yield f.name, index, image
            return
        cap = cv2.VideoCapture(str(self.path))
        index = done = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % self.frame_step == 0:
                yield f"frame_{index:06d}", index, frame
                done += 1
                if self.max_frames and done >= self.max_frames:
                    break
            index += 1
        cap.release()


def given_box(image, bbox) -> tuple:
    x, y, w, h = bbox
    height, width = image.shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise UserError(f"--bbox {x:g} {y:g} {w:g} {h:g} lies outside the {width}x{height} image; give X Y W H in "
                        "the image's pixels (X, Y: the box's top left corner)")
    return (x, y, x + w - 1, y + h - 1)


def find_boxes(inputs: Inputs, bbox=None, boxes_file=None) -> tuple[list, list, list]:
    """Per frame (box, where it came from, the frame number): --bbox, else the --boxes file, else the HOG detector;
    then, in a
    clip, a frame without one takes the previous frame's (clips.fill_missing_boxes), and a clip or image
    where nobody is found at all uses the whole image."""
    listed = load_boxes(Path(boxes_file)) if boxes_file and not bbox else None
    boxes, sources, shapes, indices = [], [], [], []
    for name, index, image in inputs.frames():
        shapes.append(image.shape)
        indices.append(index)
        if bbox:
            boxes.append(given_box(image, bbox))
            sources.append(BOX_GIVEN)
        elif listed is not None:
            found = listed.get(index) or listed.get(inputs.path.name if inputs.kind == "image" else name)
            boxes.append(found[0] if found else None)
            sources.append(BOX_FILE)
        else:
            found = detect_person(image)
            boxes.append(found.box if found else None)
            sources.append(BOX_DETECTED)
    if listed is not None and not any(b is not None for b in boxes):
        raise UserError(f"--boxes {boxes_file}: no person detection matches this input's frames (image_id: the frame "
                        "number from 0; file_name: the image's file name)")
    boxes, sources = fill_missing_boxes(boxes, sources)
    for i, shape in enumerate(shapes):
        if boxes[i] is None:
            boxes[i], sources[i] = (0, 0, shape[1] - 1, shape[0] - 1), BOX_WHOLE_IMAGE
    return boxes, sources, indices
