"""The generated nets and solvers against the paper's numbers, and prototxt/ up to date."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import caffe
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from conftest import REPO
from data_prep.skeleton import ROOTS
from prototxt.generate import VARIANTS, generate_all

PROTO = REPO / "prototxt"
GENERATED = lambda root: sorted(p.relative_to(root) for p in root.rglob("*.prototxt"))


def parse(path, cls=caffe_pb2.NetParameter):
    msg = cls()
    text_format.Merge(Path(path).read_text(), msg)
    return msg


def test_committed_prototxt_is_what_the_generator_writes(tmp_path):
    counts = json.loads((PROTO / "train_counts.json").read_text())["counts"]
    generate_all(counts, out_dir=tmp_path)
    assert GENERATED(tmp_path) == GENERATED(PROTO)
    stale = [str(p) for p in GENERATED(PROTO) if (PROTO / p).read_text() != (tmp_path / p).read_text()]
    assert not stale, f"out of date, run `python -m prototxt.generate`: {stale}"
    assert len(list(PROTO.glob("solver_*.prototxt"))) == 15


def test_no_two_generated_files_are_the_same():
    by_content = {}
    for p in GENERATED(PROTO):
        by_content.setdefault((PROTO / p).read_bytes(), []).append(str(p))
    assert not [names for names in by_content.values() if len(names) > 1]


def train_net_path(variant: str, action: str = "walking") -> Path:
    """The committed train net of Table 2's experiment (the full model's is Table 1's)."""
    return (
        PROTO / "nets" / f"{action}_train.prototxt"
        if variant == "both"
        else PROTO / "ablation" / f"{action}_{variant}_train.prototxt"
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_train_net_layers_match_the_paper(variant):
    multi_root, use_2d_cls = VARIANTS[variant]
    net = parse(train_net_path(variant))
    types = Counter(l.type for l in net.layer)
    roots = 6 if multi_root else 1
    hidden_fc = 2 + 1 + (1 if use_2d_cls else 0) + roots  # fc1/fc2 2D, fc1 3D, fc probs 2D, fc2 3D per root
    assert types["Convolution"] == 5 and types["Pooling"] == 3
    assert types["BatchNorm"] == types["Scale"] == 5 + hidden_fc  # BN on every conv and fc layer
    assert types["Dropout"] == hidden_fc
    assert all(l.dropout_param.dropout_ratio == pytest.approx(0.3) for l in net.layer if l.type == "Dropout")
    assert types["EuclideanLoss"] == roots
    assert all(l.loss_weight == [1.0] for l in net.layer if l.type == "EuclideanLoss")  # 2 * lambda_3D, Caffe's 1/2
    assert types["Softmax"] == (1 if use_2d_cls else 0) and types["Concat"] == (1 if use_2d_cls else 0)
    convs = [l.convolution_param for l in net.layer if l.type == "Convolution"]
    assert [(c.num_output, c.kernel_size[0], c.stride[0]) for c in convs] == [
        (64, 7, 2), (128, 5, 2), (192, 3, 1), (192, 3, 1), (192, 3, 1)]
    assert all(
        (l.pooling_param.kernel_size, l.pooling_param.stride) == (3, 2) for l in net.layer if l.type == "Pooling"
    )
    fc_sizes = {l.name: l.inner_product_param.num_output for l in net.layer if l.type == "InnerProduct"}
    assert fc_sizes["fc1_2d"] == fc_sizes["fc2_2d"] == fc_sizes["fc1_3d"] == 2048
    assert fc_sizes["fc_out_2d"] == 17 * 16 * 16
    assert sorted(v for k, v in fc_sizes.items() if k.startswith("out_3d")) == [48] * roots
    loss2d = next(l for l in net.layer if l.name == "loss_2d")
    p = json.loads(loss2d.python_param.param_str)
    assert p["lambda_2d"] == [0.1, 0.01] and loss2d.loss_weight == [1.0]
    rel = next(l for l in net.layer if l.name.startswith("python") or l.python_param.layer == "RootRelativeTargets")
    assert json.loads(rel.python_param.param_str)["roots"] == (list(ROOTS) if multi_root else [0])


def test_solvers_follow_section_4():
    counts = json.loads((PROTO / "train_counts.json").read_text())["counts"]
    for path in PROTO.glob("solver_*.prototxt"):
        s = parse(path, caffe_pb2.SolverParameter)
        action = next(a for a in counts if a.lower() == path.stem[len("solver_"):])
        epoch = math.ceil(counts[action]["train"] / 128)
        assert s.lr_policy == "step"  # float32 fields below
        assert (s.base_lr, s.gamma, s.momentum, s.weight_decay) == pytest.approx((0.01, 0.5, 0.9, 0.001), rel=1e-6)
        assert s.stepsize == 4 * epoch and s.max_iter == 28 * epoch
        assert s.test_interval == s.snapshot == 4 * epoch and s.display == 50
        train = parse(REPO / s.train_net)
        data = json.loads(train.layer[0].python_param.param_str)
        assert data["batch_size"] == 128
        loss2d = json.loads(next(l for l in train.layer if l.name == "loss_2d").python_param.param_str)
        assert loss2d["lambda_step_iter"] == 16 * epoch
        assert (REPO / s.test_net[0]).is_file()


def test_experiment_seed_reaches_the_solver_and_both_data_layers(tmp_path):
    from prototxt.generate import Schedule, write_experiment

    solver = write_experiment(tmp_path, "x", variant="baseline", train_lmdb="a", test_lmdb="b", train_count=100,
                              test_count=10, snapshot_prefix="s", schedule=Schedule(seed=7))
    s = parse(solver, caffe_pb2.SolverParameter)
    assert s.random_seed == 7
    for net in (s.train_net, s.test_net[0]):
        assert json.loads(parse(net).layer[0].python_param.param_str)["seed"] == 7


def test_deploy_nets_shapes_and_parameter_counts():
    sizes = {}
    for variant in VARIANTS:
        net = caffe.Net(str(PROTO / f"deploy_{variant}.prototxt"), caffe.TEST)
        assert net.blobs["data"].data.shape == (1, 3, 225, 225)
        assert net.blobs["pool5"].data.shape == (1, 192, 6, 6)
        assert net.blobs["pose3d"].data.shape == (1, 17, 3)
        if VARIANTS[variant][1]:
            assert net.blobs["probs_2d"].data.shape == (1, 17, 256)
            assert net.blobs["fc_2d3d"].data.shape == (1, 4096)
        sizes[variant] = sum(b.data.size for k, v in net.params.items() if k != "root_average" for b in v)
    assert sizes["baseline"] < sizes["2dcls"] < sizes["multireg"] < sizes["both"]


def test_parameter_counts_of_the_four_variants():
    """The sizes the README's disk figures come from (a .caffemodel holds 4 bytes a parameter, a .solverstate about
    as many): the full model's 102.5 M parameters, 410 MB a file."""
    import caffe

    counts = {"baseline": 46_853_001, "multireg": 68_369_486, "2dcls": 59_968_394, "both": 102_456_399}
    for variant, count in counts.items():
        net = caffe.Net(str(REPO / "prototxt" / f"deploy_{variant}.prototxt"), caffe.TEST)
        assert sum(b.data.size for blobs in net.params.values() for b in blobs) == count, variant
        del net


def test_several_gpus_scale_the_learning_rate_and_the_epoch_with_the_effective_batch(tmp_path):
    """4 GPUs x batch 32 = the paper's 128 a step: lr 0.01 and 1280 / 128 = 10 iterations an epoch, as one GPU
    at batch 128; the same per-GPU batch on one GPU gets lr 0.0025 and 40 iterations."""
    from prototxt.generate import Schedule, build_solver

    four = build_solver(train_net="t", test_net="v", train_count=1280, test_count=64, snapshot_prefix="s",
                        schedule=Schedule(batch_size=32, ranks=4))
    one = build_solver(train_net="t", test_net="v", train_count=1280, test_count=64, snapshot_prefix="s",
                       schedule=Schedule(batch_size=32))
    assert four.base_lr == pytest.approx(0.01) and four.max_iter == 28 * 10 and four.stepsize == 4 * 10
    assert one.base_lr == pytest.approx(0.0025) and one.max_iter == 28 * 40


def test_the_time_nets_native_eq3_equals_the_python_loss_and_its_gradient():
    """The time split's native eq. (3) (Softmax, Log, Eltwise, Reduction) against layers.targets'
    soft_label_cross_entropy (itself checked against hand values and a numerical gradient) on random logits
    and soft targets: the loss and lambda_2D times d loss / d logits."""
    import tempfile

    import numpy as np
    from caffe import layers as L

    from layers.targets import soft_label_cross_entropy
    from prototxt.generate import native_soft_label_loss

    rng = np.random.default_rng(4)
    shape, lam = (3, 17, 9), 0.1
    n = caffe.NetSpec()
    n.logits = L.Input(shape=dict(dim=list(shape)))
    n.targets = L.Input(shape=dict(dim=list(shape)))
    native_soft_label_loss(n, n.logits, n.targets, shape[0], lam)
    proto = n.to_proto()
    proto.force_backward = True
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as f:
        f.write(str(proto))
        f.flush()
        net = caffe.Net(f.name, caffe.TRAIN)
    logits = rng.normal(0, 2, shape)
    targets = rng.random(shape)
    targets /= targets.sum(-1, keepdims=True)
    net.blobs["logits"].data[...] = logits
    net.blobs["targets"].data[...] = targets
    loss = float(net.forward()["loss_2d"])
    net.backward()
    expected, grad = soft_label_cross_entropy(logits, targets)
    assert loss == pytest.approx(expected, rel=1e-5)  # the top holds eq. (3); Caffe weights it by loss_weight = lambda
    np.testing.assert_allclose(net.blobs["logits"].diff, lam * grad, atol=1e-6)


def test_the_time_nets_are_the_train_nets_without_python_layers():
    """Same learnable layers (names, types, sizes) as the train net, in the same order; Inputs instead of the
    data and target layers; nothing left for Python."""
    from prototxt.generate import build_net

    def learnable(net):
        return [(l.name, l.type, l.convolution_param.num_output, l.inner_product_param.num_output)
                for l in net.layer if l.type in ("Convolution", "InnerProduct", "BatchNorm", "Scale")]

    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        train, _ = build_net("train", multi_root=multi_root, use_2d_cls=use_2d_cls, lmdb="x", batch_size=128)
        time, _ = build_net("time", multi_root=multi_root, use_2d_cls=use_2d_cls, batch_size=128)
        assert learnable(time) == learnable(train), variant
        assert not [l.name for l in time.layer if l.type == "Python"]
        inputs = [l for l in time.layer if l.type == "Input"]
        assert len(inputs) == 2 + (len(ROOTS) if multi_root else 1)  # images, 2D soft targets, one 3D target per root
        assert all(l.input_param.shape[0].dim[0] == 128 for l in inputs)
        assert sorted(l.name for l in time.layer if l.name.startswith("loss_")) == \
            sorted(l.name for l in train.layer if l.name.startswith("loss_"))


def test_the_time_nets_come_with_their_layer_types(tmp_path):
    """layer_types.json beside the timing nets (what the GPU kit sums `caffe time`'s per-layer lines by, where no
    protobuf reads the nets) holds each written net's layers, as protobuf reads them back from the files. The full
    model's deploy and evaluate nets come also folded: no BatchNorm or learned Scale left, every Input at the batch."""
    from prototxt.generate import write_timing_nets

    written = write_timing_nets(tmp_path, 4)
    nets = [p for p in written if p.suffix == ".prototxt"]
    assert len(nets) == 3 * len(VARIANTS) + 2 and written[-1] == tmp_path / "layer_types.json"
    for split in ("deploy", "evaluate"):
        net = text_format.Merge((tmp_path / f"{split}_both_folded_b4.prototxt").read_text(), caffe_pb2.NetParameter())
        assert "BatchNorm" not in {layer.type for layer in net.layer}
        # the Scale layers left multiply by a second bottom (the evaluation net's recovered scale), none learned
        assert all(len(layer.bottom) == 2 for layer in net.layer if layer.type == "Scale")
        inputs = [layer.input_param.shape[0].dim[0] for layer in net.layer if layer.type == "Input"]
        assert inputs and set(inputs) == {4}
    types = json.loads((tmp_path / "layer_types.json").read_text())
    assert sorted(types) == sorted(p.name for p in nets)
    for path in nets:
        net = text_format.Merge(path.read_text(), caffe_pb2.NetParameter())
        assert types[path.name] == {layer.name: layer.type for layer in net.layer}, path.name
    assert set(types["time_both_b4.prototxt"].values()) >= {"Convolution", "BatchNorm", "Scale", "InnerProduct"}
