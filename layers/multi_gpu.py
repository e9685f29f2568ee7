"""Data-parallel training on several GPUs through pycaffe and NCCL, as BVLC's python/train.py does (the
`caffe train -gpu 0,1` route refuses Python layers): one process per GPU, each with its own solver and data
layer; NCCL broadcasts rank 0's weights at the start and averages the gradients after every backward pass.
Rank r's data layer serves global batches r, r + k, ... (data_prep.batches.global_batch), so k GPUs see the
single-GPU batches in order, k at a time. Snapshots and tests are rank 0's."""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from pathlib import Path

from data_prep.cli import REPO
from data_prep.errors import UserError

from . import snapshots as S
from .device import require_gpu
from .training import TrainingInterrupted, claim_run, die_with_parent, finish_run, raise_for_result, stop_signals


def require_nccl() -> None:
    import caffe  # lazy: loads libcaffe (and CUDA)

    if not hasattr(caffe.NCCL, "new_uid"):
        raise UserError("multi-GPU training needs Caffe built with CUDA and NCCL (set-up with PARK3D_CUDA; "
                        "docs/gpu.md); this Caffe has no NCCL")


def _train_rank(solver_path: str, snapshot: str | None, gpus: list, uid, rank: int, errors) -> None:
    import caffe  # lazy: loads libcaffe (and CUDA)

    die_with_parent()  # a rank does not outlive the driver
    try:
        os.environ["PARK3D_RANK"], os.environ["PARK3D_RANKS"] = str(rank), str(len(gpus))  # read by the data layer
        caffe.set_device(gpus[rank])
        caffe.set_mode_gpu()
        caffe.set_solver_count(len(gpus))
        caffe.set_solver_rank(rank)
        caffe.set_multiprocess(True)
        solver = caffe.get_solver(solver_path)
        if snapshot:
            solver.restore(snapshot)
        nccl = caffe.NCCL(solver, uid)
        nccl.bcast()
        solver.add_callback(nccl)
        if solver.param.layer_wise_reduce:
            solver.net.after_backward(nccl)
        solver.step(solver.param.max_iter - solver.iter)
    except Exception as e:  # Caffe's own one-line reasons (patch 0005: diverged, a snapshot not written) and the rest
        errors.put((rank, f"{type(e).__name__}: {e}" if not isinstance(e, RuntimeError) else str(e)))
        raise SystemExit(1)


def train_data_parallel(solver: Path, gpus: list, snapshot: Path | None = None, cwd: Path = REPO, report=None) -> Path:
    """Train `solver` (generated with Schedule(ranks=len(gpus))) on `gpus`, with the protections of the caffe
    tool's runs (layers.training.claim_run: one run per snapshot prefix, inputs, disk and snapshots checked, a
    resume from the latest good snapshot when `snapshot` is not given). When one rank fails (a diverged loss, a
    full disk, a damaged record) the others are stopped and the reason is one line; Ctrl-C or SIGTERM stops every
    rank (at most the iterations since the last snapshot are lost: snapshots are complete or absent). Returns the
    final .caffemodel."""
    import caffe  # lazy: loads libcaffe (and CUDA)

    report = report or (lambda message: print(f"train_multi_gpu: {message}", flush=True))
    if len(gpus) < 2:
        raise UserError(f"--gpus {' '.join(map(str, gpus))}: give two or more GPU ids (one GPU: caffe train -gpu N)")
    for gpu in gpus:
        require_gpu(gpu)
    require_nccl()
    with claim_run(solver, cwd, report, resume_from=snapshot) as claimed:
        resume = claimed.resume
        if claimed.finished:
            S.prune(claimed.prefix, keep=1)
            return resume.weights
        uid = caffe.NCCL.new_uid()
        ctx = mp.get_context("spawn")  # a fresh CUDA context per process
        errors = ctx.Queue()
        procs = [ctx.Process(target=_train_rank, args=(str(solver), str(resume.state) if resume else None, gpus, uid,
                                                       rank, errors))
                 for rank in range(len(gpus))]
        stop = _run_ranks(procs)
        latest = (S.snapshot_pairs(claimed.prefix) or [None])[-1]
        if stop:
            raise TrainingInterrupted(f"stopped on {stop['signal']}; the last complete snapshot is "
                                      f"{latest.state if latest else 'none yet'}; run the same command again to resume")
        if any(proc.exitcode != 0 for proc in procs):
            reasons = _drain(errors)
            stopped = next((why for _, why in reasons), "")
            result = {"code": 1, "signal": None, "stopped": stopped, "layer_error": None,
                      "tail": [f"rank {r}: {why}\n" for r, why in reasons]}
            raise_for_result(result, solver, Path("(the ranks' output)"), latest)
        return finish_run(claimed, solver, cwd, latest, "(the ranks' output)")


def _run_ranks(procs: list) -> dict:
    """Start the ranks and wait for them; on the first failed rank or a stop request (Ctrl-C, SIGTERM) kill them
    all (a rank left alone waits for the failed one in NCCL for ever). Returns {"signal": name} when asked to stop."""
    stop = {}
    with stop_signals(lambda name: stop.setdefault("signal", name)):
        for proc in procs:
            proc.start()
        while any(proc.exitcode is None for proc in procs):
            failed = [proc for proc in procs if proc.exitcode not in (None, 0)]
            if failed or stop:
                for proc in procs:
                    proc.kill()
                break
            time.sleep(0.5)
        for proc in procs:
            proc.join()
    return stop


def _drain(errors) -> list:
    """The (rank, reason) pairs the failed ranks left in the queue, by rank."""
    reasons = []
    while True:
        try:
            reasons.append(errors.get(timeout=0.1))
        except queue.Empty:
            return sorted(reasons)
