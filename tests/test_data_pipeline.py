"""The synthetic Human3.6M layout -> real reader -> LMDB -> read back, and bad input."""
from __future__ import annotations

import json
import shutil

import lmdb
import numpy as np
import pytest

from data_prep.cameras import CAMERA_MODELS, project
from data_prep.crop import apply_affine, crop_transform, square_around_box
from data_prep.h36m import SequenceError, discover, read_bboxes, read_pose_cdf, write_pose_cdf
from data_prep.lmdb_build import build_lmdbs
from data_prep.poses import normalise_poses
from data_prep.records import decode_record, read_meta
from data_prep.skeleton import CAMERAS, H36M_TO_17, SUBJECTS, action_of_file_stem
from data_prep.synthetic import GeneratorConfig, generate


def read_all(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        out = [(k.decode(), decode_record(v)) for k, v in txn.cursor()]
    env.close()
    return out


def test_layout_has_the_release_file_kinds_and_names(synthetic_root):
    s1 = synthetic_root / "S1"
    for cam in CAMERAS:
        for rel in (
            f"MyPoseFeatures/D3_Positions_mono/Walking.{cam}.cdf",
            f"MyPoseFeatures/D2_Positions/Walking.{cam}.cdf",
            f"Videos/Walking.{cam}.mp4",
            f"MySegmentsMat/ground_truth_bb/Walking.{cam}.mat",
        ):
            assert (s1 / rel).is_file(), rel
    assert read_pose_cdf(s1 / f"MyPoseFeatures/D3_Positions_mono/Walking.{CAMERAS[0]}.cdf", 96).shape == (24, 96)
    assert open(s1 / f"MySegmentsMat/ground_truth_bb/Walking.{CAMERAS[0]}.mat", "rb").read(19) == b"MATLAB 7.3 MAT-file"
    assert len(discover(synthetic_root, SUBJECTS).sequences) == 7 * 4


def test_action_names_map_to_the_papers_actions():
    assert action_of_file_stem("TakingPhoto 1") == "Photo"
    assert action_of_file_stem("WalkingDog") == "WalkDog"
    assert action_of_file_stem("Sitting 2") == "Sitting"
    assert action_of_file_stem("SittingDown") == "SittingDown"
    assert action_of_file_stem("WalkTogether 1") == "WalkTogether"
    assert action_of_file_stem("_ALL") is None and action_of_file_stem("Dancing") is None


def test_d2_positions_match_projection_of_the_mono_pose(synthetic_root):
    for cam in CAMERAS:
        d3 = read_pose_cdf(synthetic_root / f"S9/MyPoseFeatures/D3_Positions_mono/Walking.{cam}.cdf", 96).reshape(
            -1, 32, 3
        )
        d2 = read_pose_cdf(synthetic_root / f"S9/MyPoseFeatures/D2_Positions/Walking.{cam}.cdf", 64).reshape(-1, 32, 2)
        assert np.abs(project(d3, CAMERA_MODELS[cam]) - d2).max() < 0.05  # float32 storage


def test_roundtrip_labels_poses_and_counts(lmdb_root, lmdb_summary, synthetic_root):
    out, summary = lmdb_root, lmdb_summary
    assert not summary.skipped
    for split, subjects in (("train", {"S1", "S5", "S6", "S7", "S8"}), ("test", {"S9", "S11"})):
        path = out / f"walking_{split}.lmdb"
        meta = read_meta(path)
        records = read_all(path)
        assert len(records) == meta["count"] == summary.outputs[str(path)]
        assert {k.split("/")[0] for k, _ in records} == subjects
        assert [k for k, _ in records] == sorted(k for k, _ in records)
        for key, r in records[::7]:
            subject, action, cam, frame = key.split("/")
            assert r["image"].shape == (3, 250, 250)
            # 2D labels agree with projecting the stored mm pose, moved into the crop, within 0.5 px
            boxes = read_bboxes(
                synthetic_root / subject / "MySegmentsMat/ground_truth_bb" / f"{action}.{cam}.mat", [int(frame)]
            )
            affine = crop_transform(*square_around_box(boxes[0]))
            expect = apply_affine(project(r["pose3d_mm"].astype(np.float64), CAMERA_MODELS[cam]), affine)
            assert np.abs(expect - r["joints2d"]).max() < 0.5
            assert (r["joints2d"] >= 0).all() and (r["joints2d"] <= 249).all()
            # normalised: zero mean, unit Frobenius norm; mm pose = normalised * scale + mean
            assert np.allclose(r["pose3d"].mean(0), 0, atol=1e-5)
            assert np.linalg.norm(r["pose3d"]) == pytest.approx(1, abs=1e-5)
            assert np.allclose(r["pose3d"] * r["scale_mm"] + r["mean_mm"], r["pose3d_mm"], atol=0.05)
    assert summary.frames == sum(summary.outputs.values())
    meta = read_meta(out / "walking_train.lmdb")
    assert len(meta["mean_torso_lengths_mm"]) == 6 and len(meta["pca_eigval_rgb"]) == 3
    assert np.allclose(np.array(meta["pca_eigvec_rgb"]).T @ np.array(meta["pca_eigvec_rgb"]), np.eye(3), atol=1e-6)


@pytest.fixture()
def small_copy(synthetic_root, tmp_path):
    """Two subjects of the generated layout (one train, one test), copied so a test may damage it."""
    root = tmp_path / "h36m"
    for s in ("S1", "S9"):
        shutil.copytree(synthetic_root / s, root / s)
    return root


def build(root, out, **kw):
    return build_lmdbs(root, out, actions=("Walking",), step=4, workers=1, progress=False,
                       train_subjects=("S1",), test_subjects=("S9",), **kw)


def test_missing_file_is_a_counted_skip(small_copy, tmp_path):
    (small_copy / f"S1/Videos/Walking.{CAMERAS[1]}.mp4").unlink()
    summary = build(small_copy, tmp_path / "out")  # no warning: the summary names it once
    assert len(summary.skipped) == 1 and "Walking.55011271.mp4" in summary.skipped[0]
    assert "missing video" in summary.skipped[0]
    assert summary.sequences == 7


def test_cut_video_is_a_counted_skip_and_a_short_one_uses_the_common_prefix(small_copy, tmp_path):
    from data_prep.h36m import VideoFrames, write_video

    cut = small_copy / f"S9/Videos/Walking.{CAMERAS[0]}.mp4"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # index lost: undecodable
    short = small_copy / f"S9/Videos/Walking.{CAMERAS[1]}.mp4"
    write_video(short, list(VideoFrames(short))[:10])  # 10 of 24 frames
    summary = build(small_copy, tmp_path / "out")
    messages = summary.skipped + summary.drops
    assert any("corrupt" in m for m in messages) and any("3 of 6 frames dropped" in m for m in messages), messages
    assert summary.drops == [f"S9/Walking/{CAMERAS[1]}: 3 of 6 frames dropped (video shorter than the poses 3)"]
    assert len(summary.skipped) == 1 and "Walking.54138969.mp4" in summary.skipped[0]
    assert any("Walking.55011271.mp4: 10 video frames for 24 poses" in n for n in summary.notes), summary.notes
    keys = [k for k, _ in read_all(tmp_path / "out" / "walking_test.lmdb") if "55011271" in k]
    assert [int(k.rsplit("/", 1)[1]) for k in keys] == [0, 4, 8]  # step 4 within the first 10 frames


def test_wrong_cdf_width_nan_pose_are_clear_errors(small_copy, tmp_path):
    bad = small_copy / f"S1/MyPoseFeatures/D3_Positions_mono/Walking.{CAMERAS[2]}.cdf"
    write_pose_cdf(bad, np.zeros((24, 90)))
    with pytest.raises(SequenceError, match="expected 96 values per frame"):
        read_pose_cdf(bad, 96)
    nan = small_copy / f"S1/MyPoseFeatures/D3_Positions_mono/Walking.{CAMERAS[3]}.cdf"
    pose = read_pose_cdf(nan, 96)
    pose[5, 7] = np.nan
    write_pose_cdf(nan, pose)
    summary = build(small_copy, tmp_path / "out")
    assert any("expected 96 values" in s for s in summary.skipped)
    assert any("NaN" in s and "frames [5]" in s for s in summary.skipped)


def test_unknown_action_name_is_reported_not_matched(small_copy, tmp_path):
    src = small_copy / f"S1/MyPoseFeatures/D3_Positions_mono/Walking.{CAMERAS[0]}.cdf"
    shutil.copy(src, src.with_name(f"Dancing.{CAMERAS[0]}.cdf"))
    summary = build(small_copy, tmp_path / "out")
    assert any("Dancing.54138969.cdf" in u for u in summary.unmatched)
    with pytest.raises(ValueError, match="unknown action"):
        build_lmdbs(small_copy, tmp_path / "out2", actions=("Dancing",), progress=False)


def test_no_partial_lmdb_is_left_behind(small_copy, tmp_path):
    for cam in CAMERAS:  # every test sequence unusable: the test LMDB cannot be built
        (small_copy / f"S9/Videos/Walking.{cam}.mp4").unlink()
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="every test sequence of Walking was skipped"):
        build(small_copy, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["walking_train.lmdb"], names  # complete train LMDB, no test LMDB, no .partial
    assert read_meta(out / "walking_train.lmdb")["count"] > 0


def test_a_failed_action_leaves_only_the_complete_lmdbs(small_copy, tmp_path):
    generate(GeneratorConfig(small_copy, subjects=("S1", "S9"), actions=("Eating",), frames=8, seed=5),
             progress=False)
    for cam in CAMERAS:  # Eating's test sequences unusable: no Eating test LMDB, complete or partial
        (small_copy / f"S9/Videos/Eating.{cam}.mp4").unlink()
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="every test sequence of Eating was skipped"):
        build_lmdbs(small_copy, out, actions=("Walking", "Eating"), step=4, workers=2, progress=False,
                    train_subjects=("S1",), test_subjects=("S9",))
    assert sorted(p.name for p in out.iterdir()) == ["eating_train.lmdb", "walking_test.lmdb", "walking_train.lmdb"]


def test_records_stream_in_bounded_chunks_and_workers_change_nothing(small_copy, tmp_path):
    """The same LMDBs, byte for byte, from one process and from two workers streaming chunks; no chunk
    holds more than CHUNK_RECORDS records (what bounds the memory at frame step 1)."""
    import data_prep.lmdb_build as lb

    seq = discover(small_copy, ("S1",), ("Walking",)).sequences[0]
    chunks = []
    result = lb.process_sequence(seq, chunks.append, step=1)
    assert [len(c) for c in chunks] == [lb.CHUNK_RECORDS] * (24 // lb.CHUNK_RECORDS) + [24 % lb.CHUNK_RECORDS] != []
    assert result.frames_used == 24 and result.frames_wanted == 24

    def dump(path):
        env = lmdb.open(str(path), readonly=True, lock=False)
        with env.begin() as txn:
            items = list(txn.cursor())
        env.close()
        return items

    for workers in (1, 2):
        build_lmdbs(small_copy, tmp_path / f"w{workers}", actions=("Walking",), step=1, workers=workers, progress=False,
                    train_subjects=("S1",), test_subjects=("S9",))
    for split in ("train", "test"):
        one, two = (tmp_path / f"w{w}" / f"walking_{split}.lmdb" for w in (1, 2))
        assert dump(one) == dump(two) and len(dump(one)) == 4 * 24
        assert read_meta(one) == read_meta(two)


def test_jpeg_and_raw_records_hold_the_same_crop_and_labels(small_copy, tmp_path):
    """JPEG quality 95 (Datum.encoded set, as Caffe's convert_imageset --encoded) against raw bytes: the same
    labels exactly, the same image within a few grey levels, several times fewer bytes; an LMDB written
    before the encoding was recorded (no "encoding" in meta.json) still reads."""
    from caffe.proto import caffe_pb2

    from data_prep.batches import BatchSource

    for encoding in ("raw", "jpeg"):
        build(small_copy, tmp_path / encoding, encoding=encoding)
        assert read_meta(tmp_path / encoding / "walking_train.lmdb")["encoding"] == encoding
    raw, jpeg = (read_all(tmp_path / e / "walking_train.lmdb") for e in ("raw", "jpeg"))
    assert [k for k, _ in raw] == [k for k, _ in jpeg]
    for (_, r), (_, j) in zip(raw, jpeg):
        for field in ("joints2d", "pose3d", "pose3d_mm", "mean_mm", "scale_mm", "frame"):
            assert np.array_equal(r[field], j[field])
        assert j["image"].shape == r["image"].shape == (3, 250, 250)
        assert np.abs(j["image"].astype(int) - r["image"]).mean() < 4
    env = lmdb.open(str(tmp_path / "jpeg" / "walking_train.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        key, value = next(iter(txn.cursor()))
    env.close()
    datum = caffe_pb2.Datum()
    datum.ParseFromString(value)
    assert datum.encoded and datum.data[:2] == b"\xff\xd8"  # a JPEG file's start-of-image marker
    sizes = {
        e: sum(f.stat().st_size for f in (tmp_path / e / "walking_train.lmdb").glob("data.mdb"))
        for e in ("raw", "jpeg")
    }
    assert sizes["raw"] > 3 * sizes["jpeg"], sizes
    old = tmp_path / "raw" / "walking_train.lmdb" / "meta.json"
    meta = json.loads(old.read_text())
    del meta["encoding"], meta["train_count"]
    old.write_text(json.dumps(meta))
    for encoding in ("raw", "jpeg"):
        source = BatchSource(str(tmp_path / encoding / "walking_train.lmdb"), 8, 225, False, 0, 0.0)
        image, joints, pose = (
            np.zeros((8, 3, 225, 225), np.float32),
            np.zeros((8, 17, 2), np.float32),
            np.zeros((8, 17, 3), np.float32),
        )
        source.fill(0, image, joints, pose)
        assert np.array_equal(pose[0], raw[0][1]["pose3d"])


def test_generator_is_deterministic(tmp_path):
    cfg = dict(subjects=("S5",), actions=("Sitting",), cameras=(CAMERAS[2],), frames=5, seed=11)
    generate(GeneratorConfig(tmp_path / "a", **cfg), progress=False)
    generate(GeneratorConfig(tmp_path / "b", **cfg), progress=False)
    rel = f"S5/MyPoseFeatures/D3_Positions_mono/Sitting.{CAMERAS[2]}.cdf"
    assert np.array_equal(read_pose_cdf(tmp_path / "a" / rel, 96), read_pose_cdf(tmp_path / "b" / rel, 96))
    pose = read_pose_cdf(tmp_path / "a" / rel, 96).reshape(-1, 32, 3)[:, H36M_TO_17]
    assert (pose[..., 2] > 1000).all()  # in front of the camera, metres away
    normalise_poses(pose)


# The release metadata's camera parameters as every public copy lists them (VideoPose3D's
# h36m_cameras_intrinsic_params, whose tangential pair is the metadata's reversed): id -> (focal, center,
# radial, tangential as listed there).
PUBLISHED_CAMERAS = {
    "54138969": ((1145.0494384765625, 1143.7811279296875), (512.54150390625, 515.4514770507812),
                 (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
                 (-0.0009756988729350269, -0.00142447161488235)),
    "55011271": ((1149.6756591796875, 1147.5916748046875), (508.8486328125, 508.0649108886719),
                 (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
                 (-0.0016190266469493508, -0.0027408944442868233)),
    "58860488": ((1149.1407470703125, 1148.7989501953125), (519.8158569335938, 501.40264892578125),
                 (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
                 (0.0014843869721516967, -0.0007599993259645998)),
    "60457274": ((1145.5113525390625, 1144.77392578125), (514.9682006835938, 501.88201904296875),
                 (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
                 (-0.0005872055771760643, -0.0018133620033040643)),
}


def test_camera_parameters_are_the_published_ones():
    from data_prep.cameras import CAMERA_MODELS

    assert set(CAMERA_MODELS) == set(PUBLISHED_CAMERAS)
    for cam_id, (focal, center, radial, tangential) in PUBLISHED_CAMERAS.items():
        cam = CAMERA_MODELS[cam_id]
        assert cam.focal_length == focal and cam.center == center and cam.radial == radial, cam_id
        assert cam.tangential == tangential[::-1], cam_id  # metadata order


def test_frames_without_a_person_box_are_counted_and_named(small_copy, tmp_path):
    """A mask file shorter than the poses, and one empty mask: every lost frame is counted per sequence, and a
    sequence losing more than 5 % is flagged (loud_drops; make_lmdb prints it as a WARNING). Step 4 over 24 poses
    wants frames 0, 4, ..., 20 (6 frames)."""
    from data_prep.h36m import write_bbox_masks_mat

    masks = small_copy / "S1/MySegmentsMat/ground_truth_bb"
    short = masks / f"Walking.{CAMERAS[0]}.mat"
    boxes = read_bboxes(short)
    write_bbox_masks_mat(short, [tuple(b) for b in boxes[:10]], 1000, 1002)  # frames 0..9 only: 12, 16, 20 lost
    one_empty = masks / f"Walking.{CAMERAS[1]}.mat"
    boxes = [tuple(b) for b in read_bboxes(one_empty)]
    boxes[8] = (0, 0, -1, -1)  # an empty mask on frame 8
    write_bbox_masks_mat(one_empty, boxes, 1000, 1000)
    assert read_bboxes(one_empty, [8])[0, 0] == -1 and read_bboxes(short, [12])[0, 0] == -2
    summary = build(small_copy, tmp_path / "out")
    assert summary.dropped_frames == 4
    lines = {line.split(":")[0]: line for line in summary.drops}
    assert lines[f"S1/Walking/{CAMERAS[0]}"].endswith("3 of 6 frames dropped (mask file shorter than the poses 3)")
    assert lines[f"S1/Walking/{CAMERAS[1]}"].endswith("1 of 6 frames dropped (empty person mask 1)")
    assert len(summary.loud_drops) == 2  # 50 % and 17 %, both over 5 %
    keys = [k for k, _ in read_all(tmp_path / "out" / "walking_train.lmdb")]
    assert sum(CAMERAS[1] in k for k in keys) == 5 and sum(CAMERAS[0] in k for k in keys) == 3


def test_too_little_disk_is_one_line_before_the_build(small_copy, tmp_path, monkeypatch, capsys):
    """8 sequences x 24 poses at step 4 = 48 records x 188.5 kB = 9.0 MB needed; 1 MB free."""
    import collections

    import data_prep.lmdb_build as lb
    from data_prep.cli import run_tool
    from tools import make_lmdb

    assert lb.estimated_bytes(discover(small_copy, ("S1", "S9"), ("Walking",)).sequences, 4, "raw") == 48 * 188_500
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(lb.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    code = run_tool(make_lmdb.main, ["--h36m", str(small_copy), "--out", str(tmp_path / "out"), "--actions", "Walking",
                                     "--train-subjects", "S1", "--test-subjects", "S9", "--frame-step", "4", "--quiet",
                                     "--encoding", "raw"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(tmp_path / "out") in err[0] and "needs about 9.0 MB" in err[0] and "1.0 MB free" in err[0]
    assert "pass --out on another disk" in err[0]


def test_a_disk_that_fills_during_the_build_is_one_line_and_leaves_nothing(small_copy, tmp_path, monkeypatch):
    import lmdb

    import data_prep.lmdb_build as lb
    from data_prep.errors import DiskFullError

    def full(self, records):
        raise lmdb.Error("mdb_txn_commit: Input/output error")

    monkeypatch.setattr(lb._LmdbWriter, "put_many", full)
    with pytest.raises(DiskFullError, match="the disk is full .*Input/output error.*needs about"):
        build(small_copy, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.partial")) and not list((tmp_path / "out").glob("*.lmdb"))


def test_prepare_synthetic_builds_the_lmdbs_again_for_another_encoding_only(tmp_path):
    """The demo's --encoding: the dataset is generated once; LMDBs in another encoding are rebuilt, the same
    encoding is reused as it is (its files untouched)."""
    from data_prep.synthetic_lmdbs import prepare_synthetic

    lmdb = prepare_synthetic(tmp_path, ("Walking",), 6, 3, seed=5, progress=False, encoding="raw")
    meta = lmdb / "walking_test.lmdb" / "meta.json"
    done = tmp_path / "h36m" / "DONE"
    assert read_meta(meta.parent)["encoding"] == "raw"
    stamps = (done.stat().st_mtime_ns, meta.stat().st_mtime_ns)
    prepare_synthetic(tmp_path, ("Walking",), 6, 3, seed=5, progress=False, encoding="raw")
    assert (done.stat().st_mtime_ns, meta.stat().st_mtime_ns) == stamps
    prepare_synthetic(tmp_path, ("Walking",), 6, 3, seed=5, progress=False, encoding="jpeg")
    assert read_meta(meta.parent)["encoding"] == "jpeg" and read_meta(lmdb / "walking_train.lmdb")["encoding"] == "jpeg"
    assert done.stat().st_mtime_ns == stamps[0]
