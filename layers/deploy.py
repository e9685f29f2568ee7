"""Loading the deploy net: the trained weights plus the fixed root-averaging map of eq. (7) and, in an
evaluation net (prototxt.generate: build_net("evaluate")), the fixed maps of its scale recovery and errors."""
from __future__ import annotations

import caffe

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


def load_deploy_net(deploy_prototxt: str, weights: str, batch_size: int | None = None):
    """caffe.Net in TEST phase with `weights`, its root_average layer set to eq. (7) and, in an evaluation net,
    its scale-recovery and error maps set (set_fixed_maps)."""
    net = caffe.Net(str(deploy_prototxt), caffe.TEST, weights=str(weights))
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


__all__ = ["load_deploy_net", "roots_of", "set_fixed_maps", "is_evaluation_net"]
