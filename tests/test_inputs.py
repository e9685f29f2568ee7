"""data_prep/inputs.py: an image, a folder of frames and a video read as predict.py's input, and the person's box
in each frame from --bbox or a detections file (the previous frame's where a frame has none)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from data_prep.clips import BOX_PREVIOUS
from data_prep.errors import UserError
from data_prep.inputs import BOX_FILE, BOX_GIVEN, BOX_WHOLE_IMAGE, Inputs, find_boxes


def frames_folder(tmp_path, n=3):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((40, 60, 3), 50 * i, np.uint8))
    return folder


def test_a_folder_is_one_clip_in_name_order_and_damaged_images_are_named(tmp_path):
    folder = frames_folder(tmp_path)
    (folder / "f9.png").write_text("a damaged image")
    (folder / "notes.txt").write_text("not an image")
    inputs = Inputs(folder, fps=50.0)
    assert (inputs.kind, inputs.count, inputs.fps) == ("folder", 4, 50.0)
    frames = list(inputs.frames())
    assert [(name, index) for name, index, _ in frames] == [("f0.png", 0), ("f1.png", 1), ("f2.png", 2)]
    assert frames[2][2][0, 0, 0] == 100 and inputs.skipped == ["f9.png"]


def test_a_video_gives_every_nth_frame_up_to_the_limit(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    inputs = Inputs(path, frame_step=3, max_frames=3)
    assert inputs.kind == "video" and inputs.fps == 25.0 and inputs.count == 3
    assert [index for _, index, _ in inputs.frames()] == [0, 3, 6]


def test_what_cannot_be_read_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        Inputs(tmp_path / "nope.mp4")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(UserError, match="not a readable image or video"):
        Inputs(tmp_path / "text.jpg")
    with pytest.raises(UserError, match="--frame-step must be at least 1"):
        Inputs(frames_folder(tmp_path), frame_step=0)


def test_boxes_from_bbox_and_from_a_detections_file(tmp_path):
    inputs = Inputs(frames_folder(tmp_path))
    boxes, sources, indices = find_boxes(inputs, bbox=(10, 5, 20, 30))
    assert boxes == [(10, 5, 29, 34)] * 3 and sources == [BOX_GIVEN] * 3 and indices == [0, 1, 2]
    with pytest.raises(UserError, match="lies outside the 60x40 image"):
        find_boxes(inputs, bbox=(70, 5, 20, 30))
    detections = tmp_path / "boxes.json"
    detections.write_text(json.dumps([{"image_id": 0, "bbox": [1, 2, 10, 20], "score": 0.9},
                                      {"image_id": 2, "bbox": [3, 4, 10, 20], "score": 0.8}]))
    boxes, sources, _ = find_boxes(inputs, boxes_file=detections)
    assert boxes == [(1, 2, 10, 21), (1, 2, 10, 21), (3, 4, 12, 23)]
    assert sources == [BOX_FILE, BOX_PREVIOUS, BOX_FILE]
    detections.write_text(json.dumps([{"image_id": 7, "bbox": [1, 2, 10, 20]}]))
    with pytest.raises(UserError, match="no person detection matches"):
        find_boxes(inputs, boxes_file=detections)


def test_a_frame_where_the_detector_finds_nobody_uses_the_whole_image(tmp_path):
    inputs = Inputs(frames_folder(tmp_path, n=1))  # a flat grey frame: nobody there
    boxes, sources, _ = find_boxes(inputs)
    assert boxes == [(0, 0, 59, 39)] and sources == [BOX_WHOLE_IMAGE]
