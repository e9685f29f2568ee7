"""A trained model, loaded for either backend: the one loader evaluation (layers.inference) and prediction
(layers.predict_files) share. "caffe": a deploy or evaluation net with its .caffemodel, the training statistics
from an LMDB's meta.json; "onnx": a model tools/export.py wrote, run by onnxruntime, which carries its statistics
(and where Caffe need not be importable)."""
from __future__ import annotations

import dataclasses

from data_prep.errors import UserError
from data_prep.files import sha256_of

from .bn_stats import reestimate_batch_norm
from .onnx_backend import OnnxPoseModel, check_same_statistics
from .predict import caffe_forward, onnx_forward

BACKENDS = ("caffe", "onnx")


@dataclasses.dataclass
class TrainedModel:
    backend: str  # one of BACKENDS
    variant: str  # Table 2's variant the weights belong to
    stats: dict  # the training statistics: mean_bgr, mean_torso_lengths_mm, and the skeleton where known
    weights: str  # the file loaded
    batch_norm: str  # how its BatchNorm was set, for the results
    net: object = None  # caffe: the loaded (and by default folded) caffe.Net
    layout: object = None  # caffe: its layers.layout.NetLayout
    onnx: OnnxPoseModel | None = None  # onnx: the session

    def weights_sha256(self) -> str:
        """The trained weights' sha256: of the .caffemodel, or the one an exported model records."""
        return self.onnx.meta.get("weights_sha256", "") if self.onnx is not None else sha256_of(self.weights)

    def forward(self):
        """forward(data (N, 3, 225, 225)) -> {pose3d, pose3d_mm, scores_2d} (layers.predict)."""
        if self.backend == "onnx":
            return onnx_forward(self.onnx)
        return caffe_forward(self.net, self.stats["mean_torso_lengths_mm"])


def load_trained_model(backend: str, weights, meta: dict | None, meta_source=None, *, deploy=None,
                       batch_size: int = 1, gpu: int | None = None, fold: bool = True, bn_lmdb=None,
                       bn_batches: int = 0) -> TrainedModel:
    """The model of `weights` for `backend`. meta: the training statistics (a training or test LMDB's meta.json, read
    from `meta_source`); optional for onnx, where it is checked to be the model's own. caffe: `deploy` is the net of
    the weights' variant at `batch_size`, on `gpu` (None: the CPU); its BatchNorm statistics re-estimated over
    `bn_batches` batches of `bn_lmdb` when asked (layers.bn_stats), then BatchNorm and Scale folded unless fold is
    False (the same outputs to float rounding, faster)."""
    if backend == "onnx":
        model = OnnxPoseModel(weights, gpu)
        stats = dict(model.meta)
        if meta is not None:
            check_same_statistics(model, meta, meta_source)
            stats.update(meta)
        return TrainedModel("onnx", model.meta["variant"], stats, str(weights),
                            model.meta.get("batch_norm", "as exported"), onnx=model)
    if backend != "caffe":
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if meta is None:
        raise UserError("--train-lmdb is required with --backend caffe (the image mean and torso lengths of the "
                        "training set); an exported model (--backend onnx) carries them")
    # imported here: layers.deploy and layers.device import caffe, which the onnx backend must not need
    from .deploy import fold_deploy_net, load_deploy_net
    from .device import use_device

    use_device(gpu)
    net, layout = load_deploy_net(deploy, weights, batch_size)
    bn_images = reestimate_batch_norm(net, str(deploy), str(weights), str(bn_lmdb), bn_batches) if bn_batches > 0 else 0
    if fold:
        net, layout = fold_deploy_net(net, layout, deploy)
    batch_norm = (f"re-estimated over {bn_images} training images" if bn_images else "moving averages of training") \
        + (", folded" if layout.folded else "")
    return TrainedModel("caffe", layout.variant, meta, str(weights), batch_norm, net=net, layout=layout)
