"""layers/models.py: one loader for both backends. A Caffe model folded and as trained give the same poses; the
exported model of the same weights gives them too, carries its statistics and refuses another training set's."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import EXPORT_BN_BATCHES, MM, lmdb_test_images
from data_prep.errors import UserError
from data_prep.files import sha256_of
from data_prep.records import read_meta
from layers.models import load_trained_model


def test_caffe_folded_as_trained_and_onnx_give_the_same_poses(exported, lmdb_root):
    deploy, weights, onnx_path = exported
    train = lmdb_root / "walking_train.lmdb"
    meta = read_meta(train)
    images, _ = lmdb_test_images(lmdb_root)
    batch = images[:4]
    bn = dict(bn_lmdb=train, bn_batches=EXPORT_BN_BATCHES)
    folded = load_trained_model("caffe", weights, meta, train, deploy=deploy, batch_size=4, **bn)
    plain = load_trained_model("caffe", weights, meta, train, deploy=deploy, batch_size=4, fold=False, **bn)
    assert folded.layout.folded and not plain.layout.folded and folded.variant == "both"
    assert folded.batch_norm == f"re-estimated over {EXPORT_BN_BATCHES * 32} training images, folded"
    assert folded.weights_sha256() == sha256_of(weights)
    a, b = folded.forward()(batch)["pose3d_mm"], plain.forward()(batch)["pose3d_mm"]
    assert np.abs(a - b).max() < MM
    onnx = load_trained_model("onnx", onnx_path, None)  # no LMDB: the model carries its statistics
    assert onnx.variant == "both" and onnx.weights_sha256() == sha256_of(weights)
    assert np.allclose(onnx.stats["mean_bgr"], meta["mean_bgr"])
    assert np.abs(onnx.forward()(batch)["pose3d_mm"] - b).max() < MM


def test_what_a_backend_lacks_is_one_line(exported, lmdb_root):
    deploy, weights, onnx_path = exported
    with pytest.raises(UserError, match="--train-lmdb is required with --backend caffe"):
        load_trained_model("caffe", weights, None, deploy=deploy)
    other = {**read_meta(lmdb_root / "walking_train.lmdb"), "mean_bgr": [0.0, 0.0, 0.0]}
    with pytest.raises(UserError, match="exported with another training set's mean_bgr"):
        load_trained_model("onnx", onnx_path, other, "other.lmdb")
    with pytest.raises(ValueError, match="backend must be one of caffe, onnx"):
        load_trained_model("tensorflow", weights, None)
