"""tools/device_session.sh, the one call a lent GPU machine gets, where it needs no build: a missing bundle, an unknown
part, and a session whose time is spent before a part starts. Its parts' run on this CPU (the bundle, the timings,
the user's path, the gtests) is in tests/test_cuda_build.py, which needs the CUDA builds."""
from __future__ import annotations

import os
import re
import subprocess

from conftest import REPO


def test_a_session_past_its_deadline_names_the_parts_it_left_out(tmp_path):
    """A session whose time is spent starts no part: each is named as not started, and the exit status is 1; a
    missing or damaged bundle is one line and exit 2, and no later part runs; an unknown part is exit 2."""
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PARK3D_DEVICE_DIR": str(tmp_path / "device")}
    missing = subprocess.run(["bash", str(REPO / "tools/device_session.sh"), "--cpu"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert missing.returncode == 2 and missing.stdout == "", missing
    assert missing.stderr.strip().splitlines() == [
        f"device_session: no {tmp_path / 'device'}/caffe-cuda13.tar.xz: run bash tools/device_bundle.sh first (and "
        "carry .device)"]
    (tmp_path / "device").mkdir()
    (tmp_path / "device" / "caffe-cuda13.tar.xz").write_bytes(b"")  # not opened: no part starts
    late = subprocess.run(["bash", str(REPO / "tools/device_session.sh"), "--cpu"], capture_output=True, text=True,
                          env={**env, "SESSION_SECONDS": "10"}, timeout=60)
    assert late.returncode == 1, late
    summary = (tmp_path / "out" / "summary.md").read_text().splitlines()
    assert [line.split(":")[0] for line in summary[:-1]] == ["## timings", "## e2e", "## gtests"], summary
    assert all(re.fullmatch(r"## \w+: not started, \d+ s left of SESSION_SECONDS", line) for line in summary[:-1])
    assert re.fullmatch(r"device_session: \d+ s in all; timings not started, e2e not started, gtests not started",
                        summary[-1])
    damaged = subprocess.run(["bash", str(REPO / "tools/device_session.sh"), "--cpu"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert damaged.returncode == 2, damaged
    assert "cannot unpack" in damaged.stderr and str(tmp_path / "device") in damaged.stderr, damaged
    assert "Traceback" not in damaged.stderr
    last = (tmp_path / "out" / "summary.md").read_text().splitlines()[-1]
    assert re.fullmatch(r"device_session: \d+ s in all; timings exit 2, stopped: the bundle is missing or damaged "
                        r"\(exit 2\)", last), last
    bad = subprocess.run(["bash", str(REPO / "tools/device_session.sh"), "--cpu"], capture_output=True, text=True,
                         env={**env, "PARTS": "timings speed"}, timeout=60)
    assert bad.returncode == 2 and "unknown part 'speed'" in bad.stderr, bad
