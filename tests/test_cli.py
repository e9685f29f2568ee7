"""Every tool's common mistakes end in one clear line on stderr and exit code 2, never a traceback
(data_prep/cli.py): wrong or missing folders and files, as a new user would pass them."""
from __future__ import annotations

import errno
import os
import subprocess

import pytest

from conftest import REPO
from data_prep.cli import run_tool


def mistakes(synthetic_root, lmdb_dir, tmp):
    return [
        (("make_lmdb.py", "--h36m", str(synthetic_root / "S1"), "--out", str(tmp / "l")), "one subject's folder"),
        (("make_lmdb.py", "--h36m", str(tmp / "nowhere"), "--out", str(tmp / "l")), "no such directory"),
        (("make_lmdb.py", "--h36m", str(tmp), "--out", str(tmp / "l")), "Human3.6M root"),
        (
            ("evaluate.py", "--lmdb-root", str(tmp / "nowhere"), "--weights", f"Walking={REPO / 'README.md'}"),
            "no such folder",
        ),
        (
            ("evaluate.py", "--lmdb-root", str(lmdb_dir), "--weights", f"Walking={tmp / 'no.caffemodel'}"),
            "does not exist",
        ),
        (("evaluate.py", "--lmdb-root", str(tmp), "--weights", f"Walking={REPO / 'README.md'}"), "walking_test.lmdb"),
        (("train_all.py", "--lmdb-root", str(tmp / "nowhere"), "--actions", "Walking"), "make_lmdb.py"),
        (("ablation.py", "--lmdb-root", str(tmp), "--actions", "Walking"), "walking_train.lmdb"),
        (("predict.py", str(tmp / "no.jpg"), "--weights", "w", "--train-lmdb", "t"), "no such file"),
        (("figures.py", "fig4", "--log", f"a={tmp / 'no.log'}", "--out", str(tmp / "f.png")), "no.log"),
        (("train_multi_gpu.py", "--solver", str(tmp / "no.prototxt"), "--gpus", "0", "1"), "no such file"),
        (
            ("evaluate.py", "--lmdb-root", str(lmdb_dir), "--weights", f"Walking={REPO / 'README.md'}", "--gpu", "-1"),
            "a GPU id is 0 or more",
        ),
    ]


def test_common_mistakes_are_one_line_and_exit_code_2(synthetic_root, lmdb_root, tmp_path):
    lmdb_dir = lmdb_root
    for args, words in mistakes(synthetic_root, lmdb_dir, tmp_path):
        out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(REPO / "tools" / args[0]), *args[1:]],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and len(lines) == 1, (args, out.stderr[-2000:])
        assert lines[0].startswith(f"{args[0]}: error: ") and words in lines[0], (args, lines)


def test_traceback_on_request(tmp_path, monkeypatch):
    from data_prep.cli import run_tool as run  # noqa: N813
    from data_prep.errors import UserError

    def broken(argv):
        raise UserError("bad input")

    assert run(broken) == 2
    monkeypatch.setenv("PARK3D_TRACEBACK", "1")
    with pytest.raises(UserError):
        run(broken)


@pytest.mark.parametrize("code, advice", [(errno.EROFS, "mounted read-only"), (errno.EDQUOT, "quota"),
                                          (errno.EACCES, "folder of your own"), (errno.ESTALE, "mount it again"),
                                          (errno.ENOSPC, "the disk is full")])
def test_an_os_error_of_the_users_machine_is_one_line_naming_the_path(code, advice, capsys):
    """What a cluster does to a run (read-only mounts, quotas, permissions, stale network mounts) is not the
    project's bug: one line naming the path, the system's words and what to do, exit 2 (the read-only case on a
    real mount in tests/test_faults.py)."""
    def main(argv):
        raise OSError(code, os.strerror(code), "/scratch/run/snap.lock")
    assert run_tool(main, []) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"/scratch/run/snap.lock: {os.strerror(code)}; " in err and advice in err


def test_an_os_error_of_the_project_itself_keeps_its_traceback():
    def main(argv):
        raise OSError(errno.EBADF, "Bad file descriptor")  # a bug of ours, not the user's machine
    with pytest.raises(OSError):
        run_tool(main, [])
