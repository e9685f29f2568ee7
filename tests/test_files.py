"""data_prep/files.py: an output is written whole or not at all, also when the disk fills during the write and
when two programs write the same output at once."""
from __future__ import annotations

import multiprocessing

import pytest

from conftest import small_disk_at
from data_prep.errors import DiskFullError
from data_prep.files import write_bytes_atomic


def test_a_write_that_fills_the_disk_is_one_error_naming_the_file_and_leaves_nothing(tmp_path):
    with small_disk_at(tmp_path / "disk", 1024 * 1024) as disk:
        write_bytes_atomic(disk / "old.bin", b"kept")
        with pytest.raises(
            DiskFullError,
            match=r"model\.onnx: the disk is full \(No space left on device\); model\.onnx "
            r"was not written and nothing of it is left; free space on",
        ):
            write_bytes_atomic(disk / "model.onnx", b"x" * (2 * 1024 * 1024))
        assert sorted(p.name for p in disk.iterdir()) == ["old.bin"] and (disk / "old.bin").read_bytes() == b"kept"
        write_bytes_atomic(disk / "old.bin", b"y" * 4096)  # the disk has its room back
        assert (disk / "old.bin").read_bytes() == b"y" * 4096


def _write_many(path: str, byte: bytes, times: int) -> None:
    for _ in range(times):
        write_bytes_atomic(path, byte * (8 * 1024 * 1024))


def test_two_programs_writing_one_output_leave_one_whole_file(tmp_path):
    """Each process writes under its own temporary name, so the last rename wins with a whole file; with one shared
    temporary name a process could rename the other's half-written file into place, or find its own gone."""
    target = tmp_path / "clip.pose3d.npz"
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(str(target), byte, 12)) for byte in (b"a", b"b")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0, 0]
    data = target.read_bytes()
    assert len(data) == 8 * 1024 * 1024 and data in (b"a" * len(data), b"b" * len(data))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_what_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    """A writer killed mid-write (kill -9, a power cut) leaves its temporary file and never the target; the next
    write of that output removes what dead processes of this host left, and leaves a live writer's alone."""
    import subprocess
    import sys

    from conftest import REPO

    target = tmp_path / "model.onnx"
    start_writing = ("import sys, time; from data_prep.files import temporary_name; "
                     "t = temporary_name(sys.argv[1]); t.write_bytes(sys.argv[2].encode()); print(t.name, flush=True); "
                     "time.sleep(float(sys.argv[3]))")
    live = subprocess.Popen([sys.executable, "-c", start_writing, str(target), "another program, still writing", "60"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        live_name = live.stdout.readline().strip()
        dead = subprocess.run([sys.executable, "-c", start_writing, str(target), "half a model", "0"], cwd=REPO,
                              capture_output=True, text=True, check=True)  # exits: its file stays, its pid is free
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dead.stdout.strip(), live_name])
        write_bytes_atomic(target, b"whole")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live_name])
        assert target.read_bytes() == b"whole"
    finally:
        live.kill()
        live.wait()
