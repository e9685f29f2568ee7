"""An exported model (layers.onnx_export) run by onnxruntime: predict and evaluate with `--backend onnx`, where Caffe
need not be importable. The model file carries what running it needs (its metadata: the variant, the image mean,
the training set's torso lengths), so no training LMDB is read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data_prep.errors import UserError

CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"


class OnnxPoseModel:
    """run(batch (N, 3, 225, 225) float32) -> {softmax_2d, pose3d, pose3d_mm} as float32 arrays; `meta`: the
    model's metadata with the JSON fields decoded."""

    def __init__(self, path, gpu: int | None = None, threads: int = 0):
        import onnxruntime as ort  # lazy: only where an exported model runs

        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file; tools/export.py writes the ONNX model")
        providers = [CPU_PROVIDER]
        if gpu is not None:
            if CUDA_PROVIDER not in ort.get_available_providers():
                raise UserError(f"--gpu {gpu}: this onnxruntime ({ort.__version__}) has no CUDA provider; install "
                                "onnxruntime-gpu in place of onnxruntime, or drop --gpu to run on the CPU")
            providers = [(CUDA_PROVIDER, {"device_id": gpu}), CPU_PROVIDER]
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for damaged or foreign files
            raise UserError(f"{path}: not a model onnxruntime can load ({str(e).splitlines()[0]}); export it again "
                            "with tools/export.py") from None
        props = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in ("variant", "mean_bgr", "mean_torso_lengths_mm", "joints") if k not in props]
        if missing:
            raise UserError(f"{path}: an ONNX model without this project's metadata ({', '.join(missing)} missing); "
                            "export it with tools/export.py")
        self.meta = {k: json.loads(v) if v[:1] in "[{" else v for k, v in props.items()}
        self.path, self.providers = path, self.session.get_providers()

    def run(self, batch: np.ndarray) -> dict:
        outputs = self.session.run(None, {"data": np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip((o.name for o in self.session.get_outputs()), outputs))


def check_same_statistics(model: OnnxPoseModel, meta: dict, lmdb) -> None:
    """A UserError unless the model was exported with the training statistics of `meta` (an LMDB's meta.json):
    its image mean and torso lengths, which it applies baked in."""
    for key in ("mean_bgr", "mean_torso_lengths_mm"):
        if not np.allclose(model.meta[key], meta[key], rtol=1e-6, atol=1e-6):
            raise UserError(f"{model.path}: exported with another training set's {key} than {lmdb}'s; export it "
                            "again with --train-lmdb of this training set")
