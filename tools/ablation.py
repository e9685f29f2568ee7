"""Table 2: the four variants (baseline, multi-reg, 2D-cls, both) trained and tested on the same data,
plus Figure 4 (3D losses with and without 2D-cls) and Figure 5 (baseline vs full model).

  python tools/ablation.py --lmdb-root data/lmdb                    # Human3.6M: prototxt/ablation/ solvers
  python tools/ablation.py --synthetic out/ablation                 # CPU-sized run on synthetic data (~1 h)
Resumable like train_all.py.
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import sys
from pathlib import Path

from data_prep.skeleton import ABLATION_ACTIONS, action_slug
from data_prep.tables import VARIANT_LABELS, format_table2
from prototxt.generate import VARIANTS
from tools.experiments import prepare_synthetic, short_schedule_solver
from tools.training import REPO, train_progress, train_to_completion


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actions", nargs="+", choices=ABLATION_ACTIONS, metavar="ACTION")
    p.add_argument("--lmdb-root", default="data/lmdb")
    p.add_argument("--synthetic", metavar="OUT", help="generate synthetic data and short-schedule solvers under OUT")
    p.add_argument("--frames", type=int, default=200, help="synthetic: frames per sequence")
    p.add_argument("--frame-step", type=int, default=4, help="synthetic: LMDB frame step")
    p.add_argument("--batch-size", type=int, default=32, help="synthetic: batch (lr scales as batch/128)")
    p.add_argument("--epochs", type=int, default=6, help="synthetic: epochs per variant")
    p.add_argument("--seed", type=int, default=0,
                   help="synthetic: training seed (weights, shuffling, augmentation; the data stay the same); "
                        "use a fresh OUT per seed")
    p.add_argument("--results", help="output folder (default results/ablation or OUT)")
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import caffe

    from layers.deploy import load_deploy_net
    from layers.inference import error_summary, predict_lmdb
    from data_prep.lmdb_build import read_meta
    from tools.evaluate import write_results
    from tools.figures import plot_fig4, plot_fig5

    a = parse_args(argv)
    progress = not a.quiet and sys.stderr.isatty()
    actions = a.actions or (["Walking", "Eating"] if a.synthetic else list(ABLATION_ACTIONS))
    out = Path(a.results or a.synthetic or REPO / "results" / "ablation").resolve()
    logs = out / "logs"
    if a.synthetic:
        lmdb_root = prepare_synthetic(Path(a.synthetic), actions, a.frames, a.frame_step, progress=progress)
    else:
        lmdb_root = Path(a.lmdb_root)
    weights, log_of = {}, {}
    for action in actions:
        for variant in VARIANTS:
            slug = action_slug(action)
            if a.synthetic:
                solver, _ = short_schedule_solver(out / "prototxt", action, variant, lmdb_root, a.batch_size, a.epochs,
                                                  out / "snapshots", seed=a.seed)
            else:
                solver = REPO / "prototxt" / "ablation" / f"solver_{slug}_{variant}.prototxt"
            log_of[action, variant] = logs / f"{slug}_{variant}.log"
            if not a.quiet:
                print(f"[{action} / {VARIANT_LABELS[variant]}] {solver}", flush=True)
            weights[action, variant] = train_to_completion(solver, log_of[action, variant], cwd=REPO, gpu=a.gpu,
                                                           progress=train_progress(a.quiet),
                                                           desc=f"{action} {variant}", prune=True)
    if a.gpu is not None:
        caffe.set_mode_gpu()
        caffe.set_device(a.gpu)
    else:
        caffe.set_mode_cpu()
    table, detail, kept = {}, {}, {}
    for (action, variant), w in weights.items():
        lmdb = lmdb_root / f"{action_slug(action)}_test.lmdb"
        meta = read_meta(lmdb)
        net = load_deploy_net(REPO / "prototxt" / f"deploy_{variant}.prototxt", w, batch_size=32)
        pred = predict_lmdb(net, str(lmdb), meta["mean_torso_lengths_mm"], progress=progress, keep_images=64)
        summary = error_summary(pred, meta["mean_pose_normalised"], meta["mean_torso_lengths_mm"])
        table.setdefault(variant, {})[action] = summary["mpjpe"]
        detail[f"{action}/{variant}"] = {**summary, "weights": str(w)}
        kept[action, variant] = pred
    out.mkdir(parents=True, exist_ok=True)
    (out / "table2.json").write_text(json.dumps({"mpjpe": table, "detail": detail}, indent=1))
    write_results(detail, out)
    first = "Walking" if "Walking" in actions else actions[0]
    plot_fig4({"with 2D-cls": log_of[first, "2dcls"], "without (baseline)": log_of[first, "baseline"]}, out / "fig4_losses.png")
    base, full = kept[first, "baseline"], kept[first, "both"]
    k = len(full.images)
    plot_fig5(full.images, full.gt_mm[:k], {"baseline": base.pred_mm[:k], "Multi-reg+2D-cls": full.pred_mm[:k]},
              out / "fig5_qualitative.png")
    text = format_table2(table, actions)
    (out / "table2.txt").write_text(text)
    if not a.quiet:
        print(text)
        print(f"wrote {out / 'table2.json'}, {out / 'table2.txt'}, fig4_losses.png, fig5_qualitative.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
