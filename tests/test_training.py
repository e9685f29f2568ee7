"""Real `caffe train` runs of each variant on a small synthetic LMDB; resume keeps the lambda_2D schedule; a plain
`caffe train` (no driver) stops with a snapshot on SIGTERM, resumes to the uninterrupted run's weights and ends a
diverged run with one line (Caffe patch 0005)."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from conftest import REPO, caffe_env, small_solver
from layers.training import read_solver, train_to_completion
from prototxt.generate import VARIANTS, Schedule, write_experiment

CAFFE = str(REPO / ".venv" / "bin" / "caffe")


def experiment(tmp_path, lmdb_root, variant, width=1.0, **schedule):
    out = lmdb_root
    from data_prep.records import read_meta

    train_count = read_meta(out / "walking_train.lmdb")["count"]
    test_count = read_meta(out / "walking_test.lmdb")["count"]
    solver = write_experiment(tmp_path, variant, variant=variant, train_lmdb=str(out / "walking_train.lmdb"),
                              test_lmdb=str(out / "walking_test.lmdb"), train_count=train_count, test_count=test_count,
                              snapshot_prefix=str(tmp_path / f"snap_{variant}"),
                              schedule=Schedule(batch_size=8, test_batch_size=16, epochs=2, display=1, **schedule),
                              width=width)
    s = caffe_pb2.SolverParameter()
    text_format.Merge(solver.read_text(), s)
    return solver, s


def caffe_train(args, cwd):
    out = subprocess.run([CAFFE, "train", *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                         env={**caffe_env(), "GLOG_minloglevel": "0"})
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stderr


def losses(log):
    return np.array([float(v) for v in re.findall(r"Iteration \d+ \(.*\), loss = ([0-9.e+-]+)", log)])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_trains_and_its_loss_falls(tmp_path, lmdb_root, variant):
    solver, s = experiment(tmp_path, lmdb_root, variant, max_iter=30, test_interval=30, snapshot=30)
    log = caffe_train(["-solver", str(solver)], tmp_path)
    l = losses(log)
    assert len(l) == 30 and np.isfinite(l).all()
    assert l[-6:].mean() < l[:6].mean(), l
    assert "Test net output" in log and (tmp_path / f"snap_{variant}_iter_30.caffemodel").is_file()


def loss_counter(caffemodel):
    net = caffe_pb2.NetParameter()
    net.ParseFromString(caffemodel.read_bytes())
    layer = next(l for l in net.layer if l.name == "loss_2d")
    return layer.blobs[0].data[0]


def test_resume_from_a_snapshot_keeps_the_lambda_schedule(tmp_path, lmdb_root):
    solver, s = experiment(tmp_path, lmdb_root, "baseline", max_iter=8, snapshot=8, test_interval=1000)
    caffe_train(["-solver", str(solver)], tmp_path)
    assert loss_counter(tmp_path / "snap_baseline_iter_8.caffemodel") == 8
    s.max_iter, s.snapshot = 14, 14
    solver.write_text(text_format.MessageToString(s))
    caffe_train(["-solver", str(solver), "-snapshot", str(tmp_path / "snap_baseline_iter_8.solverstate")], tmp_path)
    # the layer counted on from 8 (not from 0): lambda_2D switches at the right iteration after a resume
    assert loss_counter(tmp_path / "snap_baseline_iter_14.caffemodel") == 14


def test_plain_caffe_train_stops_on_sigterm_with_a_snapshot_and_resumes_to_the_same_weights(tmp_path, lmdb_root):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    solver, _ = experiment(tmp_path / "a", lmdb_root, "both", width=0.125, max_iter=16, snapshot=8, test_interval=1000)
    caffe_train(["-solver", str(solver)], tmp_path)
    reference = (tmp_path / "a" / "snap_both_iter_16.caffemodel").read_bytes()
    solver, _ = experiment(tmp_path / "b", lmdb_root, "both", width=0.125, max_iter=16, snapshot=8, test_interval=1000)
    proc = subprocess.Popen([CAFFE, "train", "-solver", str(solver)], cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            env={**caffe_env(), "GLOG_minloglevel": "0"})
    for line in proc.stderr:
        if "] Iteration 5 (" in line:
            proc.terminate()  # SIGTERM, as a scheduler or `kill` sends it
            break
    log = proc.stderr.read()
    assert proc.wait() == 0 and "Optimization stopped early" in log, log[-3000:]
    state = sorted((tmp_path / "b").glob("snap_both_iter_*.solverstate"))
    assert len(state) == 1 and 5 <= int(state[0].stem.rsplit("_", 1)[1]) < 16, state
    caffe_train(["-solver", str(solver), "-snapshot", str(state[0])], tmp_path)
    # identical files: the data layer's position, the 2D loss's count and the dropout masks all continued
    assert (tmp_path / "b" / "snap_both_iter_16.caffemodel").read_bytes() == reference


def test_plain_caffe_train_ends_a_diverged_run_with_one_line_before_the_update(tmp_path, lmdb_root):
    solver, s = experiment(tmp_path, lmdb_root, "baseline", width=0.125, max_iter=30, snapshot=1, test_interval=1000)
    s.base_lr = 100.0
    solver.write_text(text_format.MessageToString(s))
    out = subprocess.run([CAFFE, "train", "-solver", str(solver)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=900, env={**caffe_env(), "GLOG_minloglevel": "0"})
    stopped = [l for l in out.stderr.splitlines() if "caffe train stopped: " in l]
    assert out.returncode == 1 and len(stopped) == 1 and "Check failure" not in out.stderr, out.stderr[-3000:]
    at = int(stopped[0].split("Training diverged at iteration ")[1].split(":")[0])
    assert re.search(r"the loss is -?(nan|inf);", stopped[0]), stopped[0]
    last = sorted(tmp_path.glob("snap_baseline_iter_*.caffemodel"), key=lambda f: int(f.stem.rsplit("_", 1)[1]))[-1]
    assert int(last.stem.rsplit("_", 1)[1]) == at  # the snapshot after the last finite step, not one after it
    net = caffe_pb2.NetParameter()
    net.ParseFromString(last.read_bytes())
    assert all(np.isfinite(np.asarray(b.data)).all() for layer in net.layer for b in layer.blobs)


def test_snapshot_disk_is_checked_before_training(lmdb_root, tmp_path, monkeypatch):
    """The baseline train net: its deploy net's 46,853,001 parameters less eq. (7)'s fixed 51 x 48 map, plus the
    data layer's position and the 2D loss's iteration count: 46,850,555, 4 bytes each in a .caffemodel and as
    many in a .solverstate; at the peak of a pruned run two pairs are kept and a third is written:
    6 x 4 x 46,850,555 bytes = 1.12 GB."""
    import collections

    import data_prep.files as files
    import layers.training as training
    from data_prep.errors import DiskFullError

    solver = small_solver(tmp_path, lmdb_root, "solver_walking", 3)
    net = training.train_net_of(read_solver(solver), solver, REPO)
    assert training.snapshot_disk_need(net) == 6 * 4 * (46_853_001 - 51 * 48 + 2)
    del net
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: usage(10**9, 9 * 10**8, 10**8))
    with pytest.raises(
        DiskFullError, match=r"snapshots \(the rest of them\) needs about 1.1 GB and the disk has 100.0 MB free"
    ):
        train_to_completion(solver, tmp_path / "train.log", progress=False)
    assert not (tmp_path / "train.log").exists()  # nothing ran
