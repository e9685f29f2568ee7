"""3D pose of the person in your own images or video, cropped as in training (a square around the person's
box, 250x250, centre 225x225): one JSON (17 joints, mm, camera axes; the 2D joints in image pixels from the 2D
branch, which every variant has) and one figure (the crop with the 2D joints, the 3D skeleton from the front and the
side) per image or video frame.

  python tools/predict.py photo.jpg --weights snapshots/walking_both_iter_4564.caffemodel \\
      --train-lmdb data/lmdb/walking_train.lmdb                       # -> photo.pose3d.json, photo.pose3d.png
  python tools/predict.py photos/ --weights ... --train-lmdb ...       # every image -> photos_pose3d/
  python tools/predict.py clip.mp4 --frame-step 5 --weights ... --train-lmdb ...   # -> clip_pose3d/frame_000000...

The person's box: --bbox X Y W H when given (every image or frame), else OpenCV's HOG people detector
(no weights to download; the JSON says which, and the whole image is used when nobody is detected).

With --backend onnx, --weights is a model tools/export.py wrote, run by onnxruntime (Caffe need not be
installed); the model carries the image mean and the torso lengths, so --train-lmdb is optional (when given,
it is checked to be the one the model was exported with):

  python tools/predict.py photo.jpg --backend onnx --weights walking_both.onnx
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from data_prep.cli import REPO, UserError, run_tool
from data_prep.files import write_text_atomic
from data_prep.records import read_meta
from data_prep.skeleton import JOINTS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BOX_GIVEN, BOX_DETECTED, BOX_WHOLE_IMAGE = "--bbox", "HOG people detector", "whole image (no person detected)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="an image, a folder of images, or a video file")
    parser.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                   help="the person's box in pixels (default: found by the HOG people detector)")
    parser.add_argument("--weights", required=True, help="a .caffemodel (--backend caffe) or an exported .onnx (--backend onnx)")
    parser.add_argument("--backend", choices=("caffe", "onnx"), default="caffe")
    parser.add_argument("--deploy", default=str(REPO / "prototxt" / "deploy_both.prototxt"), help="--backend caffe: the "
                        "deploy net of the weights' variant")
    parser.add_argument("--train-lmdb", help="training LMDB whose meta.json has the image mean and torso lengths "
                        "(required with --backend caffe)")
    parser.add_argument("--out", help="an image: output stem (default <image>.pose3d.*); a folder or video: output folder "
                                 "(default <input>_pose3d/)")
    parser.add_argument("--frame-step", type=int, default=1, help="video: every N-th frame")
    parser.add_argument("--max-frames", type=int, default=0, help="video: stop after this many predictions (0: all)")
    parser.add_argument("--no-fold", action="store_true", help="--backend caffe: run the deploy net as trained (default: "
                        "BatchNorm and Scale folded into the layers before them, the same outputs, faster)")
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA, or onnxruntime-gpu with "
                        "--backend onnx); default CPU")
    return parser.parse_args(argv)


def read_inputs(path: Path, frame_step: int, max_frames: int, skipped: list):
    """(name, image) pairs of an image, a folder of images or a video; (kind, iterator). Unreadable images of
    a folder are appended to `skipped` (and named in the summary)."""
    import cv2

    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")

        def images():
            for f in files:
                image = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if image is None:
                    skipped.append(f.name)
                    continue
                yield f.stem, image
        return "folder", images()
    if not path.is_file():
        raise UserError(f"{path}: no such file or folder; pass an image, a folder of images or a video")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.suffix.lower() in IMAGE_SUFFIXES else None
    if image is not None:
        return "image", iter([(path.stem, image)])
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        raise UserError(f"{path}: not a readable image or video")
    if frame_step < 1:
        raise UserError(f"--frame-step must be at least 1, got {frame_step}")

    def frames():
        index, frame, done = 0, first, 0
        while frame is not None:
            if index % frame_step == 0:
                yield f"frame_{index:06d}", frame
                done += 1
                if max_frames and done >= max_frames:
                    break
            ok, frame = cap.read()
            frame = frame if ok else None
            index += 1
        cap.release()
    return "video", frames()


def person_box(image, bbox) -> tuple:
    """(box x0, y0, x1, y1 inclusive, how it was found, detector score or None)."""
    from data_prep.detect import detect_person

    if bbox:
        x, y, w, h = bbox
        height, width = image.shape[:2]
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise UserError(f"--bbox {x:g} {y:g} {w:g} {h:g} lies outside the {width}x{height} image; give X Y W H in "
                            "the image's pixels (X, Y: the box's top left corner)")
        return (x, y, x + w - 1, y + h - 1), BOX_GIVEN, None
    found = detect_person(image)
    if found is None:
        h, w = image.shape[:2]
        return (0, 0, w - 1, h - 1), BOX_WHOLE_IMAGE, None
    return found.box, BOX_DETECTED, found.score


def load_backend(args) -> tuple:
    """(forward, the image mean, the variant) of --backend caffe (the deploy net and --weights, the statistics from
    --train-lmdb) or onnx (the exported model, its statistics from its metadata; caffe is not imported)."""
    from layers.device import use_device
    from layers.predict import caffe_forward, onnx_forward

    if args.backend == "onnx":
        from layers.onnx_backend import OnnxPoseModel, check_same_statistics

        model = OnnxPoseModel(args.weights, args.gpu)
        if args.train_lmdb:
            check_same_statistics(model, read_meta(args.train_lmdb), args.train_lmdb)
        return onnx_forward(model), model.meta["mean_bgr"], model.meta["variant"]
    if not args.train_lmdb:
        raise UserError("--train-lmdb is required with --backend caffe (the image mean and torso lengths of the "
                        "training set); an exported model (--backend onnx) carries them")
    for path, what in ((args.weights, "--weights"), (args.deploy, "--deploy")):
        if not Path(path).is_file():
            raise UserError(f"{what} {path}: no such file")
    from layers.deploy import fold_deploy_net, load_deploy_net

    use_device(args.gpu)
    meta = read_meta(args.train_lmdb)
    net, layout = load_deploy_net(args.deploy, args.weights, batch_size=1)
    if not args.no_fold:
        net, layout = fold_deploy_net(net, layout, args.deploy)
    return caffe_forward(net, meta["mean_torso_lengths_mm"]), meta["mean_bgr"], layout.variant


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.bbox and (args.bbox[2] <= 0 or args.bbox[3] <= 0):
        raise UserError(f"--bbox: width and height must be positive, got {args.bbox[2]} x {args.bbox[3]}")
    source = Path(args.input)
    skipped = []
    kind, items = read_inputs(source, args.frame_step, args.max_frames, skipped)
    forward, mean_bgr, variant = load_backend(args)
    from data_prep.drawing import plot_prediction
    from layers.predict import predict_person

    if kind == "image":
        stem_of = lambda name: Path(args.out) if args.out else source.with_suffix("")  # noqa: E731
    else:
        folder = Path(args.out) if args.out else source.parent / f"{source.stem if kind == 'video' else source.name}_pose3d"
        folder.mkdir(parents=True, exist_ok=True)
        stem_of = lambda name: folder / name  # noqa: E731
    counts = {BOX_GIVEN: 0, BOX_DETECTED: 0, BOX_WHOLE_IMAGE: 0}
    for name, image in items:
        box, how, score = person_box(image, args.bbox)
        counts[how] += 1
        result = predict_person(forward, image, box, mean_bgr)
        stem = stem_of(name)
        doc = {"input": str(source), "item": name, "image_size_wh": [image.shape[1], image.shape[0]],
               "bbox_xyxy": [round(float(v), 1) for v in box], "bbox_from": how, "detector_score": score,
               "joints": list(JOINTS), "pose3d_mm": result.pose3d_mm.round(2).tolist(),
               "joints2d_px": result.joints2d_image.round(1).tolist(), "variant": variant, "backend": args.backend,
               "axes": "pose3d_mm: camera axes (x right, y down, z forward), joint mean at 0, scaled to the training "
                       "set's mean torso; joints2d_px: image pixels, the centre of each joint's most probable cell"}
        write_text_atomic(Path(f"{stem}.pose3d.json"), json.dumps(doc, indent=1))
        plot_prediction(result.crop, result.joints2d_crop, result.pose3d_mm, Path(f"{stem}.pose3d.png"))
        if kind == "image":
            print(f"wrote {stem}.pose3d.json and {stem}.pose3d.png (person box: {how})")
    if kind != "image":
        total = sum(counts.values())
        print(f"wrote {total} JSON files and figures to {folder}: person box "
              + ", ".join(f"{how} {n}" for how, n in counts.items() if n))
        if skipped:
            print(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped)}")
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
