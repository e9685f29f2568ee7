"""Evaluate trained nets on the test LMDBs: MPJPE per action in the layout of the paper's Table 1,
plus PA-MPJPE, per-joint errors and the trivial baseline (the training mean pose). Writes
results.json and results.csv next to the (first) weights.

  python tools/evaluate.py --deploy prototxt/deploy_both.prototxt --lmdb-root data/lmdb \\
      --weights Walking=snapshots/walking_both_iter_4564.caffemodel Eating=snapshots/eating_both_iter_...
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from data_prep.lmdb_build import read_meta
from data_prep.skeleton import ACTIONS, JOINTS, action_slug
from data_prep.tables import PAPER_TABLE1, format_table1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deploy", default="prototxt/deploy_both.prototxt")
    p.add_argument("--lmdb-root", required=True, help="folder with <action>_test.lmdb")
    p.add_argument("--weights", nargs="+", required=True, metavar="ACTION=CAFFEMODEL")
    p.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA); default CPU")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", help="folder for results.json/.csv (default: beside the first weights)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def parse_weights(items) -> dict:
    out = {}
    for item in items:
        action, sep, path = item.partition("=")
        if not sep or action not in ACTIONS:
            raise SystemExit(f"--weights {item!r}: expected ACTION=path.caffemodel with ACTION one of {', '.join(ACTIONS)}")
        if not Path(path).is_file():
            raise SystemExit(f"--weights {item!r}: {path} does not exist")
        out[action] = path
    return out


def evaluate(deploy, lmdb_root, weights: dict, gpu=None, batch_size=32, progress=True) -> dict:
    import caffe

    from layers.deploy import load_deploy_net
    from layers.inference import caffe_has_cuda, error_summary, predict_lmdb

    if gpu is not None:
        if not caffe_has_cuda():
            raise SystemExit("--gpu: this Caffe was built CPU-only (no GPU found at set-up); drop --gpu")
        caffe.set_mode_gpu()
        caffe.set_device(gpu)
    else:
        caffe.set_mode_cpu()
    results = {}
    for action, w in weights.items():
        lmdb = Path(lmdb_root) / f"{action_slug(action)}_test.lmdb"
        meta = read_meta(lmdb)
        net = load_deploy_net(deploy, w, batch_size)
        t0 = time.time()
        pred = predict_lmdb(net, str(lmdb), meta["mean_torso_lengths_mm"], progress=progress)
        seconds = time.time() - t0
        results[action] = {**error_summary(pred, meta["mean_pose_normalised"], meta["mean_torso_lengths_mm"]),
                           "weights": str(w), "images_per_second": len(pred.gt_mm) / seconds}
    return results


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, cs = out_dir / "results.json", out_dir / "results.csv"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, js)
    tmp = cs.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["action", "frames", "mpjpe_mm", "pa_mpjpe_mm", "mean_pose_mpjpe_mm"] + [f"{j}_mm" for j in JOINTS])
        for action, r in results.items():
            w.writerow([action, r["frames"], f"{r['mpjpe']:.2f}", f"{r['pa_mpjpe']:.2f}", f"{r['mean_pose_mpjpe']:.2f}"]
                       + [f"{e:.2f}" for e in r["per_joint"]])
    os.replace(tmp, cs)
    return js, cs


def report(results: dict) -> str:
    actions = [a for a in ACTIONS if a in results]
    text = "MPJPE (mm), Table 1 layout\n" + format_table1({
        "Ours (this run)": {a: results[a]["mpjpe"] for a in actions},
        "Mean pose": {a: results[a]["mean_pose_mpjpe"] for a in actions},
        "Paper": {a: PAPER_TABLE1[a] for a in actions}}, actions)
    text += "\nPA-MPJPE (mm)\n" + format_table1({"Ours (this run)": {a: results[a]["pa_mpjpe"] for a in actions},
                                                   "Mean pose": {a: results[a]["mean_pose_pa_mpjpe"] for a in actions}}, actions)
    text += "\nPer-joint MPJPE (mm), mean over actions\n"
    per_joint = [sum(results[a]["per_joint"][j] for a in actions) / len(actions) for j in range(len(JOINTS))]
    text += "  ".join(f"{n} {e:.1f}" for n, e in zip(JOINTS, per_joint)) + "\n"
    return text


def evaluate_and_report(deploy, lmdb_root, weights: dict, out_dir: Path, gpu=None, batch_size=32, progress=True,
                        quiet=False) -> dict:
    """evaluate(), then the JSON and CSV into out_dir and, unless quiet, the Table 1 report."""
    results = evaluate(deploy, lmdb_root, weights, gpu, batch_size, progress=progress)
    js, cs = write_results(results, out_dir)
    if not quiet:
        print(report(results))
        print(f"wrote {js} and {cs}")
    return results


def main(argv=None) -> int:
    a = parse_args(argv)
    weights = parse_weights(a.weights)
    evaluate_and_report(a.deploy, a.lmdb_root, weights, Path(a.out) if a.out else Path(next(iter(weights.values()))).parent,
                        a.gpu, a.batch_size, progress=not a.quiet and sys.stderr.isatty(), quiet=a.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
