"""The paper's net on one person in one image (tools/predict.py): crop as in training, forward through the
deploy net (Caffe) or its exported model (onnxruntime), eq. (7)'s averaged pose at the training set's scale, and the
2D branch's joints in image pixels."""

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
    joints2d_crop: np.ndarray  # (17, 2) pixels of `crop`, from the 2D branch
    joints2d_image: np.ndarray  # (17, 2) pixels of the input image


def caffe_forward(net, mean_torso_lengths):
    """forward(data (N, 3, 225, 225)) -> {pose3d, pose3d_mm, scores_2d} of a Caffe deploy net
    (layers.deploy.load_deploy_net): the scale recovered here (data_prep.metrics.recover_scale)."""
    def forward(data: np.ndarray) -> dict:
        net.blobs["data"].reshape(*data.shape)
        net.blobs["data"].data[...] = data
        pose = net.forward()["pose3d"].astype(np.float64)
        return {"pose3d": pose, "pose3d_mm": recover_scale(pose, mean_torso_lengths),
                "scores_2d": net.blobs["logits_2d"].data.copy()}
    return forward


def onnx_forward(model):
    """forward(data) -> {pose3d, pose3d_mm, scores_2d} of an exported model (layers.onnx_backend.OnnxPoseModel):
    its scale recovery is inside the model; its 2D scores are the softmax (the same argmax as the logits)."""
    def forward(data: np.ndarray) -> dict:
        out = model.run(data)
        return {"pose3d": out["pose3d"].astype(np.float64), "pose3d_mm": out["pose3d_mm"].astype(np.float64),
                "scores_2d": out["softmax_2d"]}
    return forward


def predict_person(forward, image_bgr: np.ndarray, box, mean_bgr) -> Prediction:
    """forward: caffe_forward or onnx_forward; box: inclusive x0, y0, x1, y1 around the person; mean_bgr: the
    training set's image mean (its LMDB's meta.json, or the exported model's metadata)."""
    crop, affine = crop_person(image_bgr, box)
    data, _ = preprocess(crop.transpose(2, 0, 1), INPUT_SIZE, mean_bgr)  # the centre crop, as at test
    out = forward(data[None])
    pose, pose_mm = out["pose3d"][0], out["pose3d_mm"][0]
    if not (np.isfinite(pose).all() and np.isfinite(pose_mm).all()):
        raise ValueError("the net's pose holds NaN or infinite values (diverged or damaged weights); no prediction "
                         "is written from it")
    # the 2D branch (every variant has it): the centre crop's offset back to the 250 crop, then the image
    joints_crop = argmax_joints_2d(out["scores_2d"][:1])[0] + (CROP_SIZE - INPUT_SIZE) // 2
    joints_image = apply_affine(joints_crop, invert_affine(affine))
    return Prediction(crop, pose, pose_mm, joints_crop, joints_image)


def predict_frames(forward, frames, boxes: list, mean_bgr, progress=None, each=None) -> tuple:
    """Every frame of a clip (an iterable of (name, index, image)) with its box (boxes[i], inclusive x0 y0 x1 y1):
    (pose3d_mm (F, 17, 3), joints2d_px (F, 17, 2), image sizes). each(name, image, box, Prediction), when given,
    is called per frame (the per-frame files); progress.update() after each."""
    poses, joints, sizes = [], [], []
    for (name, _, image), box in zip(frames, boxes):
        result = predict_person(forward, image, box, mean_bgr)
        poses.append(result.pose3d_mm)
        joints.append(result.joints2d_image)
        sizes.append((image.shape[1], image.shape[0]))
        if each is not None:
            each(name, image, box, result)
        if progress is not None:
            progress.update()
    return np.asarray(poses), np.asarray(joints), sizes
