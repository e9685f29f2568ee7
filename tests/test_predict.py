"""tools/predict.py: an image, a folder, a video; the detector's box or --bbox; the JSON and the figure."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO
from data_prep.errors import UserError


def test_predict_on_an_image_writes_json_and_png(trained, lmdb_root, synthetic_root, tmp_path):
    from tools import predict

    d, weights = trained
    out = lmdb_root
    cap = cv2.VideoCapture(str(synthetic_root / "S9/Videos/Walking.55011271.mp4"))
    ok, frame = cap.read()
    assert ok
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), frame)
    assert predict.main([str(image), "--bbox", "350", "250", "300", "500", "--weights", str(weights),
                         "--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"),
                         "--train-lmdb", str(out / "walking_train.lmdb")]) == 0
    doc = json.loads((tmp_path / "person.pose3d.json").read_text())
    pose = np.array(doc["pose3d_mm"])
    assert pose.shape == (17, 3) and np.isfinite(pose).all() and len(doc["joints"]) == 17
    assert doc["bbox_from"] == "--bbox" and doc["bbox_xyxy"] == [350, 250, 649, 749]
    assert np.array(doc["joints2d_px"]).shape == (17, 2)  # every variant has the 2D branch (only its use differs)
    assert cv2.imread(str(tmp_path / "person.pose3d.png")) is not None
    with pytest.raises(UserError, match="no such file"):
        predict.main(
            [str(tmp_path / "nope.png"), "--weights", str(weights), "--train-lmdb", str(out / "walking_train.lmdb")]
        )
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match="not a readable image or video"):
        predict.main(
            [str(tmp_path / "text.png"), "--weights", str(weights), "--train-lmdb", str(out / "walking_train.lmdb")]
        )


def test_predict_finds_the_person_and_reads_folders_and_videos(lmdb_root, synthetic_root, tmp_path, capsys):
    """The full model (2D branch, random weights): without --bbox the detector's box is used and the 2D joints
    come back in image pixels, on the centres of grid cells mapped through the crop; a folder is a clip (with
    --per-frame, one JSON per image too), a video a clip of its chosen frames."""
    import caffe

    from data_prep.crop import crop_transform, square_around_box
    from layers.targets import grid_centres
    from tools import predict

    out = lmdb_root
    net = caffe.Net(str(REPO / "prototxt/deploy_both.prototxt"), caffe.TEST)
    weights = tmp_path / "random.caffemodel"
    net.save(str(weights))
    common = ["--weights", str(weights), "--deploy", str(REPO / "prototxt/deploy_both.prototxt"),
              "--train-lmdb", str(out / "walking_train.lmdb")]
    video = synthetic_root / "S9/Videos/Walking.54138969.mp4"
    ok, frame = cv2.VideoCapture(str(video)).read()
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), frame)
    cv2.imwrite(str(folder / "b.jpg"), frame[:, ::-1])
    (folder / "notes.txt").write_text("not an image")
    (folder / "c.png").write_text("a damaged image")
    assert predict.main([str(folder), "--per-frame", *common]) == 0
    assert "skipped 1 unreadable image(s): c.png" in capsys.readouterr().out
    docs = {p.name: json.loads(p.read_text()) for p in sorted((tmp_path / "photos_pose3d").glob("*.json"))}
    assert sorted(docs) == ["a.pose3d.json", "b.pose3d.json", "photos.pose3d.json"]
    doc = docs["a.pose3d.json"]
    assert doc["bbox_from"] == "HOG people detector" and docs["photos.pose3d.json"]["frame_indices"] == [0, 1]
    joints = np.array(doc["joints2d_px"])
    assert joints.shape == (17, 2)
    # back into the 250 crop, then the 225 centre crop: every joint sits on a cell centre (cells 14 px wide;
    # the JSON rounds pixels and the box to 0.1)
    affine = crop_transform(*square_around_box(doc["bbox_xyxy"]))
    in_crop = joints @ affine[:, :2].T + affine[:, 2] - 12
    assert np.abs(in_crop[:, None, :] - grid_centres()[None]).sum(-1).min(-1).max() < 0.3
    assert predict.main([str(video), "--frame-step", "10", *common, "--out", str(tmp_path / "clip")]) == 0
    names = sorted(p.name for p in (tmp_path / "clip").iterdir())
    assert names == [f"Walking.54138969.{ext}" for ext in ("bvh", "pose3d.json", "pose3d.mp4", "pose3d.npz")]


def test_onnx_backend_gives_the_caffe_backends_json_where_caffe_cannot_be_imported(trained_variants, lmdb_root,
                                                                                     synthetic_root, tmp_path):
    """The same weights exported (the snapshot's own BatchNorm statistics, as predict's Caffe backend uses them):
    --backend onnx in a process where `import caffe` fails gives the Caffe backend's pose to 0.01 mm and the same
    2D joints, with no --train-lmdb (the model carries the statistics)."""
    import subprocess
    import sys

    from conftest import caffe_env
    from data_prep.records import read_meta
    from layers.onnx_export import export_onnx, load_export_source
    from tools import predict

    deploy, weights = trained_variants["both"]
    train = lmdb_root / "walking_train.lmdb"
    model = tmp_path / "both.onnx"
    export_onnx(load_export_source(deploy, weights), read_meta(train), model)
    ok, frame = cv2.VideoCapture(str(synthetic_root / "S9/Videos/Walking.55011271.mp4")).read()
    cv2.imwrite(str(tmp_path / "person.png"), frame)
    box = ["--bbox", "350", "250", "300", "500"]
    assert predict.main([str(tmp_path / "person.png"), *box, "--weights", str(weights), "--deploy", str(deploy),
                         "--train-lmdb", str(train), "--out", str(tmp_path / "caffe")]) == 0
    args = [
        str(tmp_path / "person.png"),
        *box,
        "--backend",
        "onnx",
        "--weights",
        str(model),
        "--out",
        str(tmp_path / "onnx"),
    ]
    no_caffe = ("import runpy, sys; sys.modules['caffe'] = None; sys.argv = ['predict.py'] + sys.argv[1:]; "
                f"runpy.run_path({str(REPO / 'tools/predict.py')!r}, run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", no_caffe, *args], capture_output=True, text=True, env=caffe_env())
    assert r.returncode == 0, r.stderr
    with_caffe, with_onnx = (json.loads((tmp_path / f"{name}.pose3d.json").read_text()) for name in ("caffe", "onnx"))
    assert with_caffe["backend"] == "caffe" and with_onnx["backend"] == "onnx" and with_onnx["variant"] == "both"
    assert (
        np.abs(np.array(with_caffe["pose3d_mm"]) - np.array(with_onnx["pose3d_mm"])).max() <= 0.01 + 0.005
    )  # 2 decimals
    assert with_caffe["joints2d_px"] == with_onnx["joints2d_px"]
    # the import really is refused there: a Caffe backend run in the same set-up fails on it
    r = subprocess.run([sys.executable, "-c", no_caffe, str(tmp_path / "person.png"), *box, "--weights", str(weights),
                        "--deploy", str(deploy), "--train-lmdb", str(train), "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, env=caffe_env())
    assert r.returncode != 0 and "caffe" in r.stderr


def test_a_clip_gives_one_file_a_video_and_a_bvh_with_boxes_from_a_file(trained_variants, lmdb_root, synthetic_root,
                                                                         tmp_path):
    """A synthetic video (24 frames), every 7th frame, boxes from a hand-written COCO file: the clip file holds what
    the per-frame files hold, frame 14 (no detection) takes frame 7's box, the best-scoring person counts; the mp4
    has one frame per prediction; the BVH has the clip's frames."""
    from data_prep.clip_video import HEIGHT
    from data_prep.clips import BOX_PREVIOUS, read_clip
    from data_prep.files import sha256_of
    from tools import predict

    deploy, weights = trained_variants["both"]
    video = synthetic_root / "S9/Videos/Walking.54138969.mp4"
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    boxes = [
        {"image_id": 0, "bbox": [300, 200, 350, 600], "score": 0.9},
        {"image_id": 0, "bbox": [0, 0, 50, 50], "score": 0.2},
        {"image_id": 7, "bbox": [310, 210, 340, 590], "score": 0.8},
        {"image_id": 21, "bbox": [320, 220, 330, 580], "score": 0.7},
    ]
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    assert predict.main([str(video), "--frame-step", "7", "--max-frames", "4", "--boxes", str(tmp_path / "boxes.json"),
                         "--per-frame", "--weights", str(weights), "--deploy", str(deploy),
                         "--train-lmdb", str(lmdb_root / "walking_train.lmdb"), "--out", str(tmp_path / "out")]) == 0
    clip = read_clip(tmp_path / "out/Walking.54138969.pose3d.npz")
    assert clip["frame_indices"].tolist() == [0, 7, 14, 21] and clip["fps"] == fps and clip["frame_step"] == 7
    assert clip["box_sources"] == ["--boxes", "--boxes", BOX_PREVIOUS, "--boxes"]
    assert clip["boxes_xyxy"].tolist() == [[300, 200, 649, 799], [310, 210, 649, 799], [310, 210, 649, 799],
                                           [320, 220, 649, 799]]
    assert clip["weights_sha256"] == sha256_of(weights) and clip["variant"] == "both" and clip["parents"][0] == -1
    for i, index in enumerate(clip["frame_indices"]):
        frame = json.loads((tmp_path / f"out/frame_{index:06d}.pose3d.json").read_text())
        root_relative = np.array(frame["pose3d_mm"]) - np.array(frame["pose3d_mm"])[:1]  # the frame's: joint mean at 0
        assert np.abs(root_relative - clip["pose3d_mm"][i]).max() <= 0.011 and not clip["pose3d_mm"][i, 0].any()
        assert np.abs(np.array(frame["joints2d_px"]) - clip["joints2d_px"][i]).max() <= 0.06
        assert frame["bbox_from"] == clip["box_sources"][i]
    cap = cv2.VideoCapture(str(tmp_path / "out/Walking.54138969.pose3d.mp4"))
    width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    frames = 0
    while cap.read()[0]:
        frames += 1
    first = cv2.VideoCapture(str(video)).read()[1]
    assert (
        frames == 4 and height == HEIGHT and width == 2 * round(first.shape[1] * HEIGHT / first.shape[0] / 2) + HEIGHT
    )
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(fps / 7, rel=1e-3)
    bvh = (tmp_path / "out/Walking.54138969.bvh").read_text()
    assert "Frames: 4" in bvh and f"Frame Time: {7 / fps:.6f}" in bvh


def test_a_frame_where_the_detector_finds_nobody_takes_the_previous_box(trained_variants, lmdb_root, synthetic_root,
                                                                        tmp_path):
    """Three frames of a synthetic video with the middle one blanked (nobody for HOG to find): it uses the first
    frame's box, and the clip file says so."""
    from data_prep.clips import BOX_PREVIOUS, read_clip
    from tools import predict

    deploy, weights = trained_variants["both"]
    cap = cv2.VideoCapture(str(synthetic_root / "S9/Videos/Walking.54138969.mp4"))
    frames = [cap.read()[1] for _ in range(3)]
    frames[1] = np.full_like(frames[1], 128)
    writer = cv2.VideoWriter(str(tmp_path / "gap.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25.0,
                             (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()
    assert predict.main([str(tmp_path / "gap.avi"), "--weights", str(weights), "--deploy", str(deploy),
                         "--train-lmdb", str(lmdb_root / "walking_train.lmdb"), "--out", str(tmp_path / "out")]) == 0
    clip = read_clip(tmp_path / "out/gap.pose3d.npz")
    assert clip["box_sources"][1] == BOX_PREVIOUS and clip["box_sources"][0] == "HOG people detector"
    assert clip["boxes_xyxy"][1].tolist() == clip["boxes_xyxy"][0].tolist()


def test_boxes_for_an_image_by_file_name(trained_variants, lmdb_root, synthetic_root, tmp_path):
    from tools import predict

    deploy, weights = trained_variants["both"]
    ok, frame = cv2.VideoCapture(str(synthetic_root / "S9/Videos/Walking.55011271.mp4")).read()
    cv2.imwrite(str(tmp_path / "person.png"), frame)
    (tmp_path / "boxes.json").write_text(
        json.dumps([{"file_name": "person.png", "bbox": [350, 250, 300, 500], "score": 1}])
    )
    assert (
        predict.main(
            [
                str(tmp_path / "person.png"),
                "--boxes",
                str(tmp_path / "boxes.json"),
                "--weights",
                str(weights),
                "--deploy",
                str(deploy),
                "--train-lmdb",
                str(lmdb_root / "walking_train.lmdb"),
            ]
        )
        == 0
    )
    doc = json.loads((tmp_path / "person.pose3d.json").read_text())
    assert doc["bbox_from"] == "--boxes" and doc["bbox_xyxy"] == [350, 250, 649, 749]
    (tmp_path / "boxes.json").write_text(json.dumps([{"file_name": "other.png", "bbox": [350, 250, 300, 500]}]))
    with pytest.raises(UserError, match="no person detection matches this input's frames"):
        predict.main([str(tmp_path / "person.png"), "--boxes", str(tmp_path / "boxes.json"), "--weights", str(weights),
                      "--deploy", str(deploy), "--train-lmdb", str(lmdb_root / "walking_train.lmdb")])


def test_an_empty_video_or_a_damaged_jpeg_is_only_our_one_line(lmdb_root, tmp_path):
    """FFmpeg and libjpeg print their own lines (`moov atom not found`, a decoder's complaint) when OpenCV opens a
    damaged file; the tool silences them for those reads, so stderr holds its one line and exit code 2."""
    good = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "damaged.jpg").write_bytes(good[:40] + bytes(range(256)) * 4)
    for name in ("empty.mp4", "damaged.jpg"):
        out = subprocess.run(
            [
                sys.executable,
                str(REPO / "tools" / "predict.py"),
                str(tmp_path / name),
                "--weights",
                "w",
                "--train-lmdb",
                str(lmdb_root / "walking_train.lmdb"),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert out.returncode == 2 and out.stderr.strip() == (
            f"predict.py: error: {tmp_path / name}: not a readable image or video"), out.stderr
