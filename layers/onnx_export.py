"""A trained deploy net as an ONNX model (tools/export.py): a small exporter of the layer types this project's nets
use, written from the net's prototxt (caffe_pb2) and its weights as pycaffe loaded and checked them
(layers.deploy.load_deploy_net), since the Caffe-to-ONNX converters on PyPI are stale.

The model (opset EXPORT_OPSET, batch dynamic):
  input   data        (N, 3, 225, 225) float32: the centre 225x225 of the 250x250 person crop, BGR, minus the
                      training set's per-channel mean (metadata mean_bgr), 0-255 scale: what the deploy net takes
  outputs softmax_2d  (N, 17, 256) eq. (2)'s per-joint probabilities over the 16x16 grid of the 225 crop
          pose3d      (N, 17, 3) eq. (7): the roots' predictions averaged, zero mean, unit Frobenius norm
          pose3d_mm   (N, 17, 3) pose3d scaled so its torso bones sum to the training set's mean torso
                      (data_prep.metrics.recover_scale, the lengths baked in): mm, camera axes, joint mean at 0
BatchNorm + Scale are folded into the layer before them (layers.fold), or kept as BatchNormalization nodes
(fold=False, for the benchmark's comparison); dropout is left out (the identity at test time). The metadata
(METADATA_KEYS) names the variant, the joints, the roots, the input convention, the training statistics and the
source weights' sha256, so that a model file is enough to run it (layers.onnx_backend).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from data_prep.errors import UserError
from data_prep.files import sha256_of, write_bytes_atomic
from data_prep.metrics import ROOT
from data_prep.skeleton import JOINTS, PARENTS, TORSO_BONES

from .bn_stats import reestimate_batch_norm
from .config import CONV_LAYERS, GRID, INPUT_SIZE
from .deploy import load_deploy_net
from .fold import CAFFE_BN_EPS, batch_norm_affine, batch_norm_statistics, fold_affine
from .layout import TORSO_BONES_MAP, TORSO_LENGTHS_MAP, TORSO_SUM_MAP
from .targets import evaluation_maps

EXPORT_OPSET = 17
INPUT, OUTPUTS = "data", ("softmax_2d", "pose3d", "pose3d_mm")
LOGITS_2D, PROBS_2D, POSE = "logits_2d", "probs_2d", "pose3d"  # the deploy nets' blobs the outputs come from
METADATA_KEYS = ("variant", "joints", "parents", "roots", "input", "mean_bgr", "mean_torso_lengths_mm",
                 "batch_norm", "bones", "mean_bone_lengths_mm", "weights_sha256", "outputs",
                 "producer_version")
INPUT_CONVENTION = (f"data: (N, 3, {INPUT_SIZE}, {INPUT_SIZE}) float32, the centre {INPUT_SIZE}x{INPUT_SIZE} of the "
                    "250x250 crop of the square around the person, channels B, G, R on the 0-255 scale minus mean_bgr")
OUTPUTS_DOC = ("softmax_2d (N, 17, 256): per joint, the probability of each cell of a 16x16 grid over the input "
               "(row-major, cell size 225/16 px); pose3d (N, 17, 3): zero-mean, unit-norm pose (eq. 7); "
               "pose3d_mm (N, 17, 3): mm, camera axes (x right, y down, z forward), joint mean at 0, scaled to the "
               "training set's mean torso")


class Exporter:
    """Walks a deploy net's layers in order and builds the ONNX graph; weights are kept as arrays until the end
    so that a BatchNorm and a Scale can fold into the layer that produced their input."""

    SUPPORTED = ("Input", "Convolution", "BatchNorm", "Scale", "ReLU", "Pooling", "InnerProduct", "Dropout", "Reshape",
                 "Softmax", "Concat", "Split")

    def __init__(self, params: dict, blob_shapes: dict, fold: bool = True):
        from onnx import helper  # lazy: onnx only where a model is written

        self.helper, self.params, self.shapes, self.fold = helper, params, blob_shapes, fold
        self.nodes, self.arrays = [], {}  # arrays: initializer name -> np.ndarray (float32 at the end)
        self.tensor = {}  # Caffe blob -> the ONNX tensor holding its current value
        self.linear_out = {}  # ONNX tensor -> the Convolution / InnerProduct layer whose untouched output it is
        self.batch_norm_of = {}  # ONNX tensor -> its BatchNormalization node's initializer prefix (fold=False)
        self.flat = {}  # ONNX tensor -> its Flatten(axis=1)

    def node(self, op: str, inputs: list, output: str, final: bool = False, **attrs) -> str:
        if output in OUTPUTS and not final:  # a layer named like a graph output (the deploy nets' pose3d)
            output += "_net"
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def constant(self, name: str, array) -> str:
        self.arrays[name] = np.asarray(array)
        return name

    def layer(self, layer) -> None:
        kind = layer.type
        if kind not in self.SUPPORTED:
            raise UserError(
                f"layer {layer.name!r} of type {kind}: the ONNX exporter knows only "
                f"{', '.join(self.SUPPORTED)}; export a deploy net of prototxt/ (deploy_<variant>.prototxt)"
            )
        if kind == "Input":
            if list(layer.top) != [INPUT]:
                raise UserError(
                    f"input {list(layer.top)}: the exporter takes a deploy net, whose one input is {INPUT!r} "
                    "(not an evaluation net)"
                )
            self.tensor[INPUT] = INPUT
            return
        bottom = [self.tensor[b] for b in layer.bottom]
        getattr(self, f"_{kind.lower()}")(layer, bottom)

    def set_top(self, layer, tensor: str) -> None:
        for top in layer.top:
            self.tensor[top] = tensor

    def _convolution(self, layer, bottom) -> None:
        p = layer.convolution_param
        pick = lambda values, default: (list(values) or [default]) * (1 if len(values) > 1 else 2)  # noqa: E731
        kernel = [p.kernel_h, p.kernel_w] if p.kernel_h else pick(p.kernel_size, 1)
        stride = [p.stride_h, p.stride_w] if p.stride_h else pick(p.stride, 1)
        pad = [p.pad_h, p.pad_w] if p.pad_h or p.pad_w else pick(p.pad, 0)
        dilation = pick(p.dilation, 1)
        blobs = self.params[layer.name]
        self.arrays[f"{layer.name}.weight"] = np.asarray(blobs[0], np.float64)
        inputs = [bottom[0], f"{layer.name}.weight", f"{layer.name}.bias"]
        self.arrays[f"{layer.name}.bias"] = np.asarray(blobs[1], np.float64) if p.bias_term else np.zeros(p.num_output)
        out = self.node("Conv", inputs, layer.name, kernel_shape=kernel, strides=stride, pads=pad + pad,
                        dilations=dilation, group=p.group)
        self.linear_out[out] = layer.name
        self.set_top(layer, out)

    def _innerproduct(self, layer, bottom) -> None:
        p = layer.inner_product_param
        if p.axis != 1 or p.transpose:
            raise UserError(f"layer {layer.name!r}: InnerProduct with axis {p.axis} / transpose: not exported")
        x = bottom[0]
        if len(self.shapes[layer.bottom[0]]) > 2:  # Caffe flattens everything after the batch axis
            if x not in self.flat:
                self.flat[x] = self.node("Flatten", [x], f"{x}_flat", axis=1)
            x = self.flat[x]
        blobs = self.params[layer.name]
        self.arrays[f"{layer.name}.weight"] = np.asarray(blobs[0], np.float64)
        self.arrays[f"{layer.name}.bias"] = np.asarray(blobs[1], np.float64) if p.bias_term else np.zeros(p.num_output)
        out = self.node("Gemm", [x, f"{layer.name}.weight", f"{layer.name}.bias"], layer.name, transB=1)
        self.linear_out[out] = layer.name
        self.set_top(layer, out)

    def fold_into(self, tensor: str, a: np.ndarray, c: np.ndarray) -> bool:
        """Fold a * y + c into the layer whose untouched output `tensor` is; False when there is none."""
        source = self.linear_out.get(tensor) if self.fold else None
        if source is None:
            return False
        w, b = fold_affine(self.arrays[f"{source}.weight"], self.arrays[f"{source}.bias"], a, c)
        self.arrays[f"{source}.weight"], self.arrays[f"{source}.bias"] = w, b
        return True

    def _batchnorm(self, layer, bottom) -> None:
        p = layer.batch_norm_param
        mean, var = batch_norm_statistics(self.params[layer.name])
        eps = p.eps if p.HasField("eps") else CAFFE_BN_EPS
        if self.fold_into(bottom[0], *batch_norm_affine(mean, var, eps)):
            self.set_top(layer, bottom[0])
            return
        names = [self.constant(f"{layer.name}.{k}", v) for k, v in
                 (("scale", np.ones_like(mean)), ("bias", np.zeros_like(mean)), ("mean", mean), ("var", var))]
        out = self.node("BatchNormalization", [bottom[0], *names], layer.name, epsilon=float(eps))
        self.batch_norm_of[out] = layer.name
        self.set_top(layer, out)

    def _scale(self, layer, bottom) -> None:
        p = layer.scale_param
        if len(layer.bottom) != 1 or p.axis != 1:
            raise UserError(f"layer {layer.name!r}: a Scale with a second input or axis {p.axis}: not exported")
        blobs = self.params[layer.name]
        gamma = np.asarray(blobs[0], np.float64)
        beta = np.asarray(blobs[1], np.float64) if p.bias_term else np.zeros_like(gamma)
        if self.fold_into(bottom[0], gamma, beta):
            self.set_top(layer, bottom[0])
            return
        bn = self.batch_norm_of.get(bottom[0])
        if bn is not None:  # BatchNorm then Scale: one BatchNormalization with the Scale's gamma and beta
            self.arrays[f"{bn}.scale"], self.arrays[f"{bn}.bias"] = gamma, beta
            del self.batch_norm_of[bottom[0]]
            self.set_top(layer, bottom[0])
            return
        shape = [-1] + [1] * (len(self.shapes[layer.bottom[0]]) - 2)
        scaled = self.node(
            "Mul", [bottom[0], self.constant(f"{layer.name}.gamma", gamma.reshape(shape))], f"{layer.name}_mul"
        )
        self.set_top(
            layer, self.node("Add", [scaled, self.constant(f"{layer.name}.beta", beta.reshape(shape))], layer.name)
        )

    def _relu(self, layer, bottom) -> None:
        if layer.relu_param.negative_slope:
            raise UserError(f"layer {layer.name!r}: a leaky ReLU: not exported")
        self.set_top(layer, self.node("Relu", bottom, layer.name))

    def _pooling(self, layer, bottom) -> None:
        p = layer.pooling_param
        kernel = [p.kernel_h, p.kernel_w] if p.kernel_h else [p.kernel_size] * 2
        stride = [p.stride_h, p.stride_w] if p.stride_h else [p.stride] * 2
        if p.pool != 0 or p.global_pooling or p.pad or p.pad_h or p.pad_w:
            raise UserError(f"layer {layer.name!r}: only unpadded max pooling is exported")
        # Caffe rounds the output size up (its windows may run over the edge): ONNX's ceil_mode
        self.set_top(layer, self.node("MaxPool", bottom, layer.name, kernel_shape=kernel, strides=stride, ceil_mode=1))

    def _dropout(self, layer, bottom) -> None:
        self.set_top(layer, bottom[0])  # the identity at test time

    def _reshape(self, layer, bottom) -> None:
        p = layer.reshape_param
        if p.axis != 0 or p.num_axes != -1:
            raise UserError(f"layer {layer.name!r}: a Reshape with axis / num_axes: not exported")
        shape = self.constant(f"{layer.name}.shape", np.asarray(list(p.shape.dim), np.int64))
        self.set_top(layer, self.node("Reshape", [bottom[0], shape], layer.name))  # 0 copies a dimension, as in Caffe

    def _softmax(self, layer, bottom) -> None:
        self.set_top(layer, self.node("Softmax", bottom, layer.name, axis=layer.softmax_param.axis))

    def _concat(self, layer, bottom) -> None:
        self.set_top(layer, self.node("Concat", bottom, layer.name, axis=layer.concat_param.axis))

    def _split(self, layer, bottom) -> None:
        self.set_top(layer, bottom[0])

    def scale_recovery(self, pose: str, mean_torso_lengths) -> str:
        """pose3d_mm from pose3d (N, J, 3): data_prep.metrics.recover_scale with the lengths as a constant, from
        matrix products (the evaluation net's maps, layers.targets) so that every runtime has the ops."""
        joints = len(JOINTS)
        maps = evaluation_maps(joints, TORSO_BONES, ROOT)  # (outputs, inputs): transposed for MatMul
        flat = self.node("Flatten", [pose], "pose3d_flat", axis=1)
        bones = self.node("MatMul", [flat, self.constant("torso_bones_map", maps[TORSO_BONES_MAP].T)], "torso_bones")
        squared = self.node("Mul", [bones, bones], "torso_bones_sq")
        lengths = self.node("MatMul", [squared, self.constant("torso_lengths_sq_map", maps[TORSO_LENGTHS_MAP].T)],
                            "torso_lengths_sq")
        lengths = self.node("Sqrt", [lengths], "torso_lengths")
        total = self.node("MatMul", [lengths, self.constant("torso_predicted_map", maps[TORSO_SUM_MAP].T)],
                          "torso_predicted")
        total = self.node("Max", [total, self.constant("torso_floor", np.asarray([1e-12]))], "torso_predicted_floor")
        torso = self.constant("mean_torso_sum", np.asarray([float(np.sum(mean_torso_lengths))]))
        scale = self.node("Div", [torso, total], "scale")
        mm = self.node("Mul", [flat, scale], "pose3d_mm_flat")
        return self.node(
            "Reshape", [mm, self.constant("pose_shape", np.asarray([0, joints, 3], np.int64))], "pose3d_mm_net"
        )

    def graph(self, name: str, mean_torso_lengths):
        from onnx import TensorProto, numpy_helper  # lazy: onnx only where a model is written

        h = self.helper
        if POSE not in self.tensor:
            raise UserError(
                f"the net has no {POSE!r} blob: export a deploy net of prototxt/ (deploy_<variant>.prototxt)"
            )
        probs = self.tensor.get(PROBS_2D) or self.node("Softmax", [self.tensor[LOGITS_2D]], "softmax_2d_net", axis=2)
        pose_mm = self.scale_recovery(self.tensor[POSE], mean_torso_lengths)
        for output, tensor in zip(OUTPUTS, (probs, self.tensor[POSE], pose_mm)):
            self.node("Identity", [tensor], output, final=True)
        initializers = [numpy_helper.from_array(a if a.dtype == np.int64 else a.astype(np.float32), name)
                        for name, a in self.arrays.items()]
        joints, cells = len(JOINTS), GRID * GRID
        return h.make_graph(
            self.nodes,
            name,
            [h.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
            [
                h.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", joints, size])
                for o, size in zip(OUTPUTS, (cells, 3, 3))
            ],
            initializers,
        )


def onnx_model(net_param, params: dict, blob_shapes: dict, metadata: dict, fold: bool = True):
    """The ONNX ModelProto of a deploy net (caffe_pb2.NetParameter) with `params` (layer -> list of arrays, the fixed
    maps set) and `blob_shapes` (blob -> shape); `metadata` (METADATA_KEYS) written as the model's metadata_props."""
    import onnx  # lazy: onnx only where a model is written
    from onnx import helper  # lazy: onnx only where a model is written

    exporter = Exporter(params, blob_shapes, fold)
    for layer in net_param.layer:
        exporter.layer(layer)
    model = helper.make_model(exporter.graph(net_param.name, json.loads(metadata["mean_torso_lengths_mm"])),
                              opset_imports=[helper.make_opsetid("", EXPORT_OPSET)], producer_name="park3dpose",
                              producer_version=metadata.get("producer_version", ""), doc_string=INPUT_CONVENTION)
    model.ir_version = 8  # opset 17's IR version: runtimes a little older than onnx itself still load it
    helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    return model


@dataclasses.dataclass
class ExportSource:
    """A trained deploy net as the exporters take it: its structure (caffe_pb2), its weights as pycaffe loaded and
    checked them with the fixed maps set (layer -> list of arrays), its blobs' shapes and its layout."""
    net_param: object
    params: dict
    shapes: dict
    layout: object
    batch_norm: str  # how its BatchNorm statistics were set
    weights_sha256: str

    @property
    def width(self) -> float:
        """build_net's width of the net (1: the paper's), from conv1's maps."""
        return self.params[CONV_LAYERS[0][0]][0].shape[0] / CONV_LAYERS[0][1]


def load_export_source(deploy_prototxt, weights, bn_batches: int = 0, train_lmdb=None) -> ExportSource:
    """The deploy net with `weights` (layers.deploy.load_deploy_net's checks); bn_batches > 0 re-estimates BatchNorm's
    statistics over that many batches of `train_lmdb` first (layers.bn_stats, as tools/evaluate.py does by default),
    so that the exported model gives evaluate's figures."""
    net, layout = load_deploy_net(deploy_prototxt, weights, batch_size=1)
    if layout.split != "deploy":
        raise UserError(f"{deploy_prototxt}: the {layout.split} net of its variant, not a deploy net; export with "
                        f"prototxt/deploy_{layout.variant}.prototxt")
    images = (
        reestimate_batch_norm(net, str(deploy_prototxt), str(weights), str(train_lmdb), bn_batches) if bn_batches else 0
    )
    return ExportSource(text_format.Merge(Path(deploy_prototxt).read_text(), caffe_pb2.NetParameter()),
                        {name: [blob.data.copy() for blob in blobs] for name, blobs in net.params.items()},
                        {name: blob.data.shape for name, blob in net.blobs.items()}, layout,
                        f"re-estimated over {images} training images" if images else "moving averages of training",
                        sha256_of(weights))


def export_onnx(source: ExportSource, meta: dict, out: Path, fold: bool = True) -> dict:
    """Write the ONNX model of `source` to `out` (atomically); meta: the training LMDB's meta.json (the image mean,
    the mean torso lengths). Returns the metadata written."""
    metadata = {
        "variant": source.layout.variant,
        "joints": json.dumps(list(JOINTS)),
        "parents": json.dumps(list(PARENTS)),
        "roots": json.dumps(list(source.layout.roots)),
        "input": INPUT_CONVENTION,
        "mean_bgr": json.dumps([float(v) for v in meta["mean_bgr"]]),
        "mean_torso_lengths_mm": json.dumps([float(v) for v in meta["mean_torso_lengths_mm"]]),
        "batch_norm": source.batch_norm + (", folded" if fold else ", BatchNormalization nodes"),
        # the training skeleton, for the clips' BVH files (tools/predict.py)
        "bones": json.dumps([list(b) for b in meta.get("bones", [])]),
        "mean_bone_lengths_mm": json.dumps([float(v) for v in meta.get("mean_bone_lengths_mm", [])]),
        "weights_sha256": source.weights_sha256,
        "outputs": OUTPUTS_DOC,
        "producer_version": "tools/export.py",
    }
    model = onnx_model(source.net_param, source.params, source.shapes, metadata, fold)
    write_bytes_atomic(Path(out), model.SerializeToString())
    return metadata
