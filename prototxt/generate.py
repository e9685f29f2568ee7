"""The paper's nets (sections 3-4) from one function, and every prototxt in prototxt/ from one command:

  python -m prototxt.generate                      # rewrite prototxt/ from prototxt/train_counts.json
  python -m prototxt.generate --counts-from data/lmdb   # first take the counts from your LMDBs' meta.json

build_net(split, multi_root=..., use_2d_cls=...) gives the four variants of Table 2:
baseline (False, False), multi-reg (True, False), 2D-cls (False, True), both (True, True).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import caffe
from caffe import layers as L
from caffe import params as P

from data_prep.files import write_text_atomic
from data_prep.records import read_meta
from data_prep.skeleton import ABLATION_ACTIONS, ACTIONS, BASELINE_ROOTS, JOINTS, ROOTS, TORSO_BONES, action_slug
from layers import config
from layers.config import scaled
from layers.fold import folded_net_param
from layers.layout import (
    ERROR_MAPS,
    EVALUATION_INPUTS,
    EVALUATION_MAPS,
    JOINT_ERROR_MAPS,
    MPJPE_OUTPUTS,
    POSE_MM,
    ROOT_AVERAGE,
    TORSO_BONES_MAP,
    TORSO_LENGTHS_MAP,
    TORSO_SUM_MAP,
    NetLayout,
    head_name,
    root_slug,
)

HERE = Path(__file__).resolve().parent
VARIANTS = config.VARIANTS
WEIGHTS = [dict(lr_mult=1, decay_mult=1)]
WEIGHTS_BIAS = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
FROZEN = [dict(lr_mult=0, decay_mult=0)]


def bn_scale_relu(n, name, bottom):
    """BatchNorm (+Scale, Caffe's BN has no affine part) and ReLU, in place: BN before the
    nonlinearity, as in Ioffe & Szegedy, whom the paper cites for it."""
    # no param specs: Caffe 1.0's BatchNorm keeps its statistics out of the solver's updates itself
    n[f"{name}_bn"] = L.BatchNorm(bottom, in_place=True)
    n[f"{name}_scale"] = L.Scale(bottom, in_place=True, bias_term=True,
                                 param=[dict(lr_mult=1, decay_mult=0), dict(lr_mult=1, decay_mult=0)])
    n[f"{name}_relu"] = L.ReLU(bottom, in_place=True)
    return bottom


def conv_bn_relu(n, name, bottom, maps, kernel, stride, pad):
    conv = L.Convolution(bottom, num_output=maps, kernel_size=kernel, stride=stride, pad=pad, bias_term=False,
                         weight_filler=dict(type="msra"), param=WEIGHTS)
    n[name] = conv
    return bn_scale_relu(n, name, conv)


def fc_bn_relu_dropout(n, name, bottom, size=config.FC_SIZE):
    """A hidden fully connected layer: BN on every fc layer, dropout 0.3 on every fc layer (section 4)."""
    fc = L.InnerProduct(bottom, num_output=size, bias_term=False, weight_filler=dict(type="msra"), param=WEIGHTS)
    n[name] = fc
    bn_scale_relu(n, name, fc)
    n[f"{name}_drop"] = L.Dropout(fc, in_place=True, dropout_ratio=config.DROPOUT)
    return fc


def linear(bottom, size, std=0.001):
    return L.InnerProduct(bottom, num_output=size, weight_filler=dict(type="gaussian", std=std),
                          bias_filler=dict(type="constant", value=0), param=WEIGHTS_BIAS)


def python_layer(bottom, layer, params=None, ntop=1, module="layers.pose_layers", **kw):
    return L.Python(*bottom, module=module, layer=layer, param_str=json.dumps(params or {}, sort_keys=True),
                    ntop=ntop, **kw)


def root_name(r: int) -> str:
    return root_slug(JOINTS[r])  # the slug of the 3D head's layers (fc2_3d_<slug>, head_name)


SPLITS = ("train", "test", "deploy", "evaluate", "time")


def build_net(
    split: str,
    *,
    multi_root: bool,
    use_2d_cls: bool,
    lmdb: str | list | None = None,
    batch_size: int = config.BATCH_SIZE,
    lambda_step_iter: int | None = None,
    seed: int = 0,
    workers: int | str = "auto",
    roots=None,
    width: float = 1.0,
) -> tuple:
    """(NetParameter, NetLayout) of one variant and split: 'train' or 'test' (data layer over `lmdb`, losses),
    'deploy' (Input, eq. (7) averaging, pose3d), 'evaluate' (the deploy net, then the scale recovery and the
    per-frame errors as native layers) or 'time' (the train net with Inputs for the images and targets and eq. (3)
    as native layers: no Python layer, so `caffe time` runs it where no Python runs, e.g. on a GPU machine; for
    timing only). The NetLayout (layers.layout) is what callers need to know about the net.
    width: the convolutions' maps and the hidden fully connected layers' sizes times `width` (1: the paper's
    net; small widths give the same layers and data flow with a few MB of weights, for the fault-injection tests).
    The train/test data layer is named "pose_data" (its position blob must not meet a deploy net's "data")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    roots = list(roots if roots is not None else (ROOTS if multi_root else BASELINE_ROOTS))
    fc = scaled(config.FC_SIZE, width)
    n = caffe.NetSpec()
    inputs(n, split, lmdb, batch_size, seed, workers)
    features = trunk(n, n.data, width)
    logits = branch_2d(n, features, fc)
    loss_2d(n, split, logits, batch_size, lambda_step_iter)
    x3 = branch_3d(n, features, logits, fc, use_2d_cls)
    outs = heads_3d(n, split, x3, roots, fc, batch_size)
    if split in ("deploy", "evaluate"):
        deploy_tail(n, outs)
    if split == "evaluate":
        evaluation_tail(n, n[ROOT_AVERAGE])
    net = n.to_proto()
    for layer in net.layer:
        if layer.type == "Python" and layer.python_param.layer == "PoseDataLayer":
            layer.name = "pose_data"
    net.name = f"park2016_{'multiroot' if multi_root else 'oneroot'}_{'2dcls' if use_2d_cls else 'no2dcls'}_{split}"
    return net, layout_of(net, split, multi_root, use_2d_cls, roots)


def inputs(n, split: str, lmdb, batch_size: int, seed: int, workers: int | str) -> None:
    """The image input: an Input blob (deploy, evaluate: one image; time: a batch) or the data layer over `lmdb`
    with the 2D joints and 3D poses (train, test)."""
    if split in ("deploy", "evaluate", "time"):
        n.data = L.Input(
            shape=dict(dim=[batch_size if split == "time" else 1, 3, config.INPUT_SIZE, config.INPUT_SIZE])
        )
        return
    if lmdb is None:
        raise ValueError(f"build_net({split!r}) needs the LMDB path")
    data_params = dict(lmdb=lmdb, batch_size=batch_size, seed=seed, workers=workers)
    # FROZEN: the layer's position blob (the next batch, saved in snapshots) is no parameter to train
    n.data, n.joints2d, n.pose3d = python_layer([], "PoseDataLayer", data_params, ntop=3, module="layers.data_layer",
                                                param=FROZEN)


def trunk(n, x, width: float):
    """Fig. 1's convolutions (BatchNorm, ReLU) and max-poolings."""
    for name, maps, kernel, stride, pad, pool in config.CONV_LAYERS:
        x = conv_bn_relu(n, name, x, scaled(maps, width), kernel, stride, pad)
        if pool:
            x = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2)
            n[f"pool{name[-1]}"] = x
    return x


def branch_2d(n, features, fc: int):
    """2D branch (Fig. 1): fc1 2D, fc2 2D, then N_g*N_g classes per joint (a softmax per joint in the loss)."""
    x = fc_bn_relu_dropout(n, "fc1_2d", features, fc)
    x = fc_bn_relu_dropout(n, "fc2_2d", x, fc)
    n.fc_out_2d = linear(x, len(JOINTS) * config.NUM_CLASSES_2D, std=0.01)
    n.logits_2d = L.Reshape(n.fc_out_2d, shape=dict(dim=[0, len(JOINTS), config.NUM_CLASSES_2D]))
    return n.logits_2d


def loss_2d(n, split: str, logits, batch_size: int, lambda_step_iter) -> None:
    """Eq. (1)-(3): soft labels from the 2D joints and the cross-entropy (Python layers; time: native layers over
    an Input of soft labels); none in a deploy or evaluation net."""
    if split == "time":
        n.soft_targets_2d = L.Input(shape=dict(dim=[batch_size, len(JOINTS), config.NUM_CLASSES_2D]))
        native_soft_label_loss(n, logits, n.soft_targets_2d, batch_size, config.LAMBDA_2D[0])
    elif split in ("train", "test"):
        n.soft_targets_2d = python_layer(
            [n.joints2d], "SoftLabelTargets", dict(image_size=config.INPUT_SIZE, grid=config.GRID)
        )
        loss_params = dict(lambda_2d=list(config.LAMBDA_2D), lambda_step_iter=lambda_step_iter)
        n.loss_2d = python_layer([logits, n.soft_targets_2d], "SoftLabelCrossEntropyLoss", loss_params,
                                 loss_weight=1, param=FROZEN)


def branch_3d(n, features, logits, fc: int, use_2d_cls: bool):
    """3D branch (Fig. 1 / Fig. 2, docs/design.md: 2D-to-3D link): fc1 3D; with 2D-cls, the vectorised softmax
    through "fc probs 2D" concatenated with it ("fc 2D-3D")."""
    x3 = fc_bn_relu_dropout(n, "fc1_3d", features, fc)
    if use_2d_cls:
        n.probs_2d = L.Softmax(logits, axis=2)
        probs = fc_bn_relu_dropout(n, "fc_probs_2d", n.probs_2d, fc)
        n.fc_2d3d = L.Concat(x3, probs, axis=1)
        x3 = n.fc_2d3d
    return x3


def heads_3d(n, split: str, x3, roots: list, fc: int, batch_size: int) -> list:
    """One fc2 3D and linear output per root, eq. (4); in train/test/time each with its root-relative target and
    the Euclidean loss of eq. (5)/(6). Returns the outputs, in the order of `roots`."""
    tops = None
    if split == "time":
        tops = tuple(L.Input(shape=dict(dim=[batch_size, config.OUTPUT_3D])) for _ in roots)
    elif split in ("train", "test"):
        tops = python_layer([n.pose3d], "RootRelativeTargets", dict(roots=roots), ntop=len(roots))
        tops = tops if isinstance(tops, tuple) else (tops,)
    outs = []
    for i, r in enumerate(roots):
        rn = root_name(r)
        h = fc_bn_relu_dropout(n, f"fc2_3d_{rn}", x3, fc)
        out = linear(h, config.OUTPUT_3D)
        n[head_name(JOINTS[r])] = out
        outs.append(out)
        if tops is not None:
            n[f"target_3d_{rn}"] = tops[i]
            # Caffe's EuclideanLoss is 1/(2N) sum ||.||^2; weight 2*lambda_3D gives eq. (5)/(6)'s lambda_3D * mean.
            n[f"loss_3d_{rn}"] = L.EuclideanLoss(out, tops[i], loss_weight=2 * config.LAMBDA_3D)
    return outs


def deploy_tail(n, outs: list) -> None:
    """Eq. (7) as a fixed linear map (weights set by layers.deploy.load_deploy_net): insert each root's zero row,
    centre each pose, average over roots; then (N, 17, 3)."""
    n.out_3d_all = L.Concat(*outs, axis=1) if len(outs) > 1 else L.Split(outs[0])
    n[ROOT_AVERAGE] = L.InnerProduct(n.out_3d_all, num_output=3 * len(JOINTS), bias_term=False, param=FROZEN)
    n.pose3d = L.Reshape(n[ROOT_AVERAGE], shape=dict(dim=[0, len(JOINTS), 3]))


LEARNABLE_TYPES = ("Convolution", "InnerProduct", "BatchNorm", "Scale")  # the nets' native layers with parameters


def layout_of(net, split: str, multi_root: bool, use_2d_cls: bool, roots: list) -> NetLayout:
    variant = next(v for v, flags in VARIANTS.items() if flags == (multi_root, use_2d_cls))
    fixed = tuple(name for name in (ROOT_AVERAGE, *EVALUATION_MAPS) if any(layer.name == name for layer in net.layer))
    trained = tuple(layer.name for layer in net.layer if layer.type in LEARNABLE_TYPES and layer.name not in fixed)
    return NetLayout(variant=variant, split=split, roots=tuple(int(r) for r in roots),
                     heads=tuple(head_name(JOINTS[r]) for r in roots), trained=trained, fixed_maps=fixed,
                     evaluation=split == "evaluate")


def native_soft_label_loss(n, logits, targets, batch_size: int, lambda_2d: float) -> None:
    """Eq. (3) summed over joints, mean over the batch, times lambda_2D, from native layers (the time split's
    stand-in for the SoftLabelCrossEntropyLoss Python layer; no lambda schedule): softmax over the classes, log,
    times the soft targets, summed with coefficient -1/N."""
    n.probs_2d_loss = L.Softmax(logits, axis=2)
    n.log_probs_2d = L.Log(n.probs_2d_loss)
    n.target_log_probs_2d = L.Eltwise(n.log_probs_2d, targets, operation=P.Eltwise.PROD)
    n.loss_2d = L.Reduction(n.target_log_probs_2d, operation=P.Reduction.SUM, axis=0, coeff=-1.0 / batch_size,
                            loss_weight=lambda_2d)


def evaluation_tail(n, pose) -> None:
    """Section 4's test-time scale and the per-frame errors in mm as native Caffe layers after the averaged
    pose (N, 3J), so that the whole evaluation runs where the net runs (CPU or GPU). Inputs gt_mm (N, 3J, camera
    coordinates) and torso_sum (N, 1, the training set's summed mean torso bone lengths). The frozen
    InnerProducts' weights are set by layers.deploy.load_deploy_net (layers.targets.evaluation_maps):
      torso_bones -> ^2 -> torso_lengths_sq (per bone) -> ^0.5 -> torso_predicted (sum) -> ^-1, x torso_sum = scale
      pose3d_mm = scale x pose; error = pose3d_mm - gt_mm
      error_<p> (P1: minus the root; zero-mean: minus the joint mean) -> ^2 -> per joint -> ^0.5 -> mean = mpjpe_<p>
    PA-MPJPE needs an SVD per pose and stays in NumPy (data_prep.metrics)."""
    joints, bones = len(JOINTS), len(TORSO_BONES)
    gt, torso_sum = EVALUATION_INPUTS
    n[gt] = L.Input(shape=dict(dim=[1, 3 * joints]))
    n[torso_sum] = L.Input(shape=dict(dim=[1, 1]))
    n[TORSO_BONES_MAP] = L.InnerProduct(pose, num_output=3 * bones, bias_term=False, param=FROZEN)
    n.torso_bones_sq = L.Power(n[TORSO_BONES_MAP], power=2)
    n[TORSO_LENGTHS_MAP] = L.InnerProduct(n.torso_bones_sq, num_output=bones, bias_term=False, param=FROZEN)
    n.torso_lengths = L.Power(n[TORSO_LENGTHS_MAP], power=0.5)
    n[TORSO_SUM_MAP] = L.InnerProduct(n.torso_lengths, num_output=1, bias_term=False, param=FROZEN)
    n.torso_inverse = L.Power(n[TORSO_SUM_MAP], power=-1)
    n.scale = L.Eltwise(n.torso_inverse, n[torso_sum], operation=P.Eltwise.PROD)
    n.scale_per_pose = L.Reshape(n.scale, shape=dict(dim=[-1]))
    n[POSE_MM] = L.Scale(pose, n.scale_per_pose, axis=0)
    n.error = L.Eltwise(n[POSE_MM], n[gt], operation=P.Eltwise.SUM, coeff=[1, -1])
    for protocol in ("p1", "zero_mean"):
        aligned, per_joint = ERROR_MAPS[protocol], JOINT_ERROR_MAPS[protocol]
        n[aligned] = L.InnerProduct(n.error, num_output=3 * joints, bias_term=False, param=FROZEN)
        n[f"{aligned}_sq"] = L.Power(n[aligned], power=2)
        n[per_joint] = L.InnerProduct(n[f"{aligned}_sq"], num_output=joints, bias_term=False, param=FROZEN)
        n[f"joint_errors_{protocol}"] = L.Power(n[per_joint], power=0.5)
        n[MPJPE_OUTPUTS[protocol]] = L.Reduction(n[f"joint_errors_{protocol}"], operation=P.Reduction.MEAN, axis=1)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How long and how a net trains: section 4's schedule by default (batch 128, 28 epochs, lr halved every
    4 epochs, test and snapshot every 4 epochs, loss shown every 50 iterations). Epoch lengths come from the
    training set's size; max_iter / snapshot / test_interval, when set, replace the values derived from epochs
    (short runs in tests and benchmarks).

    ranks > 1 is data-parallel training on that many GPUs (tools/train_multi_gpu.py): every rank runs batch_size
    images a step and Caffe averages their gradients, so one step sees batch_size x ranks images — the
    effective batch, from which the learning rate (0.01 x effective / 128) and the epoch length come."""
    batch_size: int = config.BATCH_SIZE
    epochs: int = config.EPOCHS
    lr_step_epochs: int = config.LR_STEP_EPOCHS
    test_every_epochs: int = 4
    display: int = 50
    test_batch_size: int = 64
    workers: int | str = "auto"  # data-layer worker processes ("auto": layers.data_layer.default_workers)
    seed: int = 0  # weight initialisation, the data layer's shuffling and augmentation
    max_iter: int | None = None
    snapshot: int | None = None
    test_interval: int | None = None
    ranks: int = 1  # GPUs in data-parallel training

    @property
    def effective_batch(self) -> int:
        return self.batch_size * self.ranks

    @classmethod
    def short(cls, epochs: int, batch_size: int, seed: int = 0) -> "Schedule":
        """The paper's schedule compressed to `epochs`: lr halved, tested and snapshotted every epochs/3
        epochs; the lambda_2D step stays at 16/28 of the run (lambda_step_iter)."""
        third = max(1, epochs // 3)
        return cls(batch_size=batch_size, epochs=epochs, lr_step_epochs=third, test_every_epochs=third, display=10,
                   seed=seed)

    def iterations_per_epoch(self, train_count: int) -> int:
        return max(1, math.ceil(train_count / self.effective_batch))

    def total_iterations(self, train_count: int) -> int:
        return self.max_iter or self.epochs * self.iterations_per_epoch(train_count)

    def lambda_step_iter(self, train_count: int) -> int:
        """Section 4's lambda_2D switch after 16 of 28 epochs, at the same fraction of this schedule."""
        return config.LAMBDA_2D_STEP_EPOCH * self.epochs // config.EPOCHS * self.iterations_per_epoch(train_count)


def build_solver(*, train_net: str, test_net: str, train_count: int, test_count: int, snapshot_prefix: str,
                 schedule: Schedule = Schedule()) -> caffe.proto.caffe_pb2.SolverParameter:
    """Section 4's SGD: lr 0.01 halved every 4 epochs, 28 epochs, momentum 0.9, weight decay 0.001;
    iterations from the training set's size; test and snapshot every 4 epochs (Fig. 4).

    For a batch other than the paper's 128 the learning rate scales linearly (0.01 * batch / 128):
    the 3D heads' per-sample step grows as lr * |h|^2 / batch, and at batch 16 with lr 0.01 training
    diverges within 20 iterations, while 128 / 0.01 and 16 / 0.00125 train (docs/benchmarks.md)."""
    iters_per_epoch = schedule.iterations_per_epoch(train_count)
    s = caffe.proto.caffe_pb2.SolverParameter()
    s.train_net = train_net
    s.test_net.append(test_net)
    s.test_iter.append(max(1, math.ceil(test_count / schedule.test_batch_size)))
    s.test_interval = schedule.test_interval or schedule.test_every_epochs * iters_per_epoch
    s.test_initialization = False
    s.base_lr = config.BASE_LR * schedule.effective_batch / config.BATCH_SIZE
    s.lr_policy = "step"
    s.gamma = config.LR_GAMMA
    s.stepsize = schedule.lr_step_epochs * iters_per_epoch
    s.max_iter = schedule.total_iterations(train_count)
    s.momentum = config.MOMENTUM
    s.weight_decay = config.WEIGHT_DECAY
    s.display = schedule.display
    s.average_loss = 1
    s.snapshot = schedule.snapshot or schedule.test_every_epochs * iters_per_epoch
    s.snapshot_prefix = snapshot_prefix
    s.solver_mode = caffe.proto.caffe_pb2.SolverParameter.CPU  # `caffe train -gpu N` decides, not the file
    s.random_seed = schedule.seed
    return s


GENERATED = "# Generated by prototxt/generate.py: do not edit; regenerate with `python -m prototxt.generate`.\n"


def write_text(path: Path, message) -> None:
    """A generated file (a solver, or a net without its layout)."""
    write_text_atomic(path, GENERATED + str(message))


def write_net(path: Path, built: tuple) -> Path:
    """A net of build_net with its layout on the second line (layers.layout.read_layout)."""
    net, layout = built
    return write_text_atomic(path, GENERATED + layout.to_line() + "\n" + str(net))


def write_experiment(out_dir: Path, name: str, *, variant: str, train_lmdb: str | list, test_lmdb: str | list,
                     train_count: int, test_count: int, snapshot_prefix: str, solver_net_dir: str | None = None,
                     schedule: Schedule = Schedule(), width: float = 1.0) -> Path:
    """Write <name>_train/_test.prototxt and solver_<name>.prototxt into out_dir. The solver names the nets
    as `solver_net_dir`/<name>_train.prototxt (relative to where caffe runs; default: out_dir, absolute).
    train_lmdb/test_lmdb may be lists of LMDBs read as one (pooled over actions; train_count their sum).
    width: build_net's (1: the paper's net). Returns the solver path."""
    multi_root, use_2d_cls = VARIANTS[variant]
    net_dir = solver_net_dir if solver_net_dir is not None else str(Path(out_dir).resolve())
    common = dict(multi_root=multi_root, use_2d_cls=use_2d_cls, lambda_step_iter=schedule.lambda_step_iter(train_count),
                  workers=schedule.workers, seed=schedule.seed, width=width)
    train, test = out_dir / f"{name}_train.prototxt", out_dir / f"{name}_test.prototxt"
    write_net(train, build_net("train", lmdb=train_lmdb, batch_size=schedule.batch_size, **common))
    write_net(test, build_net("test", lmdb=test_lmdb, batch_size=schedule.test_batch_size, **common))
    solver = out_dir / f"solver_{name}.prototxt"
    write_text(solver, build_solver(train_net=f"{net_dir}/{train.name}", test_net=f"{net_dir}/{test.name}",
                                    train_count=train_count, test_count=test_count, snapshot_prefix=snapshot_prefix,
                                    schedule=schedule))
    return solver


def write_action_experiment(out_dir: Path, action: str, variant: str, lmdb_root: Path, schedule: Schedule,
                            snapshot_dir: Path) -> tuple[Path, int]:
    """The nets and solver of one action and variant over <lmdb_root>/<action>_{train,test}.lmdb (counts from
    their meta.json), snapshots under snapshot_dir. Returns (solver path, max_iter)."""
    slug = action_slug(action)
    train, test = (Path(lmdb_root) / f"{slug}_{split}.lmdb" for split in ("train", "test"))
    train_count, test_count = read_meta(train)["count"], read_meta(test)["count"]
    solver = write_experiment(
        out_dir,
        f"{slug}_{variant}",
        variant=variant,
        train_lmdb=str(train),
        test_lmdb=str(test),
        train_count=train_count,
        test_count=test_count,
        snapshot_prefix=str(Path(snapshot_dir).resolve() / f"{slug}_{variant}"),
        schedule=schedule,
    )
    return solver, schedule.total_iterations(train_count)


def folded(built: tuple) -> tuple:
    """(net, layout) of build_net with BatchNorm + Scale folded into the layers before them (layers.fold): the net
    that evaluation and prediction run, with weights folded on load (layers.deploy.fold_deploy_net)."""
    net, layout = built
    net, pairs = folded_net_param(net)
    net.name += "_folded"
    return net, layout.folded_by(pairs)


def write_deploy_nets(out_dir: Path) -> None:
    """deploy_<variant>.prototxt (the pose) and evaluate_<variant>.prototxt (the pose, its scale and errors), and
    each folded (<split>_<variant>_folded.prototxt)."""
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        for split in ("deploy", "evaluate"):
            built = build_net(split, multi_root=multi_root, use_2d_cls=use_2d_cls)
            write_net(out_dir / f"{split}_{variant}.prototxt", built)
            write_net(out_dir / f"{split}_{variant}_folded.prototxt", folded(built))


def write_timing_nets(out_dir: Path, batch_size: int) -> list:
    """For `caffe time` where no Python runs (tools/device_bundle.sh): per variant, the time split (training's
    forward and backward) and the deploy and evaluate nets with every Input at `batch_size` (the test pass); for the
    full model also those two folded (<split>_both_folded_b<batch>), the nets tools/evaluate.py and prediction run.
    Beside them, layer_types.json ({net file: {layer name: type}}): what `caffe time`'s per-layer lines are summed
    by where no protobuf reads the nets (bench/layer_profile.py in the GPU machine's kit)."""
    written, types = [], {}
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        for split in ("time", "deploy", "evaluate"):
            built = build_net(split, multi_root=multi_root, use_2d_cls=use_2d_cls, batch_size=batch_size)
            nets = {f"{split}_{variant}": built}
            if variant == "both" and split != "time":
                nets[f"{split}_{variant}_folded"] = folded(built)
            for name, (net, layout) in nets.items():
                for layer in net.layer:
                    if layer.type == "Input":
                        layer.input_param.shape[0].dim[0] = batch_size
                written.append(Path(out_dir) / f"{name}_b{batch_size}.prototxt")
                write_net(written[-1], (net, layout))
                types[written[-1].name] = {layer.name: layer.type for layer in net.layer}
    written.append(write_text_atomic(Path(out_dir) / "layer_types.json", json.dumps(types, indent=1) + "\n"))
    return written


def generate_all(counts: dict, out_dir: Path = HERE, lmdb_root: str = "data/lmdb") -> list:
    """Every committed file: the full model for all 15 actions, the other three variants for Table 2's six actions
    (prototxt/ablation/; its full-model row is Table 1's experiment, committed_solver), the four deploy and
    evaluation nets."""
    written = []
    write_deploy_nets(out_dir)
    for action in ACTIONS:
        slug = action_slug(action)
        c = counts[action]
        common = dict(train_lmdb=f"{lmdb_root}/{slug}_train.lmdb", test_lmdb=f"{lmdb_root}/{slug}_test.lmdb",
                      train_count=c["train"], test_count=c["test"])
        written.append(write_experiment(out_dir / "nets", slug, variant="both", solver_net_dir="prototxt/nets",
                                        snapshot_prefix=f"snapshots/{slug}_both", **common))
        # the solvers the README names: prototxt/solver_<action>.prototxt
        written[-1] = written[-1].replace(out_dir / f"solver_{slug}.prototxt")
        if action in ABLATION_ACTIONS:
            for variant in (v for v in VARIANTS if v != "both"):  # both: the Table 1 experiment above
                written.append(write_experiment(out_dir / "ablation", f"{slug}_{variant}", variant=variant,
                                                solver_net_dir="prototxt/ablation",
                                                snapshot_prefix=f"snapshots/{slug}_{variant}", **common))
    return written


def committed_solver(action: str, variant: str, out_dir: Path = HERE) -> Path:
    """The committed solver of an action and variant (generate_all): Table 1's solver_<action>.prototxt for the full
    model, which Table 2's "both" row shares (the same experiment), ablation/solver_<action>_<variant> else."""
    slug = action_slug(action)
    if variant == "both":
        return out_dir / f"solver_{slug}.prototxt"
    return out_dir / "ablation" / f"solver_{slug}_{variant}.prototxt"


def counts_from_lmdbs(lmdb_root: Path) -> dict:
    counts = {}
    for action in ACTIONS:
        slug = action_slug(action)
        try:
            counts[action] = {
                split: read_meta(Path(lmdb_root) / f"{slug}_{split}.lmdb")["count"] for split in ("train", "test")
            }
        except FileNotFoundError:
            continue
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts-from", help="LMDB folder: update train_counts.json from its meta.json files first")
    parser.add_argument("--lmdb-root", default="data/lmdb", help="LMDB folder named in the nets (relative to the repo)")
    parser.add_argument("--timing-nets", metavar="DIR", help="only write the nets `caffe time` runs without Python "
                        "(time, deploy, evaluate; every variant) into DIR, at --batch")
    parser.add_argument("--batch", type=int, default=config.BATCH_SIZE, help="batch of the --timing-nets")
    args = parser.parse_args(argv)
    if args.timing_nets:
        written = write_timing_nets(Path(args.timing_nets), args.batch)
        print(f"wrote {len(written) - 1} timing nets (batch {args.batch}) and layer_types.json into {args.timing_nets}")
        return 0
    counts_file = HERE / "train_counts.json"
    doc = json.loads(counts_file.read_text())
    if args.counts_from:
        found = counts_from_lmdbs(Path(args.counts_from))
        if not found:
            raise SystemExit(f"{args.counts_from}: no <action>_train.lmdb/<action>_test.lmdb with meta.json found")
        doc["counts"].update(found)
        doc["source"] = f"meta.json of the LMDBs in {args.counts_from}"
        write_text_atomic(counts_file, json.dumps(doc, indent=1) + "\n")
    generate_all(doc["counts"], lmdb_root=args.lmdb_root)
    print(f"wrote prototxt/ from {counts_file.name} ({doc['source']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
