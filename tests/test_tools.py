"""evaluate.py, predict.py, train_all.py (resume), figures, on a tiny net trained for real."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from google.protobuf import text_format

from conftest import REPO
from data_prep.cli import UserError
from data_prep.lmdb_build import read_meta
from data_prep.tables import format_table1, format_table2
from prototxt.generate import Schedule, write_experiment
from layers.training import read_solver, train_to_completion


def small_solver(directory, lmdb_root, name, max_iter, variant="baseline"):
    out, _ = lmdb_root
    return write_experiment(directory, name, variant=variant, train_lmdb=str(out / "walking_train.lmdb"),
                            test_lmdb=str(out / "walking_test.lmdb"),
                            train_count=read_meta(out / "walking_train.lmdb")["count"],
                            test_count=read_meta(out / "walking_test.lmdb")["count"],
                            snapshot_prefix=str(directory / "snap"),
                            schedule=Schedule(batch_size=8, test_batch_size=16, display=1, max_iter=max_iter,
                                              snapshot=3, test_interval=1000))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, lmdb_root):
    d = tmp_path_factory.mktemp("trained")
    solver = small_solver(d, lmdb_root, "solver_walking", 3)
    final = train_to_completion(solver.rename(d / "solver_walking.prototxt"), d / "train.log", progress=False)
    return d, final


def test_train_all_resumes_an_interrupted_run_and_skips_a_finished_one(trained, lmdb_root, capsys):
    from tools import train_all

    d, first = trained
    assert first.name == "snap_iter_3.caffemodel"
    solver = d / "solver_walking.prototxt"
    # the run was "interrupted" at iteration 3 of 6: a later call resumes from that snapshot
    param = read_solver(solver)
    param.max_iter = 6
    solver.write_text(text_format.MessageToString(param))
    assert read_solver(solver).max_iter == 6
    out, _ = lmdb_root
    args = ["--actions", "Walking", "--solver-dir", str(d), "--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"),
            "--lmdb-root", str(out), "--logs", str(d / "logs"), "--results", str(d / "results"), "--quiet"]
    assert train_all.main(args) == 0
    log = (d / "logs" / "walking_both.log").read_text()
    assert "Resuming from" in log and "snap_iter_3.solverstate" in log
    assert (d / "snap_iter_6.caffemodel").is_file()
    size = (d / "logs" / "walking_both.log").stat().st_size
    assert train_all.main(args) == 0  # finished: no training, same log
    assert (d / "logs" / "walking_both.log").stat().st_size == size
    results = json.loads((d / "results" / "results.json").read_text())
    assert results["Walking"]["frames"] == read_meta(out / "walking_test.lmdb")["count"]


def test_evaluate_writes_the_table_and_files(trained, lmdb_root, capsys):
    from tools import evaluate

    d, weights = trained
    out, _ = lmdb_root
    assert evaluate.main(["--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"), "--lmdb-root", str(out),
                          "--weights", f"Walking={weights}", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out
    for words in ("MPJPE (P1, root-aligned)", "MPJPE (zero-mean)", "PA-MPJPE (P2)", "Mean pose", "Scale floor",
                  "Paper, Table 1", "62.64", "Walking"):
        assert words in printed
    r = json.loads((d / "results.json").read_text())["Walking"]
    errors = r["mpjpe"]
    assert errors["p1"] > 0 and errors["pa"] <= errors["zero_mean"] and len(r["per_joint_p1"]) == 17
    assert r["mean_pose"]["p1"] > 0 and r["scale_floor"]["pa"] < 1e-3  # a similarity of the ground truth (float32 labels)
    assert r["batch_norm"].startswith("re-estimated over")
    assert (d / "results.csv").read_text().startswith("action,frames,mpjpe_p1_mm,mpjpe_zero_mean_mm,mpjpe_pa_mm")
    with pytest.raises(UserError, match="ACTION=path"):
        evaluate.main(["--lmdb-root", str(out), "--weights", str(weights)])


def test_predict_on_an_image_writes_json_and_png(trained, lmdb_root, synthetic_root, tmp_path):
    from tools import predict

    d, weights = trained
    out, _ = lmdb_root
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
        predict.main([str(tmp_path / "nope.png"), "--weights", str(weights), "--train-lmdb", str(out / "walking_train.lmdb")])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(UserError, match="not a readable image or video"):
        predict.main([str(tmp_path / "text.png"), "--weights", str(weights), "--train-lmdb", str(out / "walking_train.lmdb")])


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


def test_predict_finds_the_person_and_reads_folders_and_videos(lmdb_root, synthetic_root, tmp_path, capsys):
    """The full model (2D branch, random weights): without --bbox the detector's box is used and the 2D joints
    come back in image pixels, on the centres of grid cells mapped through the crop; a folder gives one JSON
    per image, a video one per chosen frame."""
    import caffe

    from data_prep.crop import crop_transform, square_around_box
    from layers.targets import grid_centres
    from tools import predict

    out, _ = lmdb_root
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
    assert predict.main([str(folder), *common]) == 0
    assert "skipped 1 unreadable image(s): c.png" in capsys.readouterr().out
    docs = {p.name: json.loads(p.read_text()) for p in sorted((tmp_path / "photos_pose3d").glob("*.json"))}
    assert sorted(docs) == ["a.pose3d.json", "b.pose3d.json"]
    doc = docs["a.pose3d.json"]
    assert doc["bbox_from"] == "HOG people detector" and doc["detector_score"] > 0
    joints = np.array(doc["joints2d_px"])
    assert joints.shape == (17, 2)
    # back into the 250 crop, then the 225 centre crop: every joint sits on a cell centre (cells 14 px wide;
    # the JSON rounds pixels and the box to 0.1)
    affine = crop_transform(*square_around_box(doc["bbox_xyxy"]))
    in_crop = joints @ affine[:, :2].T + affine[:, 2] - 12
    assert np.abs(in_crop[:, None, :] - grid_centres()[None]).sum(-1).min(-1).max() < 0.3
    assert predict.main([str(video), "--frame-step", "10", *common, "--out", str(tmp_path / "clip")]) == 0
    names = sorted(p.name for p in (tmp_path / "clip").iterdir())
    assert names == [f"frame_{i:06d}.pose3d.{ext}" for i in (0, 10, 20) for ext in ("json", "png")]


def test_figures_from_a_real_log(trained, tmp_path):
    from data_prep.drawing import plot_fig4
    from layers.caffe_log import fig4_curves, loss_3d_curve, parse_caffe_log

    d, _ = trained
    parsed = parse_caffe_log((d / "train.log").read_text())
    iters, values = loss_3d_curve(parsed, "train")
    assert list(iters) == [0, 1, 2] and (values > 0).all()
    png = plot_fig4(fig4_curves({"run": d / "train.log"}), tmp_path / "fig4.png")
    assert cv2.imread(str(png)).shape[0] > 100


def test_table_layouts():
    t1 = format_table1({"Ours": {"Walking": 50.0, "Eating": 70.0}})
    assert "Average" in t1 and "60.00" in t1 and t1.index("Directions") < t1.index("Posing") < t1.index("Walk")
    t2 = format_table2({"baseline": {"Walking": 80.0}, "both": {"Walking": 60.0}}, ["Walking"])
    assert "Baseline CNN (ours)" in t2 and "72.55" in t2 and "62.64" in t2


def test_training_progress_lines_without_a_terminal(tmp_path, capsys, monkeypatch):
    from layers.training import run_caffe_train

    monkeypatch.chdir(REPO)
    run_caffe_train(REPO / "tests/data/tiny_solver.prototxt", tmp_path / "tiny.log", 20, progress="lines", desc="tiny")
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("tiny: ")]
    assert lines[0].startswith("tiny: 2/20 iterations (10 %), ") and "ETA" in lines[0]
    assert lines[-1].startswith("tiny: 20/20 iterations (100 %)") and len(lines) == 10
    assert "Iteration 19" in (tmp_path / "tiny.log").read_text()


def test_evaluate_gpu_flag_on_a_cpu_only_build_is_a_clear_error(trained, lmdb_root):
    from layers.device import caffe_has_cuda
    from tools import evaluate

    if caffe_has_cuda():
        pytest.skip("this Caffe has CUDA")
    d, weights = trained
    out, _ = lmdb_root
    with pytest.raises(UserError, match="built CPU-only"):
        evaluate.main(["--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"), "--lmdb-root", str(out),
                       "--weights", f"Walking={weights}", "--gpu", "0", "--quiet"])


def test_progress_lines_give_rate_and_eta_by_hand(capsys):
    """40 of 200 items in 10 s: 4 items/s, 160 left: ETA 0:40; a line at each tenth, and one after 60 s."""
    import io

    from data_prep.progress import Progress, eta_text

    now = [0.0]
    out = io.StringIO()
    p = Progress(200, "build", unit="items", mode="lines", clock=lambda: now[0], out=out)
    now[0] = 10.0
    p.update_to(40)
    assert out.getvalue().splitlines() == ["build: 40/200 items (20 %), 4 items/s, ETA 0:40"]
    now[0] = 11.0
    p.update(1)  # not a new tenth, not a minute later: no line
    assert len(out.getvalue().splitlines()) == 1
    now[0] = 75.0
    p.update(1)  # a minute since the last line
    assert out.getvalue().splitlines()[-1].startswith("build: 42/200 items (21 %)")
    assert eta_text(3725) == "1:02:05" and eta_text(59) == "0:59"


def test_make_lmdb_prints_progress_lines_into_a_log(synthetic_root, tmp_path):
    """As under nohup: stdout and stderr into a file, no terminal."""
    import subprocess

    log = tmp_path / "make_lmdb.log"
    with open(log, "w") as f:
        code = subprocess.call([str(REPO / ".venv/bin/python"), str(REPO / "tools/make_lmdb.py"), "--h36m", str(synthetic_root),
                                "--out", str(tmp_path / "lmdb"), "--actions", "Walking", "--frame-step", "8",
                                "--workers", "1"], stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    text = log.read_text()
    assert code == 0, text[-2000:]
    lines = [l for l in text.splitlines() if l.startswith("LMDB: ")]
    assert len(lines) >= 5 and "sequences/s, ETA" in lines[0] and lines[-1].startswith("LMDB: 28/28 sequences (100 %)")


def test_snapshot_disk_is_checked_before_training(lmdb_root, tmp_path, monkeypatch):
    """The baseline train net: its deploy net's 46,853,001 parameters less eq. (7)'s fixed 51 x 48 map, plus the
    data layer's position and the 2D loss's iteration count: 46,850,555, 4 bytes each in a .caffemodel and as
    many in a .solverstate; at the peak of a pruned run two pairs are kept and a third is written:
    6 x 4 x 46,850,555 bytes = 1.12 GB."""
    import collections

    import layers.training as training
    from data_prep.cli import DiskFullError

    solver = small_solver(tmp_path, lmdb_root, "solver_walking", 3)
    net = training.train_net_of(read_solver(solver), solver, REPO)
    assert training.snapshot_disk_need(net) == 6 * 4 * (46_853_001 - 51 * 48 + 2)
    del net
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(training.shutil, "disk_usage", lambda path: usage(10**9, 9 * 10**8, 10**8))
    with pytest.raises(DiskFullError, match=r"snapshots need about 1.1 GB more and the disk has 0.1 GB free"):
        train_to_completion(solver, tmp_path / "train.log", progress=False)
    assert not (tmp_path / "train.log").exists()  # nothing ran


def test_benchmark_gpu_sections_on_a_cpu_only_build_are_one_line_before_any_work(tmp_path):
    """The prepared GPU benchmark (issue 9's figures) refuses a CPU-only Caffe in one line, before it makes data."""
    import subprocess

    from layers.device import caffe_has_cuda

    if caffe_has_cuda():
        pytest.skip("this Caffe has CUDA")
    for section in ("gpu-gtests", "caffe-time"):
        out = subprocess.run([str(REPO / ".venv/bin/python"), str(REPO / "tools/benchmark.py"), "--sections", section,
                              "--gpu", "0", "--work", str(tmp_path / section)], capture_output=True, text=True, cwd=REPO)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert "--gpu 0: this Caffe was built CPU-only" in out.stderr and len(out.stderr.strip().splitlines()) == 1
        assert not any((tmp_path / section).iterdir())
