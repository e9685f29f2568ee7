"""The whole pipeline on the embedded synthetic default, end to end:

  generate a Human3.6M-layout dataset (7 subjects, Walking, 4 cameras) -> build the LMDBs ->
  `caffe train` the full model (six roots + 2D-cls) on a short schedule -> evaluate (Table 1 layout, MPJPE
  under P1 / zero-mean / PA beside the training mean pose and the scale floor) -> Figure 4 (loss curves) and Figure 5 (qualitative) as PNG.

  python tools/demo.py                # about 11 minutes on 2 CPU cores; results in out/demo/
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
from tools.evaluate import BN_BATCHES, report, write_results
from tools.experiments import prepare_synthetic, short_schedule_solver
from tools.figures import plot_fig4, plot_fig5
from tools.training import train_to_completion
from data_prep.progress import progress_mode
from data_prep.cli import run_tool

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "out" / "demo"))
    p.add_argument("--frames", type=int, default=400, help="frames per synthetic sequence (50 fps)")
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
    progress = progress_mode(a.quiet)
    st = Stages(a.quiet)
    t_start = time.time()
    lmdb = st.run("data", lambda: prepare_synthetic(out, ("Walking",), a.frames, a.frame_step, a.seed, progress))
    train_meta, test_meta = read_meta(lmdb / "walking_train.lmdb"), read_meta(lmdb / "walking_test.lmdb")
    solver, max_iter = short_schedule_solver(out / "prototxt", "Walking", "both", lmdb, a.batch_size, a.epochs,
                                             out / "snapshots")
    log = out / "logs" / "walking_both.log"
    st.say(f"training {train_meta['count']} images, testing {test_meta['count']}; {max_iter} iterations of {a.batch_size}")
    final = st.run("caffe train", lambda: train_to_completion(solver, log, progress=progress_mode(a.quiet),
                                                              desc="caffe train (demo)", prune=True))

    def evaluate_and_plot():
        import caffe

        from layers.inference import evaluate_action

        caffe.set_mode_cpu()
        deploy = REPO / "prototxt" / "deploy_both.prototxt"
        pred, summary = evaluate_action(deploy, final, lmdb / "walking_test.lmdb", bn_batches=BN_BATCHES, keep_images=64)
        results = {"Walking": summary}
        write_results(results, out)
        # the same weights on the training images (train/test gap) and without re-estimated BatchNorm statistics
        checks = {"train_set": evaluate_action(deploy, final, lmdb / "walking_train.lmdb", bn_batches=BN_BATCHES)[1],
                  "test_set_moving_average_bn": evaluate_action(deploy, final, lmdb / "walking_test.lmdb", bn_batches=0)[1]}
        plot_fig4({"Multi-reg+2D-cls (demo)": log}, out / "fig4_losses.png")
        k = len(pred.images)
        plot_fig5(pred.images, pred.gt_mm[:k], {"Multi-reg+2D-cls": pred.pred_mm[:k]}, out / "fig5_qualitative.png")
        return results, checks

    results, checks = st.run("evaluate", evaluate_and_plot)
    summary = {"stage_seconds": st.times, "total_seconds": time.time() - t_start, "results": results, **checks}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=1))
    if not a.quiet:
        print()
        print(report(results))
        r, train, old_bn = results["Walking"], checks["train_set"], checks["test_set_moving_average_bn"]
        p1, base, floor = r["mpjpe"]["p1"], r["mean_pose"]["p1"], r["scale_floor"]["p1"]
        print(f"Walking, MPJPE (P1, root-aligned): {p1:.1f} mm = {p1 / base:.2f} x the training mean pose ({base:.1f} mm); "
              f"scale floor {floor:.1f} mm")
        print(f"  same weights on the training images: {train['mpjpe']['p1']:.1f} mm (train/test gap); "
              f"test without re-estimated BatchNorm statistics: {old_bn['mpjpe']['p1']:.1f} mm")
        print(f"outputs in {out}: results.json, results.csv, fig4_losses.png, fig5_qualitative.png, logs/")
        print("stage times: " + ", ".join(f"{k} {v:.0f} s" for k, v in st.times.items()) +
              f"; total {summary['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
