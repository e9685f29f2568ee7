"""Caffe Python layers of the paper's net (section 3): soft-label 2D targets and loss, root-relative 3D
targets. Parameters come from param_str (JSON), parsed once in setup; the numbers are computed by the
pure functions of layers.targets.

  layer { type: "Python" python_param { module: "layers.pose_layers" layer: "SoftLabelTargets" } }
"""
from __future__ import annotations

import functools
import json
import sys
import traceback

import caffe

from data_prep.errors import LAYER_ERROR, USER_ERRORS

from . import targets as T
from .config import GRID, INPUT_SIZE, LAMBDA_2D


class ReportingLayer(caffe.Layer):
    """A caffe.Layer whose errors print their Python traceback: the caffe tool itself only says
    'boost::python::error_already_set' and aborts."""

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        for name in ("setup", "reshape", "forward", "backward"):
            if name in cls.__dict__:
                setattr(cls, name, _reported(cls.__dict__[name]))


def _reported(method):
    @functools.wraps(method)
    def wrapper(self, *args):
        try:
            return method(self, *args)
        except USER_ERRORS as e:  # bad input (an LMDB, a parameter): its one line, which the drivers show
            print(f"{LAYER_ERROR}{e}", file=sys.stderr, flush=True)
            raise
        except Exception:
            print(f"Error in Python layer {type(self).__name__}.{method.__name__}:\n{traceback.format_exc()}",
                  file=sys.stderr, flush=True)
            raise
    return wrapper


def parse_params(layer, allowed: dict) -> dict:
    """param_str as JSON, with defaults from `allowed`; unknown keys are an error naming the layer."""
    text = getattr(layer, "param_str", "") or "{}"
    try:
        given = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{type(layer).__name__}: param_str is not JSON ({e}): {text!r}") from e
    unknown = set(given) - set(allowed)
    if unknown:
        raise ValueError(
            f"{type(layer).__name__}: unknown param_str keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return {**allowed, **given}


def check_counts(layer, bottom, top, n_bottom, n_top):
    name = type(layer).__name__
    if n_bottom is not None and len(bottom) != n_bottom:
        raise ValueError(f"{name}: needs {n_bottom} bottom blob(s), got {len(bottom)}")
    if n_top is not None and len(top) != n_top:
        raise ValueError(f"{name}: needs {n_top} top blob(s), got {len(top)}")


class SoftLabelTargets(ReportingLayer):
    """joints2d (N, J, 2) in input-crop pixels -> soft 2D labels (N, J, grid*grid), eq. (1)-(2)."""

    def setup(self, bottom, top):
        check_counts(self, bottom, top, 1, 1)
        p = parse_params(self, {"image_size": INPUT_SIZE, "grid": GRID})
        self.image_size, self.grid = float(p["image_size"]), int(p["grid"])
        if bottom[0].data.ndim != 3 or bottom[0].data.shape[2] != 2:
            raise ValueError(f"SoftLabelTargets: bottom must be (N, J, 2) joints, got {bottom[0].data.shape}")

    def reshape(self, bottom, top):
        n, j, _ = bottom[0].data.shape
        top[0].reshape(n, j, self.grid * self.grid)

    def forward(self, bottom, top):
        top[0].data[...] = T.soft_label_targets(bottom[0].data, self.image_size, self.grid)

    def backward(self, top, propagate_down, bottom):
        pass  # targets: nothing to propagate


class SoftLabelCrossEntropyLoss(ReportingLayer):
    """Eq. (3) for every joint, summed over joints, mean over the batch, times lambda_2D.

    bottoms: logits (N, J, C) (softmax over C inside), soft targets (N, J, C). lambda_2D follows the
    paper's schedule (0.1, then 0.01 after `lambda_step_iter` training iterations) inside one run: the
    layer keeps its count of training iterations in a parameter blob (lr_mult 0, decay_mult 0), which
    Caffe saves in snapshots and restores on `caffe train -snapshot`, so a resumed run keeps the schedule.
    Set `loss_weight: 1` on the layer; lambda is applied here.
    """

    def setup(self, bottom, top):
        check_counts(self, bottom, top, 2, 1)
        p = parse_params(self, {"lambda_2d": list(LAMBDA_2D), "lambda_step_iter": None})
        self.lambdas = [float(v) for v in p["lambda_2d"]]
        self.step_iter = p["lambda_step_iter"]
        if len(self.lambdas) not in (1, 2) or (len(self.lambdas) == 2 and self.step_iter is None):
            raise ValueError("SoftLabelCrossEntropyLoss: lambda_2d is [value] or [before, after] with lambda_step_iter")
        if bottom[0].data.shape != bottom[1].data.shape or bottom[0].data.ndim != 3:
            raise ValueError(f"SoftLabelCrossEntropyLoss: logits {bottom[0].data.shape} and targets "
                             f"{bottom[1].data.shape} must both be (N, J, C)")
        if len(self.blobs) == 0:
            self.blobs.add_blob(1)
            self.blobs[0].data[...] = 0

    @property
    def iteration(self) -> int:
        return int(round(float(self.blobs[0].data[0])))

    def current_lambda(self) -> float:
        if len(self.lambdas) == 1 or self.iteration < self.step_iter:
            return self.lambdas[0]
        return self.lambdas[1]

    def reshape(self, bottom, top):
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.lam = self.current_lambda()
        loss, self.grad = T.soft_label_cross_entropy(bottom[0].data, bottom[1].data)
        top[0].data[0] = self.lam * loss
        if self.phase == caffe.TRAIN:
            self.blobs[0].data[0] += 1

    def backward(self, top, propagate_down, bottom):
        if propagate_down[0]:
            bottom[0].diff[...] = self.lam * top[0].diff[0] * self.grad
        if propagate_down[1]:  # d/d targets of -sum t log p / N (asked for under force_backward)
            logits = bottom[0].data
            bottom[1].diff[...] = -self.lam * top[0].diff[0] * T.log_softmax(logits) / len(logits)


class RootRelativeTargets(ReportingLayer):
    """pose3d (N, J, 3) -> one top per root: (N, 3*(J-1)) positions relative to that root, eq. (4).

    param_str: {"roots": [0, 8, 2, 5, 12, 15]} (tops in this order)."""

    def setup(self, bottom, top):
        p = parse_params(self, {"roots": None})
        if not p["roots"]:
            raise ValueError("RootRelativeTargets: param_str needs \"roots\", e.g. {\"roots\": [0]}")
        self.roots = [int(r) for r in p["roots"]]
        check_counts(self, bottom, top, 1, len(self.roots))
        shape = bottom[0].data.shape
        if len(shape) != 3 or shape[2] != 3 or max(self.roots) >= shape[1]:
            raise ValueError(f"RootRelativeTargets: bottom must be (N, J, 3) with J > max root, got {shape}")

    def reshape(self, bottom, top):
        n, j, _ = bottom[0].data.shape
        for i in range(len(top)):  # index: pycaffe's blob vectors cannot be iterated
            top[i].reshape(n, 3 * (j - 1))

    def forward(self, bottom, top):
        rel = T.root_relative_targets(bottom[0].data, self.roots)
        for i, r in enumerate(self.roots):
            top[i].data[...] = T.drop_root(rel[:, i], r)

    def backward(self, top, propagate_down, bottom):
        pass
