"""The whole pipeline on the embedded synthetic default, end to end:

  generate a Human3.6M-layout dataset (7 subjects, Walking, 4 cameras) -> build the LMDBs ->
  `caffe train` the full model (six roots + 2D-cls) on a short schedule -> evaluate (Table 1 layout, MPJPE
  under P1 / zero-mean / PA beside the training mean pose and the scale floor) -> Figure 4 (loss curves) and Figure 5
  (qualitative) as PNG.

  python tools/demo.py                # about 11 minutes on 2 CPU cores; results in out/demo/
Data and training are skipped when their outputs exist, and an interrupted training resumes from its
latest snapshot (delete out/demo to start over).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from data_prep.cli import REPO, run_tool
from data_prep.drawing import plot_fig4, plot_fig5
from data_prep.files import write_text_atomic
from data_prep.progress import progress_mode
from data_prep.records import DEFAULT_ENCODING, ENCODINGS, read_meta
from data_prep.synthetic_lmdbs import prepare_synthetic
from data_prep.tables import report, write_results
from layers.bn_stats import BN_BATCHES
from layers.caffe_log import fig4_curves
from layers.device import use_device
from layers.inference import evaluate_action
from layers.training import train_to_completion
from prototxt.generate import Schedule, write_action_experiment


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO / "out" / "demo"))
    parser.add_argument("--frames", type=int, default=400, help="frames per synthetic sequence (50 fps)")
    parser.add_argument("--frame-step", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="lr is 0.01 * batch / 128 (prototxt.generate)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="short schedule: lr halved every epochs/3, lambda_2D step at 16/28")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the synthetic data (the solver's own seed stays 0)"
    )
    parser.add_argument("--encoding", choices=ENCODINGS, default=DEFAULT_ENCODING, help="LMDB record images")
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA); default CPU")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


class Stages:
    def __init__(self, quiet):
        self.quiet, self.times = quiet, {}

    def run(self, name, fn):
        t0 = time.time()
        self.say(f"[{name}] ...")
        out = fn()
        self.times[name] = time.time() - t0
        self.say(f"[{name}] {self.times[name]:.0f} s")
        return out

    def say(self, text):
        if not self.quiet:
            print(text, flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    progress = progress_mode(args.quiet)
    stages = Stages(args.quiet)
    t_start = time.time()
    lmdb = stages.run("data", lambda: prepare_synthetic(out, ("Walking",), args.frames, args.frame_step, args.seed,
                                                        progress, encoding=args.encoding))
    train_meta, test_meta = read_meta(lmdb / "walking_train.lmdb"), read_meta(lmdb / "walking_test.lmdb")
    solver, max_iter = write_action_experiment(out / "prototxt", "Walking", "both", lmdb,
                                               Schedule.short(args.epochs, args.batch_size), out / "snapshots")
    log = out / "logs" / "walking_both.log"
    stages.say(f"training {train_meta['count']} images, testing {test_meta['count']}; {max_iter} iterations of "
               f"{args.batch_size}")
    final = stages.run("caffe train", lambda: train_to_completion(solver, log, gpu=args.gpu, progress=progress,
                                                                  desc="caffe train (demo)"))

    def evaluate_and_plot():
        use_device(args.gpu)
        deploy = REPO / "prototxt" / "evaluate_both.prototxt"  # the deploy net + scale and errors in the net
        pred, summary = evaluate_action(
            deploy, final, lmdb / "walking_test.lmdb", bn_batches=BN_BATCHES, keep_images=64
        )
        results = {"Walking": summary}
        write_results(results, out)
        # the same weights on the training images (train/test gap) and without re-estimated BatchNorm statistics
        checks = {
            "train_set": evaluate_action(deploy, final, lmdb / "walking_train.lmdb", bn_batches=BN_BATCHES)[1],
            "test_set_moving_average_bn": evaluate_action(deploy, final, lmdb / "walking_test.lmdb", bn_batches=0)[1],
        }
        plot_fig4(fig4_curves({"Multi-reg+2D-cls (demo)": log}), out / "fig4_losses.png")
        k = len(pred.images)
        plot_fig5(pred.images, pred.gt_mm[:k], {"Multi-reg+2D-cls": pred.pred_mm[:k]}, out / "fig5_qualitative.png")
        return results, checks

    results, checks = stages.run("evaluate", evaluate_and_plot)
    summary = {"stage_seconds": stages.times, "total_seconds": time.time() - t_start, "results": results, **checks}
    write_text_atomic(out / "demo_summary.json", json.dumps(summary, indent=1))
    # the result prints with --quiet too (it silences progress and stage lines only)
    if not args.quiet:
        print()
    print(report(results))
    r, train, old_bn = results["Walking"], checks["train_set"], checks["test_set_moving_average_bn"]
    p1, base, floor = r["mpjpe"]["p1"], r["mean_pose"]["p1"], r["scale_floor"]["p1"]
    print(f"Walking, MPJPE (P1, root-aligned): {p1:.1f} mm = {p1 / base:.2f} x the training mean pose ({base:.1f} mm); "
          f"scale floor {floor:.1f} mm")
    print(f"  same weights on the training images: {train['mpjpe']['p1']:.1f} mm (train/test gap); "
          f"test without re-estimated BatchNorm statistics: {old_bn['mpjpe']['p1']:.1f} mm")
    print(f"outputs in {out}: results.json, results.csv, fig4_losses.png, fig5_qualitative.png, logs/")
    print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in stages.times.items()) +
          f"; total {summary['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
