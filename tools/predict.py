"""3D pose of the person in your own images or video, cropped as in training (a square around the person's
box, 250x250, centre 225x225; 17 joints in mm, camera axes; the 2D joints in image pixels from the 2D branch,
which every variant has).

  python tools/predict.py photo.jpg --weights snapshots/walking_both_iter_4564.caffemodel \\
      --train-lmdb data/lmdb/walking_train.lmdb          # -> photo.pose3d.json, photo.pose3d.png
  python tools/predict.py clip.mp4 --weights ... --train-lmdb ...  # -> clip_pose3d/clip.pose3d.{npz,json,mp4}, clip.bvh
  python tools/predict.py frames/ --fps 50 --weights ... --train-lmdb ...   # a folder of frames: the same, one clip

An image gives one JSON and one figure (the crop with the 2D joints, the 3D skeleton from the front and the
side). A video or a folder of frames is one clip: `<name>.pose3d.npz` and its JSON twin (every frame's 3D pose,
2D joints, box and where it came from, frame numbers, fps, the joints and their parents, the variant, the
weights' sha256), `<name>.pose3d.mp4` (each frame with its box and 2D joints beside the 3D skeleton, axes fixed
over the clip) and `<name>.bvh` (the motion on the training set's mean skeleton, for Blender, Maya, Unity);
--per-frame also writes each frame's JSON and figure. --smooth N smooths the clip's poses over N frames
(Savitzky-Golay, order 2; off by default: the paper's net is single-frame).

The person's box: --bbox X Y W H (every image or frame), else --boxes FILE (COCO-style detections from your own
detector, data_prep/clips.py), else OpenCV's HOG people detector (no weights to download). In a clip, a frame
where nobody is found takes the previous frame's box; the clip file says which box each frame used.

With --backend onnx, --weights is a model tools/export.py wrote, run by onnxruntime (Caffe need not be
installed); the model carries the image mean, the torso lengths and the skeleton, so --train-lmdb is optional
(when given, it is checked to be the one the model was exported with):

  python tools/predict.py photo.jpg --backend onnx --weights walking_both.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.cli import REPO, run_tool
from data_prep.errors import UserError
from data_prep.inputs import Inputs, find_boxes
from data_prep.records import read_meta
from layers.models import BACKENDS, load_trained_model
from layers.predict_files import predict_clip, predict_image


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="an image, a folder of images (one clip), or a video file")
    parser.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                        help="the person's box in pixels, every image or frame (default: --boxes, else HOG)")
    parser.add_argument("--boxes", help="COCO-style detections JSON: per frame (image_id: the frame number; or "
                        "file_name) the highest-scoring person's bbox [x, y, w, h]")
    parser.add_argument(
        "--weights", required=True, help="a .caffemodel (--backend caffe) or an exported .onnx (--backend onnx)"
    )
    parser.add_argument("--backend", choices=BACKENDS, default="caffe")
    parser.add_argument(
        "--deploy",
        default=str(REPO / "prototxt" / "deploy_both.prototxt"),
        help="--backend caffe: the deploy net of the weights' variant",
    )
    parser.add_argument("--train-lmdb", help="training LMDB whose meta.json has the image mean and torso lengths "
                        "(required with --backend caffe)")
    parser.add_argument(
        "--out",
        help="an image: output stem (default <image>.pose3d.*); a folder or video: output folder "
        "(default <input>_pose3d/)",
    )
    parser.add_argument("--frame-step", type=int, default=1, help="video: every N-th frame")
    parser.add_argument("--max-frames", type=int, default=0, help="video: stop after this many predictions (0: all)")
    parser.add_argument(
        "--fps", type=float, default=25.0, help="a folder of frames: its frame rate (a video's is read)"
    )
    parser.add_argument("--per-frame", action="store_true", help="a clip: also each frame's JSON and figure")
    parser.add_argument("--smooth", type=int, default=0, metavar="N", help="a clip: smooth the poses over N frames "
                        "(odd, Savitzky-Golay of order 2; 0: off)")
    parser.add_argument(
        "--no-fold",
        action="store_true",
        help="--backend caffe: run the deploy net as trained (default: "
        "BatchNorm and Scale folded into the layers before them, the same outputs, faster)",
    )
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA, or onnxruntime-gpu with "
                        "--backend onnx); default CPU")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.bbox and (args.bbox[2] <= 0 or args.bbox[3] <= 0):
        raise UserError(f"--bbox: width and height must be positive, got {args.bbox[2]} x {args.bbox[3]}")
    if args.smooth and (args.smooth % 2 == 0 or args.smooth < 3):
        raise UserError(f"--smooth {args.smooth}: the window is an odd number of frames, 3 or more (0: off)")
    if args.boxes and not Path(args.boxes).is_file():
        raise UserError(f"--boxes {args.boxes}: no such file")
    inputs = Inputs(Path(args.input), args.frame_step, args.max_frames, args.fps)
    model = load_trained_model(args.backend, args.weights, read_meta(args.train_lmdb) if args.train_lmdb else None,
                               args.train_lmdb, deploy=args.deploy, gpu=args.gpu, fold=not args.no_fold)
    boxes = find_boxes(inputs, args.bbox, args.boxes)
    if inputs.kind == "image":
        predict_image(inputs, model, boxes, args.out)
    else:
        predict_clip(inputs, model, boxes, args.out, args.per_frame, args.smooth)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
