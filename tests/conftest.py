"""Shared fixtures: a small synthetic Human3.6M (the project's own generator), its LMDBs and a net trained on them
for a few iterations, built once per test session; Caffe's location; a numerical gradient checker for Python
layers; the set-up's cache, and the locks' pins as bash reads them."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from data_prep.cli import REPO  # noqa: F401  (the tests import it from here)


def caffe_home() -> Path:
    from data_prep.errors import UserError
    from layers.caffe_build import caffe_home as home

    try:
        return home()
    except UserError as e:  # no set-up yet
        pytest.fail(str(e))


# The set-up's cache, as tools/setup.sh finds it: its builds, venvs and toolkits
SETUP_CACHE = Path(
    os.environ.get("PARK3D_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "park3dpose")
)


def route_nvcc(route: str) -> tuple:
    """A CUDA route's nvcc (None where this machine lacks it) and its host compiler, from the route's lock:
    Debian's toolkit for 11.8, the wheels the set-up unpacked into its cache for 13. `route` may carry "+cudnn9"."""
    pins = lock_values(f"cuda-{route.partition('+')[0]}.lock")
    if pins["CUDA_TOOLKIT_ROOT"]:
        nvcc = Path(pins["CUDA_TOOLKIT_ROOT"]) / "bin" / "nvcc"
        return (nvcc if nvcc.exists() else None), pins["CUDA_HOST_COMPILER"]
    found = sorted(SETUP_CACHE.glob(f"cuda-{pins['CUDA_VERSION']}-*/nvidia/cu*/bin/nvcc"))
    return (found[-1] if found else None), pins["CUDA_HOST_COMPILER"]


def lock_values(name: str) -> dict:
    """The KEY=value pairs of a lock file in third_party/caffe/, read the way bash's `source` reads them."""
    script = f'source "{REPO}/third_party/caffe/{name}"; for v in ${{!CUDA_*}} ${{!NCCL_*}} ${{!CUDNN_*}}; do printf "%s=%s\\0" "$v" "${{!v}}"; done'  # noqa: E501
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if item)


def caffe_env() -> dict:
    from layers.caffe_build import caffe_env as env

    return env(GLOG_minloglevel=os.environ.get("GLOG_minloglevel", "1"))


def run_caffe_gtests(**env):
    """Caffe's own gtests of the layers and solver the nets use (third_party/caffe/build_options.env), CPU cases;
    returns (exit code, log, tests ran, tests passed)."""
    from layers.caffe_build import gtest_filters
    from layers.caffe_build import run_caffe_gtests as run

    r = run(caffe_home(), gtest_filters()["GTEST_FILTER_CPU_BUILD"], env={**caffe_env(), **env}, timeout=1800)
    return r.returncode, r.log, r.ran, r.passed


@pytest.fixture(scope="session", autouse=True)
def caffe_log_files_stay_in_the_session(tmp_path_factory):
    """Each Caffe process started with logging set up (the caffe tool, the gtests) writes glog files
    (caffe.<host>.<user>.log.INFO.<time>.<pid>, ...) into /tmp; the suite starts hundreds, so they go to this
    session's temporary folder instead, unless the caller chose GLOG_log_dir."""
    if "GLOG_log_dir" in os.environ:
        yield
        return
    os.environ["GLOG_log_dir"] = str(tmp_path_factory.mktemp("glog"))
    yield
    del os.environ["GLOG_log_dir"]


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from data_prep.synthetic import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("h36m")
    generate(GeneratorConfig(root, actions=("Walking",), frames=24, seed=3), workers=2, progress=False)
    return root


@pytest.fixture(scope="session")
def lmdb_build(synthetic_root, tmp_path_factory):
    from data_prep.lmdb_build import build_lmdbs

    out = tmp_path_factory.mktemp("lmdb")
    return out, build_lmdbs(synthetic_root, out, actions=("Walking",), step=2, workers=2, progress=False)


@pytest.fixture(scope="session")
def lmdb_root(lmdb_build) -> Path:
    """The folder with walking_train.lmdb and walking_test.lmdb built from synthetic_root."""
    return lmdb_build[0]


@pytest.fixture(scope="session")
def lmdb_summary(lmdb_build):
    """What build_lmdbs reported for lmdb_root (data_prep.lmdb_build.BuildSummary)."""
    return lmdb_build[1]


def small_solver(directory: Path, lmdb_root: Path, name: str, max_iter: int, variant: str = "baseline") -> Path:
    """A solver over lmdb_root for the paper's net at full size, batch 8, a snapshot every 3 iterations."""
    from data_prep.records import read_meta
    from prototxt.generate import Schedule, write_experiment

    return write_experiment(directory, name, variant=variant, train_lmdb=str(lmdb_root / "walking_train.lmdb"),
                            test_lmdb=str(lmdb_root / "walking_test.lmdb"),
                            train_count=read_meta(lmdb_root / "walking_train.lmdb")["count"],
                            test_count=read_meta(lmdb_root / "walking_test.lmdb")["count"],
                            snapshot_prefix=str(directory / "snap"),
                            schedule=Schedule(batch_size=8, test_batch_size=16, display=1, max_iter=max_iter,
                                              snapshot=3, test_interval=1000))


@pytest.fixture(scope="session")
def trained(tmp_path_factory, lmdb_root):
    """(folder, final weights) of the baseline net trained for real for 3 iterations by the drivers' call."""
    from layers.training import train_to_completion

    d = tmp_path_factory.mktemp("trained")
    solver = small_solver(d, lmdb_root, "solver_walking", 3)
    final = train_to_completion(solver.rename(d / "solver_walking.prototxt"), d / "train.log", progress=False)
    return d, final


@contextlib.contextmanager
def small_disk_at(folder: Path, size: int):
    """A disk of `size` bytes (a tmpfs) mounted at `folder`, for writes that fill it; the test skips where it
    cannot mount one (it needs root and mount rights)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


def read_only_mount(folder: Path, source: Path | None = None):
    """A real read-only mount at `folder`: `source` bound read-only (its files readable, nothing writable), or an
    empty read-only tmpfs; the test skips where it cannot mount (it needs root and mount rights)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounts = ([["mount", "--bind", str(source), str(folder)], ["mount", "-o", "remount,bind,ro", str(folder)]]
              if source else [["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)]])
    if os.geteuid() != 0 or subprocess.run(mounts[0], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here (needs root and mount rights)")
    try:
        for command in mounts[1:]:
            subprocess.run(command, check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


def numerical_gradient(f, x: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of the scalar f() with respect to the array x (perturbed in place)."""
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, g = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(1e-8, np.max(np.abs(a)), np.max(np.abs(b))))


EXPORT_WIDTH = 0.25  # the nets of trained_variants: the paper's layers and data flow, a sixteenth of the weights


@pytest.fixture(scope="session")
def trained_variants(tmp_path_factory, lmdb_root) -> dict:
    """variant -> (deploy prototxt, final weights) of each of Table 2's variants at EXPORT_WIDTH, trained for real
    for 4 iterations of 8 images (so BatchNorm's statistics are the moving averages of real batches)."""
    from data_prep.records import read_meta
    from layers.training import train_to_completion
    from prototxt.generate import VARIANTS, Schedule, build_net, write_experiment, write_net

    out = {}
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        d = tmp_path_factory.mktemp(f"trained_{variant}")
        solver = write_experiment(d, variant, variant=variant, train_lmdb=str(lmdb_root / "walking_train.lmdb"),
                                  test_lmdb=str(lmdb_root / "walking_test.lmdb"),
                                  train_count=read_meta(lmdb_root / "walking_train.lmdb")["count"],
                                  test_count=read_meta(lmdb_root / "walking_test.lmdb")["count"],
                                  snapshot_prefix=str(d / "snap"), width=EXPORT_WIDTH,
                                  schedule=Schedule(batch_size=8, test_batch_size=16, display=1, max_iter=4, snapshot=4,
                                                    test_interval=1000))
        final = train_to_completion(solver, d / "train.log", progress=False)
        deploy = write_net(d / f"deploy_{variant}.prototxt", build_net("deploy", multi_root=multi_root,
                                                                        use_2d_cls=use_2d_cls, width=EXPORT_WIDTH))
        out[variant] = (deploy, final)
    return out


EXPORT_BN_BATCHES = 2  # exported's BatchNorm re-estimation (of 32 images each), what the evaluate test passes too


@pytest.fixture(scope="session")
def exported(trained_variants, lmdb_root, tmp_path_factory) -> tuple:
    """(deploy, weights, model.onnx) of trained_variants' full model, exported by tools/export.py with its BatchNorm
    re-estimated over EXPORT_BN_BATCHES training batches."""
    from tools import export

    deploy, weights = trained_variants["both"]
    model = tmp_path_factory.mktemp("exported") / "walking_both.onnx"
    assert export.main(["--weights", str(weights), "--deploy", str(deploy), "--train-lmdb",
                        str(lmdb_root / "walking_train.lmdb"), "--onnx", str(model),
                        "--bn-batches", str(EXPORT_BN_BATCHES)]) == 0
    return deploy, weights, model


MM, SOFTMAX = 0.01, 1e-5  # an exported model against pycaffe: pose in mm (max abs), per-joint probabilities


def lmdb_test_images(lmdb_root):
    """Every record of the test LMDB as the deploy net takes it (centre crops minus the mean), and the ground truth."""
    from data_prep.batches import BatchSource
    from layers.config import INPUT_SIZE

    source = BatchSource(str(lmdb_root / "walking_test.lmdb"), 1, INPUT_SIZE, train=False, seed=0, pca_sigma=0.0)
    n, j = len(source.keys), len(source.meta["joints"])
    images, gt = np.empty((n, 3, INPUT_SIZE, INPUT_SIZE), np.float32), np.empty((n, j, 3), np.float32)
    joints, pose = np.empty((1, j, 2), np.float32), np.empty((1, j, 3), np.float32)
    for i in range(n):
        source.fill(i, images[i:i + 1], joints, pose, extra={"pose3d_mm": gt[i:i + 1]})
    return images, gt.astype(np.float64)


def pycaffe_outputs(deploy, weights, images, mean_torso) -> dict:
    """The reference: the Caffe deploy net, the softmax of its 2D logits and the scale recovery in NumPy."""
    from data_prep.metrics import recover_scale
    from layers.deploy import load_deploy_net

    net, _ = load_deploy_net(deploy, weights, batch_size=len(images))
    net.blobs["data"].data[...] = images
    net.forward()
    logits = net.blobs["logits_2d"].data.astype(np.float64)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    pose = net.blobs["pose3d"].data.astype(np.float64)
    return {"softmax_2d": e / e.sum(-1, keepdims=True), "pose3d": pose, "pose3d_mm": recover_scale(pose, mean_torso)}


def assert_agree(got: dict, want: dict, gt_mm) -> None:
    from data_prep.metrics import PROTOCOLS, mpjpe

    assert np.abs(got["pose3d_mm"] - want["pose3d_mm"]).max() <= MM
    assert np.abs(got["softmax_2d"] - want["softmax_2d"]).max() <= SOFTMAX
    for protocol in PROTOCOLS:
        assert abs(mpjpe(got["pose3d_mm"], gt_mm, protocol) - mpjpe(want["pose3d_mm"], gt_mm, protocol)) <= MM
