"""Progress bars and plain progress lines (data_prep/progress.py), by hand and from real runs."""
from __future__ import annotations

from conftest import REPO


def test_training_progress_lines_without_a_terminal(tmp_path, capsys, monkeypatch):
    from layers.training import run_caffe_train

    monkeypatch.chdir(REPO)
    run_caffe_train(REPO / "tests/data/tiny_solver.prototxt", tmp_path / "tiny.log", 20, progress="lines", desc="tiny")
    lines = [l for l in capsys.readouterr().out.splitlines() if l.startswith("tiny: ")]
    assert lines[0].startswith("tiny: 2/20 iterations (10 %), ") and "ETA" in lines[0]
    assert lines[-1].startswith("tiny: 20/20 iterations (100 %)") and len(lines) == 10
    assert "Iteration 19" in (tmp_path / "tiny.log").read_text()


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
        code = subprocess.call(
            [
                str(REPO / ".venv/bin/python"),
                str(REPO / "tools/make_lmdb.py"),
                "--h36m",
                str(synthetic_root),
                "--out",
                str(tmp_path / "lmdb"),
                "--actions",
                "Walking",
                "--frame-step",
                "8",
                "--workers",
                "1",
            ],
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    text = log.read_text()
    assert code == 0, text[-2000:]
    lines = [l for l in text.splitlines() if l.startswith("LMDB: ")]
    assert len(lines) >= 5 and "sequences/s, ETA" in lines[0] and lines[-1].startswith("LMDB: 28/28 sequences (100 %)")
