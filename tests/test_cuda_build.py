"""The CUDA variants of the set-up, built or reused from the cache into their own venvs and checked on a machine
without a GPU, so a CUDA build cannot rot unnoticed: the library links CUDA's runtime, cuBLAS, cuRAND and NCCL;
pycaffe imports with NCCL; Caffe's CPU gtests pass; training the tiny solver in CPU mode gives the CPU build's
losses; asking for a GPU that is not there is one clear line. Opt-in (a cold build takes 10-15 minutes on 2
cores): PARK3D_CUDA_SMOKE=1 checks the default route (11.8); PARK3D_CUDA_SMOKE=13, or 11.8,13 (as .ci/run
does), the routes named; a route with "+cudnn9" (11.8+cudnn9, 13+cudnn9, as .ci/run checks them) is its build
with cuDNN 9 (PARK3D_CUDNN=9), in a venv of its own, and its library must link cuDNN too."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, SETUP_CACHE, caffe_env, lock_values, route_nvcc
from layers.caffe_build import caffe_home, gpu_code, gtest_cpu_filter, gtest_filters, run_caffe_gtests

SMOKE = os.environ.get("PARK3D_CUDA_SMOKE", "")
ROUTES = ["11.8"] if SMOKE == "1" else [r for r in SMOKE.split(",") if r]
pytestmark = pytest.mark.skipif(not ROUTES, reason="CUDA build smoke test: set PARK3D_CUDA_SMOKE=1 (as .ci/run "
                                                   "does), or to the routes to check, e.g. 11.8,13")

CACHE = SETUP_CACHE


def venv(route: str) -> Path:
    return CACHE / f"venv-cuda-{route.replace('+', '-')}"


def route_env(route: str) -> dict:
    """The set-up's environment for a route of PARK3D_CUDA_SMOKE: "11.8", "13", or either with "+cudnn9"."""
    cuda, _, extra = route.partition("+")
    return {"PARK3D_CUDA": cuda, "PARK3D_CUDNN": "9" if extra == "cudnn9" else "off", "PARK3D_VENV": str(venv(route))}


@pytest.fixture(scope="module", params=ROUTES or ["none"])
def route(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def cuda_home(route) -> Path:
    out = subprocess.run(["bash", str(REPO / "tools/setup.sh")], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, **route_env(route)}, timeout=3600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"route {route}:\n{out.stdout}")  # the set-up's step times, cold or cached
    return caffe_home(venv(route))


def test_the_library_links_cuda_and_nccl(cuda_home, route):
    ldd = subprocess.run(["ldd", str(cuda_home / "lib" / "libcaffe.so")], capture_output=True, text=True).stdout
    major = route.split(".")[0].split("+")[0]
    wanted = [f"libcudart.so.{major}", f"libcublas.so.{major}", "libcurand.so", "libnccl.so"]  # the route's CUDA
    for lib in wanted + (["libcudnn.so.9"] if route.endswith("+cudnn9") else []):
        assert lib in ldd, (lib, ldd)
    if not route.endswith("+cudnn9"):
        assert "libcudnn" not in ldd, ldd
    assert "not found" not in ldd, ldd


def test_a_pypi_route_build_read_cuda_headers_from_its_own_toolkit_only(cuda_home, route):
    """Route 13's host compiler is given its toolkit's include/cccl (cuda-13.lock); the set-up's header guard read
    every dependency file of the build and found no CUDA header from elsewhere (/usr/include/thrust, say: Debian's
    CUDA 11.8 where route 11.8 was built on the same machine)."""
    if not route.startswith("13"):
        pytest.skip("route 11.8 is Debian's toolkit, installed in /usr: its headers are the system's")
    report = (cuda_home / "share" / "cuda_header_guard.txt").read_text()
    checked = re.match(r"checked (\d+) dependency files: (\d+) CUDA headers from outside ", report)
    assert checked and int(checked.group(1)) > 100 and checked.group(2) == "0", report[:3000]


def test_the_fused_gpu_kernels_are_compiled_into_every_cuda_build(cuda_home):
    """third_party/caffe/patches-cuda/ 0009 applies to every CUDA build: its kernels' names are in the library's GPU
    code (float and double instances), and the CPU build, which it must leave alone, has none of them."""
    library = (cuda_home / "lib" / "libcaffe.so").read_bytes()
    for kernel in (b"BiasBackwardReduce", b"BatchNormChannelStats", b"BatchNormNormalize", b"BatchNormGradientSums",
                   b"BatchNormBackwardApply", b"BatchNormBackwardGlobal"):
        assert kernel + b"IfE" in library and kernel + b"IdE" in library, kernel
    assert b"BatchNormChannelStats" not in (caffe_home(REPO / ".venv") / "lib" / "libcaffe.so").read_bytes()


def test_gpu_code_reads_the_architectures_nvcc_was_asked_for(cuda_home, route, tmp_path):
    """layers.caffe_build.gpu_code on a library the route's nvcc builds here for sm_75 and sm_86 machine code and
    compute_86 PTX, then on one without GPU code."""
    nvcc, host = route_nvcc(route)
    assert nvcc, f"route {route}'s nvcc is missing after its set-up"
    (tmp_path / "k.cu").write_text("__global__ void twice(float *x) { x[threadIdx.x] *= 2.0f; }\n"
                                   "void launch(float *x) { twice<<<1, 32>>>(x); }\n")
    subprocess.run([str(nvcc), "-ccbin", host, "-shared", "-Xcompiler", "-fPIC", "-o", str(tmp_path / "libk.so"),
                    "-gencode", "arch=compute_75,code=sm_75", "-gencode", "arch=compute_86,code=[sm_86,compute_86]",
                    str(tmp_path / "k.cu")], check=True, capture_output=True, timeout=300)
    assert gpu_code(tmp_path / "libk.so") == {("ELF", 75), ("ELF", 86), ("PTX", 86)}
    assert gpu_code(caffe_home(REPO / ".venv") / "lib" / "libcaffe.so") == set()  # the CPU build


def test_the_build_holds_machine_code_for_a100_and_h100_and_ptx_for_newer(cuda_home, route):
    """What the lock's defaults ask for is what the library carries (the set-up adds the architectures of GPUs that
    nvidia-smi sees; this machine may have none)."""
    pins = lock_values(f"cuda-{route.partition('+')[0]}.lock")
    want = {("ELF", int(a)) for a in pins["CUDA_ARCH_BIN_DEFAULT"].split()}
    want |= {("PTX", int(a)) for a in pins["CUDA_ARCH_PTX_DEFAULT"].split()}
    assert want == {("ELF", 80), ("ELF", 90), ("PTX", 90)}, want
    got = gpu_code(cuda_home / "lib" / "libcaffe.so")
    gpus_seen = subprocess.run("nvidia-smi -L", shell=True, capture_output=True).returncode == 0
    assert got >= want if gpus_seen else got == want, got


# What this machine's CUDA runtime answers without a card: no driver library, a driver library older than the
# route's CUDA (Debian's libcuda1 of CUDA 12.2 beside route 13), or a driver with no GPU behind it.
NO_CARD = ("no NVIDIA driver here", "at most and this Caffe is built with CUDA", "the CUDA runtime sees no GPU")


def test_pycaffe_imports_with_nccl_and_a_missing_gpu_is_one_clear_line(cuda_home, route):
    code = ("import caffe; from layers.device import caffe_has_cuda, use_device; "
            "print(caffe_has_cuda(), hasattr(caffe.NCCL, 'new_uid')); use_device(0)")
    out = subprocess.run([str(venv(route) / "bin" / "python"), "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert out.stdout.split()[:2] == ["True", "True"], out.stdout + out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("data_prep.errors.UserError: --gpu 0: ") and any(s in last for s in NO_CARD), out.stderr
    assert "Check failed" not in out.stderr, out.stderr  # asked of the runtime before Caffe could abort on it


def test_a_card_the_build_has_no_code_for_is_one_line_before_the_run(cuda_home, route):
    """require_gpu's last check, on the route's real library (its GPU code read from the loaded libcaffe): a T4
    (7.5) or a V100 (7.0) would stop at the first layer with CUDA error 209, which aborts a pycaffe process; the
    cards the defaults cover pass. The card's own capability cannot be asked here (no card): the runtime's error
    gives None, and the check is left out."""
    code = ("import caffe; from layers.device import compute_capability, cudart_path, gpu_code_advice; "
            "print(compute_capability(cudart_path(), 0)); "
            "[print(gpu_code_advice(0, c)) for c in [(7, 5), (7, 0), (8, 6), (9, 0), (12, 0)]]")
    out = subprocess.run([str(venv(route) / "bin" / "python"), "-c", code], cwd=REPO, capture_output=True, text=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 6, out.stdout + out.stderr
    assert lines[0] == "None"
    for line, cc in zip(lines[1:3], ["7.5", "7.0"]):
        assert line.startswith(f"GPU 0 has compute capability {cc} and this Caffe holds GPU code for sm_80, sm_90, "
                               "PTX compute_90 only"), line
    assert lines[3:] == ["None"] * 3, lines


def test_caffe_train_stopped_by_the_gpu_is_one_line(cuda_home, route, tmp_path):
    """The real caffe tool of the route, `caffe train -gpu 0` with no card: its CUDA_CHECK aborts it, and the
    drivers' reading of the log (layers.training.raise_for_result) is one line saying what to do."""
    code = """
import sys
from pathlib import Path
from data_prep.errors import UserError
from layers.training import raise_for_result, run_caffe_train
solver, log = Path("tests/data/tiny_solver.prototxt"), Path(sys.argv[1])
result = run_caffe_train(solver, log, 20, progress=False, extra_args=["-gpu", "0"])
try:
    raise_for_result(result, solver, log, None, 0)
except UserError as e:
    print(e)
"""
    # the tool itself, as the set-up's wrapper starts it, but without the wrapper's own check of -gpu (below)
    env = {**os.environ, "PARK3D_CAFFE": str(cuda_home / "bin" / "caffe"),
           "PATH": f"{venv(route) / 'bin'}:{os.environ['PATH']}"}
    out = subprocess.run([str(venv(route) / "bin" / "python"), "-c", code, str(tmp_path / "train.log")], cwd=REPO,
                         capture_output=True, text=True, env=env, timeout=300)
    assert "Check failed: error == cudaSuccess" in (tmp_path / "train.log").read_text()
    line = out.stdout.strip()
    assert line.startswith("caffe train stopped on GPU 0: ") and "\n" not in line, out.stdout + out.stderr
    assert any(s in line for s in NO_CARD), line


def test_the_users_own_caffe_train_gpu_0_is_one_line(cuda_home, route):
    """The README's `caffe train -solver ... -gpu 0` through the set-up's wrapper of the route, no card here: the
    wrapper's check (layers.device) says it in one line, exit code 2, before the tool's CUDA_CHECK could abort."""
    out = subprocess.run([str(venv(route) / "bin" / "caffe"), "train", "-solver", "tests/data/tiny_solver.prototxt",
                          "-gpu", "0"], cwd=REPO, capture_output=True, text=True, timeout=300)
    line = out.stderr.strip()
    assert out.returncode == 2 and "\n" not in line and line.startswith("caffe: error: -gpu 0: "), out.stderr
    assert any(s in line for s in NO_CARD), line


def test_caffe_cpu_gtests_pass(cuda_home):
    run = run_caffe_gtests(cuda_home, gtest_cpu_filter(cuda_home))
    assert run.returncode == 0, run.log[-3000:]
    assert run.passed >= 500, run.passed


def train_tiny(caffe_binary: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(caffe_binary), "train", "-solver", "tests/data/tiny_solver.prototxt"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**caffe_env(), "GLOG_minloglevel": "0", **env},
        timeout=600,
    )


def losses(caffe_binary: Path, **env) -> list:
    out = train_tiny(caffe_binary, **env)
    assert out.returncode == 0, out.stderr[-3000:]
    return [float(v) for v in re.findall(r"Iteration \d+ \(.*\), loss = ([0-9.e+-]+)", out.stderr)]


def test_cpu_mode_training_matches_the_cpu_build(cuda_home, route):
    cpu, cuda = losses(REPO / ".venv" / "bin" / "caffe"), losses(venv(route) / "bin" / "caffe")
    assert len(cpu) == len(cuda) == 20
    assert cuda == pytest.approx(cpu, rel=1e-5), (cpu, cuda)


def test_the_tf32_option_is_read_at_start_up(cuda_home, route):
    """The cuDNN builds' CAFFE_TF32 (patch 0007): a value other than 0 or 1 stops Caffe when it starts, naming the
    value, with or without a GPU; CAFFE_TF32=1 says so in the log and leaves CPU-mode training as it was (TF32 is
    GPU math). What it changes on a card is measured by tools/device_check.sh."""
    if not route.endswith("+cudnn9"):
        pytest.skip("CAFFE_TF32 is an option of the cuDNN builds (third_party/caffe/patches-cudnn/0007)")
    caffe = venv(route) / "bin" / "caffe"
    bad = train_tiny(caffe, CAFFE_TF32="yes")
    assert bad.returncode != 0 and "CAFFE_TF32=yes: expected 0" in bad.stderr, bad.stderr[-2000:]
    on = train_tiny(caffe, CAFFE_TF32="1")
    assert on.returncode == 0 and "CAFFE_TF32=1: cuBLAS and cuDNN may use TF32" in on.stderr, on.stderr[-2000:]
    assert "TF32" not in train_tiny(caffe, CAFFE_TF32="0").stderr
    assert losses(caffe, CAFFE_TF32="1") == pytest.approx(losses(REPO / ".venv" / "bin" / "caffe"), rel=1e-5)


def test_the_cudnn_convolution_options_are_read_at_start_up(cuda_home, route):
    """The cuDNN builds' CAFFE_CUDNN_WORKSPACE_MB and CAFFE_CUDNN_FIND (patch 0011): a value out of range stops Caffe
    when it starts, naming the variable and what it takes, with or without a GPU; values in range leave CPU-mode
    training as it was (they choose among cuDNN's GPU algorithms). What they change on a card: tools/device_check.sh."""
    if not route.endswith("+cudnn9"):
        pytest.skip("the cuDNN convolution's options (third_party/caffe/patches-cudnn/0011)")
    caffe = venv(route) / "bin" / "caffe"
    for value in ("lots", "-1", "65537", "", "8MB"):
        bad = train_tiny(caffe, CAFFE_CUDNN_WORKSPACE_MB=value)
        assert bad.returncode != 0, value
        assert f"CAFFE_CUDNN_WORKSPACE_MB={value}: expected a whole number of MiB from 0 to 65536" in bad.stderr, \
            bad.stderr[-2000:]
    bad = train_tiny(caffe, CAFFE_CUDNN_FIND="yes")
    assert bad.returncode != 0 and "CAFFE_CUDNN_FIND=yes: expected 0" in bad.stderr, bad.stderr[-2000:]
    options = dict(CAFFE_CUDNN_WORKSPACE_MB="65536", CAFFE_CUDNN_FIND="1")
    assert losses(caffe, **options) == pytest.approx(losses(REPO / ".venv" / "bin" / "caffe"), rel=1e-5)


def run_kit(script: str, env: dict, timeout: int) -> subprocess.CompletedProcess:
    """bash tools/SCRIPT --cpu in a session of its own. Past `timeout`, a TERM to the whole session (the kit's exit trap
    packs its logs and stops its children; a KILL would leave its gtests running on) and a failure that shows the
    summary so far: which step ran long is then in the failure, not lost with the kit's folder."""
    kit = subprocess.Popen(["bash", str(REPO / "tools" / script), "--cpu"], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = kit.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(kit.pid, signal.SIGTERM)
        try:
            stdout, stderr = kit.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(kit.pid, signal.SIGKILL)
            stdout, stderr = kit.communicate()
        pytest.fail(f"{script} --cpu ran past {timeout} s; its output so far:\n{stdout[-6000:]}\n{stderr[-2000:]}")
    return subprocess.CompletedProcess(kit.args, kit.returncode, stdout, stderr)


def gpu_machine_python() -> Path:
    """A venv imitating the GPU machines' Python (tests/data/gpu_machine_python.txt: NumPy 2, no lmdb, no Caffe),
    made once in the set-up's cache from the set-up's interpreter."""
    pins = REPO / "tests" / "data" / "gpu_machine_python.txt"
    home = CACHE / "venv-gpu-machine-standin"
    stamp = home / ".pins"
    if not (stamp.is_file() and stamp.read_text() == pins.read_text()):
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--clear", str(home)], check=True)
        subprocess.run([str(home / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                        str(pins)], check=True)
        stamp.write_text(pins.read_text())
    return home / "bin" / "python"


@pytest.fixture(scope="module")
def kit_session(cuda_home, route, tmp_path_factory) -> dict:
    """tools/device_bundle.sh, then tools/device_session.sh --cpu once for the tests below: the call a lent card
    gets, rehearsed on this CPU from the bundle alone (plus CUDA 13's libraries and cuDNN), with a venv imitating the
    GPU machines' Python for its pycaffe. Batch 2, one iteration per timing, a small demo: a check, not a figure.
    Run with route 13+cudnn9, the last of .ci/run's routes, when both builds are in the cache. Returns OUT, each
    part's summary (by part), the session's last line and exit status, and whether the peer ran (torch)."""
    if route != "13+cudnn9":
        pytest.skip("the GPU machines' kit is built from route 13 and 13+cudnn9 (their driver and PyTorch are CUDA 13)")
    tmp = tmp_path_factory.mktemp("kit")
    (tmp / "tmp").mkdir()
    # the kit as a user runs it: glog's files where the kit puts them, not in the session's folder (tests/conftest.py)
    env = {**{k: v for k, v in os.environ.items() if k != "GLOG_log_dir"}, "OUT": str(tmp / "out"),
           "PARK3D_DEVICE_DIR": str(tmp / "device"), "PYTHON": str(gpu_machine_python()), "TMPDIR": str(tmp / "tmp")}
    # the peer runs where the set-up's venv holds torch (.ci/run installs it before this test), else it is skipped
    venv = str(REPO / ".venv" / "bin" / "python")
    with_torch = subprocess.run([venv, "-c", "import torch"], capture_output=True).returncode == 0
    if with_torch:
        env["PEER_PYTHON"] = venv
    bundle = subprocess.run(["bash", str(REPO / "tools/device_bundle.sh"), "2"], cwd=REPO, capture_output=True,
                            text=True, env=env, timeout=1200)
    assert bundle.returncode == 0, bundle.stdout[-2000:] + bundle.stderr[-2000:]
    # each gtest case stops at GTEST_TIMEOUT, and the gtests start none past the session's deadline, naming what they
    # cut off or did not start (device_check 73 s, device_e2e 282 s on a 2-core AMD EPYC, docs/benchmarks.md)
    out = run_kit("device_session.sh", {**env, "SESSION_SECONDS": "3000", "GTEST_TIMEOUT": "300"}, timeout=3600)
    summary = (tmp / "out" / "summary.md").read_text()
    print(summary)
    body = summary.rstrip("\n").rsplit("\n", 1)[0]  # less the session's last line
    parts = dict(re.findall(r"^## (\w+) \(.*?\n(.*?)(?=^## |\Z)", body, re.M | re.S))
    return {"out": tmp / "out", "summary": summary, "parts": parts, "last": summary.splitlines()[-1],
            "code": out.returncode, "stderr": out.stderr, "with_torch": with_torch, "env": env, "tmpdir": tmp / "tmp"}


def test_one_call_runs_every_part_and_brings_back_few_files(kit_session):
    """tools/device_session.sh: the timings, the user's path and the gtests in one call, each part's summary in turn
    and one last line; each part's other files packed, so that a card's call brings back at most eight files."""
    assert kit_session["code"] == 0, kit_session["summary"] + kit_session["stderr"][-2000:]
    assert list(kit_session["parts"]) == ["timings", "e2e", "gtests"], kit_session["summary"]
    assert re.fullmatch(r"device_session: \d+ s in all; timings exit 0, e2e exit 0, gtests exit 0", kit_session["last"])
    out = kit_session["out"]
    # --cpu alone: the demo's weights and test set, for this machine's CPU build
    assert sorted(p.name for p in out.iterdir()) == ["e2e.tgz", "final.caffemodel", "gtests.tgz", "summary.md",
                                                     "timings.tgz", "walking_test_lmdb.tgz"]
    assert len(list(out.iterdir())) - 2 <= 8  # on a card, without those two
    packed = {}
    for part in ("timings", "e2e", "gtests"):
        listed = subprocess.run(["tar", "tzf", str(out / f"{part}.tgz")], capture_output=True, text=True).stdout
        packed[part] = sorted(listed.split())
    peers = ["./peer_tf32-off.json", "./peer_tf32-on.json"] if kit_session["with_torch"] else []
    assert packed["timings"] == ["./", "./logs.tgz", *peers], packed
    assert packed["e2e"] == ["./", "./logs.tgz", "./poses_cpu-build.npz", "./poses_kit-cpu.npz"], packed
    assert packed["gtests"] == ["./", "./logs.tgz"], packed


def test_the_kit_leaves_nothing_in_tmpdir(kit_session):
    """The bundle, the session and its parts work in TMPDIR (their folders, the gtests' caffe_test.* folders, glog's
    files from the gtest processes) and remove it all by the end: a rehearsal on a user's machine leaves no trace."""
    assert sorted(p.name for p in kit_session["tmpdir"].iterdir()) == []


def test_a_part_stopped_at_the_deadline_or_by_a_signal_still_brings_back_its_logs(kit_session, tmp_path):
    """A part still running at SESSION_SECONDS is stopped (TERM, exit 124) and the session ends with exit 1; a TERM
    to the session (the caller's own deadline) reaches the running part and the session waits for it (exit 143).
    Either way the part's exit trap packs its logs, the session collects them and names what happened in its last
    line, and nothing of the part is left running or on disk."""
    def session(out, **env):
        return subprocess.Popen(["bash", str(REPO / "tools/device_session.sh"), "--cpu"], cwd=REPO, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                env={**kit_session["env"], "OUT": str(out), "PARTS": "e2e", **env})

    def leftovers():
        return sorted(Path(os.environ.get("TMPDIR", "/tmp")).glob("park3d-*"))

    before = leftovers()
    late = session(tmp_path / "late", SESSION_SECONDS="40")
    late.communicate(timeout=300)
    summary = (tmp_path / "late" / "summary.md").read_text()
    assert late.returncode == 1, summary
    assert re.search(r"^## e2e \(device_e2e\.sh, exit 124 after \d+ s: stopped at the deadline\)$", summary, re.M)
    assert re.fullmatch(r"device_session: \d+ s in all; e2e exit 124", summary.splitlines()[-1]), summary
    stopped = session(tmp_path / "term")
    time.sleep(15)
    os.kill(stopped.pid, signal.SIGTERM)
    stopped.communicate(timeout=120)
    summary = (tmp_path / "term" / "summary.md").read_text()
    assert stopped.returncode == 143, summary
    assert re.fullmatch(r"device_session: \d+ s in all; e2e exit 143, stopped by a signal", summary.splitlines()[-1])
    for out in ("late", "term"):
        packed = subprocess.run(["tar", "tzf", str(tmp_path / out / "e2e.tgz")], capture_output=True, text=True)
        assert packed.stdout.split() == ["./", "./logs.tgz"], packed
    assert leftovers() == before
    assert subprocess.run(["pgrep", "-f", "build_pycaffe|device_e2e"], capture_output=True).stdout == b""


def test_the_gpu_machine_kit_runs_its_steps_on_the_cpu(kit_session):
    """The timings and gtests parts (tools/device_check.sh --cpu): the libraries resolve, Caffe's CPU gtests pass in
    both builds, `caffe time` runs the four variants' time, deploy and evaluate nets (no Python layer) in each build,
    and the full model's with CAFFE_TF32=1, with CAFFE_CUDNN_REQUERY=1, with CAFFE_GPU_FUSED=1 and with the cuDNN
    workspace and timed algorithms (whose layers' gtests run too), and sums each row's per-layer times by layer
    type."""
    parts = kit_session["parts"]
    summary = parts.get("timings", "") + parts.get("gtests", "")
    assert kit_session["code"] == 0, kit_session["summary"] + kit_session["stderr"][-2000:]
    clean = r"failed: none, cut off by GTEST_TIMEOUT: none, crashed: none, not started in the kit's time: none"
    cpu_cases = re.escape(gtest_filters()["GTEST_FILTER_CUDA_BUILD_CPU_CASES"])
    gtests = re.findall(r"^(cudnn9|plain) build, Caffe's gtests \(" + cpu_cases + r"; "
                        r"(\d+) cases, \d+ at a time\): (\d+) passed, " + clean + r", \d+ s$", summary, re.M)
    # every layer type's case runs (45 of them), and each of its tests: 539 (540 less the one gtest_filters.env
    # leaves out), as the set-up's own run of the gtests
    assert [g[0] for g in gtests] == ["cudnn9", "plain"], summary
    assert all(int(g[1]) >= 45 and int(g[2]) >= 539 for g in gtests), summary
    assert re.search(r"^cuDNN at run time: 9\.\d+\.\d+ \(/", summary, re.M), summary
    rows = re.findall(
        r"^\| (plain|cudnn9|cudnn9-requery|plain-fused|cudnn9-fused|cudnn9-ws|cudnn9-find|cudnn9-all) \| (FP32|TF32) "
        r"\| (baseline|multireg|2dcls|both) "
        r"\| ([0-9.]+) "
        r"\| (\d+) \| (\d+) \| (\d+) \|$",
        summary,
        re.M,
    )
    variants = ["baseline", "multireg", "2dcls", "both"]
    assert [r[:3] for r in rows] == (
        [("plain", "FP32", v) for v in variants]
        + [("cudnn9", "FP32", v) for v in variants]
        + [("cudnn9", "TF32", "both"), ("cudnn9-requery", "FP32", "both"), ("plain-fused", "FP32", "both")]
        + [("cudnn9-fused", "FP32", "both"), ("cudnn9-fused", "TF32", "both")]
        + [("cudnn9-ws", "FP32", "both"), ("cudnn9-ws", "TF32", "both"), ("cudnn9-find", "FP32", "both")]
        + [("cudnn9-all", "FP32", "both"), ("cudnn9-all", "TF32", "both")]
    ), summary
    # the full model's deploy and evaluate nets folded, as prediction and tools/evaluate.py run them, in the rows
    # whose convolutions differ; against the peer's deploy forward where it ran
    folded = re.findall(r"^\| (plain|cudnn9|cudnn9-find) \| (FP32|TF32) \| (\d+) \| (\d+) \|$", summary, re.M)
    assert [f[:2] for f in folded] == [("plain", "FP32"), ("cudnn9", "FP32"), ("cudnn9", "TF32"),
                                       ("cudnn9-find", "FP32")], summary
    assert all(int(f[2]) > 0 and int(f[3]) > 0 for f in folded), folded
    folded_ratios = re.findall(r"^- \S+ (FP32|TF32), the deploy net folded .*: deploy inference [0-9.]+$", summary,
                               re.M)
    assert folded_ratios == (["FP32", "FP32", "TF32", "FP32"] if kit_session["with_torch"] else []), summary
    # where each row's training step goes: one line per row of the full model, the time net's layer types as columns
    profile = summary.split("Where the full model's training step goes", 1)[-1].splitlines()
    header = next(line for line in profile if line.startswith("| run | "))
    columns = header.strip("| ").split(" | ")[1:]  # layer types (capitalised, as Caffe's), then other and total
    assert {"Convolution", "InnerProduct"} <= set(columns) and columns[-1] == "total", header
    assert all(c[0].isupper() for c in columns if c not in ("other", "total")), header
    labels = [line.split(" | ")[0][2:] for line in profile if re.match(r"^\| \S+ (FP32|TF32) \| [0-9.]+ \|", line)]
    assert labels == [f"{r[0]} {r[1]}" for r in rows if r[2] == "both"], summary
    fused = re.search(r"^cudnn9 build with CAFFE_GPU_FUSED=1, Caffe's gtests \(BatchNormLayerTest/0\.\*:[^;]*; "
                      r"4 cases, \d+ at a time\): (\d+) passed, " + clean, summary, re.M)
    assert fused and int(fused.group(1)) >= 20, summary
    find = re.search(r"^cudnn9 build with CAFFE_CUDNN_FIND=1 and CAFFE_CUDNN_WORKSPACE_MB=1024, Caffe's gtests "
                     r"\(ConvolutionLayerTest/0\.\*:[^;]*; 2 cases, \d+ at a time\): (\d+) passed, " + clean,
                     summary, re.M)
    assert find and int(find.group(1)) >= 30, summary
    assert all(float(r[3]) > 0 and int(r[4]) > 0 and int(r[5]) > 0 and int(r[6]) > 0 for r in rows), rows
    peers = re.findall(r"^PyTorch [0-9.]+\S* on cpu \((FP32|TF32);", summary, re.M)
    assert peers == ["FP32", "TF32"] if kit_session["with_torch"] else "PyTorch peer skipped: " in summary, summary
    # each part's last line: nothing without a result
    for part in ("timings", "gtests"):
        assert re.search(r"^device_check: \d+ s in all$", parts[part].strip().splitlines()[-1], re.M), parts[part]


def test_the_users_path_on_the_gpu_machine_rehearsed_on_the_cpu(kit_session):
    """tools/device_e2e.sh --cpu: from the bundle alone, the caffe tool, pycaffe and Boost.Python compiled for another
    Python with NumPy 2 (tools/build_pycaffe.sh) against the route-13 cuDNN build's libcaffe; the demo (synthetic
    data, LMDBs, `caffe train` with the Python layers, evaluation), tools/evaluate.py, the batch-128 training with
    two worker settings, the images lent and copied, and `caffe time`; and the final weights' per-frame poses from
    that pycaffe equal to this machine's CPU build's (the set-up's pycaffe) to float rounding. Small sizes: a check,
    not a figure."""
    summary = kit_session["parts"]["e2e"]
    assert kit_session["code"] == 0, kit_session["summary"] + kit_session["stderr"][-2000:]
    assert re.search(r"^Python: 3\.\d+\.\d+ with NumPy 2\.", summary, re.M), summary
    for step in ("build-pycaffe", "wheels", "import-pycaffe", "demo", "evaluate", "train-b128-auto",
                 "train-b128-copied", "train-b128-all", "caffe-time", "faults", "train-b128-fused"):
        assert re.search(rf"^- {step}: \d+ s$", summary, re.M), (step, summary)
    assert re.search(r"tools/evaluate\.py, Walking: P1 \d+\.\d+, zero-mean \d+\.\d+, PA \d+\.\d+ mm", summary), summary
    assert re.search(r"kit-cpu against cpu-build: \d+ frames: .* mm: float rounding$", summary, re.M), summary
    rates = re.findall(r"batch 128, (CAFFE_GPU_FUSED=1, )?data-layer workers (\S+) \((\d+)\), images (\w+): "
                       r"(\d+) images/s", summary)
    # "auto" beside a CUDA build: every core but one, at most 8 (docs/gpu.md), the images lent (the kit's pycaffe
    # has patch 0012) and copied; then every core but one; last, auto again with the fused GPU kernels
    cores, auto = os.cpu_count(), str(min(max(os.cpu_count() - 1, 1), 8))
    expected = [("", "auto", auto, "lent"), ("", "auto", auto, "copied"), ("", str(cores - 1), str(cores - 1), "lent"),
                ("CAFFE_GPU_FUSED=1, ", "auto", auto, "lent")]
    assert [r[:4] for r in rates] == expected, summary
    assert all(int(r[4]) > 0 for r in rates), summary
    assert re.search(r"caffe time, the same net .*: \d+ images/s", summary), summary
    # a GPU the machine lacks, as the user meets it: one line and exit 2 (here the kit's CUDA Caffe finds no driver)
    fault = r"^    tools/evaluate\.py --gpu 0 \(0 GPUs here\): exit 2, 1 line on stderr: .*(driver|GPU)"
    assert re.search(fault, summary, re.M), summary
    assert re.search(r"final weights: \S+\.caffemodel, \d+ bytes, SHA-256 [0-9a-f]{16}$", summary, re.M), summary
    assert (kit_session["out"] / "final.caffemodel").stat().st_size > 1e6
