"""Data-parallel training on several GPUs through pycaffe and NCCL, as BVLC's python/train.py does (the
`caffe train -gpu 0,1` route refuses Python layers): one process per GPU, each with its own solver and data
layer; NCCL broadcasts rank 0's weights at the start and averages the gradients after every backward pass.
Rank r's data layer serves global batches r, r + k, ... (data_prep.batches.global_batch), so k GPUs see the
single-GPU batches in order, k at a time. Snapshots and tests are rank 0's."""
from __future__ import annotations

import os
from pathlib import Path

from data_prep.cli import UserError


def require_nccl() -> None:
    import caffe

    if not hasattr(caffe.NCCL, "new_uid"):
        raise UserError("multi-GPU training needs Caffe built with CUDA and NCCL (set-up with PARK3D_CUDA; "
                        "README, 'GPUs'); this Caffe has no NCCL")


def _train_rank(solver_path: str, snapshot: str | None, gpus: list, uid, rank: int) -> None:
    import caffe

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


def train_data_parallel(solver: Path, gpus: list, snapshot: Path | None = None) -> None:
    """Train `solver` (generated with Schedule(ranks=len(gpus))) on `gpus`, resuming from `snapshot`."""
    import multiprocessing as mp

    import caffe

    from .device import require_gpu

    if len(gpus) < 2:
        raise UserError(f"--gpus {' '.join(map(str, gpus))}: give two or more GPU ids (one GPU: caffe train -gpu N)")
    for gpu in gpus:
        require_gpu(gpu)
    require_nccl()
    uid = caffe.NCCL.new_uid()
    ctx = mp.get_context("spawn")  # a fresh CUDA context per process
    procs = [ctx.Process(target=_train_rank, args=(str(solver), str(snapshot) if snapshot else None, gpus, uid, rank))
             for rank in range(len(gpus))]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    failed = [rank for rank, proc in enumerate(procs) if proc.exitcode != 0]
    if failed:
        raise RuntimeError(f"multi-GPU training failed on rank(s) {failed}; see their output above")
