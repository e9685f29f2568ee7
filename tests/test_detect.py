"""The person detector (data_prep/detect.py) on synthetic frames."""
from __future__ import annotations

import cv2
import numpy as np


def box_coverage(box, person) -> float:
    """The share of the person's box (inclusive x0, y0, x1, y1) that `box` covers."""
    ix = max(0.0, min(box[2], person[2]) - max(box[0], person[0]) + 1)
    iy = max(0.0, min(box[3], person[3]) - max(box[1], person[1]) + 1)
    return ix * iy / ((person[2] - person[0] + 1) * (person[3] - person[1] + 1))


def test_the_people_detector_finds_the_person_in_a_synthetic_frame(synthetic_root):
    """Against the mask's box of the same frame (the layout's ground truth): the detected box covers at least
    80 % of it and has the person's height within 20 %; a frame with nobody in it gives no detection."""
    from data_prep.detect import detect_person
    from data_prep.h36m import read_bboxes

    for camera in ("54138969", "55011271"):
        ok, frame = cv2.VideoCapture(str(synthetic_root / f"S9/Videos/Walking.{camera}.mp4")).read()
        person = read_bboxes(synthetic_root / f"S9/MySegmentsMat/ground_truth_bb/Walking.{camera}.mat", [0])[0]
        found = detect_person(frame)
        assert found is not None and found.score > 0, camera
        assert box_coverage(found.box, person) > 0.8, (camera, found.box, person)
        height = (found.box[3] - found.box[1]) / (person[3] - person[1])
        assert 0.8 < height < 1.2, (camera, found.box, person)
    assert detect_person(np.full((600, 600, 3), 128, np.uint8)) is None


def test_box_iou_by_hand():
    from data_prep.detect import box_iou

    assert box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    assert box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == 50 / 150  # half overlaps: 50 px of 100 + 100 - 50
    assert box_iou((0, 0, 9, 9), (10, 10, 19, 19)) == 0.0


def test_the_haar_cascade_finds_nobody_in_a_blank_image():
    import numpy as np

    from data_prep.detect import detect_person_haar

    assert detect_person_haar(np.full((480, 640, 3), 128, np.uint8)) is None
