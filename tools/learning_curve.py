"""A learning curve on synthetic data: the full model (six roots + 2D-cls) trained on the same schedule on
more and more training images, each tested under P1 on its test set and on its own training images (the
train/test gap), with and without re-estimated BatchNorm statistics, beside the training mean pose and the
scale floor. Shows whether more data closes the gap to the literature's numbers.

  python tools/learning_curve.py --out out/curve --frames 100 200 400      # Walking; 7 subjects x 4 cameras
Writes curve.json and learning_curve.png into --out; resumable (finished trainings are reused).
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import sys
from pathlib import Path

from data_prep.lmdb_build import read_meta
from tools.evaluate import BN_BATCHES
from tools.experiments import prepare_synthetic, short_schedule_solver
from tools.training import REPO, train_to_completion
from data_prep.progress import progress_mode
from data_prep.cli import run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "out" / "curve"))
    p.add_argument("--frames", type=int, nargs="+", default=[100, 200, 400],
                   help="frames per synthetic sequence, one training run each (50 fps)")
    p.add_argument("--frame-step", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def plot_curve(points: list, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [p["train_images"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [p["test"]["mpjpe"]["p1"] for p in points], "o-", label="test (BN re-estimated)")
    ax.plot(n, [p["test_moving_average_bn"]["mpjpe"]["p1"] for p in points], "o:", label="test (BN moving averages)")
    ax.plot(n, [p["train"]["mpjpe"]["p1"] for p in points], "s-", label="training images")
    ax.plot(n, [p["test"]["mean_pose"]["p1"] for p in points], "k--", label="mean pose (test)")
    ax.plot(n, [p["test"]["scale_floor"]["p1"] for p in points], "k:", label="scale floor (test)")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("MPJPE, P1 (mm)")
    ax.set_title("Full model, synthetic Walking, same schedule")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def main(argv=None) -> int:
    import caffe

    from layers.inference import evaluate_action

    a = parse_args(argv)
    out = Path(a.out).resolve()
    deploy = REPO / "prototxt" / "deploy_both.prototxt"
    points = []
    for frames in a.frames:
        run = out / f"frames{frames}"
        lmdb = prepare_synthetic(run, ("Walking",), frames, a.frame_step, progress=progress_mode(a.quiet))
        solver, _ = short_schedule_solver(run / "prototxt", "Walking", "both", lmdb, a.batch_size, a.epochs,
                                          run / "snapshots", seed=a.seed)
        final = train_to_completion(solver, run / "logs" / "walking_both.log", progress=progress_mode(a.quiet),
                                    desc=f"caffe train ({frames} frames)", prune=True)
        caffe.set_mode_cpu()
        test, train = lmdb / "walking_test.lmdb", lmdb / "walking_train.lmdb"
        point = {"frames_per_sequence": frames, "train_images": read_meta(train)["count"],
                 "test_images": read_meta(test)["count"], "weights": str(final),
                 "test": evaluate_action(deploy, final, test, bn_batches=BN_BATCHES)[1],
                 "train": evaluate_action(deploy, final, train, bn_batches=BN_BATCHES)[1],
                 "test_moving_average_bn": evaluate_action(deploy, final, test, bn_batches=0)[1]}
        points.append(point)
        if not a.quiet:
            t = point["test"]
            print(f"{point['train_images']} training images: P1 test {t['mpjpe']['p1']:.1f} mm "
                  f"(moving-average BN {point['test_moving_average_bn']['mpjpe']['p1']:.1f}), "
                  f"train {point['train']['mpjpe']['p1']:.1f}; mean pose {t['mean_pose']['p1']:.1f}, "
                  f"scale floor {t['scale_floor']['p1']:.1f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "curve.json").write_text(json.dumps(points, indent=1))
    png = plot_curve(points, out / "learning_curve.png")
    if not a.quiet:
        print(f"wrote {out / 'curve.json'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
