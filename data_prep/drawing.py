"""Skeleton drawings (matplotlib, no Caffe): left side red, right side blue, the rest black."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .skeleton import BONES, LEFT_JOINTS, RIGHT_JOINTS


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9, 3.2))
    draw_joints_2d(fig.add_subplot(1, 3, 1), crop_bgr, joints2d,
                   "crop, 2D joints (2D branch)" if joints2d is not None else "crop (no 2D branch in this net)")
    draw_pose_3d(fig.add_subplot(1, 3, 2, projection="3d"), pose3d_mm, "3D, front", azim=-90)
    draw_pose_3d(fig.add_subplot(1, 3, 3, projection="3d"), pose3d_mm, "3D, side", azim=0)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(out_png.stem + ".tmp" + out_png.suffix)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png
