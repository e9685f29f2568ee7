"""tools/train_all.py: a resumed run, a finished one skipped, the results written."""
from __future__ import annotations

import json

from google.protobuf import text_format

from conftest import REPO
from data_prep.records import read_meta
from layers.training import read_solver


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
    out = lmdb_root
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
