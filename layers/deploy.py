"""Loading the deploy net: the trained weights plus the fixed root-averaging map of eq. (7) and, in an
evaluation net (prototxt.generate: build_net("evaluate")), the fixed maps of its scale recovery and errors."""
from __future__ import annotations

from pathlib import Path

import caffe
import numpy as np

from data_prep.cli import UserError
from data_prep.metrics import ROOT
from data_prep.skeleton import JOINTS, TORSO_BONES

from .targets import evaluation_maps, root_average_matrix

EVALUATION_INPUTS = ("gt_mm", "torso_sum")  # an evaluation net's inputs beside "data"


def roots_of(net) -> list:
    """The roots a deploy net predicts from, read off its out_3d_<joint> layers (in order)."""
    names = {j.lower().replace("/", "_"): i for i, j in enumerate(JOINTS)}
    roots = [names[k[len("out_3d_"):]] for k in net.params if k.startswith("out_3d_")]
    if not roots:
        raise ValueError("not a deploy net of prototxt/generate.py: no out_3d_<joint> layers")
    return roots


FIXED_MAPS = ("root_average",)  # besides evaluation_maps: frozen layers set here, not trained (absent from weights)


def fixed_map_names() -> set:
    return set(FIXED_MAPS) | set(evaluation_maps(len(JOINTS), TORSO_BONES, ROOT))


def trained_shapes(net) -> dict:
    """{layer: [blob shapes]} of the layers of a deploy or evaluation net that come from a .caffemodel."""
    from .snapshots import param_shapes

    fixed = fixed_map_names()
    return {name: shapes for name, shapes in param_shapes(net).items() if name not in fixed}


def check_weights(net, deploy_prototxt, weights) -> None:
    """A UserError unless the .caffemodel `weights` has every trained layer of `net` with its shapes and no
    learnable layer the net lacks (Caffe would copy what matches by name and leave the rest at its
    initialisation, and abort on a shape it cannot copy); the message says which variant the file holds."""
    from caffe.proto import caffe_pb2

    from .snapshots import read_proto, shape_mismatches, weights_layers

    try:
        found = weights_layers(read_proto(Path(weights), caffe_pb2.NetParameter()), skip_types=("Python",))
    except ValueError as e:
        raise UserError(f"{e}; use another snapshot") from None
    found = {name: shapes for name, shapes in found.items() if name not in fixed_map_names()}  # set on load
    problems = shape_mismatches(found, trained_shapes(net))
    if not problems:
        return
    holds = weights_variant(set(found))
    hint = (f"it holds the weights of the {holds} variant: pass --deploy prototxt/deploy_{holds}.prototxt (or "
            f"prototxt/evaluate_{holds}.prototxt)" if holds and holds != net_variant(net) else
            "it holds weights of another net (another variant or width, or not this project's)")
    raise UserError(f"{weights}: does not match {deploy_prototxt}: {'; '.join(problems)}; {hint}")


def net_variant(net) -> str | None:
    return weights_variant(set(trained_shapes(net)))


def weights_variant(layer_names: set) -> str | None:
    """The variant whose deploy net (prototxt.generate.build_net) has exactly these trained layers, or None."""
    from prototxt.generate import VARIANTS, build_net

    fixed = fixed_map_names()
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        net = build_net("deploy", multi_root=multi_root, use_2d_cls=use_2d_cls)
        names = {layer.name for layer in net.layer if layer.type in LEARNABLE_TYPES and layer.name not in fixed}
        if names == layer_names:
            return variant
    return None


LEARNABLE_TYPES = ("Convolution", "InnerProduct", "BatchNorm", "Scale")  # the nets' layers with parameters


def check_finite_weights(net, weights) -> None:
    for name, blobs in net.params.items():
        for blob in blobs:
            if not np.isfinite(blob.data).all():
                raise UserError(f"{weights}: layer {name} holds NaN or infinite weights (a diverged run); evaluate "
                                "an earlier snapshot, or train again with a lower base_lr")


def load_deploy_net(deploy_prototxt: str, weights: str, batch_size: int | None = None):
    """caffe.Net in TEST phase with `weights` (checked first: check_weights, then finite), its root_average layer
    set to eq. (7) and, in an evaluation net, its scale-recovery and error maps set (set_fixed_maps)."""
    if not Path(deploy_prototxt).is_file():
        raise UserError(f"{deploy_prototxt}: no such net; `python -m prototxt.generate` writes prototxt/")
    if not Path(weights).is_file():
        raise UserError(f"{weights}: no such file")
    net = caffe.Net(str(deploy_prototxt), caffe.TEST)
    check_weights(net, deploy_prototxt, weights)
    net.copy_from(str(weights))
    check_finite_weights(net, weights)
    if batch_size is not None:
        for name in ("data",) + EVALUATION_INPUTS:
            if name in net.blobs:
                net.blobs[name].reshape(batch_size, *net.blobs[name].data.shape[1:])
        net.reshape()
    net.params["root_average"][0].data[...] = root_average_matrix(roots_of(net), len(JOINTS))
    set_fixed_maps(net)
    return net


def set_fixed_maps(net) -> None:
    """The evaluation layers' frozen weights (layers.targets.evaluation_maps), where the net has them."""
    for name, matrix in evaluation_maps(len(JOINTS), TORSO_BONES, ROOT).items():
        if name in net.params:
            net.params[name][0].data[...] = matrix


def is_evaluation_net(net) -> bool:
    return all(name in net.blobs for name in EVALUATION_INPUTS + ("mpjpe_p1", "mpjpe_zero_mean", "pose3d_mm"))


__all__ = ["load_deploy_net", "check_weights", "roots_of", "set_fixed_maps", "is_evaluation_net"]
