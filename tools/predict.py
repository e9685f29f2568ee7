"""3D pose of the person in your own images or video, cropped as in training (a square around the person's
box, 250x250, centre 225x225; 17 joints in mm, camera axes; the 2D joints in image pixels from the 2D branch,
which every variant has).

  python tools/predict.py photo.jpg --weights snapshots/walking_both_iter_4564.caffemodel \\
      --train-lmdb data/lmdb/walking_train.lmdb          # -> photo.pose3d.json, photo.pose3d.png
  python tools/predict.py clip.mp4 --weights ... --train-lmdb ...   # -> clip_pose3d/clip.pose3d.{npz,json,mp4}, clip.bvh
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
import json
import sys
from pathlib import Path

import numpy as np

from data_prep.cli import REPO, run_tool
from data_prep.errors import UserError
from data_prep.files import native_stderr_silenced, sha256_of, write_text_atomic
from data_prep.records import read_meta
from data_prep.skeleton import JOINTS, PARENTS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BOX_GIVEN, BOX_FILE, BOX_DETECTED = "--bbox", "--boxes", "HOG people detector"
BOX_WHOLE_IMAGE = "whole image (no person detected)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="an image, a folder of images (one clip), or a video file")
    parser.add_argument("--bbox", nargs=4, type=float, metavar=("X", "Y", "W", "H"),
                        help="the person's box in pixels, every image or frame (default: --boxes, else HOG)")
    parser.add_argument("--boxes", help="COCO-style detections JSON: per frame (image_id: the frame number; or "
                        "file_name) the highest-scoring person's bbox [x, y, w, h]")
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
    parser.add_argument("--fps", type=float, default=25.0, help="a folder of frames: its frame rate (a video's is read)")
    parser.add_argument("--per-frame", action="store_true", help="a clip: also each frame's JSON and figure")
    parser.add_argument("--smooth", type=int, default=0, metavar="N", help="a clip: smooth the poses over N frames "
                        "(odd, Savitzky-Golay of order 2; 0: off)")
    parser.add_argument("--no-fold", action="store_true", help="--backend caffe: run the deploy net as trained (default: "
                        "BatchNorm and Scale folded into the layers before them, the same outputs, faster)")
    parser.add_argument("--gpu", type=int, default=None, help="GPU id (Caffe built with CUDA, or onnxruntime-gpu with "
                        "--backend onnx); default CPU")
    return parser.parse_args(argv)


class Inputs:
    """An image, a folder of images or a video: kind, and frames() -> (name, frame number, image) afresh each call
    (a clip is read once for the boxes, once for the poses and once for its video). Unreadable images of a folder
    are left out and named in `skipped`."""

    def __init__(self, path: Path, frame_step: int, max_frames: int, fps: float):
        import cv2

        self.path, self.frame_step, self.max_frames, self.skipped = path, frame_step, max_frames, []
        if frame_step < 1:
            raise UserError(f"--frame-step must be at least 1, got {frame_step}")
        if path.is_dir():
            self.files = sorted(f for f in path.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise UserError(f"{path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            self.kind, self.fps, self.count = "folder", fps, len(self.files)
            return
        if not path.is_file():
            raise UserError(f"{path}: no such file or folder; pass an image, a folder of images or a video")
        with native_stderr_silenced():  # FFmpeg's and libjpeg's own lines for a damaged file: ours says it
            if path.suffix.lower() in IMAGE_SUFFIXES and cv2.imread(str(path), cv2.IMREAD_COLOR) is not None:
                self.kind, self.fps, self.count = "image", fps, 1
                return
            cap = cv2.VideoCapture(str(path))
            ok, _ = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            raise UserError(f"{path}: not a readable image or video")
        self.kind, self.fps = "video", float(cap.get(cv2.CAP_PROP_FPS) or fps)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        cap.release()
        self.count = -(-total // frame_step) if total else 0
        if max_frames:
            self.count = min(self.count, max_frames) if self.count else max_frames

    def frames(self):
        import cv2

        if self.kind == "image":
            yield self.path.stem, 0, cv2.imread(str(self.path), cv2.IMREAD_COLOR)
            return
        if self.kind == "folder":
            for index, f in enumerate(self.files):
                with native_stderr_silenced():  # a damaged image is named among the skipped ones instead
                    image = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if image is None:
                    if f.name not in self.skipped:
                        self.skipped.append(f.name)
                    continue
                yield f.name, index, image
            return
        cap = cv2.VideoCapture(str(self.path))
        index = done = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % self.frame_step == 0:
                yield f"frame_{index:06d}", index, frame
                done += 1
                if self.max_frames and done >= self.max_frames:
                    break
            index += 1
        cap.release()


def given_box(image, bbox) -> tuple:
    x, y, w, h = bbox
    height, width = image.shape[:2]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise UserError(f"--bbox {x:g} {y:g} {w:g} {h:g} lies outside the {width}x{height} image; give X Y W H in "
                        "the image's pixels (X, Y: the box's top left corner)")
    return (x, y, x + w - 1, y + h - 1)


def find_boxes(inputs: Inputs, args) -> tuple[list, list, list]:
    """Per frame (box, where it came from, the frame number): --bbox, else the --boxes file, else the HOG detector; then, in a
    clip, a frame without one takes the previous frame's (data_prep.clips.fill_missing_boxes), and a clip or image
    where nobody is found at all uses the whole image."""
    from data_prep.clips import fill_missing_boxes, load_boxes
    from data_prep.detect import detect_person

    listed = load_boxes(Path(args.boxes)) if args.boxes and not args.bbox else None
    boxes, sources, shapes, indices = [], [], [], []
    for name, index, image in inputs.frames():
        shapes.append(image.shape)
        indices.append(index)
        if args.bbox:
            boxes.append(given_box(image, args.bbox))
            sources.append(BOX_GIVEN)
        elif listed is not None:
            found = listed.get(index) or listed.get(inputs.path.name if inputs.kind == "image" else name)
            boxes.append(found[0] if found else None)
            sources.append(BOX_FILE)
        else:
            found = detect_person(image)
            boxes.append(found.box if found else None)
            sources.append(BOX_DETECTED)
    if listed is not None and not any(b is not None for b in boxes):
        raise UserError(f"--boxes {args.boxes}: no person detection matches this input's frames (image_id: the frame "
                        "number from 0; file_name: the image's file name)")
    boxes, sources = fill_missing_boxes(boxes, sources)
    for i, shape in enumerate(shapes):
        if boxes[i] is None:
            boxes[i], sources[i] = (0, 0, shape[1] - 1, shape[0] - 1), BOX_WHOLE_IMAGE
    return boxes, sources, indices


def load_backend(args) -> tuple:
    """(forward, the training statistics {mean_bgr, bones, mean_bone_lengths_mm}, the
    variant, the weights' sha256) of --backend caffe (the deploy net and --weights, the statistics from
    --train-lmdb) or onnx (the exported model, its statistics from its metadata; caffe is not imported)."""
    from layers.device import use_device
    from layers.predict import caffe_forward, onnx_forward

    if args.backend == "onnx":
        from layers.onnx_backend import OnnxPoseModel, check_same_statistics

        model = OnnxPoseModel(args.weights, args.gpu)
        stats = dict(model.meta)
        if args.train_lmdb:
            meta = read_meta(args.train_lmdb)
            check_same_statistics(model, meta, args.train_lmdb)
            stats = {**stats, **meta}
        return onnx_forward(model), stats, model.meta["variant"], model.meta.get("weights_sha256", "")
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
    return caffe_forward(net, meta["mean_torso_lengths_mm"]), meta, layout.variant, sha256_of(args.weights)


def frame_document(source, name, image, box, how, result, variant, backend) -> dict:
    return {"input": str(source), "item": name, "image_size_wh": [image.shape[1], image.shape[0]],
            "bbox_xyxy": [round(float(v), 1) for v in box], "bbox_from": how, "joints": list(JOINTS),
            "pose3d_mm": result.pose3d_mm.round(2).tolist(), "joints2d_px": result.joints2d_image.round(1).tolist(),
            "variant": variant, "backend": backend,
            "axes": "pose3d_mm: camera axes (x right, y down, z forward), joint mean at 0, scaled to the training "
                    "set's mean torso; joints2d_px: image pixels, the centre of each joint's most probable cell"}


def predict_image(inputs, args, forward, stats, variant) -> None:
    from data_prep.drawing import plot_prediction
    from layers.predict import predict_person

    boxes, sources, _ = find_boxes(inputs, args)
    name, _, image = next(inputs.frames())
    result = predict_person(forward, image, boxes[0], stats["mean_bgr"])
    stem = Path(args.out) if args.out else inputs.path.with_suffix("")
    write_text_atomic(Path(f"{stem}.pose3d.json"), json.dumps(frame_document(inputs.path, name, image, boxes[0], sources[0],
                                                                            result, variant, args.backend), indent=1))
    plot_prediction(result.crop, result.joints2d_crop, result.pose3d_mm, Path(f"{stem}.pose3d.png"))
    print(f"wrote {stem}.pose3d.json and {stem}.pose3d.png (person box: {sources[0]})")


def predict_clip(inputs, args, forward, stats, variant, sha) -> None:
    """The clip's poses (a first pass finds the boxes, a second predicts), its files, its BVH and its video."""
    from data_prep.bvh import bvh_text
    from data_prep.clip_video import ClipVideo, SkeletonView, frame_panel
    from data_prep.clips import Clip, savitzky_golay, write_clip
    from data_prep.drawing import plot_prediction
    from data_prep.progress import Progress, progress_mode
    from layers.predict import predict_frames

    name = inputs.path.stem if inputs.kind == "video" else inputs.path.name
    folder = Path(args.out) if args.out else inputs.path.parent / f"{name}_pose3d"
    folder.mkdir(parents=True, exist_ok=True)
    boxes, sources, indices = find_boxes(inputs, args)
    done = []

    def per_frame(frame_name, image, box, result):  # --per-frame: each frame's JSON and figure, as for an image
        how = sources[len(done)]
        done.append(frame_name)
        if args.per_frame:
            doc = frame_document(inputs.path, frame_name, image, box, how, result, variant, args.backend)
            write_text_atomic(folder / f"{Path(frame_name).stem}.pose3d.json", json.dumps(doc, indent=1))
            plot_prediction(result.crop, result.joints2d_crop, result.pose3d_mm, folder / f"{Path(frame_name).stem}.pose3d.png")

    shown = Progress(len(boxes), f"predict {name}", unit="frames", mode=progress_mode())
    poses, joints, sizes = predict_frames(forward, inputs.frames(), boxes, stats["mean_bgr"], shown, per_frame)
    shown.close()
    poses = poses - poses[:, :1]  # root-relative (Hip at 0), as 3D-pose results are usually given
    smoothing = "none"
    if args.smooth:
        poses = savitzky_golay(poses, args.smooth)
        smoothing = f"Savitzky-Golay, {args.smooth} frames, order 2"
    clip = Clip(str(inputs.path), np.asarray(indices), inputs.fps, args.frame_step if inputs.kind == "video" else 1, sizes[0],
                np.asarray(boxes, np.float64), sources, poses, joints, tuple(JOINTS), tuple(PARENTS), variant, sha,
                smoothing)
    npz, _ = write_clip(clip, folder / name)
    written = [npz.name, f"{name}.pose3d.json"]
    rate = inputs.fps / clip.frame_step
    if all(k in stats and len(stats[k]) for k in ("bones", "mean_bone_lengths_mm")):
        write_text_atomic(folder / f"{name}.bvh", bvh_text(poses, JOINTS, PARENTS, stats["bones"],
                                                            stats["mean_bone_lengths_mm"], 1.0 / rate))
        written.append(f"{name}.bvh")
    else:
        print("no BVH: the training skeleton is unknown (pass --train-lmdb)", file=sys.stderr)
    view = SkeletonView(poses)
    first = next(inputs.frames())[2]
    video = ClipVideo(folder / f"{name}.pose3d.mp4", rate, view, frame_panel(first, boxes[0], joints[0]).shape[1])
    shown = Progress(len(boxes), f"render {name}", unit="frames", mode=progress_mode())
    try:
        for (_, _, image), box, j, pose in zip(inputs.frames(), boxes, joints, poses):
            video.add(image, box, j, pose)
            shown.update()
        video.close()
    except BaseException:
        video.abort()
        raise
    shown.close()
    written.append(f"{name}.pose3d.mp4")
    counts = {how: sources.count(how) for how in dict.fromkeys(sources)}
    print(f"wrote {', '.join(written)} to {folder} ({len(boxes)} frames; person box: "
          + ", ".join(f"{how} {n}" for how, n in counts.items()) + ")")
    if inputs.skipped:
        print(f"skipped {len(inputs.skipped)} unreadable image(s): {', '.join(inputs.skipped)}")


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.bbox and (args.bbox[2] <= 0 or args.bbox[3] <= 0):
        raise UserError(f"--bbox: width and height must be positive, got {args.bbox[2]} x {args.bbox[3]}")
    if args.smooth and (args.smooth % 2 == 0 or args.smooth < 3):
        raise UserError(f"--smooth {args.smooth}: the window is an odd number of frames, 3 or more (0: off)")
    if args.boxes and not Path(args.boxes).is_file():
        raise UserError(f"--boxes {args.boxes}: no such file")
    inputs = Inputs(Path(args.input), args.frame_step, args.max_frames, args.fps)
    forward, stats, variant, sha = load_backend(args)
    if inputs.kind == "image":
        predict_image(inputs, args, forward, stats, variant)
    else:
        predict_clip(inputs, args, forward, stats, variant, sha)
    return 0


if __name__ == "__main__":
    sys.exit(run_tool(main))
