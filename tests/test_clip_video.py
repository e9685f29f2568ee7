"""data_prep/clip_video.py: the skeleton panel's axes are fixed over a clip (the same pose lands on the same pixels
in any frame, the clip's widest pose inside the panel), and a video is complete or absent."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from data_prep.clip_video import HEIGHT, ClipVideo, SkeletonView


def test_fixed_axes_and_a_complete_or_absent_video(tmp_path):
    rng = np.random.default_rng(0)
    poses = rng.normal(0, 300, (5, 17, 3))
    view = SkeletonView(poses)
    assert np.array_equal(view.pixels(poses[2]), SkeletonView(poses).pixels(poses[2]))
    corners = np.concatenate([view.pixels(p) for p in poses])
    assert corners.min() >= 0.04 * HEIGHT and corners.max() <= 0.96 * HEIGHT  # the widest pose fits, with a margin
    image = np.zeros((240, 320, 3), np.uint8)
    video = ClipVideo(tmp_path / "c.mp4", 10.0, view, 640)
    for p in poses:
        video.add(image, (10, 10, 100, 200), rng.uniform(0, 200, (17, 2)), p)
    assert not (tmp_path / "c.mp4").exists()  # only its temporary file until closed
    video.close()
    cap = cv2.VideoCapture(str(tmp_path / "c.mp4"))
    assert cap.get(cv2.CAP_PROP_FRAME_COUNT) == 5 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 640 + HEIGHT
    broken = ClipVideo(tmp_path / "d.mp4", 10.0, view, 640)
    with pytest.raises(ValueError, match="frames of one clip must have one size"):
        broken.add(np.zeros((100, 100, 3), np.uint8), (0, 0, 9, 9), np.zeros((17, 2)), poses[0])
    broken.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.mp4"]


def test_a_video_cut_short_by_a_full_disk_is_one_error_and_nothing_is_left(tmp_path):
    """OpenCV's writer drops the frames that do not fit on the disk without a word; close() reads the file back,
    and a video short of frames is a DiskFullError naming it, with nothing of it left (not a short mp4)."""
    from conftest import small_disk_at
    from data_prep.errors import DiskFullError

    rng = np.random.default_rng(0)
    poses = rng.normal(0, 300, (40, 17, 3))
    view = SkeletonView(poses)
    with small_disk_at(tmp_path / "disk", 512 * 1024) as disk:
        video = ClipVideo(disk / "c.mp4", 10.0, view, 640)
        for p in poses:  # noise frames: about 200 KB each in mp4v, so 40 of them cannot fit in 512 KB
            video.add(
                rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), (10, 10, 100, 200), rng.uniform(0, 200, (17, 2)), p
            )
        with pytest.raises(
            DiskFullError, match=r"c\.mp4: the disk is full .*c\.mp4 was not written and nothing of it is left"
        ):
            video.close()
        assert list(disk.iterdir()) == []
