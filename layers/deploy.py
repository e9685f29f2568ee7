"""Loading a deploy or evaluation net that prototxt/generate.py wrote, with weights checked to match it: the
trained weights plus the fixed root-averaging map of eq. (7) and, in an evaluation net, the fixed maps of its
scale recovery and errors. What the code needs to know about the net (its roots, its fixed maps, whether it
evaluates) comes from the layout the file carries (layers.layout), not from its layer names."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import caffe
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from data_prep.cli import REPO
from data_prep.errors import UserError
from data_prep.metrics import ROOT
from data_prep.skeleton import JOINTS, TORSO_BONES

from .fold import folded_net_param, folded_params
from .layout import EVALUATION_INPUTS, ROOT_AVERAGE, committed_layouts, read_layout
from .snapshots import non_finite_layer, param_shapes, read_proto, shape_mismatches, weights_layers
from .targets import evaluation_maps, root_average_matrix


def load_deploy_net(deploy_prototxt, weights, batch_size: int | None = None) -> tuple:
    """(caffe.Net in TEST phase with `weights`, its NetLayout): the weights checked first (check_weights, then
    finite), eq. (7)'s map set from the layout's roots and, in an evaluation net, the scale-recovery and error
    maps (set_fixed_maps)."""
    if not Path(deploy_prototxt).is_file():
        raise UserError(f"{deploy_prototxt}: no such net; `python -m prototxt.generate` writes prototxt/")
    if not Path(weights).is_file():
        raise UserError(f"{weights}: no such file")
    layout = read_layout(deploy_prototxt)
    net = caffe.Net(str(deploy_prototxt), caffe.TEST)
    check_weights(net, layout, deploy_prototxt, weights)
    net.copy_from(str(weights))
    check_finite_weights(net, weights)
    if batch_size is not None:
        for name in ("data",) + EVALUATION_INPUTS:
            if name in net.blobs:
                net.blobs[name].reshape(batch_size, *net.blobs[name].data.shape[1:])
        net.reshape()
    net.params[ROOT_AVERAGE][0].data[...] = root_average_matrix(list(layout.roots), len(JOINTS))
    set_fixed_maps(net, layout.fixed_maps)
    return net, layout


def net_from_text(text: str, weights=None):
    """A caffe.Net in TEST phase from prototxt text (pycaffe takes only a file: a temporary one, removed again)."""
    fd, path = tempfile.mkstemp(suffix=".prototxt")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return caffe.Net(path, caffe.TEST, **({"weights": str(weights)} if weights is not None else {}))
    finally:
        os.unlink(path)


def fold_deploy_net(net, layout, deploy_prototxt) -> tuple:
    """(the folded net, its layout) of a net load_deploy_net loaded from `deploy_prototxt` (after any BatchNorm
    re-estimation): the same net without its BatchNorm and Scale layers (layers.fold.folded_net_param), each
    folded into the convolution or inner product before it, its inputs at the loaded net's shapes. A net with
    nothing to fold comes back as it is."""
    net_param = text_format.Merge(Path(deploy_prototxt).read_text(), caffe_pb2.NetParameter())
    folded, pairs = folded_net_param(net_param)
    if not pairs:
        return net, layout
    eps = {layer.name: layer.batch_norm_param.eps for layer in net_param.layer if layer.type == "BatchNorm"}
    new = folded_params({name: [blob.data for blob in blobs] for name, blobs in net.params.items()}, pairs, eps)
    fnet = net_from_text(text_format.MessageToString(folded))
    for name in ("data",) + EVALUATION_INPUTS:
        if name in fnet.blobs:
            fnet.blobs[name].reshape(*net.blobs[name].data.shape)
    fnet.reshape()
    for name, blobs in fnet.params.items():
        values = new[name] if name in new else [blob.data for blob in net.params[name]]
        for blob, value in zip(blobs, values):
            blob.data[...] = value
    return fnet, layout.folded_by(pairs)


def set_fixed_maps(net, names) -> None:
    """The evaluation layers' frozen weights (layers.targets.evaluation_maps), those among `names` (a layout's
    fixed_maps)."""
    for name, matrix in evaluation_maps(len(JOINTS), TORSO_BONES, ROOT).items():
        if name in names:
            net.params[name][0].data[...] = matrix


def check_weights(net, layout, deploy_prototxt, weights) -> None:
    """A UserError unless the .caffemodel `weights` has every trained layer of the net (layout.trained) with its
    shapes and no learnable layer the net lacks (Caffe would copy what matches by name and leave the rest at its
    initialisation, and abort on a shape it cannot copy); the message says which variant the file holds."""
    try:
        found = weights_layers(read_proto(Path(weights), caffe_pb2.NetParameter()), skip_types=("Python",))
    except ValueError as e:
        raise UserError(f"{e}; use another snapshot") from None
    found = {name: shapes for name, shapes in found.items() if name not in layout.fixed_maps}  # set on load
    expected = {name: shapes for name, shapes in param_shapes(net).items() if name in layout.trained}
    problems = shape_mismatches(found, expected)
    if not problems:
        return
    holds = next((v for v, other in committed_layouts(REPO / "prototxt").items() if set(other.trained) == set(found)),
                 None)
    hint = (f"it holds the weights of the {holds} variant: pass --deploy prototxt/deploy_{holds}.prototxt (or "
            f"prototxt/evaluate_{holds}.prototxt)" if holds and holds != layout.variant else
            "it holds weights of another net (another variant or width, or not this project's)")
    raise UserError(f"{weights}: does not match {deploy_prototxt}: {'; '.join(problems)}; {hint}")


def check_finite_weights(net, weights) -> None:
    bad = non_finite_layer(net)
    if bad is not None:
        raise UserError(f"{weights}: layer {bad} holds NaN or infinite weights (a diverged run); evaluate "
                        "an earlier snapshot, or train again with a lower base_lr")
