"""tools/export.py: what it writes and says, and its mistakes as one line (exit code 2) with nothing written."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import EXPORT_WIDTH, REPO, caffe_env


def test_export_writes_the_model_and_names_what_it_holds(exported, capsys):
    from layers.onnx_backend import OnnxPoseModel

    _, _, model = exported
    m = OnnxPoseModel(model).meta
    assert m["variant"] == "both" and m["batch_norm"] == "re-estimated over 64 training images, folded"
    assert not list(model.parent.glob("*.tmp"))


def run_export(*args):
    return subprocess.run(
        [sys.executable, str(REPO / "tools/export.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=caffe_env(),
        cwd=REPO,
    )


def test_export_mistakes_are_one_line_and_write_nothing(trained_variants, lmdb_root, tmp_path):
    from prototxt.generate import build_net, write_net

    deploy, weights = trained_variants["2dcls"]
    train = lmdb_root / "walking_train.lmdb"
    evaluation_net = write_net(tmp_path / "nets" / "evaluate_2dcls.prototxt",
                               build_net("evaluate", multi_root=False, use_2d_cls=True, width=EXPORT_WIDTH))
    cases = {
        "nothing to write": ("--weights", weights, "--train-lmdb", train),
        "does not match": (
            "--weights",
            weights,
            "--deploy",
            trained_variants["both"][0],
            "--train-lmdb",
            train,
            "--onnx",
            tmp_path / "a.onnx",
        ),
        "no such file": (
            "--weights",
            tmp_path / "none.caffemodel",
            "--train-lmdb",
            train,
            "--onnx",
            tmp_path / "a.onnx",
        ),
        "not a deploy net": (
            "--weights",
            weights,
            "--deploy",
            evaluation_net,
            "--train-lmdb",
            train,
            "--onnx",
            tmp_path / "a.onnx",
        ),
    }
    for expected, args in cases.items():
        r = run_export(*args)
        assert r.returncode == 2, (expected, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "export.py: error:" in lines[0] and expected in lines[0], (expected, r.stderr)
    assert not list(tmp_path.glob("a.*"))


def test_torch_without_torch_is_one_line(trained_variants, lmdb_root, tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here (tests/test_torch_model.py exports with it)")
    deploy, weights = trained_variants["both"]
    r = run_export("--weights", weights, "--deploy", deploy, "--train-lmdb", lmdb_root / "walking_train.lmdb",
                   "--torch", tmp_path / "a.pt")
    assert r.returncode == 2 and "torch is not installed" in r.stderr and not list(tmp_path.iterdir())


def test_a_disk_that_fills_is_one_line_and_leaves_no_model(trained_variants, lmdb_root, tmp_path):
    """The model does not fit on the disk it is written to: one line naming it, exit code 2, nothing of it left."""
    from conftest import small_disk_at

    deploy, weights = trained_variants["both"]
    with small_disk_at(tmp_path / "disk", 1024 * 1024) as disk:  # the quarter-width model is larger than 1 MB
        r = run_export("--weights", weights, "--deploy", deploy, "--train-lmdb", lmdb_root / "walking_train.lmdb",
                       "--bn-batches", 1, "--onnx", disk / "model.onnx")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr[-2000:]
        assert f"{disk}/model.onnx: the disk is full (No space left on device)" in lines[0], lines
        assert list(disk.iterdir()) == []
