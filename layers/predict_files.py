"""What tools/predict.py writes: an image's JSON and figure (predict_image), a clip's poses, files, BVH and video
(predict_clip), from a model layers.models.load_trained_model loaded and the boxes data_prep.inputs found."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from data_prep.bvh import bvh_text
from data_prep.clip_video import ClipVideo, SkeletonView, frame_panel
from data_prep.clips import Clip, savitzky_golay, write_clip
from data_prep.drawing import plot_prediction
from data_prep.files import write_text_atomic
from data_prep.inputs import Inputs
from data_prep.progress import Progress, progress_mode
from data_prep.skeleton import JOINTS, PARENTS

from .models import TrainedModel
from .predict import predict_frames, predict_person


def frame_document(source, name, image, box, how, result, variant, backend) -> dict:
    return {"input": str(source), "item": name, "image_size_wh": [image.shape[1], image.shape[0]],
            "bbox_xyxy": [round(float(v), 1) for v in box], "bbox_from": how, "joints": list(JOINTS),
            "pose3d_mm": result.pose3d_mm.round(2).tolist(), "joints2d_px": result.joints2d_image.round(1).tolist(),
            "variant": variant, "backend": backend,
            "axes": "pose3d_mm: camera axes (x right, y down, z forward), joint mean at 0, scaled to the training "
                    "set's mean torso; joints2d_px: image pixels, the centre of each joint's most probable cell"}


def predict_image(inputs: Inputs, model: TrainedModel, boxes: tuple, out=None) -> None:
    """One image: <stem>.pose3d.json and <stem>.pose3d.png (stem: `out`, else the image's path without suffix)."""
    boxes, sources, _ = boxes
    name, _, image = next(inputs.frames())
    result = predict_person(model.forward(), image, boxes[0], model.stats["mean_bgr"])
    stem = Path(out) if out else inputs.path.with_suffix("")
    doc = frame_document(inputs.path, name, image, boxes[0], sources[0], result, model.variant, model.backend)
    write_text_atomic(Path(f"{stem}.pose3d.json"), json.dumps(doc, indent=1))
    plot_prediction(result.crop, result.joints2d_crop, result.pose3d_mm, Path(f"{stem}.pose3d.png"))
    print(f"wrote {stem}.pose3d.json and {stem}.pose3d.png (person box: {sources[0]})")


def predict_clip(inputs: Inputs, model: TrainedModel, boxes: tuple, out=None, per_frame_files: bool = False,
                 smooth: int = 0) -> None:
    """A clip (a video or a folder of frames; `boxes`: data_prep.inputs.find_boxes): its poses, then its files in
    `out` (default <input>_pose3d/): the .pose3d.npz and JSON, the BVH and the video; with per_frame_files each
    frame's JSON and figure too; smooth: a Savitzky-Golay window in frames (0: off)."""
    name = inputs.path.stem if inputs.kind == "video" else inputs.path.name
    folder = Path(out) if out else inputs.path.parent / f"{name}_pose3d"
    folder.mkdir(parents=True, exist_ok=True)
    boxes, sources, indices = boxes
    poses, joints, sizes = clip_poses(inputs, model, boxes, sources, folder if per_frame_files else None)
    poses = poses - poses[:, :1]  # root-relative (Hip at 0), as 3D-pose results are usually given
    smoothing = "none"
    if smooth:
        poses = savitzky_golay(poses, smooth)
        smoothing = f"Savitzky-Golay, {smooth} frames, order 2"
    clip = Clip(str(inputs.path), np.asarray(indices), inputs.fps, inputs.frame_step if inputs.kind == "video" else 1,
                sizes[0], np.asarray(boxes, np.float64), sources, poses, joints, tuple(JOINTS), tuple(PARENTS),
                model.variant, model.weights_sha256(), smoothing)
    npz, _ = write_clip(clip, folder / name)
    written = [npz.name, f"{name}.pose3d.json"]
    rate = inputs.fps / clip.frame_step
    if all(k in model.stats and len(model.stats[k]) for k in ("bones", "mean_bone_lengths_mm")):
        write_text_atomic(folder / f"{name}.bvh", bvh_text(poses, JOINTS, PARENTS, model.stats["bones"],
                                                            model.stats["mean_bone_lengths_mm"], 1.0 / rate))
        written.append(f"{name}.bvh")
    else:
        print("no BVH: the training skeleton is unknown (pass --train-lmdb)", file=sys.stderr)
    render_clip_video(inputs, folder, name, rate, boxes, joints, poses)
    written.append(f"{name}.pose3d.mp4")
    counts = {how: sources.count(how) for how in dict.fromkeys(sources)}
    print(f"wrote {', '.join(written)} to {folder} ({len(boxes)} frames; person box: "
          + ", ".join(f"{how} {n}" for how, n in counts.items()) + ")")
    if inputs.skipped:
        print(f"skipped {len(inputs.skipped)} unreadable image(s): {', '.join(inputs.skipped)}")


def clip_poses(inputs: Inputs, model: TrainedModel, boxes: list, sources: list, per_frame_folder=None) -> tuple:
    """Every frame's prediction: (pose3d_mm (F, 17, 3), joints2d_px (F, 17, 2), image sizes); each frame's JSON and
    figure into per_frame_folder when given."""
    name = inputs.path.stem if inputs.kind == "video" else inputs.path.name
    done = []

    def per_frame(frame_name, image, box, result):  # --per-frame: each frame's JSON and figure, as for an image
        how = sources[len(done)]
        done.append(frame_name)
        if per_frame_folder is not None:
            doc = frame_document(inputs.path, frame_name, image, box, how, result, model.variant, model.backend)
            stem = per_frame_folder / Path(frame_name).stem
            write_text_atomic(Path(f"{stem}.pose3d.json"), json.dumps(doc, indent=1))
            plot_prediction(result.crop, result.joints2d_crop, result.pose3d_mm, Path(f"{stem}.pose3d.png"))

    shown = Progress(len(boxes), f"predict {name}", unit="frames", mode=progress_mode())
    found = predict_frames(model.forward(), inputs.frames(), boxes, model.stats["mean_bgr"], shown, per_frame)
    shown.close()
    return found


def render_clip_video(inputs: Inputs, folder: Path, name: str, rate: float, boxes: list, joints, poses) -> None:
    """<folder>/<name>.pose3d.mp4: each frame with its box and 2D joints beside the 3D skeleton, axes fixed over the
    clip
    (data_prep.clip_video); a run stopped half way leaves no partial file."""
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
