"""data_prep/pooled.py: the statistics of several LMDBs read as one equal those of their pooled records, computed
directly; hand-made metas pool by training-frame weights; LMDBs that differ in kind are refused."""
from __future__ import annotations

import shutil

import lmdb
import numpy as np
import pytest

from data_prep.batches import BatchSource
from data_prep.lmdb_build import build_lmdbs
from data_prep.pooled import pooled_statistics
from data_prep.records import decode_record
from data_prep.skeleton import TORSO_BONES
from data_prep.synthetic import GeneratorConfig, generate


def read_all(path):
    env = lmdb.open(str(path), readonly=True, lock=False)
    with env.begin() as txn:
        out = [decode_record(v) for _, v in txn.cursor()]
    env.close()
    return out


def test_a_list_of_lmdbs_reads_as_their_union_with_pooled_statistics(synthetic_root, tmp_path):
    """Walking and Eating read as one set: every record of both once per epoch, and the image mean, RGB
    covariance and torso lengths equal those computed directly from the pooled records' pixels and poses."""
    small_copy = tmp_path / "h36m"
    for s in ("S1", "S9"):
        shutil.copytree(synthetic_root / s, small_copy / s)
    generate(GeneratorConfig(small_copy, subjects=("S1", "S9"), actions=("Eating",), frames=8, seed=5),
             progress=False)
    out = tmp_path / "out"
    build_lmdbs(small_copy, out, actions=("Walking", "Eating"), step=2, workers=1, progress=False,
                train_subjects=("S1",), test_subjects=("S9",), encoding="raw")
    paths = [str(out / "walking_train.lmdb"), str(out / "eating_train.lmdb")]
    records = [r for p in paths for r in read_all(p)]
    n = len(records)
    assert n == 4 * 12 + 4 * 4
    source = BatchSource(paths, n, 225, True, 3, 0.0)
    image, joints, pose = (
        np.zeros((n, 3, 225, 225), np.float32),
        np.zeros((n, 17, 2), np.float32),
        np.zeros((n, 17, 3), np.float32),
    )
    mm = np.zeros((n, 17, 3), np.float32)
    source.fill(1, image, joints, pose, {"pose3d_mm": mm})  # one whole (shuffled) epoch
    assert sorted(map(tuple, mm.reshape(n, -1).tolist())) == sorted(
        tuple(r["pose3d_mm"].ravel().tolist()) for r in records
    )
    pixels = np.concatenate([r["image"][:, ::4, ::4].reshape(3, -1).T for r in records]).astype(np.float64)  # BGR
    assert np.allclose(source.meta["mean_bgr"], pixels.mean(0), atol=1e-9)
    vec, val = np.array(source.meta["pca_eigvec_rgb"]), np.array(source.meta["pca_eigval_rgb"])
    assert np.allclose((vec * val) @ vec.T, np.cov(pixels[:, ::-1].T, bias=True), atol=1e-6)
    poses = np.array([r["pose3d_mm"] for r in records], dtype=np.float64)
    torso = [np.linalg.norm(poses[:, a] - poses[:, b], axis=1).mean() for a, b in TORSO_BONES]
    assert np.allclose(source.meta["mean_torso_lengths_mm"], torso, atol=1e-3)
    assert source.meta["train_count"] == n
    # the test LMDBs as a list pool the same training statistics (each records its training count)
    tests = BatchSource([str(out / "walking_test.lmdb"), str(out / "eating_test.lmdb")], 4, 225, False, 0, 0.0)
    assert np.allclose(tests.meta["mean_bgr"], source.meta["mean_bgr"])


def meta(action, count, mean_bgr, torso, eigval, joints=("Hip", "RHip")):
    return {"action": action, "split": "train", "count": count, "mean_bgr": list(mean_bgr),
            "mean_torso_lengths_mm": list(torso), "pca_eigvec_rgb": np.eye(3).tolist(), "pca_eigval_rgb": list(eigval),
            "joints": list(joints), "sequences": [action], "subjects": ["S1"]}


def test_hand_made_metas_pool_by_their_training_frames():
    """Worked by hand: 1 frame of grey 10 and 3 frames of grey 30 (no spread within each) pool to a mean of 25 and
    a variance of (1 * 15^2 + 3 * 5^2) / 4 = 75 in every channel; torso lengths average by the same weights."""
    a = meta("A", 1, (10, 10, 10), (100, 200), (0, 0, 0))
    b = meta("B", 3, (30, 30, 30), (140, 240), (0, 0, 0))
    pooled = pooled_statistics([a, b], ["a.lmdb", "b.lmdb"])
    assert np.allclose(pooled["mean_bgr"], [25, 25, 25])
    assert np.allclose(pooled["mean_torso_lengths_mm"], [130, 230])
    cov = (np.array(pooled["pca_eigvec_rgb"]) * pooled["pca_eigval_rgb"]) @ np.array(pooled["pca_eigvec_rgb"]).T
    assert np.allclose(cov, np.full((3, 3), 75.0))  # one grey direction: all channels move together
    assert pooled["train_count"] == 4 and pooled["action"] == "A+B"


def test_lmdbs_of_another_kind_are_refused_by_name():
    a = meta("A", 1, (10, 10, 10), (100, 200), (1, 1, 1))
    b = meta("B", 1, (10, 10, 10), (100, 200), (1, 1, 1), joints=("Hip", "LHip"))
    with pytest.raises(ValueError, match="b.lmdb: joints differs from a.lmdb's"):
        pooled_statistics([a, b], ["a.lmdb", "b.lmdb"])
