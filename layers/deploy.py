"""Loading the deploy net: the trained weights plus the fixed root-averaging map of eq. (7)."""
from __future__ import annotations

import caffe

from data_prep.skeleton import JOINTS

from .targets import root_average_matrix


def roots_of(net) -> list:
    """The roots a deploy net predicts from, read off its out_3d_<joint> layers (in order)."""
    names = {j.lower().replace("/", "_"): i for i, j in enumerate(JOINTS)}
    roots = [names[k[len("out_3d_"):]] for k in net.params if k.startswith("out_3d_")]
    if not roots:
        raise ValueError("not a deploy net of prototxt/generate.py: no out_3d_<joint> layers")
    return roots


def load_deploy_net(deploy_prototxt: str, weights: str, batch_size: int | None = None):
    """caffe.Net in TEST phase with `weights`, its root_average layer set to eq. (7)."""
    net = caffe.Net(str(deploy_prototxt), caffe.TEST, weights=str(weights))
    if batch_size is not None:
        net.blobs["data"].reshape(batch_size, *net.blobs["data"].data.shape[1:])
        net.reshape()
    roots = roots_of(net)
    net.params["root_average"][0].data[...] = root_average_matrix(roots, len(JOINTS))
    return net


__all__ = ["load_deploy_net", "roots_of"]
