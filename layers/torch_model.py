"""The paper's nets in PyTorch, built from layers/config.py (the numbers prototxt/generate.py builds the Caffe nets
from), and a trained .caffemodel's weights as their state_dict. torch is optional: only this module imports it.

Each module attribute is named after the Caffe layer it stands for (conv1, fc1_2d, out_3d_hip; Caffe's BatchNorm +
Scale pair is one BatchNorm named <layer>_bn, with the Scale's gamma and beta as its affine part), so the weights
map one to one. The fixed maps ride along as buffers: eq. (7)'s root average and the torso-based scale recovery
with the training set's lengths, so that a saved state_dict is the whole model:

  net = PoseNet("both"); net.load_state_dict(torch.load("walking_both.pt")); net.eval()
  softmax_2d, pose3d, pose3d_mm = net(batch)        # batch (N, 3, 225, 225): layers.onnx_export.INPUT_CONVENTION
  logits_2d, head_outputs = net.train_outputs(batch)  # what the losses of eq. (3), (5)-(6) take
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from data_prep.metrics import ROOT
from data_prep.skeleton import BASELINE_ROOTS, JOINTS, ROOTS, TORSO_BONES

from . import config
from .config import scaled
from .fold import batch_norm_statistics
from .layout import TORSO_BONES_MAP, TORSO_LENGTHS_MAP, head_name, root_slug
from .targets import evaluation_maps, root_average_matrix


class PoseNet(nn.Module):
    """One of Table 2's variants (layers.config.VARIANTS) at `width` times the paper's sizes (build_net's width)."""

    def __init__(self, variant: str = "both", width: float = 1.0, mean_torso_lengths=None):
        super().__init__()
        multi_root, self.use_2d_cls = config.VARIANTS[variant]
        self.variant, self.roots = variant, list(ROOTS if multi_root else BASELINE_ROOTS)
        fc = scaled(config.FC_SIZE, width)
        self.convs, channels, size = [], 3, config.INPUT_SIZE
        for name, maps, kernel, stride, pad, pool in config.CONV_LAYERS:
            maps = scaled(maps, width)
            self.add_module(name, nn.Conv2d(channels, maps, kernel, stride, pad, bias=False))
            self.add_module(f"{name}_bn", nn.BatchNorm2d(maps))
            self.convs.append((name, pool))
            channels, size = maps, (size + 2 * pad - kernel) // stride + 1
            if pool:  # Caffe rounds the pooled size up
                size = -(-(size - 3) // 2) + 1
        features = channels * size * size
        self.hidden("fc1_2d", features, fc)
        self.hidden("fc2_2d", fc, fc)
        self.fc_out_2d = nn.Linear(fc, len(JOINTS) * config.NUM_CLASSES_2D)
        self.hidden("fc1_3d", features, fc)
        if self.use_2d_cls:
            self.hidden("fc_probs_2d", len(JOINTS) * config.NUM_CLASSES_2D, fc)
        self.heads = []
        for r in self.roots:
            self.hidden(f"fc2_3d_{root_slug(JOINTS[r])}", 2 * fc if self.use_2d_cls else fc, fc)
            self.add_module(head_name(JOINTS[r]), nn.Linear(fc, config.OUTPUT_3D))
            self.heads.append((f"fc2_3d_{root_slug(JOINTS[r])}", head_name(JOINTS[r])))
        self.dropout = nn.Dropout(config.DROPOUT)
        as_buffer = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        self.register_buffer("root_average", as_buffer(root_average_matrix(self.roots, len(JOINTS))))
        maps = evaluation_maps(len(JOINTS), TORSO_BONES, ROOT)  # the evaluation net's scale-recovery maps
        self.register_buffer("torso_bones", as_buffer(maps[TORSO_BONES_MAP]))
        self.register_buffer("torso_lengths_sq", as_buffer(maps[TORSO_LENGTHS_MAP]))
        total = float(np.sum(mean_torso_lengths)) if mean_torso_lengths is not None else float("nan")
        self.register_buffer("mean_torso_sum", torch.tensor([total]))  # set from the training LMDB's meta.json

    def hidden(self, name: str, inputs: int, outputs: int) -> None:
        """A hidden fully connected layer: inner product without bias, BatchNorm (+ Scale), ReLU, dropout."""
        self.add_module(name, nn.Linear(inputs, outputs, bias=False))
        self.add_module(f"{name}_bn", nn.BatchNorm1d(outputs))

    def block(self, name: str, x):
        x = torch.relu(getattr(self, f"{name}_bn")(getattr(self, name)(x)))
        return self.dropout(x) if x.dim() == 2 else x

    def train_outputs(self, x) -> tuple:
        """(logits_2d (N, 17, 256), [each root's 48 outputs]) as the Caffe net's losses take them."""
        for name, pool in self.convs:
            x = self.block(name, x)
            if pool:
                x = nn.functional.max_pool2d(x, 3, 2, ceil_mode=True)
        features = x.flatten(1)
        logits = self.fc_out_2d(self.block("fc2_2d", self.block("fc1_2d", features))).view(-1, len(JOINTS),
                                                                                            config.NUM_CLASSES_2D)
        h = self.block("fc1_3d", features)
        if self.use_2d_cls:
            h = torch.cat([h, self.block("fc_probs_2d", torch.softmax(logits, 2).flatten(1))], 1)
        return logits, [getattr(self, out)(self.block(hidden, h)) for hidden, out in self.heads]

    def forward(self, x) -> tuple:
        """(softmax_2d (N, 17, 256), pose3d (N, 17, 3) of eq. (7), pose3d_mm (N, 17, 3)): the exported model's
        outputs (layers.onnx_export)."""
        logits, outs = self.train_outputs(x)
        pose = torch.cat(outs, 1) @ self.root_average.T
        lengths = (((pose @ self.torso_bones.T) ** 2) @ self.torso_lengths_sq.T).sqrt().sum(1, keepdim=True)
        pose_mm = pose * (self.mean_torso_sum / lengths.clamp_min(1e-12))
        return torch.softmax(logits, 2), pose.view(-1, len(JOINTS), 3), pose_mm.view(-1, len(JOINTS), 3)


def fold_batch_norms(net: PoseNet) -> PoseNet:
    """An eval-mode net with each BatchNorm folded into the convolution or inner product before it, as layers.fold
    folds Caffe's BatchNorm + Scale for prediction: the same outputs to float rounding, two passes fewer per layer
    (the PyTorch peer's deploy net beside Caffe's folded one). In place; returns the net."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

    if net.training:
        raise ValueError("fold_batch_norms: the net is in training mode (its BatchNorms use the batch): call .eval()")
    for name, layer in list(net.named_children()):
        norm = getattr(net, f"{name}_bn", None)
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            fuse = fuse_conv_bn_eval if isinstance(layer, nn.Conv2d) else fuse_linear_bn_eval
            setattr(net, name, fuse(layer, norm))
            setattr(net, f"{name}_bn", nn.Identity())
    return net


def state_dict_from_caffe(params: dict, variant: str, width: float, mean_torso_lengths) -> dict:
    """PoseNet(variant, width)'s state_dict from a Caffe deploy net's params (layer -> list of arrays, as
    layers.deploy.load_deploy_net loaded and checked them): convolutions and inner products as they are, each
    BatchNorm's statistics (layers.fold.batch_norm_statistics) with its Scale's gamma and beta."""
    net = PoseNet(variant, width, mean_torso_lengths)
    state = net.state_dict()
    tensor = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
    for key in list(state):
        module, _, field = key.rpartition(".")
        if module.endswith("_bn"):
            layer = module[: -len("_bn")]
            mean, var = batch_norm_statistics(params[f"{layer}_bn"])
            value = {"running_mean": mean, "running_var": var, "weight": params[f"{layer}_scale"][0],
                     "bias": params[f"{layer}_scale"][1], "num_batches_tracked": None}[field]
            if value is None:
                continue
        elif module in params:
            value = params[module][{"weight": 0, "bias": 1}[field]]
        else:
            continue  # the fixed maps: built by PoseNet itself
        if tuple(state[key].shape) != np.shape(value):
            raise ValueError(
                f"{key}: the Caffe layer's shape {np.shape(value)} is not PoseNet's {tuple(state[key].shape)}"
            )
        state[key] = tensor(value)
    return state
