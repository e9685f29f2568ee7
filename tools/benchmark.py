"""Speed figures the issues ask for, printed as a Markdown table (copy them into docs/benchmarks.md).

  python tools/benchmark.py                      # every section, on a small synthetic dataset in out/bench
  python tools/benchmark.py --sections caffe-time data-layer

Sections:
  setup       warm `tools/setup.sh` (the cold build time is printed by setup.sh itself)
  caffe-time  `caffe time` forward/backward per batch: a ZFNet-like net and the paper's four variants (--gpu N)
  lmdb        LMDB build frames/s with 1 and 2 workers vs raw video decode frames/s; bytes per record (raw, JPEG)
  memory      make_lmdb.py's peak resident memory (all processes) at frame step 1 on long sequences, 2 workers
  data-layer  PoseDataLayer images/s (TRAIN, augmentation, decoding) with 0, 1, 2 worker processes, raw and JPEG
  train       images/s of the full model's SGD steps (pycaffe's solver, timed per iteration; --gpu N)
  eval        evaluation images/s, deploy net (errors in NumPy) and evaluation net (errors in the net; --gpu N)
  torch       the same net in PyTorch, training images/s (tools/peer_pytorch.py in the torch venv; --gpu N)
  gpu-gtests  Caffe's own gtests of the nets' layer types, their GPU instances (--gpu N; a CUDA build)
  inference   the full model's inference img/s at batch 1 and 32 on the same weights: pycaffe's deploy net,
              onnxruntime on tools/export.py's model (BatchNorm folded, and as BatchNormalization nodes), and,
              where torch is installed, PyTorch eager and onnxruntime on torch's own export of the same net
  fold        the deploy and evaluation nets with BatchNorm + Scale folded (evaluate's and predict's default)
              against the nets as trained, pycaffe forward img/s on the same weights, interleaved (--batch)
  limit       the machine's limit: a large GEMM through Caffe's own BLAS, the full model's FLOPs from its shapes,
              and Caffe's training and inference rates as fractions of that GEMM rate (--batch)
  detector    person detectors on synthetic frames of walking, sitting, sitting down and bending people: HOG
              (predict.py's) and OpenCV's full-body Haar cascade, against the mask boxes (found, IoU >= 0.5)
  smoothing   a clip's temporal smoothing on the demo's weights and a test video of its synthetic data: jitter
              (mean frame-to-frame acceleration) and P1 MPJPE, without and with Savitzky-Golay windows
  parity      tools/export.py's model against pycaffe on trained weights over a whole test LMDB: the largest
              pose and softmax differences, the MPJPE differences (--weights, --lmdb-root; default: the demo's)
  speed       Caffe against the PyTorch peer in one run, on this CPU: the full model's forward+backward
              (`caffe time`, TRAIN) and the deploy net's forward (TEST), per layer type, the OpenBLAS core
              in use, and the ratios Caffe / PyTorch (> 1: Caffe is faster)

The PyTorch peer runs in its own venv (torch is not a project dependency): `--install-torch` makes it at
--torch-venv (default ~/.cache/park3dpose/torch-venv) with torch 2.13.0 (CPU build). `--caffe-home DIR`
times another Caffe build (a cache folder of tools/setup.sh) in the speed section, for before/after tables.
On a GPU (issue 9's figures: batch 128; each row names the card, whether the build has cuDNN, FP32 or TF32):
  python tools/benchmark.py --gpu 0 --batch 128 --sections gpu-gtests caffe-time train eval torch
  ... --tf32      (a cuDNN build, PARK3D_CUDNN=9: Caffe with CAFFE_TF32=1, the peer with TF32)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from data_prep.cli import REPO, run_tool
from data_prep.errors import UserError
from layers.measure import (CACHE, TORCH_PIN, by_layer_type, caffe_cpu_model, caffe_time, caffe_time_layers, checked_device,
                            peak_rss_of, run_peer)
def zfnet_like(batch):
    """A ZFNet-like reference net: conv 7x7/2, pool 3/2, conv 5x5/2, pool 3/2, three 3x3 convs, pool 3/2, fc 1024."""
    import caffe
    from caffe import layers as L, params as P

    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch, 3, 225, 225]), dict(dim=[batch])], ntop=2,
                                  data_filler=[dict(type="gaussian", std=1), dict(type="constant")])
    x = n.data
    for i, (maps, k, s, p, pool) in enumerate([(64, 7, 2, 0, True), (128, 5, 2, 0, True), (192, 3, 1, 1, False),
                                               (192, 3, 1, 1, False), (192, 3, 1, 1, True)], 1):
        x = L.Convolution(x, num_output=maps, kernel_size=k, stride=s, pad=p, weight_filler=dict(type="msra"))
        setattr(n, f"conv{i}", x)
        x = L.ReLU(x, in_place=True)
        setattr(n, f"relu{i}", x)
        if pool:
            x = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2)
            setattr(n, f"pool{i}", x)
    n.fc = L.InnerProduct(x, num_output=1024, weight_filler=dict(type="msra"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n.to_proto()


def ensure_data(work: Path, frames: int) -> Path:
    from data_prep.synthetic_lmdbs import prepare_synthetic

    return prepare_synthetic(work, ("Walking",), frames, 2, progress=False)


def section_setup(work, args):
    t0 = time.time()
    subprocess.run(["bash", str(REPO / "tools" / "setup.sh")], check=True, capture_output=True)
    yield ("warm tools/setup.sh (everything cached)", time.time() - t0, "s")


def section_caffe_time(work, args):
    from prototxt.generate import VARIANTS, build_net, write_net, write_text

    where = checked_device(args.gpu)
    lmdb = ensure_data(work, args.frames)
    path = work / "zfnet_like.prototxt"
    write_text(path, zfnet_like(args.batch))
    fwd, bwd = caffe_time(path, gpu=args.gpu)
    yield (f"ZFNet-like, batch {args.batch}, {where}, forward", fwd, "ms")
    yield (f"ZFNet-like, batch {args.batch}, {where}, backward", bwd, "ms")
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        path = work / f"train_{variant}.prototxt"
        write_net(path, build_net("train", multi_root=multi_root, use_2d_cls=use_2d_cls, batch_size=args.batch,
                                  lmdb=str(lmdb / "walking_train.lmdb"), lambda_step_iter=100))
        fwd, bwd = caffe_time(path, gpu=args.gpu)
        yield (f"paper net {variant}, batch {args.batch}, {where}, forward", fwd, "ms")
        yield (f"paper net {variant}, batch {args.batch}, {where}, backward", bwd, "ms")
        yield (f"paper net {variant}, batch {args.batch}, {where}, forward+backward images/s", args.batch * 1000 / (fwd + bwd),
               "img/s")


def _decode_count(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab() and cap.retrieve()[0]:
        n += 1
    return n


def encoded_lmdb(work: Path, frames: int, encoding: str) -> Path:
    """The benchmark's Walking LMDBs in one encoding, read once so that timings start from the page cache."""
    from data_prep.lmdb_build import build_lmdbs
    from data_prep.records import read_meta

    ensure_data(work, frames)
    out = work / f"lmdb_{encoding}"
    if not (out / "walking_test.lmdb" / "meta.json").is_file() or read_meta(out / "walking_test.lmdb").get("encoding") != encoding:
        build_lmdbs(work / "h36m", out, actions=("Walking",), step=2, workers=2, progress=False, encoding=encoding)
    with open(out / "walking_train.lmdb" / "data.mdb", "rb") as f:
        while f.read(1 << 24):
            pass
    return out


def section_lmdb(work, args):
    import shutil

    from data_prep.lmdb_build import build_lmdbs
    from data_prep.records import read_meta
    from data_prep.records import ENCODINGS

    ensure_data(work, args.frames)
    videos = sorted((work / "h36m").glob("S*/Videos/*.mp4"))
    for workers in (1, 2):
        t0 = time.time()
        with ProcessPoolExecutor(workers) as pool:
            n = sum(pool.map(_decode_count, videos))
        yield (f"raw video decode, {workers} process(es) ({n} frames)", n / (time.time() - t0), "frames/s")
    for encoding in ENCODINGS:
        for step in (1, 5):
            for workers in (1, 2):
                out = work / f"lmdb_bench_{step}_{workers}"
                shutil.rmtree(out, ignore_errors=True)
                s = build_lmdbs(work / "h36m", out, actions=("Walking",), step=step, workers=workers, progress=False,
                                encoding=encoding)
                yield (f"LMDB build ({encoding}), frame step {step}, {workers} worker(s): video frames/s "
                            f"({s.frames} records)", n / s.seconds, "frames/s")
        size = sum(f.stat().st_size for f in (out / "walking_train.lmdb").glob("data.mdb"))
        yield (f"LMDB bytes per record ({encoding}; data.mdb / records)",
            size / read_meta(out / "walking_train.lmdb")["count"] / 1024, "KiB")


def section_memory(work, args):
    """make_lmdb.py at frame step 1 on sequences of --long-frames frames (two cameras of S1 for training, two
    of S9 for testing), two workers: the peak resident memory of the whole process tree."""
    from data_prep.records import ENCODINGS
    from data_prep.skeleton import CAMERAS
    from data_prep.synthetic import GeneratorConfig, generate

    root = work / f"h36m_long_{args.long_frames}"
    if not (root / "DONE").is_file():
        generate(GeneratorConfig(root, subjects=("S1", "S9"), cameras=CAMERAS[:2], frames=args.long_frames), workers=2,
                 progress=False)
        (root / "DONE").write_text("")
    for encoding in ENCODINGS:
        mib, seconds = peak_rss_of([sys.executable, str(REPO / "tools" / "make_lmdb.py"), "--h36m", str(root),
                                    "--out", str(work / "lmdb_long"), "--actions", "Walking", "--train-subjects", "S1",
                                    "--test-subjects", "S9", "--frame-step", "1", "--workers", "2",
                                    "--encoding", encoding, "--quiet"])
        yield (f"make_lmdb.py peak RSS, {args.long_frames}-frame sequences, step 1, 2 workers ({encoding})",
            mib, "MiB")
        yield (f"  its build rate ({encoding})", 4 * args.long_frames / seconds, "frames/s")


def section_data_layer(work, args):
    import caffe

    from data_prep.records import ENCODINGS

    for encoding in ENCODINGS:
        lmdb = encoded_lmdb(work, args.frames, encoding)
        for workers in (0, 1, 2):
            p = json.dumps({"lmdb": str(lmdb / "walking_train.lmdb"), "batch_size": args.batch, "workers": workers})
            net_file = work / f"data_{workers}.prototxt"
            net_file.write_text('layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"\n'
                                f'  python_param {{ module: "layers.data_layer" layer: "PoseDataLayer" param_str: \'{p}\' }} }}\n')
            net = caffe.Net(str(net_file), caffe.TRAIN)
            net.forward()
            t0 = time.time()
            for _ in range(args.batches):
                net.forward()
            yield (f"PoseDataLayer TRAIN ({encoding}), batch {args.batch}, {workers} worker process(es)",
                args.batches * args.batch / (time.time() - t0), "img/s")
            del net


def section_train(work, args):
    """The full model's SGD steps through pycaffe's solver (the C++ solver `caffe train` runs), timed per
    iteration with the solver's callbacks as BVLC's python/train.py does; the median after a warm-up."""
    import caffe

    from layers.device import use_device
    from prototxt.generate import Schedule, write_action_experiment

    lmdb = ensure_data(work, args.frames)
    schedule = Schedule(batch_size=args.batch, max_iter=args.train_iters, snapshot=100_000, test_interval=100_000, display=0)
    solver_path, _ = write_action_experiment(work / "train", "Walking", "both", lmdb, schedule, work / "train")
    where = use_device(args.gpu)
    solver = caffe.get_solver(str(solver_path))
    stamps = []
    solver.add_callback(lambda: stamps.append(time.perf_counter()), lambda: None)  # on_start of every iteration
    solver.step(args.train_iters)
    steps = np.diff(stamps)[3:]  # the first iterations start the data workers and warm the caches
    yield (f"caffe solver, full model, {where}, batch {args.batch} (median of {len(steps)} iterations)",
           args.batch / float(np.median(steps)), "img/s")


def section_eval(work, args):
    """The test pass over the test LMDB: the deploy net with the errors in NumPy, and the evaluation net with
    the scale recovery and P1 / zero-mean errors inside the net (--gpu N: on that GPU)."""
    from data_prep.records import read_meta
    from layers.device import use_device
    from layers.deploy import load_deploy_net
    from layers.inference import error_summary, net_outputs, predict_lmdb, train_mean_pose_mm

    lmdb = ensure_data(work, args.frames)
    device = use_device(args.gpu)
    meta = read_meta(lmdb / "walking_test.lmdb")
    for kind in ("deploy", "evaluate"):
        net, layout = load_deploy_net(REPO / "prototxt" / f"{kind}_both.prototxt", _random_weights(work), batch_size=args.batch)
        t0 = time.time()
        p = predict_lmdb(net_outputs(net, layout, meta["mean_torso_lengths_mm"]), str(lmdb / "walking_test.lmdb"))
        error_summary(p, train_mean_pose_mm(meta, lmdb / "walking_test.lmdb"), meta["mean_torso_lengths_mm"])
        yield (f"evaluation, {kind} net ({device}), batch {args.batch}, errors included", len(p.gt_mm) / (time.time() - t0),
               "img/s")


def _random_weights(work: Path) -> Path:
    """The full model's weights at their initialisation, BatchNorm set to mean 0 and variance 1 (its zero statistics
    would scale every layer by 1/sqrt(eps) and overflow: a speed measured on infinities is no speed)."""
    import caffe

    path = work / "random_both_bn1.caffemodel"
    if not path.is_file():
        net = caffe.Net(str(REPO / "prototxt" / "deploy_both.prototxt"), caffe.TEST)
        for name, layer in zip(net._layer_names, net.layers):
            if layer.type == "BatchNorm":
                mean, var, factor = net.params[name]
                mean.data[...], var.data[...], factor.data[...] = 0, 1, 1
        net.save(str(path))
    return path


def section_inference(work, args):
    """pycaffe, onnxruntime and PyTorch on the same weights, batch 1 and 32, the paths measured round robin."""
    import importlib.util

    from data_prep.records import read_meta
    from layers.deploy import load_deploy_net
    from layers.onnx_backend import OnnxPoseModel
    from layers.onnx_export import export_onnx, load_export_source

    lmdb = ensure_data(work, args.frames)
    meta = read_meta(lmdb / "walking_train.lmdb")
    deploy, weights = REPO / "prototxt" / "deploy_both.prototxt", _random_weights(work)
    source = load_export_source(deploy, weights)
    export_onnx(source, meta, work / "inference_folded.onnx")
    export_onnx(source, meta, work / "inference_nodes.onnx", fold=False)
    print_cpu()
    torch = None
    if importlib.util.find_spec("torch") is not None:
        import torch

        from layers.measure import peer_onnx_export
        from layers.torch_model import PoseNet, state_dict_from_caffe

        state = state_dict_from_caffe(source.params, "both", 1.0, meta["mean_torso_lengths_mm"])
        peer_onnx_export(state, "both", work / "inference_peer.onnx")
        torch.set_num_threads(os.cpu_count())
        peer = PoseNet("both")
        peer.load_state_dict(state)
        peer.eval()
    else:
        print("  inference   torch is not installed (PARK3D_TORCH=1 bash tools/setup.sh): no PyTorch rows")
    models = {"onnxruntime, tools/export.py's model (BatchNorm folded)": OnnxPoseModel(work / "inference_folded.onnx"),
              "onnxruntime, tools/export.py's model (BatchNormalization nodes)": OnnxPoseModel(work / "inference_nodes.onnx")}
    if torch is not None:
        models["onnxruntime, torch.onnx.export of the PyTorch net (the peer's own)"] = ort_session(work / "inference_peer.onnx")
    from layers.measure import best_rate

    rng = np.random.default_rng(0)
    for batch in (1, 32):
        x = rng.normal(0, 50, (batch, 3, 225, 225)).astype(np.float32)
        iters = 10 if batch == 1 else 3
        net, _ = load_deploy_net(deploy, weights, batch)
        net.blobs["data"].data[...] = x
        calls = {"pycaffe deploy net (Caffe's OpenBLAS)": net.forward}
        for name, model in models.items():
            calls[name] = (lambda m: lambda: m.run(x))(model)
        if torch is not None:
            tx = torch.from_numpy(x)

            def eager():
                with torch.no_grad():
                    peer(tx)
            calls[f"PyTorch {torch.__version__} eager, eval mode"] = eager
        # round robin: the shared machine's load changes within a run and must hit every path alike; each path's
        # best round is its rate, and the ratio to the peer's export is the median over rounds of the ratio
        # within a round (the paired figure is the steadier one)
        rounds = {name: [] for name in calls}
        for _ in range(args.speed_rounds * 4):
            for name, call in calls.items():
                rounds[name].append(best_rate(call, batch, iters, rounds=1))
        for name, found in rounds.items():
            yield (f"{name}, batch {batch}", max(found), "img/s")
        peer_key = next((name for name in rounds if "peer's own" in name), None)
        if peer_key:
            ours = [max(r) for r in zip(*(found for name, found in rounds.items()
                                          if "pycaffe" in name or "export.py" in name))]
            paired = sorted(a / b for a, b in zip(ours, rounds[peer_key]))
            yield (f"ratio: the project's fastest path / onnxruntime on the peer's export, batch {batch} (median of "
                   f"{len(paired)} rounds; range {paired[0]:.2f}-{paired[-1]:.2f})", paired[len(paired) // 2], "x")


def section_fold(work, args):
    """Folded against unfolded, pycaffe forward of the full model, three interleaved rounds, the best of each."""
    from layers.deploy import fold_deploy_net, load_deploy_net
    from layers.measure import best_rate

    weights = _random_weights(work)
    x = np.random.default_rng(0).normal(0, 50, (args.batch, 3, 225, 225)).astype(np.float32)
    for kind in ("deploy", "evaluate"):
        path = REPO / "prototxt" / f"{kind}_both.prototxt"
        net, layout = load_deploy_net(path, weights, args.batch)
        folded, _ = fold_deploy_net(net, layout, path)
        for n in (net, folded):
            n.blobs["data"].data[...] = x
            for name in ("gt_mm", "torso_sum"):
                if name in n.blobs:
                    n.blobs[name].data[...] = 1.0
        rates = {"as trained": [], "folded": []}
        for _ in range(args.speed_rounds * 3):  # interleaved: the shared machine's load hits both alike
            rates["as trained"].append(best_rate(net.forward, args.batch, 3, rounds=1))
            rates["folded"].append(best_rate(folded.forward, args.batch, 3, rounds=1))
        for name, found in rates.items():
            yield (f"pycaffe {kind} net, full model, {name}, batch {args.batch}", max(found), "img/s")
        yield (f"{kind} net: folded / as trained", max(rates["folded"]) / max(rates["as trained"]), "x")
    _, deploy = full_model_nets(work, args, "fold")
    timed = caffe_time_layers(None, deploy, args.speed_iters, "TEST")
    share = by_layer_type(deploy, timed["layers"])
    removed = share.get("BatchNorm", 0.0) + share.get("Scale", 0.0)
    yield (f"`caffe time` deploy net, batch {args.batch}: BatchNorm + Scale forward (what folding removes)", removed, "ms")
    yield ("  of the whole forward", removed / timed["forward"], "")


def section_limit(work, args):
    """How far Caffe's CPU rates are from what its BLAS can do on this machine, in one run."""
    from layers.deploy import load_deploy_net
    from layers.measure import caffe_gemm_rate, forward_flops, training_flops

    print_cpu()
    gemm = caffe_gemm_rate()
    yield ("SGEMM 2048x2048x2048 through Caffe's BLAS (an InnerProduct forward)", gemm, "GFLOP/s")
    net, _ = load_deploy_net(REPO / "prototxt/deploy_both.prototxt", _random_weights(work), 1)
    fwd, train = forward_flops(net), training_flops(net, "conv1")
    yield ("full model, forward FLOPs per image (convolutions and inner products, from the shapes)", fwd / 1e9, "GFLOP")
    yield ("full model, training FLOPs per image (forward, both gradients)", train / 1e9, "GFLOP")
    train_net, deploy = full_model_nets(work, args, "limit")
    tr = caffe_time_layers(None, train_net, args.speed_iters, "TRAIN")
    dp = caffe_time_layers(None, deploy, args.speed_iters, "TEST")
    train_rate = train * args.batch / ((tr["forward"] + tr["backward"]) / 1000) / 1e9
    deploy_rate = fwd * args.batch / (dp["forward"] / 1000) / 1e9
    yield (f"Caffe training forward+backward, batch {args.batch} (OpenBLAS core {tr['core']})", train_rate, "GFLOP/s")
    yield ("  as a fraction of the GEMM rate", train_rate / gemm, "")
    yield (f"Caffe deploy forward, batch {args.batch}", deploy_rate, "GFLOP/s")
    yield ("  as a fraction of the GEMM rate", deploy_rate / gemm, "")


def section_detector(work, args):
    """Every 4th frame of one test subject's four cameras per action; the box each detector finds against the
    mask's box."""
    from data_prep.detect import box_iou, detect_person, detect_person_haar
    from data_prep.h36m import VideoFrames, discover, read_bboxes
    from data_prep.synthetic import GeneratorConfig, generate

    root = work / "detector_h36m"
    actions = ("Walking", "Sitting", "SittingDown", "Purchases")
    if not (root / "DONE").is_file():
        generate(GeneratorConfig(root, actions=actions, frames=40, seed=5), workers=2, progress=False)
        (root / "DONE").write_text("")
    detectors = {"HOG people detector (predict.py's)": detect_person, "Haar full-body cascade": detect_person_haar}
    for action in actions:
        seqs = [s for s in discover(root, ("S9",), (action,)).sequences]
        found = {name: [0, 0, 0.0] for name in detectors}  # found, IoU >= 0.5, sum of IoU
        frames = 0
        for seq in seqs:
            wanted = list(range(0, 40, 4))
            boxes = read_bboxes(seq.path("bbox"), wanted)
            for (i, frame), truth in zip(VideoFrames(seq.path("video")).select(wanted), boxes):
                frames += 1
                for name, detect in detectors.items():
                    d = detect(frame)
                    if d is not None:
                        iou = box_iou(d.box, truth)
                        found[name][0] += 1
                        found[name][1] += iou >= 0.5
                        found[name][2] += iou
        for name, (hits, good, total) in found.items():
            yield (f"{action}, {frames} frames: {name}, found", hits / frames, "")
            yield (f"{action}: {name}, IoU >= 0.5 with the mask box", good / frames, "")


def section_smoothing(work, args):
    """The demo's final weights on S9's Walking video of camera 54138969 (a test subject), every frame, the mask
    boxes: jitter and P1 against the ground truth, as predicted and smoothed."""
    from data_prep.clips import jitter, savitzky_golay
    from data_prep.h36m import VideoFrames, discover, read_bboxes, read_poses
    from data_prep.metrics import mpjpe
    from data_prep.records import read_meta
    from layers.deploy import fold_deploy_net, load_deploy_net
    from layers.predict import caffe_forward, predict_frames

    weights = max((REPO / "out/demo/snapshots").glob("walking_both_iter_*.caffemodel"), key=lambda p: p.stat().st_mtime,
                  default=None)
    if weights is None:
        print("  smoothing   no demo weights (run tools/demo.py); skipped")
        return
    meta = read_meta(REPO / "out/demo/lmdb/walking_train.lmdb")
    seq = next(s for s in discover(REPO / "out/demo/h36m", ("S9",), ("Walking",)).sequences if s.camera == "54138969")
    truth, _ = read_poses(seq)
    n = min(len(truth), args.frames * 2)
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


def ort_session(path):
    """A model without this project's metadata (torch's export), with OnnxPoseModel's run()."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    class Run:
        def run(self, batch):
            return session.run(None, {"data": batch})
    return Run()


def section_parity(work, args):
    """tools/export.py's model against pycaffe on trained weights (BatchNorm re-estimated over BN_BATCHES training
    batches in both, as evaluate does by default), over the whole test LMDB."""
    import cv2

    from data_prep.batches import BatchSource
    from data_prep.records import read_meta
    from layers.bn_stats import BN_BATCHES, reestimate_batch_norm
    from layers.config import INPUT_SIZE
    from layers.deploy import load_deploy_net
    from layers.inference import evaluate_action
    from layers.onnx_backend import OnnxPoseModel
    from layers.onnx_export import export_onnx, load_export_source

    weights = Path(args.weights) if args.weights else max((REPO / "out/demo/snapshots").glob("walking_both_iter_*.caffemodel"),
                                                          key=lambda p: p.stat().st_mtime, default=None)
    root = Path(args.lmdb_root) if args.lmdb_root else REPO / "out/demo/lmdb"
    if weights is None or not (root / "walking_test.lmdb").is_dir():
        print("  parity      no trained weights (run tools/demo.py, or pass --weights and --lmdb-root); skipped")
        return
    train, test = root / "walking_train.lmdb", root / "walking_test.lmdb"
    model_path = work / "parity.onnx"
    export_onnx(load_export_source(REPO / "prototxt/deploy_both.prototxt", weights, BN_BATCHES, train), read_meta(train),
                model_path)
    _, caffe_summary = evaluate_action(REPO / "prototxt/evaluate_both.prototxt", weights, test, bn_batches=BN_BATCHES)
    caffe_pred, _ = evaluate_action(REPO / "prototxt/deploy_both.prototxt", weights, test, bn_batches=BN_BATCHES)
    onnx_pred, onnx_summary = evaluate_action(None, model_path, test, backend="onnx")
    yield (f"{weights.name}, {len(onnx_pred.gt_mm)} test frames: max |pose mm, onnxruntime - pycaffe|",
           float(np.abs(onnx_pred.pred_mm - caffe_pred.pred_mm).max()), "mm")
    for protocol in ("p1", "zero_mean", "pa"):
        yield (f"|MPJPE {protocol}, onnxruntime - pycaffe evaluation net| (pycaffe {caffe_summary['mpjpe'][protocol]:.4f})",
               abs(onnx_summary["mpjpe"][protocol] - caffe_summary["mpjpe"][protocol]), "mm")
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


def section_torch(work, args):
    peer = run_peer(args.torch_venv, args.install_torch, args.batch, args.torch_iters,
                    None if args.gpu is None else f"cuda:{args.gpu}", args.tf32)
    if peer:
        math = "TF32" if args.tf32 else "FP32"
        yield (f"PyTorch {peer['torch']} same net, {peer['device']} ({math}), train step (SGD included), batch {args.batch}",
            args.batch * 1000 / peer["train_step_ms"], "img/s")


def full_model_nets(work: Path, args, prefix: str) -> tuple[Path, Path]:
    """The full model's train net over the synthetic LMDB and its deploy net, both at --batch, for `caffe time`."""
    from prototxt.generate import build_net, write_net

    lmdb = ensure_data(work, args.frames)
    train = work / f"{prefix}_train_both.prototxt"
    write_net(train, build_net("train", multi_root=True, use_2d_cls=True, batch_size=args.batch,
                               lmdb=str(lmdb / "walking_train.lmdb"), lambda_step_iter=100))
    deploy = work / f"{prefix}_deploy_both.prototxt"
    net, layout = build_net("deploy", multi_root=True, use_2d_cls=True)
    net.layer[0].input_param.shape[0].dim[0] = args.batch
    write_net(deploy, (net, layout))
    return train, deploy


def print_cpu(extra: str = "") -> None:
    print(f"  CPU: {caffe_cpu_model()}, {os.cpu_count()} cores; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset: OpenBLAS detects)')}{extra}", flush=True)


def section_speed(work, args):
    """Caffe vs PyTorch on the same net, same machine, same run (absolute times drift here; ratios hold)."""
    train, deploy = full_model_nets(work, args, "speed")
    home = Path(args.caffe_home) if args.caffe_home else None
    print_cpu(f"; Caffe: {home or 'the venv build'}")
    # Interleaved, twice each: Caffe, PyTorch, Caffe, PyTorch; each side's faster run counts.
    caffe_runs, peer_runs = [], []
    for _ in range(args.speed_rounds):
        caffe_runs.append((caffe_time_layers(home, train, args.speed_iters, "TRAIN"),
                           caffe_time_layers(home, deploy, args.speed_iters, "TEST")))
        peer = run_peer(args.torch_venv, args.install_torch, args.batch, args.speed_iters)
        if peer:
            peer_runs.append(peer)
    tr = min((r[0] for r in caffe_runs), key=lambda r: r["forward"] + r["backward"])
    dp = min((r[1] for r in caffe_runs), key=lambda r: r["forward"])
    core = tr["core"]
    yield (f"Caffe full model forward+backward, batch {args.batch} (OpenBLAS core {core})", tr["forward"] + tr["backward"], "ms")
    yield (f"Caffe deploy net forward, batch {args.batch} (OpenBLAS core {dp['core']})", dp["forward"], "ms")
    for kind, ms in by_layer_type(train, tr["layers"]).items():
        if ms >= 1.0:
            yield (f"  Caffe train net, {kind} (forward+backward)", ms, "ms")
    if peer_runs:
        fb = min(p["forward_backward_ms"] for p in peer_runs)
        step = min(p["train_step_ms"] for p in peer_runs)
        fwd = min(p["deploy_forward_ms"] for p in peer_runs)
        version = peer_runs[0]["torch"]
        yield (f"PyTorch {version} same net forward+backward, batch {args.batch}, {peer_runs[0]['threads']} threads", fb, "ms")
        yield (f"PyTorch {version} same net, train step with SGD update", step, "ms")
        yield (f"PyTorch {version} eval-mode forward, batch {args.batch}", fwd, "ms")
        yield ("ratio Caffe / PyTorch, training forward+backward (PyTorch ms / Caffe ms)", fb / (tr["forward"] + tr["backward"]), "x")
        yield ("ratio Caffe / PyTorch, deploy-net inference", fwd / dp["forward"], "x")


def section_gpu_gtests(work, args):
    """Caffe's gtests of the layer types the nets use (the set-up's caffe_layer_tests), GPU instances only:
    the GPU tests (`*GPU*`) and the typed tests' GPU cases (`/2`, `/3`)."""
    from layers.caffe_build import caffe_home, gtest_filters, run_caffe_gtests

    gpu = 0 if args.gpu is None else args.gpu
    where = checked_device(gpu)
    t0 = time.time()
    run = run_caffe_gtests(caffe_home(), gtest_filters()["GTEST_FILTER_GPU_CASES"], device=gpu)
    yield (f"Caffe's GPU gtests on {where}, passed", float(run.passed), "tests")
    yield (f"Caffe's GPU gtests on {where}, failed{': ' + ' '.join(run.failed[:5]) if run.failed else ''}",
           float(len(run.failed)), "tests")
    yield (f"Caffe's GPU gtests on {where}, time", time.time() - t0, "s")


# The sections, in the order they run by default; each is a generator of (measurement, value, unit) rows.
SECTIONS = {"setup": section_setup, "caffe-time": section_caffe_time, "lmdb": section_lmdb, "memory": section_memory,
            "data-layer": section_data_layer, "train": section_train, "eval": section_eval, "torch": section_torch,
            "speed": section_speed, "inference": section_inference, "fold": section_fold, "limit": section_limit,
            "detector": section_detector, "smoothing": section_smoothing, "parity": section_parity,
            "gpu-gtests": section_gpu_gtests}


def shown(value: float) -> str:
    """Two decimals, or four significant digits for the small differences of the parity rows."""
    return f"{value:.4g}" if 0 < abs(value) < 0.01 else f"{value:.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=[s for s in SECTIONS if s != "gpu-gtests"], choices=list(SECTIONS))
    parser.add_argument("--work", default=str(REPO / "out" / "bench"))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=100, help="frames per synthetic sequence")
    parser.add_argument("--batches", type=int, default=20, help="data-layer batches to time")
    parser.add_argument("--long-frames", type=int, default=5000, help="memory section: frames per sequence")
    parser.add_argument("--gpu", type=int, default=None, help="caffe-time, train, eval, torch, gpu-gtests: on this GPU "
                        "(Caffe built with CUDA; torch from a CUDA build)")
    parser.add_argument("--tf32", action="store_true", help="with --gpu and a cuDNN build (PARK3D_CUDNN=9): Caffe with "
                        "CAFFE_TF32=1 and the PyTorch peer with TF32, tensor-core math for FP32 (results change; default FP32)")
    parser.add_argument("--train-iters", type=int, default=30)
    parser.add_argument("--torch-iters", type=int, default=5)
    parser.add_argument("--torch-venv", default=str(CACHE / "torch-venv"), help="venv holding torch for the PyTorch peer")
    parser.add_argument("--install-torch", action="store_true", help=f"create --torch-venv with {TORCH_PIN} if missing")
    parser.add_argument("--caffe-home", help="speed section: time this Caffe build folder instead of the venv's")
    parser.add_argument("--speed-iters", type=int, default=5, help="speed section: iterations per timing")
    parser.add_argument("--speed-rounds", type=int, default=2, help="speed section: interleaved Caffe/PyTorch rounds")
    parser.add_argument("--weights", help="parity section: a trained full-model .caffemodel (default: the demo's)")
    parser.add_argument("--lmdb-root", help="parity section: the folder of its walking_train/test.lmdb")
    args = parser.parse_args(argv)
    if args.tf32:
        from layers.caffe_build import caffe_home, has_cudnn

        if args.gpu is None or not has_cudnn(caffe_home()):
            raise UserError("--tf32: TF32 is GPU math of the cuDNN build: pass --gpu N, with Caffe set up on the GPU "
                            "machine by PARK3D_CUDNN=9 bash tools/setup.sh")
        os.environ["CAFFE_TF32"] = "1"  # read by Caffe when it starts (this process's pycaffe, and each `caffe time`)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"benchmark on {os.cpu_count()} cores; batch {args.batch}")
    rows = []
    for name in args.sections:
        for what, value, unit in SECTIONS[name](work, args):  # each section yields its rows as it measures them
            rows.append((name, what, value, unit))
            print(f"  {name:11s} {what:60s} {shown(value):>10s} {unit}", flush=True)
    print("\n| section | measurement | value | unit |\n|---|---|---:|---|")
    for section, what, value, unit in rows:
        print(f"| {section} | {what} | {shown(value)} | {unit} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
