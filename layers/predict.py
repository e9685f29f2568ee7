"""The paper's net on one person in one image (tools/predict.py): crop as in training, forward through the
deploy net, eq. (7)'s averaged pose at the training set's scale, and the 2D branch's joints in image pixels."""
from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.batches import preprocess
from data_prep.crop import CROP_SIZE, apply_affine, crop_person, invert_affine
from data_prep.metrics import recover_scale

from .config import INPUT_SIZE
from .targets import argmax_joints_2d


@dataclasses.dataclass
class Prediction:
    crop: np.ndarray  # (250, 250, 3) uint8 BGR, as the training crops
    pose3d: np.ndarray  # (17, 3) normalised (zero mean, unit Frobenius norm)
    pose3d_mm: np.ndarray  # (17, 3) at the training set's mean torso size, camera axes, joint mean at 0
    joints2d_crop: np.ndarray | None  # (17, 2) pixels of `crop`, from the 2D branch
    joints2d_image: np.ndarray | None  # (17, 2) pixels of the input image


def predict_person(net, image_bgr: np.ndarray, box, meta: dict) -> Prediction:
    """box: inclusive x0, y0, x1, y1 around the person; meta: the training LMDB's meta.json (image mean,
    torso lengths)."""
    crop, affine = crop_person(image_bgr, box)
    data, _ = preprocess(crop.transpose(2, 0, 1), INPUT_SIZE, meta["mean_bgr"])  # the centre crop, as at test
    net.blobs["data"].reshape(1, *data.shape)
    net.blobs["data"].data[0] = data
    pose = net.forward()["pose3d"][0].astype(np.float64)
    if not np.isfinite(pose).all():
        raise ValueError("the net's pose holds NaN or infinite values (diverged or damaged weights); no prediction "
                         "is written from it")
    joints_crop = joints_image = None
    if "logits_2d" in net.blobs:  # the 2D-cls variants: centre crop offset back to the 250 crop, then the image
        joints_crop = argmax_joints_2d(net.blobs["logits_2d"].data[:1])[0] + (CROP_SIZE - INPUT_SIZE) // 2
        joints_image = apply_affine(joints_crop, invert_affine(affine))
    return Prediction(crop, pose, recover_scale(pose[None], meta["mean_torso_lengths_mm"])[0], joints_crop,
                      joints_image)
