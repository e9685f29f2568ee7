"""The README's two commands, CI, and the set-up's pinned inputs."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, lock_values, route_nvcc


def readme_commands():
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [l for l in block.splitlines() if l.strip()]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    demo, tests = readme_commands()
    assert demo == "bash tools/setup.sh && .venv/bin/python tools/demo.py"
    assert "pytest" in tests and tests.startswith("bash tools/setup.sh && ")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci
    lint = "bash tools/setup.sh && .venv/bin/ruff check --no-cache ."
    assert lint in ci and ci.index(lint) < ci.index(tests)  # the linter first


def test_caffe_source_is_pinned_and_the_patches_are_files():
    lock = dict(l.split("=", 1) for l in (REPO / "third_party/caffe/source.lock").read_text().splitlines()
                if l and not l.startswith("#"))
    assert re.fullmatch(r"[0-9a-f]{64}", lock["CAFFE_ORIG_SHA256"]) and re.fullmatch(
        r"[0-9a-f]{64}", lock["CAFFE_DEBIAN_SHA256"]
    )
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
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [
        REPO / n for n in names if n.endswith((".py", ".md", ".sh", ".txt", ".cfg", ".toml")) or n.startswith(".ci/")
    ]


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


def test_each_cuda_route_is_pinned():
    """Route 11.8 pins Debian's package by version, route 13 every wheel by version and sha256; both pin NCCL's
    and cuDNN's wheels by hash, for the CUDA major the route builds with."""
    debian, pypi = lock_values("cuda-11.8.lock"), lock_values("cuda-13.lock")
    assert re.search(r"nvidia-cuda-toolkit=11\.8\.\S+", debian["CUDA_DEBIAN_PACKAGES"])
    lines = pypi["CUDA_WHEELS"].splitlines()
    assert len(lines) == 7 and all(
        re.fullmatch(r"nvidia-[a-z-]+==[0-9.]+ --hash=sha256:[0-9a-f]{64}", l) for l in lines
    ), lines
    assert {l.split("==")[0] for l in lines} >= {
        "nvidia-cuda-nvcc",
        "nvidia-cuda-runtime",
        "nvidia-cublas",
        "nvidia-curand",
    }
    for lock, major in ((debian, "cu11"), (pypi, "cu13")):
        assert re.search(rf"nvidia-nccl-{major}==[0-9.]+ --hash=sha256:[0-9a-f]{{64}}", lock["NCCL_REQUIREMENT"])
        # cuDNN 9 (PARK3D_CUDNN=9): the wheel of the route's CUDA major, by hash, and the file it names
        assert re.fullmatch(
            rf"nvidia-cudnn-{major}==9\.[0-9.]+ --hash=sha256:[0-9a-f]{{64}}", lock["CUDNN_REQUIREMENT"]
        )
        version = lock["CUDNN_REQUIREMENT"].split("==")[1].split()[0]
        assert lock["CUDNN_WHEEL"].startswith(f"nvidia_cudnn_{major}-{version}-py3-none-")


def run_setup_with_driver(tmp_path, route: str, driver: str, caps: tuple = ("9.0",), **extra):
    """`tools/setup.sh --plan` as on a machine whose nvidia-smi reports a GPU of each compute capability in `caps`
    and `driver`, its output as NVIDIA's: the decisions, and nothing installed or built whichever way they go."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    cap_lines = "\\n".join(caps)
    drivers = " ".join(caps) or "none"
    smi.write_text(f'#!/bin/sh\ncase "$*" in -L) echo "GPU 0: Test GPU";; *compute_cap*) printf "{cap_lines}\\n";;'
                   f' *driver_version*) for c in {drivers}; do echo "{driver}"; done;; *) exit 2;; esac\n')
    smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PARK3D_CUDA": route,
           "PARK3D_CACHE": str(tmp_path / "cache"), "PARK3D_VENV": str(tmp_path / "venv"), **extra}
    if "PARK3D_CUDNN" not in extra:
        env.pop("PARK3D_CUDNN", None)  # the set-up's default, whatever the caller's shell holds
    return subprocess.run(["bash", str(REPO / "tools/setup.sh"), "--plan"], capture_output=True, text=True, env=env,
                          timeout=60)


def plan(run) -> str:
    """The CUDA part of a --plan run's plan line ("route 13, cuDNN 9, machine code for sm_80, sm_90, PTX
    compute_90"), asserting that the set-up stopped there and made nothing (its cache folder not even created)."""
    assert run.returncode == 0, run.stderr
    found = re.search(r"^\[setup\] plan: Python [^;]+; CUDA: ([^;]+); apt: .*\(--plan: nothing changed\)$", run.stdout,
                      re.M)
    assert found, run.stdout
    return found.group(1)


def test_the_plan_changes_nothing_and_the_set_up_takes_no_other_argument(tmp_path):
    env = {**os.environ, "PARK3D_CUDA": "off", "PARK3D_CACHE": str(tmp_path / "cache"),
           "PARK3D_VENV": str(tmp_path / "venv")}
    run = subprocess.run(["bash", str(REPO / "tools/setup.sh"), "--plan"], capture_output=True, text=True, env=env)
    assert plan(run) == "off (the CPU build)"
    assert not (tmp_path / "cache").exists() and not (tmp_path / "venv").exists()
    wrong = subprocess.run(["bash", str(REPO / "tools/setup.sh"), "--dry-run"], capture_output=True, text=True, env=env)
    assert wrong.returncode != 0 and "unknown argument '--dry-run'" in wrong.stderr
    assert not (tmp_path / "cache").exists()


def test_cudnn_is_the_default_where_a_gpu_is_seen_and_off_opts_out(tmp_path):
    """PARK3D_CUDNN unset: cuDNN 9 with the CUDA route where nvidia-smi sees a GPU (said in one line), none where
    PARK3D_CUDNN=off."""
    seen = run_setup_with_driver(tmp_path, "13", "580.65.06")
    assert "cuDNN 9 with CUDA route 13: a GPU is seen" in seen.stdout and plan(seen).startswith("route 13, cuDNN 9,")
    off = run_setup_with_driver(tmp_path, "13", "580.65.06", PARK3D_CUDNN="off")
    assert "cuDNN 9 with" not in off.stdout and plan(off).startswith("route 13, cuDNN off,"), off.stdout
    wrong = run_setup_with_driver(tmp_path, "13", "580.65.06", PARK3D_CUDNN="8")
    assert wrong.returncode != 0 and "expected auto, off or 9" in wrong.stderr


def debian_bookworm() -> bool:
    """Debian 12, the one system whose own packages hold route 11.8's toolkit (elsewhere the set-up offers 13)."""
    release = Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    return "ID=debian" in release and "VERSION_CODENAME=bookworm" in release


def test_a_driver_too_old_for_the_route_is_one_line_naming_the_other_route(tmp_path):
    # NVIDIA's published floors: CUDA 13.0 needs driver 580.65.06, CUDA 11.8 needs 450.80.02.
    old = run_setup_with_driver(tmp_path, "13", "580.65.05")
    assert old.returncode != 0 and len(old.stderr.strip().splitlines()) == 1, old.stderr
    assert "580.65.05" in old.stderr and "580.65.06" in old.stderr
    assert ("PARK3D_CUDA=11.8" in old.stderr) == debian_bookworm(), old.stderr  # only where 11.8 can be had
    older = run_setup_with_driver(tmp_path, "auto", "440.33")  # a GPU seen: the system's default route
    default = "11.8" if debian_bookworm() else "13"
    assert older.returncode != 0 and f"older than CUDA {default}" in older.stderr and "PARK3D_CUDA=off" in older.stderr
    new_enough = run_setup_with_driver(tmp_path, "13", "580.65.06")  # passes the check
    assert plan(new_enough).startswith("route 13,") and "older than" not in new_enough.stderr
    wrong = run_setup_with_driver(tmp_path, "12", "580.65.06")
    assert wrong.returncode != 0 and "expected auto, off, on, 11.8" in wrong.stderr
    if not debian_bookworm():  # Debian 13, Ubuntu: route 11.8 is refused in one line naming the system's routes
        refused = run_setup_with_driver(tmp_path, "11.8", "580.65.06")
        assert refused.returncode != 0 and "route 11.8 is Debian 12's own CUDA toolkit" in refused.stderr, (
            refused.stderr
        )


def test_the_gpus_seen_get_machine_code_and_one_too_old_is_refused_before_anything_is_installed(tmp_path):
    """A100 and H100 machine code by default; a GPU of another major architecture adds its own (a T4, 7.5, on
    route 13), one of the same major runs sm_80's or sm_90's (an RTX 3090, 8.6); one older than the route's nvcc
    compiles for is refused in one line (a V100, 7.0, on route 13), one newer runs the PTX (Blackwell on 11.8);
    PARK3D_CUDA_ARCH replaces the list, unchecked."""
    defaults = "machine code for sm_80, sm_90, PTX compute_90"
    t4 = run_setup_with_driver(tmp_path, "13", "580.65.06", ("7.5",))
    assert "machine code for sm_75 too, the GPU seen (compute capability 7.5" in t4.stdout, t4.stdout
    assert plan(t4).endswith("machine code for sm_75, sm_80, sm_90, PTX compute_90"), t4.stdout
    mixed = run_setup_with_driver(tmp_path, "13", "580.65.06", ("8.6", "7.5", "8.6", "9.0"))
    assert mixed.stdout.count(" too, the GPU seen") == 1 and "sm_75, sm_80, sm_90," in plan(mixed), mixed.stdout
    for caps in (("8.6",), ("8.9", "9.0"), ()):
        assert plan(run_setup_with_driver(tmp_path, "13", "580.65.06", caps)).endswith(defaults), caps
    blackwell = run_setup_with_driver(tmp_path, "13", "580.65.06", ("12.0",))
    assert plan(blackwell).endswith("sm_80, sm_90, sm_120, PTX compute_90"), blackwell.stdout
    v100 = run_setup_with_driver(tmp_path, "13", "580.65.06", ("9.0", "7.0"))
    assert v100.returncode != 0 and len(v100.stderr.strip().splitlines()) == 1, v100.stderr
    assert "compute capability 7.0" in v100.stderr and "sm_75 and newer" in v100.stderr, v100.stderr
    assert ("PARK3D_CUDA=11.8" in v100.stderr) == debian_bookworm() and "PARK3D_CUDA=off" in v100.stderr
    assert "plan:" not in v100.stdout  # refused before the plan, and so before the apt step installs anything
    chosen = run_setup_with_driver(tmp_path, "13", "580.65.06", ("7.0",), PARK3D_CUDA_ARCH="70")
    assert plan(chosen).endswith("machine code for sm_70, PTX compute_90"), chosen.stdout
    if debian_bookworm():  # route 11.8: Pascal is compiled, Blackwell runs the PTX, route 13 named
        pascal = run_setup_with_driver(tmp_path, "11.8", "580.65.06", ("6.1",))
        assert plan(pascal) == "route 11.8, cuDNN 9, machine code for sm_61, sm_80, sm_90, PTX compute_90"
        newer = run_setup_with_driver(tmp_path, "11.8", "580.65.06", ("12.0",))
        assert "newer than CUDA 11.8" in newer.stdout and "PARK3D_CUDA=13 compiles" in newer.stdout, newer.stdout
        assert plan(newer) == f"route 11.8, cuDNN off, {defaults}", newer.stdout


def test_a_gpu_the_route_or_its_cudnn_does_not_cover_changes_the_defaults(tmp_path):
    """NVIDIA's support matrices: cuDNN 9.10 for CUDA 11 runs on compute capability 5.0 to 9.0, cuDNN 9 for CUDA 13
    on 7.5 to 12.x. A GPU outside the route's cuDNN gets no cuDNN by default, in one line; on Debian 12, a Blackwell
    GPU takes route 13 in place of 11.8 where the driver runs CUDA 13 (580.65.06), else keeps 11.8 and its PTX."""
    in_range = run_setup_with_driver(tmp_path, "13", "580.65.06", ("7.5", "12.0"))
    assert plan(in_range).startswith("route 13, cuDNN 9,"), in_range.stdout
    future = run_setup_with_driver(tmp_path, "13", "580.65.06", ("13.0",))  # newer than CUDA 13.0 and its cuDNN
    assert "newer than CUDA 13.0" in future.stdout and "cuDNN: none with CUDA route 13" in future.stdout, future.stdout
    assert plan(future).startswith("route 13, cuDNN off,")
    forced = run_setup_with_driver(tmp_path, "13", "580.65.06", ("13.0",), PARK3D_CUDNN="9")
    assert "cuDNN: none" not in forced.stdout and plan(forced).startswith("route 13, cuDNN 9,"), forced.stdout
    blackwell = run_setup_with_driver(tmp_path, "auto", "580.95.05", ("8.0", "12.0"))
    assert plan(blackwell) == "route 13, cuDNN 9, machine code for sm_80, sm_90, sm_120, PTX compute_90"
    if not debian_bookworm():  # route 13 is the default already: nothing to say
        assert "route 13, which compiles" not in blackwell.stdout
        return
    assert "cuda: route 13, which compiles for the GPU seen (compute capability 12.0)" in blackwell.stdout
    old_driver = run_setup_with_driver(tmp_path, "auto", "575.57.08", ("12.0",))
    assert plan(old_driver) == "route 11.8, cuDNN off, machine code for sm_80, sm_90, PTX compute_90"
    assert "newer than CUDA 11.8" in old_driver.stdout and "5.0 to 9.0" in old_driver.stdout, old_driver.stdout
    assert "not on the GPU seen (12.0;" in old_driver.stdout
    ampere = run_setup_with_driver(tmp_path, "auto", "580.95.05", ("8.6",))  # Debian 12's default stands
    assert plan(ampere) == "route 11.8, cuDNN 9, machine code for sm_80, sm_90, PTX compute_90", ampere.stdout
    kepler = run_setup_with_driver(tmp_path, "11.8", "470.256.02", ("3.7",))
    assert plan(kepler) == "route 11.8, cuDNN off, machine code for sm_37, sm_80, sm_90, PTX compute_90"


def test_each_route_lists_the_architectures_its_nvcc_compiles():
    """CUDA_ARCH_SUPPORTED in each lock is what that route's own nvcc says (`--list-gpu-code`), in ascending order
    (the set-up takes the last as the newest), where the route's toolkit is on this machine (route 13's in the
    set-up's cache, route 11.8's from Debian's package)."""
    found = {route: route_nvcc(route)[0] for route in ("11.8", "13")}
    if not any(found.values()):
        pytest.skip("no route's nvcc on this machine (the CUDA smoke test builds them)")
    for route, nvcc in found.items():
        if nvcc:
            listed = subprocess.run([str(nvcc), "--list-gpu-code"], capture_output=True, text=True, check=True).stdout
            supported = [int(arch) for arch in lock_values(f"cuda-{route}.lock")["CUDA_ARCH_SUPPORTED"].split()]
            assert supported == sorted({int(code.removeprefix("sm_")) for code in listed.split()}), (route, nvcc)


def named_paths(text: str) -> list:
    """Repository paths a document names in backticks (placeholders, outputs and other repositories' paths aside)."""
    outputs = ("out/", "results/", "snapshots/", "data/", "logs/", ".venv/", ".device/", "/", "~", "$", "…", "http")
    found = []
    for token in re.findall(r"`([^`\n]+)`", text):
        for word in token.split():
            word = word.strip("(),;:'\"").split(":")[0]
            if "/" in word and re.match(r"^[\w.\-/]+$", word) and not word.startswith(outputs):
                found.append(word)
    return found


def test_every_path_the_docs_name_exists():
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    missing = [(doc.name, p) for doc in docs for p in named_paths(doc.read_text()) if not (REPO / p).exists()]
    assert not missing, missing


def imported_packages(path: Path) -> set:
    import ast

    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_module_map_matches_the_code():
    """docs/design.md's map lists every module of the packages (and only existing ones), and each package imports
    only what the map allows: data_prep itself (and Caffe's protobuf for the Datum), layers data_prep, prototxt
    both, no package a tool."""
    design = (REPO / "docs" / "design.md").read_text()
    table = design[design.index("## Map of the modules"):].split("\n## ", 1)[0].split("\n### ", 1)[0]
    listed = set()
    for cell in re.findall(r"^\| (`[^|]*`) \|", table, re.M):
        listed |= set(re.findall(r"`([\w/*.]+\.py)`", cell))
    modules = {
        str(p.relative_to(REPO))
        for pkg in ("data_prep", "layers", "prototxt", "bench")
        for p in (REPO / pkg).glob("*.py")
        if p.name != "__init__.py"
    }
    covered = {m for m in modules if any(Path(m).match(pattern) for pattern in listed)}
    assert covered == modules, sorted(modules - covered)
    assert all(any(Path(m).match(pattern) for m in modules) for pattern in listed), listed
    allowed = {"data_prep": {"data_prep", "caffe"}, "layers": {"data_prep", "layers", "caffe"},
               "prototxt": {"data_prep", "layers", "prototxt", "caffe"},
               "bench": {"data_prep", "layers", "prototxt", "bench", "caffe"}}
    ours = {"data_prep", "layers", "prototxt", "bench", "tools", "caffe"}
    wrong = {}
    for m in sorted(modules):
        pkg = m.split("/")[0]
        bad = (imported_packages(REPO / m) & ours) - allowed[pkg]
        if pkg == "data_prep" and "caffe" in imported_packages(REPO / m) and m != "data_prep/records.py":
            bad.add("caffe")
        if bad:
            wrong[m] = sorted(bad)
    assert not wrong, wrong


def run_setup_with_python(tmp_path, version: str):
    """tools/setup.sh with PYTHON= an interpreter that reports `version` (a stand-in script: the check reads only
    its version, before anything is installed)."""
    fake = tmp_path / f"python{version}"
    fake.write_text(f'#!/bin/sh\necho "{version}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "PARK3D_CUDA": "off", "PARK3D_CACHE": str(tmp_path / "cache"),
           "PARK3D_VENV": str(tmp_path / "venv")}
    return subprocess.run(["bash", str(REPO / "tools/setup.sh")], capture_output=True, text=True, env=env, timeout=120)


def test_a_python_outside_the_supported_range_or_without_boost_python_is_one_line(tmp_path):
    old = run_setup_with_python(tmp_path, "3.9")
    assert old.returncode != 0 and "supports 3.10 to 3.13" in old.stderr and len(old.stderr.strip().splitlines()) == 1
    # a supported version that the system's Boost.Python was not built for (every Debian has one Python 3)
    system = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                            capture_output=True, text=True).stdout.strip()
    other = next(v for v in ("3.10", "3.11", "3.12", "3.13") if v != system)
    no_boost = run_setup_with_python(tmp_path, other)
    assert no_boost.returncode != 0 and f"no Boost.Python for Python {other}" in no_boost.stderr, no_boost.stderr
    assert "PYTHON=/usr/bin/python3" in no_boost.stderr


def test_every_module_has_its_tests_named():
    """docs/design.md's rule: a module's tests are tests/test_<module>.py, or its row in "Where the other modules are
    tested" names test modules that exist and use it (import it, run it, or name its file), or says none and why."""
    design = (REPO / "docs" / "design.md").read_text()
    table = design[design.index("### Where the other modules are tested"):].split("\n## ", 1)[0]
    rows = {}
    for cells, tested in re.findall(r"^\| (`[^|]*`) \| ([^|]*) \|$", table, re.M):
        for module in re.findall(r"`([\w/]+\.py)`", cells):
            rows[module] = tested
    modules = sorted(str(p.relative_to(REPO)) for pkg in ("data_prep", "layers", "prototxt", "bench", "tools")
                     for p in (REPO / pkg).glob("*.py") if p.name != "__init__.py")
    wrong = {}
    for m in modules:
        stem = Path(m).stem
        if (REPO / "tests" / f"test_{stem}.py").is_file():
            if m in rows:
                wrong[m] = "has tests/test_<module>.py and a row"
            continue
        tested = rows.get(m)
        if tested is None:
            wrong[m] = "no tests/test_<module>.py and no row"
            continue
        if tested.startswith("none: "):
            continue
        named = re.findall(r"`(tests/test_\w+\.py)`", tested)
        if not named:
            wrong[m] = "its row names no test module and does not say none and why"
            continue
        package = Path(m).parent.name
        uses = [f"{package}.{stem}", m, f"from {package} import {stem}", f"{stem}.py"]
        for tool in (REPO / "tools").glob("*.py"):  # or run a tool that imports it
            if f"from {package}.{stem} import" in tool.read_text():
                uses += [f"tools/{tool.name}", f"from tools import {tool.stem}"]
        for t in named:
            text = (REPO / t).read_text() if (REPO / t).is_file() else None
            if text is None or not any(u in text for u in uses):
                wrong[m] = f"{t} does not exist or does not use it"
    assert not wrong, wrong
    assert set(rows) <= set(modules), sorted(set(rows) - set(modules))
