"""tools/evaluate.py on a net trained for real: the table and files; --gpu on a CPU-only Caffe."""
from __future__ import annotations

import json

import pytest

from conftest import REPO
from data_prep.errors import UserError


def test_evaluate_writes_the_table_and_files(trained, lmdb_root, capsys):
    from tools import evaluate

    d, weights = trained
    out = lmdb_root
    assert evaluate.main(["--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"), "--lmdb-root", str(out),
                          "--weights", f"Walking={weights}", "--batch-size", "16"]) == 0
    printed = capsys.readouterr().out
    for words in ("MPJPE (P1, root-aligned)", "MPJPE (zero-mean)", "PA-MPJPE (P2)", "Mean pose", "Scale floor",
                  "Paper, Table 1", "62.64", "Walking"):
        assert words in printed
    r = json.loads((d / "results.json").read_text())["Walking"]
    errors = r["mpjpe"]
    assert errors["p1"] > 0 and errors["pa"] <= errors["zero_mean"] and len(r["per_joint_p1"]) == 17
    assert (
        r["mean_pose"]["p1"] > 0 and r["scale_floor"]["pa"] < 1e-3
    )  # a similarity of the ground truth (float32 labels)
    assert r["batch_norm"].startswith("re-estimated over")
    assert (d / "results.csv").read_text().startswith("action,frames,mpjpe_p1_mm,mpjpe_zero_mean_mm,mpjpe_pa_mm")
    with pytest.raises(UserError, match="ACTION=path"):
        evaluate.main(["--lmdb-root", str(out), "--weights", str(weights)])


def test_evaluate_gpu_flag_on_a_cpu_only_build_is_a_clear_error(trained, lmdb_root):
    from layers.device import caffe_has_cuda
    from tools import evaluate

    if caffe_has_cuda():
        pytest.skip("this Caffe has CUDA")
    d, weights = trained
    out = lmdb_root
    with pytest.raises(UserError, match="built CPU-only"):
        evaluate.main(["--deploy", str(REPO / "prototxt/deploy_baseline.prototxt"), "--lmdb-root", str(out),
                       "--weights", f"Walking={weights}", "--gpu", "0", "--quiet"])


def test_onnx_backend_gives_the_caffe_backends_results(exported, lmdb_root, tmp_path):
    """The exported model (BatchNorm re-estimated at export) against pycaffe re-estimating the same way: the same
    frames and every figure of results.json to 0.01 mm."""
    from conftest import EXPORT_BN_BATCHES
    from tools import evaluate

    deploy, weights, model = exported
    common = ["--lmdb-root", str(lmdb_root), "--batch-size", "16", "--quiet"]
    assert evaluate.main([*common, "--deploy", str(deploy), "--weights", f"Walking={weights}", "--bn-batches",
                          str(EXPORT_BN_BATCHES), "--out", str(tmp_path / "caffe")]) == 0
    assert (
        evaluate.main([*common, "--backend", "onnx", "--weights", f"Walking={model}", "--out", str(tmp_path / "onnx")])
        == 0
    )
    a, b = (json.loads((tmp_path / name / "results.json").read_text())["Walking"] for name in ("caffe", "onnx"))
    assert a["frames"] == b["frames"] == 96 and a["backend"] == "caffe" and b["backend"] == "onnx"
    assert a["batch_norm"] == b["batch_norm"] == "re-estimated over 64 training images, folded"
    for protocol, value in a["mpjpe"].items():
        assert abs(value - b["mpjpe"][protocol]) <= 0.01, protocol
    assert max(abs(x - y) for x, y in zip(a["per_joint_p1"], b["per_joint_p1"])) <= 0.01
