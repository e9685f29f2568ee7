"""A learning curve on synthetic data: the full model (six roots + 2D-cls) trained on the same schedule on
more and more training images, each tested under P1 on its test set and on its own training images (the
train/test gap), with and without re-estimated BatchNorm statistics, beside the training mean pose and the
scale floor. Shows whether more data closes the gap to the literature's numbers.

  python tools/learning_curve.py --out out/curve --frames 100 200 400      # Walking; 7 subjects x 4 cameras
Writes curve.json and learning_curve.png into --out; resumable (finished trainings are reused).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.cli import REPO, run_tool
from data_prep.drawing import plot_learning_curve
from data_prep.files import write_text_atomic
from data_prep.progress import progress_mode
from data_prep.records import read_meta
from data_prep.synthetic_lmdbs import prepare_synthetic
from layers.bn_stats import BN_BATCHES
from layers.device import use_device
from layers.inference import evaluate_action
from layers.training import train_to_completion
from prototxt.generate import Schedule, write_action_experiment


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "out" / "curve"))
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 200, 400],
                   help="frames per synthetic sequence, one training run each (50 fps)")
    parser.add_argument("--frame-step", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA); default CPU")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    deploy = REPO / "prototxt" / "evaluate_both.prototxt"  # the deploy net + scale and errors in the net
    points = []
    for frames in args.frames:
        run = out / f"frames{frames}"
        lmdb = prepare_synthetic(run, ("Walking",), frames, args.frame_step, progress=progress_mode(args.quiet))
        solver, _ = write_action_experiment(
            run / "prototxt",
            "Walking",
            "both",
            lmdb,
            Schedule.short(args.epochs, args.batch_size, seed=args.seed),
            run / "snapshots",
        )
        final = train_to_completion(
            solver,
            run / "logs" / "walking_both.log",
            gpu=args.gpu,
            progress=progress_mode(args.quiet),
            desc=f"caffe train ({frames} frames)",
        )
        use_device(args.gpu)
        test, train = lmdb / "walking_test.lmdb", lmdb / "walking_train.lmdb"
        point = {"frames_per_sequence": frames, "train_images": read_meta(train)["count"],
                 "test_images": read_meta(test)["count"], "weights": str(final),
                 "test": evaluate_action(deploy, final, test, bn_batches=BN_BATCHES)[1],
                 "train": evaluate_action(deploy, final, train, bn_batches=BN_BATCHES)[1],
                 "test_moving_average_bn": evaluate_action(deploy, final, test, bn_batches=0)[1]}
        points.append(point)
        if not args.quiet:
            t = point["test"]
            print(f"{point['train_images']} training images: P1 test {t['mpjpe']['p1']:.1f} mm "
                  f"(moving-average BN {point['test_moving_average_bn']['mpjpe']['p1']:.1f}), "
                  f"train {point['train']['mpjpe']['p1']:.1f}; mean pose {t['mean_pose']['p1']:.1f}, "
                  f"scale floor {t['scale_floor']['p1']:.1f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "curve.json", json.dumps(points, indent=1))
    png = plot_learning_curve(points, out / "learning_curve.png")
    print(f"wrote {out / 'curve.json'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
