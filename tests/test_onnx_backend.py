"""layers/onnx_backend.py: an exported model run by onnxruntime; a file that is not one, or one without the
project's metadata, or --gpu where onnxruntime has no CUDA provider, is one clear error."""
from __future__ import annotations

import numpy as np
import pytest

from data_prep.errors import UserError


def test_damaged_foreign_and_gpu_cases_are_clear_errors(exported, tmp_path):
    import onnx
    import onnxruntime as ort

    from layers.onnx_backend import CUDA_PROVIDER, OnnxPoseModel

    _, _, model = exported
    damaged = tmp_path / "damaged.onnx"
    damaged.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(UserError, match="damaged.onnx: not a model onnxruntime can load"):
        OnnxPoseModel(damaged)
    foreign = onnx.load(str(model))
    del foreign.metadata_props[:]
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(UserError, match="without this project's metadata"):
        OnnxPoseModel(tmp_path / "foreign.onnx")
    with pytest.raises(UserError, match="no such file"):
        OnnxPoseModel(tmp_path / "none.onnx")
    if CUDA_PROVIDER in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(UserError, match="--gpu 0: this onnxruntime .* has no CUDA provider; install onnxruntime-gpu"):
        OnnxPoseModel(model, gpu=0)


def test_statistics_of_another_training_set_are_refused(exported, lmdb_root):
    from data_prep.records import read_meta
    from layers.onnx_backend import OnnxPoseModel, check_same_statistics

    model = OnnxPoseModel(exported[2])
    meta = read_meta(lmdb_root / "walking_train.lmdb")
    check_same_statistics(model, meta, "walking_train.lmdb")
    other = {**meta, "mean_torso_lengths_mm": list(np.asarray(meta["mean_torso_lengths_mm"]) * 1.01)}
    with pytest.raises(UserError, match="exported with another training set's mean_torso_lengths_mm"):
        check_same_statistics(model, other, "other_train.lmdb")
