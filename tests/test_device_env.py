"""tools/device_env.sh, the bundle's unpacking that tools/device_check.sh and tools/device_e2e.sh share, on bad
input and a full disk: each a single line naming the file and what to do, exit status 2, nothing left behind;
and the folders of runs killed outright (SIGKILL leaves them) removed by the next run. tools/build_pycaffe.sh
--check: whether pycaffe can be built for a Python. None of this needs a Caffe build: the bundles here are made
by hand, and each script stops before it would run Caffe."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO, small_disk_at

SCRIPTS = ["device_check.sh", "device_e2e.sh"]


def run_kit(script: str, bundle_dir: Path, out: Path, tmpdir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PARK3D_DEVICE_DIR=str(bundle_dir), OUT=str(out), TMPDIR=str(tmpdir))
    return subprocess.run(["bash", str(REPO / "tools" / script), "--cpu"], env=env, capture_output=True, text=True,
                          timeout=120)


def write_bundle(path: Path, files: dict[str, bytes]) -> None:
    """A tar.xz as tools/device_bundle.sh writes it, holding `files` (name -> content) under caffe-cuda13/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"caffe-cuda13/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, (result.returncode, result.stderr[-2000:])
    return lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_missing_bundle_is_one_line_saying_how_to_make_it(script, tmp_path):
    line = one_line(run_kit(script, tmp_path / "none", tmp_path / "out", tmp_path))
    assert f"no {tmp_path / 'none'}/caffe-cuda13.tar.xz" in line and "tools/device_bundle.sh" in line


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_cut_short_bundle_is_one_line_naming_it_and_nothing_is_left_behind(script, tmp_path):
    good = tmp_path / "good" / "caffe-cuda13.tar.xz"
    write_bundle(good, {"share/bundle.txt": os.urandom(200_000)})
    cut = tmp_path / "cut" / "caffe-cuda13.tar.xz"
    cut.parent.mkdir()
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    work = tmp_path / "tmp"
    work.mkdir()
    line = one_line(run_kit(script, cut.parent, tmp_path / "out", work))
    assert str(cut) in line and "damaged or cut short" in line and "tools/device_bundle.sh" in line
    assert "Unexpected end of input" in line  # xz's own reason, as it said it
    assert list(work.iterdir()) == []  # the unpacked half is gone with the run's folder
    assert (tmp_path / "out" / "summary.md").read_text().strip().endswith(line.split(": ", 1)[1])


def test_a_bundle_without_both_builds_is_named_as_older(tmp_path):
    write_bundle(tmp_path / "old" / "caffe-cuda13.tar.xz", {"share/bundle.txt": b"route 13\n"})
    line = one_line(run_kit("device_check.sh", tmp_path / "old", tmp_path / "out", tmp_path))
    assert "no builds/plain and builds/cudnn9 (an older bundle)" in line and "tools/device_bundle.sh" in line


def test_no_room_to_unpack_is_one_line_saying_to_free_space_or_set_tmpdir(tmp_path):
    write_bundle(tmp_path / "big" / "caffe-cuda13.tar.xz", {"share/big": os.urandom(3 * 2 ** 20)})
    with small_disk_at(tmp_path / "disk", 2 ** 20) as disk:
        line = one_line(run_kit("device_check.sh", tmp_path / "big", tmp_path / "out", disk))
        assert line.startswith(f"device_check: no space left in {disk}/park3d-device.")
        assert "set TMPDIR" in line and "damaged" not in line
        assert list(disk.iterdir()) == []


def test_the_folders_of_killed_runs_are_removed_and_a_running_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"park3d-device.{dead.pid}.abc123"
    running = tmp_path / f"park3d-device.{os.getpid()}.def456"
    for folder in (stale, running):
        (folder / "caffe-cuda13").mkdir(parents=True)
    one_line(run_kit("device_check.sh", tmp_path / "none", tmp_path / "out", tmp_path))
    assert stale.exists()  # a run refused before it makes its own folder touches nothing
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "caffe-cuda13.tar.xz").write_bytes(b"not xz")
    one_line(run_kit("device_check.sh", tmp_path / "cut", tmp_path / "out", tmp_path))
    assert not stale.exists() and running.exists()


def test_build_pycaffe_check_says_whether_pycaffe_can_be_built_for_a_python(tmp_path):
    check = ["bash", str(REPO / "tools" / "build_pycaffe.sh"), "--check"]
    ok = subprocess.run([*check, sys.executable], capture_output=True, text=True)
    version = "%d.%d.%d" % sys.version_info[:3]
    assert ok.returncode == 0 and f"Python {version} with NumPy" in ok.stdout and "can be built" in ok.stdout, ok
    # the same interpreter without its site-packages: no NumPy (a real condition, not a stand-in)
    no_site = tmp_path / "python-without-site"
    no_site.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    no_site.chmod(0o755)
    bad = subprocess.run([*check, str(no_site)], capture_output=True, text=True)
    assert bad.returncode == 2 and "cannot be built for it: no NumPy" in bad.stdout, bad
    gone = subprocess.run([*check, str(tmp_path / "none")], capture_output=True, text=True)
    assert gone.returncode == 2 and gone.stderr.strip() == f"build_pycaffe: no Python {tmp_path}/none on this machine"
