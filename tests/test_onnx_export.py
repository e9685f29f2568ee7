"""layers/onnx_export.py: each variant's exported model against pycaffe on the same weights (trained for a few real
iterations, so BatchNorm's statistics are real) over the whole test LMDB, in onnxruntime and in OpenCV's dnn
module; folding against BatchNormalization nodes; a dynamic batch; the metadata; a layer type it does not know."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import MM, SOFTMAX, assert_agree, lmdb_test_images, pycaffe_outputs
from data_prep.errors import UserError
from data_prep.records import read_meta


def export(deploy, weights, lmdb_root, out, fold=True):
    from layers.onnx_export import export_onnx, load_export_source

    meta = read_meta(lmdb_root / "walking_train.lmdb")
    return export_onnx(load_export_source(deploy, weights), meta, out, fold=fold)


@pytest.mark.parametrize("variant", ["baseline", "multireg", "2dcls", "both"])
def test_exported_variant_agrees_with_pycaffe_in_onnxruntime_and_opencv(variant, trained_variants, lmdb_root, tmp_path):
    import cv2
    import onnx

    from layers.onnx_backend import OnnxPoseModel

    deploy, weights = trained_variants[variant]
    images, gt_mm = lmdb_test_images(lmdb_root)
    want = pycaffe_outputs(
        deploy, weights, images, read_meta(lmdb_root / "walking_train.lmdb")["mean_torso_lengths_mm"]
    )
    model_path = tmp_path / f"{variant}.onnx"
    export(deploy, weights, lmdb_root, model_path)
    model = onnx.load(str(model_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    assert not any(node.op_type in ("BatchNormalization", "Dropout") for node in model.graph.node)  # folded, no dropout
    # the batch is dynamic: the whole LMDB at once and one image give the same
    got = {k: v.astype(np.float64) for k, v in OnnxPoseModel(model_path).run(images).items()}
    assert_agree(got, want, gt_mm)
    one = OnnxPoseModel(model_path).run(images[:1])
    assert np.abs(one["pose3d_mm"][0] - got["pose3d_mm"][0]).max() <= MM
    dnn = cv2.dnn.readNetFromONNX(str(model_path))
    dnn.setInput(images)
    found = dict(zip(("softmax_2d", "pose3d", "pose3d_mm"), dnn.forward(["softmax_2d", "pose3d", "pose3d_mm"])))
    assert_agree({k: v.astype(np.float64) for k, v in found.items()}, want, gt_mm)


def test_batch_normalization_nodes_give_the_folded_model_and_the_metadata_describes_it(trained_variants, lmdb_root,
                                                                                      tmp_path):
    import onnx

    from data_prep.skeleton import JOINTS, ROOTS
    from layers.onnx_backend import OnnxPoseModel

    deploy, weights = trained_variants["both"]
    images, _ = lmdb_test_images(lmdb_root)
    export(deploy, weights, lmdb_root, tmp_path / "folded.onnx")
    export(deploy, weights, lmdb_root, tmp_path / "nodes.onnx", fold=False)
    nodes = onnx.load(str(tmp_path / "nodes.onnx")).graph.node
    batch_norms = sum(1 for line in deploy.read_text().splitlines() if line.strip() == 'type: "BatchNorm"')
    assert (
        sum(node.op_type == "BatchNormalization" for node in nodes) == batch_norms == 5 + 4 + 6
    )  # convolutions, fc1/fc2 2D, fc1 3D, fc probs 2D, six heads
    folded, kept = OnnxPoseModel(tmp_path / "folded.onnx"), OnnxPoseModel(tmp_path / "nodes.onnx")
    a, b = folded.run(images[:8]), kept.run(images[:8])
    assert (
        np.abs(a["pose3d_mm"] - b["pose3d_mm"]).max() <= MM
        and np.abs(a["softmax_2d"] - b["softmax_2d"]).max() <= SOFTMAX
    )
    meta = read_meta(lmdb_root / "walking_train.lmdb")
    m = folded.meta
    assert m["variant"] == "both" and m["roots"] == list(ROOTS) and m["joints"] == list(JOINTS)
    assert m["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert np.allclose(m["mean_bgr"], meta["mean_bgr"]) and np.allclose(
        m["mean_torso_lengths_mm"], meta["mean_torso_lengths_mm"]
    )
    assert "folded" in m["batch_norm"] and "BatchNormalization" in kept.meta["batch_norm"]
    assert "B, G, R" in m["input"] and m["parents"][0] == -1


def test_a_layer_type_the_exporter_does_not_know_is_one_error_naming_it(trained_variants, lmdb_root, tmp_path):
    """An LRN layer (Caffe knows it; the nets do not use it) after conv1: the weights still match the net."""
    from layers.onnx_export import load_export_source, onnx_model

    deploy, weights = trained_variants["baseline"]
    text = deploy.read_text()
    lrn = 'layer {\n  name: "norm1"\n  type: "LRN"\n  bottom: "pool1"\n  top: "pool1"\n}\n'
    at = text.index('layer {\n  name: "conv2"')
    changed = tmp_path / "deploy_lrn.prototxt"
    changed.write_text(text[:at] + lrn + text[at:])
    source = load_export_source(changed, weights)
    with pytest.raises(UserError, match="layer 'norm1' of type LRN: the ONNX exporter knows only Input, Convolution"):
        onnx_model(source.net_param, source.params, source.shapes, {"mean_torso_lengths_mm": "[1, 1, 1, 1, 1, 1]"})


@pytest.mark.parametrize("fold", [True, False])
def test_scale_layers_gamma_and_beta_are_exported(fold, trained_variants, lmdb_root, tmp_path):
    """A few training iterations leave the Scale layers near gamma 1, beta 0: here they are set far from it (and the
    statistics kept) so that an exporter dropping or misplacing them fails."""
    from layers.deploy import load_deploy_net
    from layers.onnx_backend import OnnxPoseModel

    deploy, weights = trained_variants["both"]
    net, _ = load_deploy_net(deploy, weights)
    rng = np.random.default_rng(1)
    scales = [name for name in net.params if name.endswith("_scale")]
    for name in scales:
        gamma, beta = net.params[name]
        gamma.data[...] = rng.uniform(0.5, 1.5, gamma.data.shape)
        beta.data[...] = rng.normal(0, 0.5, beta.data.shape)
    changed = tmp_path / "scaled.caffemodel"
    net.save(str(changed))
    images, gt_mm = lmdb_test_images(lmdb_root)
    want = pycaffe_outputs(
        deploy, changed, images, read_meta(lmdb_root / "walking_train.lmdb")["mean_torso_lengths_mm"]
    )
    export(deploy, changed, lmdb_root, tmp_path / "scaled.onnx", fold=fold)
    got = {k: v.astype(np.float64) for k, v in OnnxPoseModel(tmp_path / "scaled.onnx").run(images).items()}
    assert len(scales) == 15
    assert_agree(got, want, gt_mm)
