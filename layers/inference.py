"""Test-time pass of sections 4-5: the deploy net over a test LMDB (centre crops), eq. (7) averaging
inside the net, scale recovered from the training set's torso bone lengths, errors in mm under the three
protocols of data_prep.metrics, beside two reference rows (docs/design.md, "Metrics and reference rows"):

  mean pose    the training set's mean root-centred pose in mm (camera coordinates), unscaled, predicted for
               every test frame: what a net that learned nothing but the average pose would score
  scale floor  the ground-truth normalised pose through the same scale recovery as the net: the error that
               recovering the scale from the training set's torso alone costs
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import lmdb
import numpy as np

from data_prep.batches import BatchSource, deprocess
from data_prep.errors import UserError
from data_prep.metrics import PROTOCOLS, mpjpe, per_joint_errors, recover_scale, root_aligned
from data_prep.progress import Progress
from data_prep.records import decode_record, read_meta
from data_prep.skeleton import action_slug
from data_prep.tables import report, write_results

from .bn_stats import BN_BATCHES
from .config import INPUT_SIZE
from .layout import EVALUATION_INPUTS, MPJPE_OUTPUTS, POSE_MM
from .models import load_trained_model


@dataclasses.dataclass
class Predictions:
    keys: list
    pred_normalised: np.ndarray  # (N, 17, 3) the net's output (eq. 7)
    pred_mm: np.ndarray  # (N, 17, 3) after scale recovery
    gt_mm: np.ndarray  # (N, 17, 3) camera-coordinate ground truth
    gt_normalised: np.ndarray  # (N, 17, 3) the ground truth as the net's target: zero mean, unit norm
    images: np.ndarray | None = None  # (K, 3, 225, 225) first K inputs (mean added back), for figures
    joints2d: np.ndarray | None = None
    in_net: dict | None = None  # protocol -> (N,) per-frame errors the evaluation net computed (P1, zero-mean)


def net_outputs(net, layout, mean_torso_lengths):
    """The outputs object of a Caffe net (layers.deploy.load_deploy_net, with its layout): with an evaluation net
    (layout.evaluation) the scale recovery and the P1 / zero-mean errors are computed inside the net (on its device),
    else the scale recovery here."""
    return (EvaluationNetOutputs if layout.evaluation else DeployNetOutputs)(net, mean_torso_lengths)


def predict_lmdb(outputs, lmdb_path: str, progress: bool | str = False, keep_images: int = 0) -> Predictions:
    """Run a net (`outputs`: net_outputs of a Caffe net, or OnnxOutputs of an exported model) over every record of a
    test LMDB, in batches of outputs.batch."""
    batch = outputs.batch
    source = BatchSource(str(lmdb_path), batch, INPUT_SIZE, train=False, seed=0, pca_sigma=0.0)
    n = len(source.keys)
    j = len(source.meta["joints"])
    image = np.empty((batch, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    joints, pose = np.empty((batch, j, 2), np.float32), np.empty((batch, j, 3), np.float32)
    gt_b = np.empty((batch, j, 3), np.float32)
    gts, gts_normalised, kept_images, kept_joints = [], [], [], []
    batches = -(-n // batch)
    shown = Progress(batches, f"evaluate {source.meta['action']}", unit="batches", mode=progress)
    for b in range(batches):
        source.fill(b, image, joints, pose, extra={"pose3d_mm": gt_b})
        take = min(batch, n - b * batch)
        outputs.run(image, gt_b, take)
        gts.append(gt_b[:take].astype(np.float64).copy())
        gts_normalised.append(pose[:take].astype(np.float64).copy())
        if sum(len(k) for k in kept_images) < keep_images:
            kept_images.append(deprocess(image[:take], source.mean_bgr))
            kept_joints.append(joints[:take].copy())
        shown.update()
    shown.close()
    pred, pred_mm, in_net = outputs.results()
    return Predictions([key for _, key in source.keys[:n]], pred, pred_mm, np.concatenate(gts),
                       np.concatenate(gts_normalised),
                       np.concatenate(kept_images)[:keep_images] if kept_images else None,
                       np.concatenate(kept_joints)[:keep_images] if kept_joints else None, in_net)


class DeployNetOutputs:
    """A deploy net's pass: the normalised poses from the net, the scale recovered here (data_prep.metrics)."""

    def __init__(self, net, mean_torso_lengths):
        self.net, self.mean_torso_lengths, self.poses = net, mean_torso_lengths, []
        self.batch = net.blobs["data"].data.shape[0]

    def run(self, image: np.ndarray, gt_mm: np.ndarray, take: int) -> None:
        self.net.blobs["data"].data[...] = image
        self.poses.append(self.net.forward()["pose3d"][:take].astype(np.float64).copy())

    def results(self) -> tuple:
        pred = np.concatenate(self.poses)
        return pred, recover_scale(pred, self.mean_torso_lengths), None


class EvaluationNetOutputs(DeployNetOutputs):
    """An evaluation net's pass: the poses, their scale and the per-frame P1 / zero-mean errors all from the net."""

    def __init__(self, net, mean_torso_lengths):
        super().__init__(net, mean_torso_lengths)
        net.blobs[EVALUATION_INPUTS[1]].data[...] = float(np.sum(mean_torso_lengths))
        self.poses_mm, self.errors = [], {protocol: [] for protocol in MPJPE_OUTPUTS}

    def run(self, image: np.ndarray, gt_mm: np.ndarray, take: int) -> None:
        self.net.blobs[EVALUATION_INPUTS[0]].data[...] = gt_mm.reshape(len(gt_mm), -1)
        super().run(image, gt_mm, take)
        self.poses_mm.append(self.net.blobs[POSE_MM].data[:take].reshape(take, -1, 3).astype(np.float64))
        for protocol, blob in MPJPE_OUTPUTS.items():
            self.errors[protocol].append(self.net.blobs[blob].data[:take].astype(np.float64).copy())

    def results(self) -> tuple:
        return (np.concatenate(self.poses), np.concatenate(self.poses_mm),
                {protocol: np.concatenate(e) for protocol, e in self.errors.items()})


class OnnxOutputs:
    """An exported model's pass (layers.onnx_backend.OnnxPoseModel): the poses and, baked into the model, their
    scale; the errors in NumPy."""

    def __init__(self, model, batch: int):
        self.model, self.batch, self.poses, self.poses_mm = model, batch, [], []

    def run(self, image: np.ndarray, gt_mm: np.ndarray, take: int) -> None:
        out = self.model.run(image[:take])
        self.poses.append(out["pose3d"].astype(np.float64))
        self.poses_mm.append(out["pose3d_mm"].astype(np.float64))

    def results(self) -> tuple:
        return np.concatenate(self.poses), np.concatenate(self.poses_mm), None


def train_mean_pose_mm(meta: dict, lmdb_path) -> np.ndarray:
    """The training set's mean root-centred pose (17, 3) in mm: from meta.json, or, for an LMDB built before
    make_lmdb stored it, computed from the records of the training LMDB beside it (<action>_train.lmdb)."""
    if "mean_pose_root_centred_mm" in meta:
        return np.asarray(meta["mean_pose_root_centred_mm"], dtype=np.float64)
    train = str(train_lmdb_beside(lmdb_path))
    try:
        env = lmdb.open(train, readonly=True, lock=False, readahead=False)
    except lmdb.Error as e:
        raise ValueError(f"{lmdb_path}: meta.json has no mean_pose_root_centred_mm and the training LMDB {train} "
                         f"cannot be read ({e}); rebuild the LMDBs with tools/make_lmdb.py") from e
    total, count = np.zeros((len(meta["joints"]), 3)), 0
    with env.begin() as txn:
        for _, value in txn.cursor():
            total += root_aligned(decode_record(value)["pose3d_mm"][None])[0]
            count += 1
    env.close()
    return total / max(count, 1)


def protocol_errors(pred_mm: np.ndarray, gt_mm: np.ndarray) -> dict:
    """{"p1": mm, "zero_mean": mm, "pa": mm}: the mean error under each protocol."""
    return {protocol: mpjpe(pred_mm, gt_mm, protocol) for protocol in PROTOCOLS}


def error_summary(p: Predictions, train_mean_pose_mm, mean_torso_lengths) -> dict:
    """The net's errors under each protocol (P1, the headline, first), per-joint P1 errors, and the two
    reference rows computed on the same frames: the training mean pose (mm, unscaled) and the scale floor."""
    mean_pose = np.broadcast_to(np.asarray(train_mean_pose_mm, dtype=np.float64), p.gt_mm.shape)
    floor = recover_scale(p.gt_normalised, mean_torso_lengths)
    in_net = p.in_net or {}  # the evaluation net's own P1 / zero-mean errors; the rest (PA: an SVD) here
    errors = {protocol: float(in_net[protocol].mean()) if protocol in in_net else mpjpe(p.pred_mm, p.gt_mm, protocol)
              for protocol in PROTOCOLS}
    return {"frames": len(p.gt_mm), "errors_in_net": bool(p.in_net), "mpjpe": errors,
            "per_joint_p1": per_joint_errors(p.pred_mm, p.gt_mm, "p1").mean(0).tolist(),
            "mean_pose": protocol_errors(mean_pose, p.gt_mm), "scale_floor": protocol_errors(floor, p.gt_mm)}


def train_lmdb_beside(lmdb_path) -> Path:
    """<root>/<action>_train.lmdb for <root>/<action>_test.lmdb (and for itself)."""
    lmdb_path = Path(lmdb_path)
    if lmdb_path.name.endswith("_train.lmdb"):
        return lmdb_path
    if not lmdb_path.name.endswith("_test.lmdb"):
        raise ValueError(f"{lmdb_path}: expected a folder named <action>_test.lmdb or <action>_train.lmdb")
    return lmdb_path.with_name(lmdb_path.name[: -len("_test.lmdb")] + "_train.lmdb")



def evaluate_action(deploy, weights, test_lmdb, batch_size: int = 32, bn_batches: int = 0, progress: bool | str = False,
                    keep_images: int = 0, backend: str = "caffe", gpu: int | None = None,
                    fold: bool = True) -> tuple[Predictions, dict]:
    """The whole test pass for one trained net: load the deploy net, optionally re-estimate its BatchNorm
    statistics over `bn_batches` batches of the training LMDB beside the test LMDB (layers.bn_stats), predict
    every frame of `test_lmdb` (a training LMDB too, for the train/test gap), and summarise (error_summary). The
    summary also says how BatchNorm was set and the evaluation speed. On GPU `gpu` (None: the CPU); the model
    loaded by layers.models.load_trained_model.
    fold: run the net with BatchNorm + Scale folded into the layers before them (layers.deploy.fold_deploy_net, after
    the re-estimation), which gives the same outputs (to float rounding) faster.
    backend "onnx": `weights` is a model tools/export.py wrote (its BatchNorm statistics as exported; `deploy` and
    `bn_batches` unused), run by onnxruntime (on GPU `gpu` through its CUDA provider)."""
    meta = read_meta(test_lmdb)  # a training LMDB's meta holds the same training statistics
    model = load_trained_model(backend, weights, meta, test_lmdb, deploy=deploy, batch_size=batch_size, gpu=gpu,
                               fold=fold, bn_lmdb=train_lmdb_beside(test_lmdb) if bn_batches > 0 else None,
                               bn_batches=bn_batches)
    outputs = (OnnxOutputs(model.onnx, batch_size) if backend == "onnx"
               else net_outputs(model.net, model.layout, meta["mean_torso_lengths_mm"]))
    t0 = time.time()
    pred = predict_lmdb(outputs, str(test_lmdb), progress=progress, keep_images=keep_images)
    seconds = time.time() - t0
    bad = [name for name, a in (("poses", pred.pred_normalised), ("poses in mm", pred.pred_mm),
                                *(((f"{k} errors", v) for k, v in (pred.in_net or {}).items())))
           if not np.isfinite(a).all()]
    if bad:
        raise UserError(f"{weights}: the net's {' and '.join(bad)} on {test_lmdb} hold NaN or infinite values; no "
                        "error is reported from them (a diverged or damaged snapshot: evaluate an earlier one)")
    summary = {**error_summary(pred, train_mean_pose_mm(meta, test_lmdb), meta["mean_torso_lengths_mm"]),
               "weights": str(weights), "images_per_second": len(pred.gt_mm) / seconds, "batch_norm": model.batch_norm,
               "backend": backend}
    return pred, summary


def evaluate_actions(deploy, lmdb_root, weights: dict, gpu: int | None = None, batch_size: int = 32,
                     progress: bool | str = True, bn_batches: int = BN_BATCHES, backend: str = "caffe",
                     fold: bool = True) -> dict:
    """evaluate_action for each action -> weights, on <lmdb_root>/<action>_test.lmdb; action -> summary."""
    return {action: evaluate_action(deploy, w, Path(lmdb_root) / f"{action_slug(action)}_test.lmdb", batch_size,
                                    bn_batches=bn_batches, progress=progress, backend=backend, gpu=gpu, fold=fold)[1]
            for action, w in weights.items()}


def evaluate_and_report(deploy, lmdb_root, weights: dict, out_dir: Path, gpu: int | None = None, batch_size: int = 32,
                        progress: bool | str = True, bn_batches: int = BN_BATCHES,
                        backend: str = "caffe", fold: bool = True) -> dict:
    """evaluate_actions, then results.json / results.csv into out_dir and the Table 1 report (the result: printed
    with --quiet too, which silences progress only)."""
    results = evaluate_actions(deploy, lmdb_root, weights, gpu, batch_size, progress=progress, bn_batches=bn_batches,
                               backend=backend, fold=fold)
    written = write_results(results, Path(out_dir))
    print(report(results))
    print(f"wrote {written[0]} and {written[1]}")
    return results
