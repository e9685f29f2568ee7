"""The benchmark's sections on a trained or exported model: inference img/s of pycaffe, onnxruntime and
PyTorch on the same weights, a clip's temporal smoothing, and the exported model's parity with pycaffe."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from data_prep.batches import BatchSource
from data_prep.cli import REPO
from data_prep.clips import jitter, savitzky_golay
from data_prep.h36m import VideoFrames, discover, read_bboxes, read_poses
from data_prep.metrics import mpjpe
from data_prep.records import read_meta
from layers.bn_stats import BN_BATCHES, reestimate_batch_norm
from layers.config import INPUT_SIZE
from layers.deploy import fold_deploy_net, load_deploy_net
from layers.inference import evaluate_action
from layers.onnx_backend import OnnxPoseModel
from layers.onnx_export import export_onnx, load_export_source
from layers.predict import caffe_forward, predict_frames

from .measure import best_rate, peer_onnx_export
from .workload import ensure_data, print_cpu, random_weights


def section_inference(work, opts):
    """pycaffe, onnxruntime and PyTorch on the same weights, batch 1 and 32, the paths measured round robin."""
    deploy, weights = REPO / "prototxt" / "deploy_both.prototxt", random_weights(work)
    models, peer = inference_models(work, opts, deploy, weights)
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        x = rng.normal(0, 50, (batch, 3, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
        net, _ = load_deploy_net(deploy, weights, batch)
        net.blobs["data"].data[...] = x
        calls = {"pycaffe deploy net (Caffe's OpenBLAS)": net.forward}
        for name, model in models.items():
            calls[name] = (lambda m: lambda: m.run(x))(model)
        if peer is not None:
            calls[f"PyTorch {peer.torch_version} eager, eval mode"] = peer.call(x)
        yield from round_robin(calls, batch, 10 if batch == 1 else 3, opts.speed_rounds * 4)


def inference_models(work: Path, opts, deploy: Path, weights: Path) -> tuple[dict, object]:
    """The exported models of `weights` (BatchNorm folded, and as nodes) and, where torch is installed, the peer's
    own ONNX export: name -> model with run(batch); and the PyTorch peer itself (EagerPeer, or None)."""
    lmdb = ensure_data(work, opts.frames)
    meta = read_meta(lmdb / "walking_train.lmdb")
    source = load_export_source(deploy, weights)
    export_onnx(source, meta, work / "inference_folded.onnx")
    export_onnx(source, meta, work / "inference_nodes.onnx", fold=False)
    print_cpu()
    models = {
        "onnxruntime, tools/export.py's model (BatchNorm folded)": OnnxPoseModel(work / "inference_folded.onnx"),
        "onnxruntime, tools/export.py's model (BatchNormalization nodes)": OnnxPoseModel(work / "inference_nodes.onnx"),
    }
    if importlib.util.find_spec("torch") is None:
        print("  inference   torch is not installed (PARK3D_TORCH=1 bash tools/setup.sh): no PyTorch rows")
        return models, None
    peer = EagerPeer(source.params, meta["mean_torso_lengths_mm"])
    peer_onnx_export(peer.state, "both", work / "inference_peer.onnx")
    models["onnxruntime, torch.onnx.export of the PyTorch net (the peer's own)"] = ort_session(
        work / "inference_peer.onnx"
    )
    return models, peer


class EagerPeer:
    """The full model in PyTorch eager mode (layers.torch_model) with the Caffe weights, on every core."""

    def __init__(self, params, mean_torso_lengths):
        import torch  # optional (PARK3D_TORCH=1 bash tools/setup.sh): imported only when it is installed

        from layers.torch_model import PoseNet, state_dict_from_caffe  # imports torch

        self.torch, self.torch_version = torch, torch.__version__
        self.state = state_dict_from_caffe(params, "both", 1.0, mean_torso_lengths)
        torch.set_num_threads(os.cpu_count())
        self.net = PoseNet("both")
        self.net.load_state_dict(self.state)
        self.net.eval()

    def call(self, x: np.ndarray):
        tx = self.torch.from_numpy(x)

        def eager():
            with self.torch.no_grad():
                self.net(tx)
        return eager


def round_robin(calls: dict, batch: int, iters: int, rounds: int):
    """Rows of each call's best rate over `rounds` rounds, every call once a round (the shared machine's load
    changes within a run and must hit every path alike), and the ratio of the project's fastest path to the peer's
    export: the median over rounds of the ratio within a round (the paired figure is the steadier one)."""
    found = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            found[name].append(best_rate(call, batch, iters, rounds=1))
    for name, rates in found.items():
        yield (f"{name}, batch {batch}", max(rates), "img/s")
    peer_key = next((name for name in found if "peer's own" in name), None)
    if peer_key:
        ours = [max(r) for r in zip(*(rates for name, rates in found.items()
                                      if "pycaffe" in name or "export.py" in name))]
        paired = sorted(a / b for a, b in zip(ours, found[peer_key]))
        yield (f"ratio: the project's fastest path / onnxruntime on the peer's export, batch {batch} (median of "
               f"{len(paired)} rounds; range {paired[0]:.2f}-{paired[-1]:.2f})", paired[len(paired) // 2], "x")


def ort_session(path):
    """A model without this project's metadata (torch's export), with OnnxPoseModel's run()."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    class Run:
        def run(self, batch):
            return session.run(None, {"data": batch})
    return Run()


def section_smoothing(work, opts):
    """The demo's final weights on S9's Walking video of camera 54138969 (a test subject), every frame, the mask
    boxes: jitter and P1 against the ground truth, as predicted and smoothed."""
    weights = max((REPO / "out/demo/snapshots").glob("walking_both_iter_*.caffemodel"), key=lambda p: p.stat().st_mtime,
                  default=None)
    if weights is None:
        print("  smoothing   no demo weights (run tools/demo.py); skipped")
        return
    meta = read_meta(REPO / "out/demo/lmdb/walking_train.lmdb")
    seq = next(s for s in discover(REPO / "out/demo/h36m", ("S9",), ("Walking",)).sequences if s.camera == "54138969")
    truth, _ = read_poses(seq)
    n = min(len(truth), opts.frames * 2)
    boxes = [tuple(b) for b in read_bboxes(seq.path("bbox"), range(n))]
    deploy = REPO / "prototxt/deploy_both.prototxt"
    net, layout = fold_deploy_net(*load_deploy_net(deploy, weights, 1), deploy)
    frames = ((str(i), i, f) for i, f in VideoFrames(seq.path("video")).select(range(n)))
    poses, _, _ = predict_frames(caffe_forward(net, meta["mean_torso_lengths_mm"]), frames, boxes, meta["mean_bgr"])
    truth = truth[:len(poses)]
    yield (f"{seq.key}, {len(poses)} frames at 50 fps: ground truth, jitter", jitter(truth), "mm")
    yield ("as predicted (single frame): jitter", jitter(poses), "mm")
    yield ("as predicted: P1 MPJPE", mpjpe(poses, truth, "p1"), "mm")
    for window in (5, 9, 15):
        smooth = savitzky_golay(poses, window)
        yield (f"Savitzky-Golay {window} frames, order 2: jitter", jitter(smooth), "mm")
        yield (f"Savitzky-Golay {window} frames: P1 MPJPE", mpjpe(smooth, truth, "p1"), "mm")


def section_parity(work, opts):
    """tools/export.py's model against pycaffe on trained weights (BatchNorm re-estimated over BN_BATCHES training
    batches in both, as evaluate does by default), over the whole test LMDB."""
    weights = (
        Path(opts.weights)
        if opts.weights
        else max(
            (REPO / "out/demo/snapshots").glob("walking_both_iter_*.caffemodel"),
            key=lambda p: p.stat().st_mtime,
            default=None,
        )
    )
    root = Path(opts.lmdb_root) if opts.lmdb_root else REPO / "out/demo/lmdb"
    if weights is None or not (root / "walking_test.lmdb").is_dir():
        print("  parity      no trained weights (run tools/demo.py, or pass --weights and --lmdb-root); skipped")
        return
    train, test = root / "walking_train.lmdb", root / "walking_test.lmdb"
    model_path = work / "parity.onnx"
    export_onnx(
        load_export_source(REPO / "prototxt/deploy_both.prototxt", weights, BN_BATCHES, train),
        read_meta(train),
        model_path,
    )
    _, caffe_summary = evaluate_action(REPO / "prototxt/evaluate_both.prototxt", weights, test, bn_batches=BN_BATCHES)
    caffe_pred, _ = evaluate_action(REPO / "prototxt/deploy_both.prototxt", weights, test, bn_batches=BN_BATCHES)
    onnx_pred, onnx_summary = evaluate_action(None, model_path, test, backend="onnx")
    yield (f"{weights.name}, {len(onnx_pred.gt_mm)} test frames: max |pose mm, onnxruntime - pycaffe|",
           float(np.abs(onnx_pred.pred_mm - caffe_pred.pred_mm).max()), "mm")
    for protocol in ("p1", "zero_mean", "pa"):
        yield (
            f"|MPJPE {protocol}, onnxruntime - pycaffe evaluation net| "
            f"(pycaffe {caffe_summary['mpjpe'][protocol]:.4f})",
            abs(onnx_summary["mpjpe"][protocol] - caffe_summary["mpjpe"][protocol]),
            "mm",
        )
    net, _ = load_deploy_net(REPO / "prototxt/deploy_both.prototxt", weights, 32)
    reestimate_batch_norm(net, str(REPO / "prototxt/deploy_both.prototxt"), str(weights), str(train), BN_BATCHES)
    model, dnn = OnnxPoseModel(model_path), cv2.dnn.readNetFromONNX(str(model_path))
    source = BatchSource(str(test), 32, INPUT_SIZE, train=False, seed=0, pca_sigma=0.0)
    image = np.empty((32, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    joints, pose = np.empty((32, 17, 2), np.float32), np.empty((32, 17, 3), np.float32)
    softmax, dnn_mm = 0.0, 0.0
    for b in range(-(-len(source.keys) // 32)):
        source.fill(b, image, joints, pose)
        net.blobs["data"].data[...] = image
        net.forward()
        logits = net.blobs["logits_2d"].data.astype(np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        out = model.run(image)
        softmax = max(softmax, float(np.abs(out["softmax_2d"] - e / e.sum(-1, keepdims=True)).max()))
        dnn.setInput(image)
        dnn_mm = max(dnn_mm, float(np.abs(dnn.forward("pose3d_mm") - out["pose3d_mm"]).max()))
    yield ("max |2D softmax, onnxruntime - pycaffe|", softmax, "")
    yield ("max |pose mm, OpenCV dnn - onnxruntime|", dnn_mm, "mm")
