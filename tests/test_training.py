"""Real `caffe train` runs of each variant on a small synthetic LMDB; resume keeps the
lambda_2D schedule."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from conftest import REPO, caffe_env
from prototxt.generate import VARIANTS, Schedule, write_experiment

CAFFE = str(REPO / ".venv" / "bin" / "caffe")


def experiment(tmp_path, lmdb_root, variant, **schedule):
    out, _ = lmdb_root
    from data_prep.lmdb_build import read_meta

    train_count = read_meta(out / "walking_train.lmdb")["count"]
    test_count = read_meta(out / "walking_test.lmdb")["count"]
    solver = write_experiment(tmp_path, variant, variant=variant, train_lmdb=str(out / "walking_train.lmdb"),
                              test_lmdb=str(out / "walking_test.lmdb"), train_count=train_count, test_count=test_count,
                              snapshot_prefix=str(tmp_path / f"snap_{variant}"),
                              schedule=Schedule(batch_size=8, test_batch_size=16, epochs=2, display=1, **schedule))
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
