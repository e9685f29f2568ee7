"""3D pose of the person in your own image, cropped as in training (a square around the person's box,
250x250, centre 225x225), written as JSON (17 joints, mm, camera axes) and drawn as a PNG.

  python tools/predict.py photo.jpg --bbox 120 40 300 620 --weights snapshots/walking_both_iter_4564.caffemodel \\
      --train-lmdb data/lmdb/walking_train.lmdb
Without --bbox the whole image is taken as the person's box.
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from data_prep.crop import crop_person
from data_prep.lmdb_build import read_meta
from data_prep.metrics import recover_scale
from data_prep.skeleton import JOINTS
from data_prep.cli import run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image")
    p.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"), help="the person's box in pixels")
    p.add_argument("--weights", required=True)
    p.add_argument("--deploy", default="prototxt/deploy_both.prototxt")
    p.add_argument("--train-lmdb", required=True, help="training LMDB whose meta.json has the image mean and torso lengths")
    p.add_argument("--out", help="output stem (default: beside the image, <image>.pose3d.json/.png)")
    return p.parse_args(argv)


def predict_image(image_bgr: np.ndarray, box, net, meta: dict) -> dict:
    """box: inclusive x0, y0, x1, y1. Returns the crop, the normalised and the mm pose."""
    from layers.config import INPUT_SIZE
    from layers.data_layer import augment_record

    crop, _ = crop_person(image_bgr, box)
    record = {"image": crop.transpose(2, 0, 1), "joints2d": np.zeros((len(JOINTS), 2), np.float32),
              "pose3d": np.zeros((len(JOINTS), 3), np.float32)}
    data, _, _ = augment_record(record, None, INPUT_SIZE, np.asarray(meta["mean_bgr"], np.float32), None, None, 0.0)
    net.blobs["data"].reshape(1, *data.shape)
    net.blobs["data"].data[0] = data
    pose = net.forward()["pose3d"][0].astype(np.float64)
    return {"crop": crop, "pose3d": pose, "pose3d_mm": recover_scale(pose[None], meta["mean_torso_lengths_mm"])[0]}


def main(argv=None) -> int:
    import cv2

    a = parse_args(argv)
    if not Path(a.image).is_file():
        raise SystemExit(f"{a.image}: no such file; pass an image file")
    image = cv2.imread(a.image, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{a.image}: not a readable image")
    h, w = image.shape[:2]
    if a.bbox:
        x, y, bw, bh = a.bbox
        if bw <= 0 or bh <= 0:
            raise SystemExit(f"--bbox: width and height must be positive, got {bw} x {bh}")
        box = (x, y, x + bw - 1, y + bh - 1)
    else:
        box = (0, 0, w - 1, h - 1)
    import caffe

    from layers.deploy import load_deploy_net
    from tools.figures import plot_fig5

    caffe.set_mode_cpu()
    meta = read_meta(a.train_lmdb)
    net = load_deploy_net(a.deploy, a.weights, batch_size=1)
    result = predict_image(image, box, net, meta)
    stem = Path(a.out) if a.out else Path(a.image).with_suffix("")
    doc = {"image": str(a.image), "bbox_xyxy": [float(v) for v in box], "joints": list(JOINTS),
           "pose3d_mm": result["pose3d_mm"].round(2).tolist(), "axes": "camera: x right, y down, z forward; joint mean at 0"}
    js = Path(f"{stem}.pose3d.json")
    tmp = js.with_name(js.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, js)
    crop = result["crop"].transpose(2, 0, 1)[None].astype(np.float32)
    png = plot_fig5(crop, result["pose3d_mm"][None], {}, Path(f"{stem}.pose3d.png"), rows=1, gt_label="3D estimate")
    print(f"wrote {js} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
