"""The Python layers in real Caffe nets: numerical gradient check of the loss, the lambda_2D
schedule, the targets layers, and the data layer (crops, augmentation, seeding, bad LMDBs)."""
from __future__ import annotations

import json
import shutil
import textwrap

import caffe
import numpy as np
import pytest

from conftest import numerical_gradient, relative_error
from data_prep.lmdb_build import read_meta
from data_prep.batches import BatchSource, batch_indices
from layers.targets import drop_root, root_relative_targets, soft_label_targets

caffe.set_mode_cpu()


def net_from_string(tmp_path, text, phase=caffe.TEST, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return caffe.Net(str(path), phase)


LOSS_NET = """
    force_backward: true
    layer { name: "logits" type: "Input" top: "logits" input_param { shape { dim: 2 dim: 3 dim: 8 } } }
    layer { name: "targets" type: "Input" top: "targets" input_param { shape { dim: 2 dim: 3 dim: 8 } } }
    layer { name: "loss" type: "Python" bottom: "logits" bottom: "targets" top: "loss" loss_weight: %s
      param { lr_mult: 0 decay_mult: 0 }
      python_param { module: "layers.pose_layers" layer: "SoftLabelCrossEntropyLoss" param_str: '%s' } }
    """


def test_soft_label_loss_gradient_matches_central_differences(tmp_path):
    net = net_from_string(tmp_path, LOSS_NET % (2.0, json.dumps({"lambda_2d": [0.1]})))
    rng = np.random.default_rng(0)
    net.blobs["logits"].data[...] = rng.normal(size=(2, 3, 8))
    net.blobs["targets"].data[...] = rng.dirichlet(np.ones(8), size=(2, 3))
    net.forward()
    net.backward()
    analytic = net.blobs["logits"].diff.copy()

    def loss():
        return 2.0 * float(net.forward()["loss"][0])  # loss_weight scales the objective

    numeric = numerical_gradient(loss, net.blobs["logits"].data, eps=1e-2)
    assert relative_error(analytic, numeric) < 1e-3
    assert np.abs(analytic).max() > 1e-3  # a zero gradient would pass trivially
    numeric_t = numerical_gradient(loss, net.blobs["targets"].data, eps=1e-3)
    assert relative_error(net.blobs["targets"].diff, numeric_t) < 1e-3


def test_lambda_2d_schedule_counts_training_iterations_only(tmp_path):
    params = json.dumps({"lambda_2d": [0.1, 0.01], "lambda_step_iter": 3})
    train = net_from_string(tmp_path, LOSS_NET % (1, params), caffe.TRAIN, "train.prototxt")
    train.blobs["logits"].data[...] = 0
    train.blobs["targets"].data[...] = 1 / 8
    lambdas = [float(train.forward()["loss"][0]) / (3 * np.log(8)) for _ in range(5)]  # 3 joints, batch mean
    assert np.allclose(lambdas, [0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-4)
    assert float(train.params["loss"][0].data[0]) == 5
    test = net_from_string(tmp_path, LOSS_NET % (1, params), caffe.TEST, "test.prototxt")
    test.blobs["targets"].data[...] = 1 / 8
    for _ in range(4):
        test.forward()
    assert float(test.params["loss"][0].data[0]) == 0


def test_bad_param_str_names_the_layer_and_the_key(tmp_path, capfd):
    with pytest.raises(ValueError, match=r"SoftLabelCrossEntropyLoss: unknown param_str keys \['lambda2d'\]"):
        net_from_string(tmp_path, LOSS_NET % (1, '{"lambda2d": [0.1]}'))
    err = capfd.readouterr().err  # what `caffe train` shows, and the drivers' one line
    assert err.startswith("Python layer error: SoftLabelCrossEntropyLoss: unknown param_str keys") and "Traceback" not in err


TARGETS_NET = """
    layer { name: "in" type: "Input" top: "joints" top: "pose" input_param { shape { dim: 2 dim: 17 dim: 2 } shape { dim: 2 dim: 17 dim: 3 } } }
    layer { name: "soft" type: "Python" bottom: "joints" top: "soft"
      python_param { module: "layers.pose_layers" layer: "SoftLabelTargets" param_str: '{}' } }
    layer { name: "rel" type: "Python" bottom: "pose" top: "t_hip" top: "t_lelbow"
      python_param { module: "layers.pose_layers" layer: "RootRelativeTargets" param_str: '{"roots": [0, 12]}' } }
    """


def test_target_layers_match_the_pure_functions(tmp_path):
    net = net_from_string(tmp_path, TARGETS_NET)
    rng = np.random.default_rng(1)
    joints, pose = rng.uniform(-10, 240, (2, 17, 2)), rng.normal(size=(2, 17, 3))
    net.blobs["joints"].data[...] = joints
    net.blobs["pose"].data[...] = pose
    out = net.forward()
    assert out["soft"].shape == (2, 17, 256)
    assert np.allclose(out["soft"], soft_label_targets(joints.astype(np.float32)), atol=1e-6)
    rel = root_relative_targets(pose.astype(np.float32), [0, 12])
    assert np.allclose(out["t_hip"], drop_root(rel[:, 0], 0), atol=1e-6)
    assert np.allclose(out["t_lelbow"], drop_root(rel[:, 1], 12), atol=1e-6)


def data_net(tmp_path, lmdb, phase, **params):
    p = json.dumps({"lmdb": str(lmdb), "batch_size": 8, **params})
    return net_from_string(tmp_path, f"""
        layer {{ name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"
          python_param {{ module: "layers.data_layer" layer: "PoseDataLayer" param_str: '{p}' }} }}
        """, phase, f"data_{phase}_{abs(hash(p))}.prototxt")


def test_data_layer_test_phase_is_the_centre_crop_minus_the_mean(tmp_path, lmdb_root):
    out, _ = lmdb_root
    lmdb = out / "walking_test.lmdb"
    net = data_net(tmp_path, lmdb, caffe.TEST, workers=0)
    net.forward()
    source = BatchSource(str(lmdb), 8, 225, False, 0, 0.0)
    import lmdb as lmdb_mod
    from data_prep.records import decode_record
    with lmdb_mod.open(str(lmdb), readonly=True, lock=False).begin() as txn:
        first = decode_record(txn.get(source.keys[0][1]))  # keys: (LMDB index, record key)
    mean = np.asarray(read_meta(lmdb)["mean_bgr"], np.float32)
    expect = first["image"][:, 12:237, 12:237].astype(np.float32) - mean[:, None, None]
    assert np.allclose(net.blobs["data"].data[0], expect, atol=1e-4)
    assert np.allclose(net.blobs["joints2d"].data[0], first["joints2d"] - 12, atol=1e-5)
    assert np.allclose(net.blobs["pose3d"].data[0], first["pose3d"])


def test_data_layer_train_is_seeded_and_independent_of_workers(tmp_path, lmdb_root):
    out, _ = lmdb_root
    lmdb = out / "walking_train.lmdb"
    batches = []
    for workers in (0, 1, 2):
        net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=workers, seed=5)
        batches.append([tuple(net.forward()[k].copy() for k in ("data", "joints2d", "pose3d")) for _ in range(3)])
    for other in batches[1:]:
        for a, b in zip(batches[0], other):
            for x, y in zip(a, b):
                assert np.array_equal(x, y)
    # random crops move the joints with the image: joints stay inside [0, 225) plus the margin
    j = batches[0][0][1]
    assert j.min() > -25 and j.max() < 250
    # a different seed gives different crops/colours
    net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=0, seed=6)
    assert not np.array_equal(net.forward()["data"], batches[0][0][0])


def test_ranks_share_the_single_gpu_order(tmp_path, lmdb_root, monkeypatch):
    """Two data layers of ranks 0 and 1 (of 2, as in two-GPU training): rank r's t-th batch is the single-GPU
    layer's batch 2t + r, crops and colours included, with and without worker processes; ranks come from
    param_str or, in a TRAIN net, from the environment a multi-GPU launcher sets."""
    out, _ = lmdb_root
    lmdb = out / "walking_train.lmdb"
    single = data_net(tmp_path, lmdb, caffe.TRAIN, workers=0, seed=5)
    order = [single.forward()["data"].copy() for _ in range(6)]
    for workers in (0, 2):
        for rank in (0, 1):
            net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=workers, seed=5, rank=rank, ranks=2)
            for t in range(3):
                assert np.array_equal(net.forward()["data"], order[2 * t + rank]), (workers, rank, t)
    from layers.data_layer import data_rank

    monkeypatch.setenv("PARK3D_RANK", "3")
    monkeypatch.setenv("PARK3D_RANKS", "4")
    assert data_rank({"rank": None, "ranks": None}, True) == (3, 4)
    assert data_rank({"rank": 1, "ranks": 2}, True) == (1, 2)
    assert data_rank({"rank": None, "ranks": None}, False) == (0, 1)  # rank 0 tests on the whole test set
    with pytest.raises(ValueError, match="rank 2 of 2"):
        BatchSource(str(lmdb), 4, 225, True, 0, 0.0, rank=2, ranks=2)


def test_batch_indices_cover_each_epoch_once():
    first_epoch = np.concatenate([batch_indices(20, 4, b, seed=1, shuffle=True) for b in range(5)])
    assert sorted(first_epoch.tolist()) == list(range(20))
    second = np.concatenate([batch_indices(20, 4, b, seed=1, shuffle=True) for b in range(5, 10)])
    assert sorted(second.tolist()) == list(range(20)) and not np.array_equal(first_epoch, second)


def test_data_layer_rejects_a_truncated_or_missing_lmdb(tmp_path, lmdb_root):
    out, _ = lmdb_root
    broken = tmp_path / "broken.lmdb"
    shutil.copytree(out / "walking_test.lmdb", broken)
    meta = json.loads((broken / "meta.json").read_text())
    meta["count"] += 5
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="truncated or mixed LMDB"):
        BatchSource(str(broken), 8, 225, False, 0, 0.0)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        BatchSource(str(tmp_path), 8, 225, False, 0, 0.0)
