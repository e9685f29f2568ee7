"""The figures (matplotlib, no Caffe): the paper's Fig. 4 (3D losses) and Fig. 5 (crops and skeletons) from our
runs, and the prediction figure of tools/predict.py. Skeletons: left side red, right side blue, the rest black."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_output
from .skeleton import BONES, LEFT_JOINTS, RIGHT_JOINTS


def _pyplot():
    import matplotlib  # lazy: only where a figure is drawn

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt  # lazy: only where a figure is drawn

    return plt


def _save(fig, out_png: Path, dpi: int) -> Path:
    """Lay out, write under a temporary name, rename into place, close."""
    import matplotlib.pyplot as plt  # lazy: only where a figure is drawn

    out_png = Path(out_png)
    fig.tight_layout()
    try:
        with atomic_output(out_png, out_png.suffix) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return out_png


def bone_colour(child: int) -> str:
    return "tab:red" if child in LEFT_JOINTS else ("tab:blue" if child in RIGHT_JOINTS else "black")


def draw_pose_3d(ax, pose, title: str, azim: float = -80, elev: float = 10) -> None:
    """A (17, 3) camera-coordinate pose (x right, y down, z forward) on a 3D axis, upright, centred."""
    p = np.asarray(pose) - np.asarray(pose).mean(0)
    for a, b in BONES:
        ax.plot([p[a, 0], p[b, 0]], [p[a, 2], p[b, 2]], [-p[a, 1], -p[b, 1]], color=bone_colour(b), lw=2)
    r = np.abs(p).max() * 1.1
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_zlim(-r, r)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    ax.view_init(elev=elev, azim=azim)
    ax.set_title(title, fontsize=9)


def draw_joints_2d(ax, image_bgr: np.ndarray, joints2d: np.ndarray | None, title: str) -> None:
    """(H, W, 3) uint8 image with the (17, 2) pixel joints and their bones on top (none: the image only)."""
    ax.imshow(image_bgr[..., ::-1])
    if joints2d is not None:
        for a, b in BONES:
            ax.plot(joints2d[[a, b], 0], joints2d[[a, b], 1], color=bone_colour(b), lw=2)
        ax.scatter(joints2d[:, 0], joints2d[:, 1], s=8, c="yellow", zorder=3)
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def plot_prediction(crop_bgr: np.ndarray, joints2d: np.ndarray | None, pose3d_mm: np.ndarray, out_png: Path) -> Path:
    """The crop with the 2D joints, and the 3D skeleton seen from the front and from the side."""
    plt = _pyplot()
    fig = plt.figure(figsize=(9, 3.2))
    draw_joints_2d(fig.add_subplot(1, 3, 1), crop_bgr, joints2d,
                   "crop, 2D joints (2D branch)" if joints2d is not None else "crop (no 2D branch in this net)")
    draw_pose_3d(fig.add_subplot(1, 3, 2, projection="3d"), pose3d_mm, "3D, front", azim=-90)
    draw_pose_3d(fig.add_subplot(1, 3, 3, projection="3d"), pose3d_mm, "3D, side", azim=0)
    return _save(fig, out_png, dpi=100)


def plot_fig4(curves: dict, out_png: Path) -> Path:
    """Figure 4: label -> {"train": (iterations, 3D loss), "test": (...)} (layers.caffe_log.fig4_curves)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, curve in curves.items():
        for ax, phase in zip(axes, ("train", "test")):
            x, y = curve[phase]
            ax.plot(x, y, marker="o" if phase == "test" else None, label=label)
    for ax, title in zip(axes, ("(a) 3D loss, training data", "(b) 3D loss, test data")):
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.set_ylabel("3D loss (sum over roots)")
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, out_png, dpi=110)


def plot_fig5(images_bgr: np.ndarray, gt: np.ndarray, preds: dict, out_png: Path, rows: int = 4,
              gt_label: str = "ground truth") -> Path:
    """images_bgr (K, 3, H, W) 0-255; gt (K, 17, 3) mm; preds: label -> (K, 17, 3) mm."""
    plt = _pyplot()
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
            draw_pose_3d(
                fig.add_subplot(rows, cols, r * cols + 3 + c, projection="3d"), pred[i], label if r == 0 else ""
            )
    return _save(fig, out_png, dpi=100)


def plot_learning_curve(points: list, out_png: Path) -> Path:
    """P1 against the number of training images (tools/learning_curve.py's points), with the references."""
    plt = _pyplot()
    n = [p["train_images"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [p["test"]["mpjpe"]["p1"] for p in points], "o-", label="test (BN re-estimated)")
    ax.plot(n, [p["test_moving_average_bn"]["mpjpe"]["p1"] for p in points], "o:", label="test (BN moving averages)")
    ax.plot(n, [p["train"]["mpjpe"]["p1"] for p in points], "s-", label="training images")
    ax.plot(n, [p["test"]["mean_pose"]["p1"] for p in points], "k--", label="mean pose (test)")
    ax.plot(n, [p["test"]["scale_floor"]["p1"] for p in points], "k:", label="scale floor (test)")
    ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel("MPJPE, P1 (mm)")
    ax.set_title("Full model, synthetic Walking, same schedule")
    ax.legend(fontsize=8)
    return _save(fig, out_png, dpi=110)
