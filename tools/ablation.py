"""Table 2: the four variants (baseline, multi-reg, 2D-cls, both) trained and tested on the same data,
plus Figure 4 (3D losses with and without 2D-cls) and Figure 5 (baseline vs full model).

  python tools/ablation.py --lmdb-root data/lmdb                    # Human3.6M: the committed solvers
  python tools/ablation.py --synthetic out/ablation --seeds 0 1 2   # CPU-sized run on synthetic data, 3 seeds
Each variant is trained under every seed on the same data; the table gives MPJPE (P1) as mean ± std over the
seeds beside the training mean pose and the scale floor, and each of the paper's claims as a paired per-seed
comparison (holds / does not hold / undecided at this size). Resumable like train_all.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.cli import REPO, require_lmdbs, run_tool
from data_prep.drawing import plot_fig4, plot_fig5
from data_prep.files import write_text_atomic
from data_prep.progress import progress_mode
from data_prep.skeleton import ABLATION_ACTIONS, action_slug
from data_prep.synthetic_lmdbs import prepare_synthetic
from data_prep.tables import VARIANT_LABELS, format_table2_seeds, write_results
from layers.bn_stats import BN_BATCHES
from layers.caffe_log import fig4_curves
from layers.device import use_device
from layers.inference import evaluate_action
from layers.training import train_to_completion
from prototxt.generate import VARIANTS, Schedule, committed_solver, write_action_experiment


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", nargs="+", choices=ABLATION_ACTIONS, metavar="ACTION")
    parser.add_argument("--lmdb-root", default=str(REPO / "data" / "lmdb"))
    parser.add_argument(
        "--synthetic", metavar="OUT", help="generate synthetic data and short-schedule solvers under OUT"
    )
    parser.add_argument("--frames", type=int, default=200, help="synthetic: frames per sequence")
    parser.add_argument("--frame-step", type=int, default=4, help="synthetic: LMDB frame step")
    parser.add_argument("--batch-size", type=int, default=32, help="synthetic: batch (lr scales as batch/128)")
    parser.add_argument("--epochs", type=int, default=6, help="synthetic: epochs per variant")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="synthetic: training seeds (weights, shuffling, augmentation; the data stay the same)")
    parser.add_argument("--bn-batches", type=int, default=BN_BATCHES,
                   help="re-estimate BatchNorm statistics over this many training batches before testing (0: off)")
    parser.add_argument("--results", help="output folder (default results/ablation or OUT)")
    parser.add_argument("--gpu", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    progress = progress_mode(args.quiet)
    actions = args.actions or (["Walking", "Eating"] if args.synthetic else list(ABLATION_ACTIONS))
    out = Path(args.results or args.synthetic or REPO / "results" / "ablation").resolve()
    seeds = args.seeds if args.synthetic else [None]  # Human3.6M: the committed solvers' own seed
    if args.synthetic:
        lmdb_root = prepare_synthetic(Path(args.synthetic), actions, args.frames, args.frame_step, progress=progress)
    else:
        lmdb_root = Path(args.lmdb_root)
        require_lmdbs(lmdb_root, actions)
    weights, log_of = train_variants(args, actions, seeds, lmdb_root, out, progress)
    per_seed, references, detail, kept = evaluate_variants(args, weights, seeds, lmdb_root, progress)
    text = write_tables(out, per_seed, references, detail, actions, seeds)
    draw_figures(out, actions, seeds, log_of, kept)
    print("MPJPE (P1, root-aligned) in mm, Table 2 layout, mean ± std over seeds (n)")
    print(text)
    print(f"wrote {out / 'table2.json'}, {out / 'table2.txt'}, fig4_losses.png, fig5_qualitative.png")
    return 0


def run_dir(out: Path, seed) -> Path:
    return out if seed is None else out / f"seed{seed}"


def train_variants(args, actions, seeds, lmdb_root: Path, out: Path, progress) -> tuple[dict, dict]:
    """Every (seed, action, variant) trained to completion (resumed, or skipped when finished): its final weights
    and its log. Human3.6M: the committed solvers; synthetic: short-schedule solvers under the run's folder."""
    weights, log_of = {}, {}
    for seed in seeds:
        for action in actions:
            for variant in VARIANTS:
                slug = action_slug(action)
                if args.synthetic:
                    solver, _ = write_action_experiment(run_dir(out, seed) / "prototxt", action, variant, lmdb_root,
                                                        Schedule.short(args.epochs, args.batch_size, seed=seed),
                                                        run_dir(out, seed) / "snapshots")
                else:
                    solver = committed_solver(action, variant)
                key = (seed, action, variant)
                log_of[key] = run_dir(out, seed) / "logs" / f"{slug}_{variant}.log"
                if not args.quiet:
                    print(f"[{action} / {VARIANT_LABELS[variant]} / seed {seed}] {solver}", flush=True)
                weights[key] = train_to_completion(solver, log_of[key], cwd=REPO, gpu=args.gpu, progress=progress,
                                                   desc=f"{action} {variant} seed {seed}")
    return weights, log_of


def evaluate_variants(args, weights: dict, seeds, lmdb_root: Path, progress):
    """Each trained net on its action's test LMDB: P1 per seed, the reference rows, every summary, and the first
    seed's predictions (for Fig. 5)."""
    use_device(args.gpu)
    per_seed, references, detail, kept = {}, {}, {}, {}
    for (seed, action, variant), w in weights.items():
        lmdb = lmdb_root / f"{action_slug(action)}_test.lmdb"
        pred, summary = evaluate_action(
            REPO / "prototxt" / f"evaluate_{variant}.prototxt",
            w,
            lmdb,
            bn_batches=args.bn_batches,
            progress=progress,
            keep_images=64 if seed == seeds[0] else 0,
        )
        per_seed.setdefault(variant, {}).setdefault(action, []).append(summary["mpjpe"]["p1"])
        references.setdefault("Mean pose (training, P1)", {})[action] = summary["mean_pose"]["p1"]
        references.setdefault("Scale floor (GT, P1)", {})[action] = summary["scale_floor"]["p1"]
        detail[f"{action}/{variant}/seed{seed}"] = summary
        if seed == seeds[0]:
            kept[action, variant] = pred
    return per_seed, references, detail, kept


def write_tables(out: Path, per_seed, references, detail, actions, seeds) -> str:
    """table2.json, table2.txt and results.json / .csv; returns the table's text."""
    text = format_table2_seeds(per_seed, actions, references)
    write_text_atomic(out / "table2.json", json.dumps({"mpjpe_p1_per_seed": per_seed, "seeds": seeds,
                                                       "references_p1": references, "detail": detail, "table": text},
                                                      indent=1))
    write_results(detail, out)
    write_text_atomic(out / "table2.txt", text)
    return text


def draw_figures(out: Path, actions, seeds, log_of: dict, kept: dict) -> None:
    """Fig. 4 (3D losses with and without 2D-cls) and Fig. 5 (baseline against the full model), first seed."""
    first = "Walking" if "Walking" in actions else actions[0]
    plot_fig4(fig4_curves({"with 2D-cls": log_of[seeds[0], first, "2dcls"],
                           "without (baseline)": log_of[seeds[0], first, "baseline"]}), out / "fig4_losses.png")
    base, full = kept[first, "baseline"], kept[first, "both"]
    k = len(full.images)
    plot_fig5(full.images, full.gt_mm[:k], {"baseline": base.pred_mm[:k], "Multi-reg+2D-cls": full.pred_mm[:k]},
              out / "fig5_qualitative.png")


if __name__ == "__main__":
    sys.exit(run_tool(main))
