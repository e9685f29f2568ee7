"""Synthetic experiments shared by the demo and the ablation: a Human3.6M-layout dataset made by the
project's generator, its LMDBs, and short-schedule solvers for the paper's nets."""
from __future__ import annotations

import math
from pathlib import Path

from data_prep.lmdb_build import build_lmdbs, read_meta
from data_prep.skeleton import action_slug
from data_prep.synthetic import GeneratorConfig, generate
from prototxt.generate import write_experiment


def prepare_synthetic(out: Path, actions, frames: int, frame_step: int, seed: int = 0, progress: bool = True,
                      workers: int = 2) -> Path:
    """Generate (once) the layout under out/h36m and build (once) out/lmdb; returns the LMDB folder."""
    data, lmdb = Path(out) / "h36m", Path(out) / "lmdb"
    done = data / "DONE"
    wanted = f"{sorted(actions)} frames={frames} seed={seed}"
    if not done.is_file() or done.read_text() != wanted:
        generate(GeneratorConfig(data, actions=tuple(actions), frames=frames, seed=seed), workers=workers, progress=progress)
        done.write_text(wanted)
    missing = [a for a in actions if not (lmdb / f"{action_slug(a)}_test.lmdb" / "meta.json").is_file()]
    if missing:
        build_lmdbs(data, lmdb, actions=tuple(missing), step=frame_step, workers=workers, progress=progress)
    return lmdb


def short_schedule_solver(out_dir: Path, action: str, variant: str, lmdb: Path, batch_size: int, epochs: int,
                          snapshot_dir: Path, seed: int = 0) -> tuple[Path, int]:
    """The paper's net and solver on a short schedule: lr 0.01*batch/128 halved every epochs/3 epochs,
    lambda_2D switched at 16/28 of the run, tested and snapshotted every epochs/3 epochs.
    `seed` sets Caffe's weight initialisation and the data layer's shuffling and augmentation.
    Returns (solver path, max_iter)."""
    slug = action_slug(action)
    train, test = read_meta(lmdb / f"{slug}_train.lmdb"), read_meta(lmdb / f"{slug}_test.lmdb")
    third = max(1, epochs // 3)
    solver = write_experiment(out_dir, f"{slug}_{variant}", variant=variant, train_lmdb=str(lmdb / f"{slug}_train.lmdb"),
                              test_lmdb=str(lmdb / f"{slug}_test.lmdb"), train_count=train["count"], test_count=test["count"],
                              snapshot_prefix=str(Path(snapshot_dir).resolve() / f"{slug}_{variant}"), batch_size=batch_size,
                              epochs=epochs, lr_step_epochs=third, test_every_epochs=third, display=10, seed=seed)
    return solver, epochs * math.ceil(train["count"] / batch_size)
