"""data_prep/clips.py: COCO-style boxes, the previous-box rule, smoothing and jitter on hand-worked cases, the
clip file's round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.clips import (
    BOX_NEXT,
    BOX_PREVIOUS,
    Clip,
    fill_missing_boxes,
    jitter,
    load_boxes,
    read_clip,
    savitzky_golay,
    write_clip,
)
from data_prep.errors import UserError


def test_boxes_best_person_per_frame_and_clear_errors(tmp_path):
    f = tmp_path / "dets.json"
    f.write_text(json.dumps([{"image_id": 0, "bbox": [10, 20, 100, 200], "score": 0.5},
                             {"image_id": 0, "bbox": [30, 40, 50, 60], "score": 0.9},
                             {"image_id": 0, "bbox": [0, 0, 500, 500], "score": 0.99, "category_id": 3},  # a car
                             {"file_name": "b.png", "bbox": [1, 2, 3, 4], "score": 0.1}]))
    boxes = load_boxes(f)
    assert boxes[0] == ((30.0, 40.0, 79.0, 99.0), 0.9) and boxes["b.png"] == ((1.0, 2.0, 3.0, 5.0), 0.1)
    f.write_text(json.dumps({"annotations": [{"image_id": 4, "bbox": [0, 0, 10, 10]}]}))
    assert load_boxes(f) == {4: ((0.0, 0.0, 9.0, 9.0), 1.0)}
    for text, says in (("[{\"image_id\": 1}]", "detection 0 is not"), ("{nope", "not JSON"),
                       ("[{\"image_id\": 1, \"bbox\": [0, 0, 0, 5]}]", "empty bbox"), ("{}", "expected a list")):
        f.write_text(text)
        with pytest.raises(UserError, match=says):
            load_boxes(f)


def test_a_frame_without_a_box_takes_the_previous_one_and_leading_frames_the_first():
    boxes, sources = fill_missing_boxes([None, (1, 1, 5, 5), None, None, (2, 2, 6, 6), None], ["d"] * 6)
    assert boxes == [(1, 1, 5, 5), (1, 1, 5, 5), (1, 1, 5, 5), (1, 1, 5, 5), (2, 2, 6, 6), (2, 2, 6, 6)]
    assert sources == [BOX_NEXT, "d", BOX_PREVIOUS, BOX_PREVIOUS, "d", BOX_PREVIOUS]
    assert fill_missing_boxes([None, None], ["d", "d"]) == ([None, None], ["d", "d"])


def test_savitzky_golay_keeps_quadratics_and_lowers_the_jitter_of_noise():
    t = np.arange(20, dtype=np.float64)
    quadratic = (0.5 * t ** 2 - 3 * t + 7)[:, None, None] * np.ones((1, 17, 3))
    assert np.allclose(savitzky_golay(quadratic, 7), quadratic)  # order 2 reproduces a parabola, ends included
    # a straight walk has no acceleration; a zig-zag of +-1 mm has |(+1) - 2(-1) + (+1)| = 4 mm at every frame
    line = t[:, None, None] * np.ones((1, 17, 3))
    zigzag = line + np.where(t % 2 == 0, 1.0, -1.0)[:, None, None] * np.array([1.0, 0, 0])
    assert jitter(line) == pytest.approx(0.0) and jitter(zigzag) == pytest.approx(4.0)
    assert jitter(savitzky_golay(zigzag, 5)) < 0.5 * jitter(zigzag)
    with pytest.raises(ValueError, match="odd"):
        savitzky_golay(line, 4)


def test_clip_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    clip = Clip("v.mp4", np.array([0, 5]), 50.0, 5, (640, 480), rng.normal(size=(2, 4)), ["--boxes", BOX_PREVIOUS],
                rng.normal(size=(2, 17, 3)), rng.normal(size=(2, 17, 2)), tuple("J" * 17), tuple(range(17)), "both",
                "ab" * 32)
    npz, twin = write_clip(clip, tmp_path / "v")
    back = read_clip(npz)
    assert np.allclose(back["pose3d_mm"], clip.pose3d_mm, atol=1e-6) and back["frame_indices"].tolist() == [0, 5]
    assert back["box_sources"] == ["--boxes", BOX_PREVIOUS] and back["fps"] == 50.0 and back["variant"] == "both"
    doc = json.loads(twin.read_text())
    assert np.allclose(doc["pose3d_mm"], clip.pose3d_mm, atol=0.006) and "camera axes" in doc["axes"]
    assert not list(tmp_path.glob("*.tmp"))
