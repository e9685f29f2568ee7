"""Test-time pass of sections 4-5: the deploy net over a test LMDB (centre crops), eq. (7) averaging
inside the net, scale recovered from the training set's torso bone lengths, errors in mm."""
from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.metrics import mpjpe, pa_mpjpe, per_joint_errors, recover_scale

from .config import INPUT_SIZE
from .data_layer import BatchSource


@dataclasses.dataclass
class Predictions:
    keys: list
    pred_normalised: np.ndarray  # (N, 17, 3) the net's output (eq. 7)
    pred_mm: np.ndarray  # (N, 17, 3) after scale recovery
    gt_mm: np.ndarray  # (N, 17, 3) camera-coordinate ground truth
    images: np.ndarray | None = None  # (K, 3, 225, 225) first K inputs (mean added back), for figures
    joints2d: np.ndarray | None = None


def caffe_has_cuda() -> bool:
    """Whether the loaded Caffe was built with CUDA (its library pulled in libcudart)."""
    import caffe  # noqa: F401  (loads libcaffe)

    with open("/proc/self/maps") as f:
        return "libcudart" in f.read()


def predict_lmdb(net, lmdb_path: str, mean_torso_lengths, progress: bool = False, keep_images: int = 0) -> Predictions:
    """Run `net` (a deploy net from layers.deploy.load_deploy_net) over every record of a test LMDB."""
    from tqdm import tqdm

    batch = net.blobs["data"].data.shape[0]
    source = BatchSource(str(lmdb_path), batch, INPUT_SIZE, train=False, seed=0, pca_sigma=0.0)
    n = len(source.keys)
    j = len(source.meta["joints"])
    image = np.empty((batch, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    joints, pose = np.empty((batch, j, 2), np.float32), np.empty((batch, j, 3), np.float32)
    gt_b = np.empty((batch, j, 3), np.float32)
    preds, gts, kept_images, kept_joints = [], [], [], []
    for b in tqdm(range(-(-n // batch)), desc=f"evaluate {source.meta['action']}", unit="batch", disable=not progress):
        source.fill(b, image, joints, pose, extra={"pose3d_mm": gt_b})
        net.blobs["data"].data[...] = image
        out = net.forward()["pose3d"]
        take = min(batch, n - b * batch)
        preds.append(out[:take].astype(np.float64).copy())
        gts.append(gt_b[:take].astype(np.float64).copy())
        if sum(len(k) for k in kept_images) < keep_images:
            kept_images.append(image[:take] + source.mean_bgr[None, :, None, None])
            kept_joints.append(joints[:take].copy())
    pred = np.concatenate(preds)
    return Predictions(source.keys[:n], pred, recover_scale(pred, mean_torso_lengths), np.concatenate(gts),
                       np.concatenate(kept_images)[:keep_images] if kept_images else None,
                       np.concatenate(kept_joints)[:keep_images] if kept_joints else None)


def error_summary(p: Predictions, mean_pose_normalised, mean_torso_lengths) -> dict:
    """MPJPE, PA-MPJPE, per-joint errors (mm), and the trivial baseline: the training mean pose,
    scaled the same way, for every test image."""
    trivial = recover_scale(np.repeat(np.asarray(mean_pose_normalised)[None], len(p.gt_mm), 0), mean_torso_lengths)
    return {"frames": len(p.gt_mm), "mpjpe": mpjpe(p.pred_mm, p.gt_mm), "pa_mpjpe": pa_mpjpe(p.pred_mm, p.gt_mm),
            "per_joint": per_joint_errors(p.pred_mm, p.gt_mm).mean(0).tolist(),
            "mean_pose_mpjpe": mpjpe(trivial, p.gt_mm), "mean_pose_pa_mpjpe": pa_mpjpe(trivial, p.gt_mm)}
