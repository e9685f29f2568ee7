"""The whole pipeline on the embedded synthetic default, end to end:

  generate a Human3.6M-layout dataset (7 subjects, Walking, 4 cameras) -> build the LMDBs ->
  `caffe train` the full model (six roots + 2D-cls) on a short schedule -> evaluate (Table 1 layout,
  beside the training mean pose) -> Figure 4 (loss curves) and Figure 5 (qualitative) as PNG.

  python tools/demo.py                # about 12 minutes on 2 CPU cores; results in out/demo/
Data and training are skipped when their outputs exist, and an interrupted training resumes from its
latest snapshot (delete out/demo to start over).
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import sys
import time
from pathlib import Path

from data_prep.lmdb_build import read_meta
from tools.evaluate import report, write_results
from tools.experiments import prepare_synthetic, short_schedule_solver
from tools.figures import plot_fig4, plot_fig5
from tools.training import train_progress, train_to_completion

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "out" / "demo"))
    p.add_argument("--frames", type=int, default=300, help="frames per synthetic sequence (50 fps)")
    p.add_argument("--frame-step", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32, help="lr is 0.01 * batch / 128 (prototxt.generate)")
    p.add_argument("--epochs", type=int, default=6, help="short schedule: lr halved every epochs/3, lambda_2D step at 16/28")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


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
    a = parse_args(argv)
    out = Path(a.out).resolve()
    progress = not a.quiet and sys.stderr.isatty()
    st = Stages(a.quiet)
    t_start = time.time()
    lmdb = st.run("data", lambda: prepare_synthetic(out, ("Walking",), a.frames, a.frame_step, a.seed, progress))
    train_meta, test_meta = read_meta(lmdb / "walking_train.lmdb"), read_meta(lmdb / "walking_test.lmdb")
    solver, max_iter = short_schedule_solver(out / "prototxt", "Walking", "both", lmdb, a.batch_size, a.epochs,
                                             out / "snapshots")
    log = out / "logs" / "walking_both.log"
    st.say(f"training {train_meta['count']} images, testing {test_meta['count']}; {max_iter} iterations of {a.batch_size}")
    final = st.run("caffe train", lambda: train_to_completion(solver, log, progress=train_progress(a.quiet),
                                                              desc="caffe train (demo)", prune=True))

    def evaluate_and_plot():
        import caffe

        from layers.deploy import load_deploy_net
        from layers.inference import error_summary, predict_lmdb

        caffe.set_mode_cpu()
        net = load_deploy_net(REPO / "prototxt" / "deploy_both.prototxt", final, batch_size=32)
        t0 = time.time()
        pred = predict_lmdb(net, str(lmdb / "walking_test.lmdb"), test_meta["mean_torso_lengths_mm"], progress=progress,
                            keep_images=64)
        seconds = time.time() - t0
        results = {"Walking": {**error_summary(pred, test_meta["mean_pose_normalised"], test_meta["mean_torso_lengths_mm"]),
                               "weights": str(final), "images_per_second": len(pred.gt_mm) / seconds}}
        write_results(results, out)
        plot_fig4({"Multi-reg+2D-cls (demo)": log}, out / "fig4_losses.png")
        k = len(pred.images)
        plot_fig5(pred.images, pred.gt_mm[:k], {"Multi-reg+2D-cls": pred.pred_mm[:k]}, out / "fig5_qualitative.png")
        return results

    results = st.run("evaluate", evaluate_and_plot)
    summary = {"stage_seconds": st.times, "total_seconds": time.time() - t_start, "results": results}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=1))
    if not a.quiet:
        print()
        print(report(results))
        r = results["Walking"]
        print(f"Walking MPJPE {r['mpjpe']:.1f} mm vs {r['mean_pose_mpjpe']:.1f} mm for the training mean pose "
              f"({100 * (1 - r['mpjpe'] / r['mean_pose_mpjpe']):.0f}% lower)")
        print(f"outputs in {out}: results.json, results.csv, fig4_losses.png, fig5_qualitative.png, logs/")
        print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in st.times.items()) +
              f"; total {summary['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
