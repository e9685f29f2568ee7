"""Statistics of a union of LMDBs, as if their training sets had been pooled into one.

The data layer reads several LMDBs as one (pooled training over actions, with no second copy of the data).
Each meta.json holds its own training set's statistics; the pooled ones follow from them exactly, weighting
each LMDB by the number of training frames its statistics came from (`train_count`): means are weighted
means, and the pooled RGB covariance is the weighted second moment (each covariance plus its mean's outer
product, rebuilt from the stored eigen-decomposition) minus the pooled mean's outer product. Every record
contributes the same number of sampled pixels, so frame weights are pixel weights.
"""
from __future__ import annotations

import numpy as np

MEAN_FIELDS = ("mean_bone_lengths_mm", "mean_torso_lengths_mm", "mean_pose_normalised", "mean_pose_root_centred_mm")
SAME_FIELDS = ("joints", "bones", "torso_bones", "crop_size", "float_fields", "format_version")


def training_weight(meta: dict, path: str = "") -> int:
    """How many training frames this LMDB's statistics came from."""
    if "train_count" in meta:
        return int(meta["train_count"])
    if meta.get("split") == "train":
        return int(meta["count"])
    raise ValueError(f"{path}: a test LMDB built before pooled statistics were recorded (no train_count in "
                     "meta.json); rebuild it with tools/make_lmdb.py to use it in a list")


def pooled_statistics(metas: list, paths: list) -> dict:
    """One meta dict for the union of the LMDBs whose meta.json are `metas` (see the module docstring)."""
    first = metas[0]
    for meta, path in zip(metas[1:], paths[1:]):
        for field in SAME_FIELDS:
            if meta.get(field) != first.get(field):
                raise ValueError(f"{path}: {field} differs from {paths[0]}'s; LMDBs read as one must share it")
    weights = np.array([training_weight(m, p) for m, p in zip(metas, paths)], dtype=np.float64)
    w = weights / weights.sum()
    pooled = dict(first)
    for field in MEAN_FIELDS:
        if all(field in m for m in metas):
            pooled[field] = np.tensordot(w, np.array([m[field] for m in metas], dtype=np.float64), 1).tolist()
        else:
            pooled.pop(field, None)
    means_bgr = np.array([m["mean_bgr"] for m in metas], dtype=np.float64)
    mean_bgr = w @ means_bgr
    second_rgb = np.zeros((3, 3))
    for wi, m, mean in zip(w, metas, means_bgr):
        vec, val = np.array(m["pca_eigvec_rgb"]), np.array(m["pca_eigval_rgb"])
        second_rgb += wi * ((vec * val) @ vec.T + np.outer(mean[::-1], mean[::-1]))
    cov = second_rgb - np.outer(mean_bgr[::-1], mean_bgr[::-1])
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    pooled.update(mean_bgr=mean_bgr.tolist(), pca_eigval_rgb=np.maximum(eigval[order], 0).tolist(),
                  pca_eigvec_rgb=eigvec[:, order].tolist(), count=int(sum(m["count"] for m in metas)),
                  train_count=int(weights.sum()), action="+".join(m["action"] for m in metas),
                  sequences=[s for m in metas for s in m["sequences"]],
                  subjects=sorted({s for m in metas for s in m["subjects"]}), lmdbs=[str(p) for p in paths])
    return pooled
