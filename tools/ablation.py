"""Table 2: the four variants (baseline, multi-reg, 2D-cls, both) trained and tested on the same data,
plus Figure 4 (3D losses with and without 2D-cls) and Figure 5 (baseline vs full model).

  python tools/ablation.py --lmdb-root data/lmdb                    # Human3.6M: prototxt/ablation/ solvers
  python tools/ablation.py --synthetic out/ablation --seeds 0 1 2   # CPU-sized run on synthetic data, 3 seeds
Each variant is trained under every seed on the same data; the table gives MPJPE (P1) as mean ± std over the
seeds beside the training mean pose and the scale floor, and each of the paper's claims as a paired per-seed
comparison (holds / does not hold / undecided at this size). Resumable like train_all.py.
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import sys
from pathlib import Path

from data_prep.skeleton import ABLATION_ACTIONS, action_slug
from data_prep.tables import VARIANT_LABELS, format_table2_seeds
from prototxt.generate import VARIANTS
from tools.experiments import prepare_synthetic, short_schedule_solver
from tools.evaluate import BN_BATCHES
from tools.training import REPO, train_to_completion
from data_prep.progress import progress_mode
from data_prep.cli import require_lmdbs, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--actions", nargs="+", choices=ABLATION_ACTIONS, metavar="ACTION")
    p.add_argument("--lmdb-root", default="data/lmdb")
    p.add_argument("--synthetic", metavar="OUT", help="generate synthetic data and short-schedule solvers under OUT")
    p.add_argument("--frames", type=int, default=200, help="synthetic: frames per sequence")
    p.add_argument("--frame-step", type=int, default=4, help="synthetic: LMDB frame step")
    p.add_argument("--batch-size", type=int, default=32, help="synthetic: batch (lr scales as batch/128)")
    p.add_argument("--epochs", type=int, default=6, help="synthetic: epochs per variant")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="synthetic: training seeds (weights, shuffling, augmentation; the data stay the same)")
    p.add_argument("--bn-batches", type=int, default=BN_BATCHES,
                   help="re-estimate BatchNorm statistics over this many training batches before testing (0: off)")
    p.add_argument("--results", help="output folder (default results/ablation or OUT)")
    p.add_argument("--gpu", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    import caffe

    from layers.inference import evaluate_action
    from tools.evaluate import write_results
    from tools.figures import plot_fig4, plot_fig5

    a = parse_args(argv)
    progress = progress_mode(a.quiet)
    actions = a.actions or (["Walking", "Eating"] if a.synthetic else list(ABLATION_ACTIONS))
    out = Path(a.results or a.synthetic or REPO / "results" / "ablation").resolve()
    seeds = a.seeds if a.synthetic else [None]  # Human3.6M: the committed solvers' own seed
    if a.synthetic:
        lmdb_root = prepare_synthetic(Path(a.synthetic), actions, a.frames, a.frame_step, progress=progress)
    else:
        lmdb_root = Path(a.lmdb_root)
        require_lmdbs(lmdb_root, actions)

    def run_dir(seed):
        return out if seed is None else out / f"seed{seed}"

    weights, log_of = {}, {}
    for seed in seeds:
        for action in actions:
            for variant in VARIANTS:
                slug = action_slug(action)
                if a.synthetic:
                    solver, _ = short_schedule_solver(run_dir(seed) / "prototxt", action, variant, lmdb_root, a.batch_size,
                                                      a.epochs, run_dir(seed) / "snapshots", seed=seed)
                else:
                    solver = REPO / "prototxt" / "ablation" / f"solver_{slug}_{variant}.prototxt"
                key = (seed, action, variant)
                log_of[key] = run_dir(seed) / "logs" / f"{slug}_{variant}.log"
                if not a.quiet:
                    print(f"[{action} / {VARIANT_LABELS[variant]} / seed {seed}] {solver}", flush=True)
                weights[key] = train_to_completion(solver, log_of[key], cwd=REPO, gpu=a.gpu, progress=progress,
                                                   desc=f"{action} {variant} seed {seed}", prune=True)
    if a.gpu is not None:
        caffe.set_mode_gpu()
        caffe.set_device(a.gpu)
    else:
        caffe.set_mode_cpu()
    per_seed, references, detail, kept = {}, {}, {}, {}
    for (seed, action, variant), w in weights.items():
        lmdb = lmdb_root / f"{action_slug(action)}_test.lmdb"
        pred, summary = evaluate_action(REPO / "prototxt" / f"deploy_{variant}.prototxt", w, lmdb, bn_batches=a.bn_batches,
                                        progress=progress, keep_images=64 if seed == seeds[0] else 0)
        per_seed.setdefault(variant, {}).setdefault(action, []).append(summary["mpjpe"]["p1"])
        references.setdefault("Mean pose (training, P1)", {})[action] = summary["mean_pose"]["p1"]
        references.setdefault("Scale floor (GT, P1)", {})[action] = summary["scale_floor"]["p1"]
        detail[f"{action}/{variant}/seed{seed}"] = summary
        if seed == seeds[0]:
            kept[action, variant] = pred
    out.mkdir(parents=True, exist_ok=True)
    text = format_table2_seeds(per_seed, actions, references)
    (out / "table2.json").write_text(json.dumps({"mpjpe_p1_per_seed": per_seed, "seeds": seeds, "references_p1": references,
                                                 "detail": detail, "table": text}, indent=1))
    write_results(detail, out)
    first = "Walking" if "Walking" in actions else actions[0]
    plot_fig4({"with 2D-cls": log_of[seeds[0], first, "2dcls"], "without (baseline)": log_of[seeds[0], first, "baseline"]},
              out / "fig4_losses.png")
    base, full = kept[first, "baseline"], kept[first, "both"]
    k = len(full.images)
    plot_fig5(full.images, full.gt_mm[:k], {"baseline": base.pred_mm[:k], "Multi-reg+2D-cls": full.pred_mm[:k]},
              out / "fig5_qualitative.png")
    (out / "table2.txt").write_text(text)
    if not a.quiet:
        print("MPJPE (P1, root-aligned) in mm, Table 2 layout, mean ± std over seeds (n)")
        print(text)
        print(f"wrote {out / 'table2.json'}, {out / 'table2.txt'}, fig4_losses.png, fig5_qualitative.png")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
