"""The same trained weights evaluated by two Caffes or on two devices, frame by frame (issue: the user's commands on
a GPU machine). `evaluate` writes one run's per-frame poses (mm, after scale recovery) and its MPJPE under each
protocol to an .npz; `compare` says how far two such files are apart and whether that is float rounding:

  python -m layers.device_parity evaluate --deploy D --weights W --lmdb L --out gpu.npz --gpu 0
  python -m layers.device_parity evaluate --deploy D --weights W --lmdb L --out cpu.npz
  python -m layers.device_parity compare gpu.npz cpu.npz     # exit 1 when they differ by more than rounding

Float rounding here: every protocol's MPJPE within METRIC_TOL_MM and every joint of every frame within
POSE_TOL_MM. Caffe's GPU and CPU code (and two builds for different CPUs) sum in other orders, and the net is deep,
so poses of about a metre agree to a few hundredths of a millimetre, not bit for bit."""
from __future__ import annotations

import argparse
import sys

import numpy as np

METRIC_TOL_MM = 0.01
POSE_TOL_MM = 0.5
PROTOCOLS = ("p1", "zero_mean", "pa")


def evaluate_to_file(deploy, weights, lmdb, out, gpu: int | None, bn_batches: int) -> dict:
    from layers.inference import evaluate_action  # lazy: loads pycaffe

    pred, summary = evaluate_action(deploy, weights, lmdb, bn_batches=bn_batches, gpu=gpu)
    np.savez(out, pred_mm=pred.pred_mm, keys=np.asarray(pred.keys, dtype=str),
             **{f"mpjpe_{p}": summary["mpjpe"][p] for p in PROTOCOLS})
    return summary


def compare(a: dict, b: dict) -> dict:
    """How far two evaluate_to_file results are apart: max per-joint distance (mm) and each protocol's MPJPE gap."""
    if list(a["keys"]) != list(b["keys"]):
        raise ValueError("the two runs evaluated different frames")
    joint_gap = np.linalg.norm(np.asarray(a["pred_mm"], np.float64) - np.asarray(b["pred_mm"], np.float64), axis=-1)
    metrics = {p: abs(float(a[f"mpjpe_{p}"]) - float(b[f"mpjpe_{p}"])) for p in PROTOCOLS}
    return {"frames": len(a["keys"]), "max_joint_gap_mm": float(joint_gap.max()),
            "mean_joint_gap_mm": float(joint_gap.mean()), "mpjpe_gap_mm": metrics,
            "rounding": joint_gap.max() <= POSE_TOL_MM and max(metrics.values()) <= METRIC_TOL_MM}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate")
    ev.add_argument("--deploy", required=True)
    ev.add_argument("--weights", required=True)
    ev.add_argument("--lmdb", required=True)
    ev.add_argument("--out", required=True)
    ev.add_argument("--gpu", type=int, default=None)
    ev.add_argument("--bn-batches", type=int, default=0)
    cmp = sub.add_parser("compare")
    cmp.add_argument("a")
    cmp.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "evaluate":
        summary = evaluate_to_file(args.deploy, args.weights, args.lmdb, args.out, args.gpu, args.bn_batches)
        print(" ".join(f"{p} {summary['mpjpe'][p]:.5f}" for p in PROTOCOLS) + f" mm over {summary['frames']} frames")
        return 0
    with np.load(args.a) as a, np.load(args.b) as b:
        gap = compare(dict(a), dict(b))
    limits = f"limits {POSE_TOL_MM} / {METRIC_TOL_MM} mm"
    verdict = "float rounding" if gap["rounding"] else f"MORE than float rounding ({limits})"
    print(f"{gap['frames']} frames: per joint max {gap['max_joint_gap_mm']:.4f} mm, "
          f"mean {gap['mean_joint_gap_mm']:.5f} mm; MPJPE gap "
          + ", ".join(f"{p} {v:.5f}" for p, v in gap["mpjpe_gap_mm"].items()) + f" mm: {verdict}")
    return 0 if gap["rounding"] else 1


if __name__ == "__main__":
    sys.exit(main())
