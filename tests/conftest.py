"""Shared fixtures: a small synthetic Human3.6M (the project's own generator), its LMDBs and a net trained on them
for a few iterations, built once per test session; Caffe's location; a numerical gradient checker for Python
layers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from data_prep.cli import REPO


def caffe_home() -> Path:
    from data_prep.cli import UserError
    from layers.caffe_build import caffe_home as home

    try:
        return home()
    except UserError as e:  # no set-up yet
        pytest.fail(str(e))


def caffe_env() -> dict:
    from layers.caffe_build import caffe_env as env

    return env(GLOG_minloglevel=os.environ.get("GLOG_minloglevel", "1"))


def run_caffe_gtests(**env):
    """Caffe's own gtests of the layers and solver the nets use (third_party/caffe/build_options.env), CPU cases;
    returns (exit code, log, tests ran, tests passed)."""
    from layers.caffe_build import gtest_filters, run_caffe_gtests as run

    r = run(caffe_home(), gtest_filters()["GTEST_FILTER_CPU_BUILD"], env={**caffe_env(), **env}, timeout=1800)
    return r.returncode, r.log, r.ran, r.passed


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
