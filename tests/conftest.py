"""Shared fixtures: a small synthetic Human3.6M (the project's own generator) and its LMDBs, built once
per test session; Caffe's location; a numerical gradient checker for Python layers."""
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
def lmdb_root(synthetic_root, tmp_path_factory):
    from data_prep.lmdb_build import build_lmdbs

    out = tmp_path_factory.mktemp("lmdb")
    summary = build_lmdbs(synthetic_root, out, actions=("Walking",), step=2, workers=2, progress=False)
    return out, summary


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
