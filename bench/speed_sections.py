"""The benchmark's speed sections: `caffe time` of the reference net and the four variants, the solver's and
the evaluation's images/s, the PyTorch peer, Caffe against the peer in one run, folded against unfolded nets,
Caffe against its BLAS's limit, and Caffe's own GPU gtests."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import caffe
import numpy as np

from data_prep.cli import REPO
from data_prep.records import read_meta
from layers.caffe_build import caffe_home, gtest_filters, run_caffe_gtests
from layers.config import VARIANTS
from layers.deploy import fold_deploy_net, load_deploy_net
from layers.device import use_device
from layers.inference import error_summary, net_outputs, predict_lmdb, train_mean_pose_mm
from prototxt.generate import Schedule, build_net, write_action_experiment, write_net, write_text

from .measure import (
    best_rate,
    by_layer_type,
    caffe_gemm_rate,
    caffe_time,
    caffe_time_layers,
    checked_device,
    forward_flops,
    run_peer,
    training_flops,
)
from .workload import ensure_data, full_model_nets, print_cpu, random_weights, zfnet_like


def section_setup(work, opts):
    t0 = time.time()
    subprocess.run(["bash", str(REPO / "tools" / "setup.sh")], check=True, capture_output=True)
    yield ("warm tools/setup.sh (everything cached)", time.time() - t0, "s")


def section_caffe_time(work, opts):
    where = checked_device(opts.gpu)
    lmdb = ensure_data(work, opts.frames)
    path = work / "zfnet_like.prototxt"
    write_text(path, zfnet_like(opts.batch))
    fwd, bwd = caffe_time(path, gpu=opts.gpu)
    yield (f"ZFNet-like, batch {opts.batch}, {where}, forward", fwd, "ms")
    yield (f"ZFNet-like, batch {opts.batch}, {where}, backward", bwd, "ms")
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        path = work / f"train_{variant}.prototxt"
        write_net(path, build_net("train", multi_root=multi_root, use_2d_cls=use_2d_cls, batch_size=opts.batch,
                                  lmdb=str(lmdb / "walking_train.lmdb"), lambda_step_iter=100))
        fwd, bwd = caffe_time(path, gpu=opts.gpu)
        yield (f"paper net {variant}, batch {opts.batch}, {where}, forward", fwd, "ms")
        yield (f"paper net {variant}, batch {opts.batch}, {where}, backward", bwd, "ms")
        yield (
            f"paper net {variant}, batch {opts.batch}, {where}, forward+backward images/s",
            opts.batch * 1000 / (fwd + bwd),
            "img/s",
        )


def section_train(work, opts):
    """The full model's SGD steps through pycaffe's solver (the C++ solver `caffe train` runs), timed per
    iteration with the solver's callbacks as BVLC's python/train.py does; the median after a warm-up."""
    lmdb = ensure_data(work, opts.frames)
    schedule = Schedule(
        batch_size=opts.batch, max_iter=opts.train_iters, snapshot=100_000, test_interval=100_000, display=0
    )
    solver_path, _ = write_action_experiment(work / "train", "Walking", "both", lmdb, schedule, work / "train")
    where = use_device(opts.gpu)
    solver = caffe.get_solver(str(solver_path))
    stamps = []
    solver.add_callback(lambda: stamps.append(time.perf_counter()), lambda: None)  # on_start of every iteration
    solver.step(opts.train_iters)
    steps = np.diff(stamps)[3:]  # the first iterations start the data workers and warm the caches
    yield (f"caffe solver, full model, {where}, batch {opts.batch} (median of {len(steps)} iterations)",
           opts.batch / float(np.median(steps)), "img/s")


def section_eval(work, opts):
    """The test pass over the test LMDB: the deploy net with the errors in NumPy, and the evaluation net with
    the scale recovery and P1 / zero-mean errors inside the net (--gpu N: on that GPU)."""
    lmdb = ensure_data(work, opts.frames)
    device = use_device(opts.gpu)
    meta = read_meta(lmdb / "walking_test.lmdb")
    for kind in ("deploy", "evaluate"):
        net, layout = load_deploy_net(
            REPO / "prototxt" / f"{kind}_both.prototxt", random_weights(work), batch_size=opts.batch
        )
        t0 = time.time()
        p = predict_lmdb(net_outputs(net, layout, meta["mean_torso_lengths_mm"]), str(lmdb / "walking_test.lmdb"))
        error_summary(p, train_mean_pose_mm(meta, lmdb / "walking_test.lmdb"), meta["mean_torso_lengths_mm"])
        yield (
            f"evaluation, {kind} net ({device}), batch {opts.batch}, errors included",
            len(p.gt_mm) / (time.time() - t0),
            "img/s",
        )


def section_torch(work, opts):
    peer = run_peer(opts.torch_venv, opts.install_torch, opts.batch, opts.torch_iters,
                    None if opts.gpu is None else f"cuda:{opts.gpu}", opts.tf32)
    if peer:
        math = "TF32" if opts.tf32 else "FP32"
        yield (
            f"PyTorch {peer['torch']} same net, {peer['device']} ({math}), train step (SGD included), "
            f"batch {opts.batch}",
            opts.batch * 1000 / peer["train_step_ms"],
            "img/s",
        )


def section_speed(work, opts):
    """Caffe vs PyTorch on the same net, same machine, same run (absolute times drift here; ratios hold)."""
    train, deploy = full_model_nets(work, opts, "speed")
    home = Path(opts.caffe_home) if opts.caffe_home else None
    print_cpu(f"; Caffe: {home or 'the venv build'}")
    # Interleaved, twice each: Caffe, PyTorch, Caffe, PyTorch; each side's faster run counts.
    caffe_runs, peer_runs = [], []
    for _ in range(opts.speed_rounds):
        caffe_runs.append((caffe_time_layers(home, train, opts.speed_iters, "TRAIN"),
                           caffe_time_layers(home, deploy, opts.speed_iters, "TEST")))
        peer = run_peer(opts.torch_venv, opts.install_torch, opts.batch, opts.speed_iters)
        if peer:
            peer_runs.append(peer)
    tr = min((r[0] for r in caffe_runs), key=lambda r: r["forward"] + r["backward"])
    dp = min((r[1] for r in caffe_runs), key=lambda r: r["forward"])
    core = tr["core"]
    yield (
        f"Caffe full model forward+backward, batch {opts.batch} (OpenBLAS core {core})",
        tr["forward"] + tr["backward"],
        "ms",
    )
    yield (f"Caffe deploy net forward, batch {opts.batch} (OpenBLAS core {dp['core']})", dp["forward"], "ms")
    for kind, ms in by_layer_type(train, tr["layers"]).items():
        if ms >= 1.0:
            yield (f"  Caffe train net, {kind} (forward+backward)", ms, "ms")
    if peer_runs:
        fb = min(p["forward_backward_ms"] for p in peer_runs)
        step = min(p["train_step_ms"] for p in peer_runs)
        fwd = min(p["deploy_forward_ms"] for p in peer_runs)
        version = peer_runs[0]["torch"]
        yield (
            f"PyTorch {version} same net forward+backward, batch {opts.batch}, {peer_runs[0]['threads']} threads",
            fb,
            "ms",
        )
        yield (f"PyTorch {version} same net, train step with SGD update", step, "ms")
        yield (f"PyTorch {version} eval-mode forward, batch {opts.batch}", fwd, "ms")
        yield (
            "ratio Caffe / PyTorch, training forward+backward (PyTorch ms / Caffe ms)",
            fb / (tr["forward"] + tr["backward"]),
            "x",
        )
        yield ("ratio Caffe / PyTorch, deploy-net inference", fwd / dp["forward"], "x")


def section_fold(work, opts):
    """Folded against unfolded, pycaffe forward of the full model, three interleaved rounds, the best of each."""
    weights = random_weights(work)
    x = np.random.default_rng(0).normal(0, 50, (opts.batch, 3, 225, 225)).astype(np.float32)
    for kind in ("deploy", "evaluate"):
        path = REPO / "prototxt" / f"{kind}_both.prototxt"
        net, layout = load_deploy_net(path, weights, opts.batch)
        folded, _ = fold_deploy_net(net, layout, path)
        for n in (net, folded):
            n.blobs["data"].data[...] = x
            for name in ("gt_mm", "torso_sum"):
                if name in n.blobs:
                    n.blobs[name].data[...] = 1.0
        rates = {"as trained": [], "folded": []}
        for _ in range(opts.speed_rounds * 3):  # interleaved: the shared machine's load hits both alike
            rates["as trained"].append(best_rate(net.forward, opts.batch, 3, rounds=1))
            rates["folded"].append(best_rate(folded.forward, opts.batch, 3, rounds=1))
        for name, found in rates.items():
            yield (f"pycaffe {kind} net, full model, {name}, batch {opts.batch}", max(found), "img/s")
        yield (f"{kind} net: folded / as trained", max(rates["folded"]) / max(rates["as trained"]), "x")
    _, deploy = full_model_nets(work, opts, "fold")
    timed = caffe_time_layers(None, deploy, opts.speed_iters, "TEST")
    share = by_layer_type(deploy, timed["layers"])
    removed = share.get("BatchNorm", 0.0) + share.get("Scale", 0.0)
    yield (
        f"`caffe time` deploy net, batch {opts.batch}: BatchNorm + Scale forward (what folding removes)",
        removed,
        "ms",
    )
    yield ("  of the whole forward", removed / timed["forward"], "")


def section_limit(work, opts):
    """How far Caffe's CPU rates are from what its BLAS can do on this machine, in one run."""
    print_cpu()
    gemm = caffe_gemm_rate()
    yield ("SGEMM 2048x2048x2048 through Caffe's BLAS (an InnerProduct forward)", gemm, "GFLOP/s")
    net, _ = load_deploy_net(REPO / "prototxt/deploy_both.prototxt", random_weights(work), 1)
    fwd, train = forward_flops(net), training_flops(net, "conv1")
    yield ("full model, forward FLOPs per image (convolutions and inner products, from the shapes)", fwd / 1e9, "GFLOP")
    yield ("full model, training FLOPs per image (forward, both gradients)", train / 1e9, "GFLOP")
    train_net, deploy = full_model_nets(work, opts, "limit")
    tr = caffe_time_layers(None, train_net, opts.speed_iters, "TRAIN")
    dp = caffe_time_layers(None, deploy, opts.speed_iters, "TEST")
    train_rate = train * opts.batch / ((tr["forward"] + tr["backward"]) / 1000) / 1e9
    deploy_rate = fwd * opts.batch / (dp["forward"] / 1000) / 1e9
    yield (f"Caffe training forward+backward, batch {opts.batch} (OpenBLAS core {tr['core']})", train_rate, "GFLOP/s")
    yield ("  as a fraction of the GEMM rate", train_rate / gemm, "")
    yield (f"Caffe deploy forward, batch {opts.batch}", deploy_rate, "GFLOP/s")
    yield ("  as a fraction of the GEMM rate", deploy_rate / gemm, "")


def section_gpu_gtests(work, opts):
    """Caffe's gtests of the layer types the nets use (the set-up's caffe_layer_tests), GPU instances only:
    the GPU tests (`*GPU*`) and the typed tests' GPU cases (`/2`, `/3`)."""
    gpu = 0 if opts.gpu is None else opts.gpu
    where = checked_device(gpu)
    t0 = time.time()
    run = run_caffe_gtests(caffe_home(), gtest_filters()["GTEST_FILTER_GPU_CASES"], device=gpu)
    yield (f"Caffe's GPU gtests on {where}, passed", float(run.passed), "tests")
    yield (f"Caffe's GPU gtests on {where}, failed{': ' + ' '.join(run.failed[:5]) if run.failed else ''}",
           float(len(run.failed)), "tests")
    yield (f"Caffe's GPU gtests on {where}, time", time.time() - t0, "s")
