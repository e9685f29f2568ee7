"""The paper's figures from our runs.

Figure 4: train and test 3D losses (sum over the roots' EuclideanLoss outputs) from Caffe's logs, with and
without the 2D classification input. Figure 5: input crop, ground truth, and each model's 3D estimate,
left side red, right side blue.

  python tools/figures.py fig4 --log "2D-cls=logs/walking_2dcls.log" --log "Baseline=logs/walking_baseline.log" --out fig4.png
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from data_prep.cli import run_tool
from data_prep.drawing import draw_pose_3d

_TRAIN_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+) \(.*\), loss = ")
_TEST_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+), Testing net")
_OUTPUT = re.compile(r"(Train|Test) net output #\d+: (\S+) = ([-0-9.e+naif]+)")


def parse_caffe_log(text: str) -> dict:
    """{'train': {name: [(iter, value)]}, 'test': {name: [(iter, value)]}} from a `caffe train` log."""
    out = {"train": {}, "test": {}}
    it = {"train": None, "test": None}
    for line in text.splitlines():
        m = _TRAIN_ITER.search(line)
        if m:
            it["train"] = int(m.group(1))
            continue
        m = _TEST_ITER.search(line)
        if m:
            it["test"] = int(m.group(1))
            continue
        m = _OUTPUT.search(line)
        if m:
            phase = m.group(1).lower()
            if it[phase] is not None:
                out[phase].setdefault(m.group(2), []).append((it[phase], float(m.group(3))))
    return out


def loss_3d_curve(parsed: dict, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Iterations and the sum of the 3D losses (over roots) at each logged point."""
    series = [v for k, v in parsed[phase].items() if k.startswith("loss_3d")]
    if not series:
        return np.zeros(0), np.zeros(0)
    iters = np.array([i for i, _ in series[0]])
    n = min(len(s) for s in series)
    return iters[:n], np.sum([[v for _, v in s[:n]] for s in series], axis=0)


def plot_fig4(logs: dict, out_png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, path in logs.items():
        parsed = parse_caffe_log(Path(path).read_text())
        for ax, phase in zip(axes, ("train", "test")):
            x, y = loss_3d_curve(parsed, phase)
            ax.plot(x, y, marker="o" if phase == "test" else None, label=label)
    for ax, title in zip(axes, ("(a) 3D loss, training data", "(b) 3D loss, test data")):
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_ylabel("3D loss (sum over roots)")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def plot_fig5(images_bgr: np.ndarray, gt: np.ndarray, preds: dict, out_png: Path, rows: int = 4,
              gt_label: str = "ground truth") -> Path:
    """images_bgr (K, 3, H, W) 0-255; gt (K, 17, 3) mm; preds: label -> (K, 17, 3) mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(rows, len(gt))
    cols = 2 + len(preds)
    fig = plt.figure(figsize=(2.6 * cols, 2.6 * rows))
    pick = np.linspace(0, len(gt) - 1, rows).astype(int)
    for r, i in enumerate(pick):
        ax = fig.add_subplot(rows, cols, r * cols + 1)
        ax.imshow(np.clip(images_bgr[i].transpose(1, 2, 0)[..., ::-1], 0, 255).astype(np.uint8))
        ax.axis("off")
        if r == 0:
            ax.set_title("input", fontsize=9)
        draw_pose_3d(fig.add_subplot(rows, cols, r * cols + 2, projection="3d"), gt[i], gt_label if r == 0 else "")
        for c, (label, pred) in enumerate(preds.items()):
            draw_pose_3d(fig.add_subplot(rows, cols, r * cols + 3 + c, projection="3d"), pred[i], label if r == 0 else "")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="figure", required=True)
    f4 = sub.add_parser("fig4", help="3D loss curves from caffe train logs")
    f4.add_argument("--log", action="append", required=True, metavar="LABEL=LOGFILE")
    f4.add_argument("--out", required=True)
    a = p.parse_args(argv)
    logs = dict(item.split("=", 1) for item in a.log)
    print(plot_fig4(logs, Path(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
