"""Evaluate trained nets on the test LMDBs: MPJPE per action in the layout of the paper's Table 1 under
Protocol 1 (root-aligned; the headline, beside the paper's rows), the zero-mean variant and PA-MPJPE (P2),
per-joint errors, and two reference rows on the same frames: the training mean pose (mm, unscaled) and the
scale floor (the ground truth through the same scale recovery). Writes results.json and results.csv next
to the (first) weights.

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
from pathlib import Path

from data_prep.metrics import PROTOCOL_LABELS, PROTOCOLS
from data_prep.skeleton import ACTIONS, JOINTS, action_slug
from data_prep.tables import PAPER_TABLE1, format_table1
from data_prep.progress import progress_mode
from data_prep.cli import require_lmdbs, run_tool


BN_BATCHES = 100  # docs/design.md, "BatchNorm statistics"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--deploy", default="prototxt/deploy_both.prototxt")
    p.add_argument("--lmdb-root", required=True, help="folder with <action>_test.lmdb")
    p.add_argument("--weights", nargs="+", required=True, metavar="ACTION=CAFFEMODEL")
    p.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA); default CPU")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bn-batches", type=int, default=BN_BATCHES,
                   help="re-estimate BatchNorm's statistics over this many training batches (<action>_train.lmdb "
                        "beside the test LMDB) before testing; 0 keeps the snapshot's moving averages")
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


def evaluate(deploy, lmdb_root, weights: dict, gpu=None, batch_size=32, progress=True, bn_batches=BN_BATCHES) -> dict:
    import caffe

    from layers.inference import caffe_has_cuda, evaluate_action

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
        results[action] = evaluate_action(deploy, w, lmdb, batch_size, bn_batches=bn_batches, progress=progress)[1]
    return results


ROWS = (("mpjpe", "ours"), ("mean_pose", "mean pose"), ("scale_floor", "scale floor"))


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, cs = out_dir / "results.json", out_dir / "results.csv"
    tmp = js.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, js)
    tmp = cs.with_suffix(".csv.tmp")
    columns = [(row, protocol) for row, _ in ROWS for protocol in PROTOCOLS]
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["action", "frames"] + [f"{row}_{protocol}_mm" for row, protocol in columns]
                   + [f"{j}_p1_mm" for j in JOINTS])
        for action, r in results.items():
            w.writerow([action, r["frames"]] + [f"{r[row][protocol]:.2f}" for row, protocol in columns]
                       + [f"{e:.2f}" for e in r["per_joint_p1"]])
    os.replace(tmp, cs)
    return js, cs


def report(results: dict) -> str:
    actions = [a for a in ACTIONS if a in results]
    text = ""
    for protocol in PROTOCOLS:
        rows = {"Ours (this run)": {a: results[a]["mpjpe"][protocol] for a in actions},
                "Mean pose (training, mm)": {a: results[a]["mean_pose"][protocol] for a in actions},
                "Scale floor (GT, rescaled)": {a: results[a]["scale_floor"][protocol] for a in actions}}
        if protocol == "p1":
            rows["Paper, Table 1"] = {a: PAPER_TABLE1[a] for a in actions}
        text += f"{PROTOCOL_LABELS[protocol]} in mm, Table 1 layout\n" + format_table1(rows, actions) + "\n"
    text += "Per-joint MPJPE (P1, mm), mean over actions\n"
    per_joint = [sum(results[a]["per_joint_p1"][j] for a in actions) / len(actions) for j in range(len(JOINTS))]
    text += "  ".join(f"{n} {e:.1f}" for n, e in zip(JOINTS, per_joint)) + "\n"
    return text


def evaluate_and_report(deploy, lmdb_root, weights: dict, out_dir: Path, gpu=None, batch_size=32, progress=True,
                        quiet=False, bn_batches=BN_BATCHES) -> dict:
    """evaluate(), then the JSON and CSV into out_dir and, unless quiet, the Table 1 report."""
    results = evaluate(deploy, lmdb_root, weights, gpu, batch_size, progress=progress, bn_batches=bn_batches)
    js, cs = write_results(results, out_dir)
    if not quiet:
        print(report(results))
        print(f"wrote {js} and {cs}")
    return results


def main(argv=None) -> int:
    a = parse_args(argv)
    weights = parse_weights(a.weights)
    require_lmdbs(a.lmdb_root, weights, splits=("test",))
    evaluate_and_report(a.deploy, a.lmdb_root, weights, Path(a.out) if a.out else Path(next(iter(weights.values()))).parent,
                        a.gpu, a.batch_size, progress=progress_mode(a.quiet), quiet=a.quiet,
                        bn_batches=a.bn_batches)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
