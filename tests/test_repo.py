"""The README's two commands, CI, and the set-up's pinned inputs."""
from __future__ import annotations

import re

from conftest import REPO


def readme_commands():
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [l for l in block.splitlines() if l.strip()]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    demo, tests = readme_commands()
    assert demo == "bash tools/setup.sh && .venv/bin/python tools/demo.py"
    assert "pytest" in tests and tests.startswith("bash tools/setup.sh && ")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_caffe_source_is_pinned_and_the_patches_are_files():
    lock = dict(l.split("=", 1) for l in (REPO / "third_party/caffe/source.lock").read_text().splitlines()
                if l and not l.startswith("#"))
    assert re.fullmatch(r"[0-9a-f]{64}", lock["CAFFE_ORIG_SHA256"]) and re.fullmatch(r"[0-9a-f]{64}", lock["CAFFE_DEBIAN_SHA256"])
    patches = sorted((REPO / "third_party/caffe/patches").glob("*.patch"))
    assert patches and all(p.read_text().count("\n+++ ") >= 1 for p in patches)


def test_requirements_are_pinned():
    reqs = [l for l in (REPO / "requirements.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert all("==" in r or r.startswith("setuptools") for r in reqs), reqs


def test_venv_points_at_a_complete_cached_build_of_the_locked_version():
    from conftest import caffe_home

    home = caffe_home()
    lock = (REPO / "third_party/caffe/source.lock").read_text()
    version = re.search(r"^CAFFE_VERSION=(.*)$", lock, re.M).group(1)
    assert (home / ".complete").is_file() and (home / "bin" / "caffe").is_file()
    assert (home / "share" / "caffe_version.txt").read_text().strip() == version


def tracked_text_files():
    import subprocess

    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [REPO / n for n in names if n.endswith((".py", ".md", ".sh", ".txt", ".cfg", ".toml")) or n.startswith(".ci/")]


def test_the_repository_reads_on_its_own():
    """Nothing points outside the checkout (a clone has no ../shared), and every tool is a command line over
    the packages: no tool imports another tool."""
    outside = [str(p.relative_to(REPO)) for p in tracked_text_files()
               if p.name != "test_repo.py" and re.search(r"\.\./shared|paper-notes", p.read_text(errors="replace"))]
    assert not outside, outside
    crossing = {}
    for tool in sorted((REPO / "tools").glob("*.py")):
        found = re.findall(r"^\s*(?:from tools(?:\.| import )(\w+)|import tools\.(\w+))", tool.read_text(), re.M)
        if found:
            crossing[tool.name] = found
    assert not crossing, crossing
