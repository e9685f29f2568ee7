"""Reading the official Human3.6M layout (per subject S*):

  MyPoseFeatures/D3_Positions_mono/<Action>.<camera>.cdf   Pose (1, frames, 96): 32 joints xyz, mm, camera coords
  MyPoseFeatures/D2_Positions/<Action>.<camera>.cdf        Pose (1, frames, 64): 32 joints xy, pixels (optional)
  Videos/<Action>.<camera>.mp4                             50 fps
  MySegmentsMat/ground_truth_bb/<Action>.<camera>.mat      MATLAB v7.3, Masks{frame}: bounding-box mask

Errors name the file and what to do; the LMDB builder turns them into counted skips per sequence.
"""
from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import cdflib
import h5py
import numpy as np
from cdflib.cdfwrite import CDF

from .cameras import CAMERA_MODELS, project
from .files import atomic_output
from .skeleton import CAMERAS, H36M_TO_17, NUM_H36M_JOINTS, action_of_file_stem


class SequenceError(Exception):
    """A sequence that cannot be used (missing/corrupt file, bad values); the message names the file."""


@dataclasses.dataclass(frozen=True)
class Sequence:
    subject: str
    action: str  # the paper's action name
    file_action: str  # as spelled in the file names, e.g. 'TakingPhoto 1'
    camera: str
    root: Path

    @property
    def name(self) -> str:
        return f"{self.file_action}.{self.camera}"

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.file_action.replace(' ', '_')}/{self.camera}"

    def path(self, kind: str) -> Path:
        s = self.root / self.subject
        return {
            "d3_mono": s / "MyPoseFeatures" / "D3_Positions_mono" / f"{self.name}.cdf",
            "d2": s / "MyPoseFeatures" / "D2_Positions" / f"{self.name}.cdf",
            "video": s / "Videos" / f"{self.name}.mp4",
            "bbox": s / "MySegmentsMat" / "ground_truth_bb" / f"{self.name}.mat",
        }[kind]


@dataclasses.dataclass
class Discovery:
    sequences: list
    unmatched: list  # file names whose action is not one of the 15
    missing_subjects: list


def discover(root: Path, subjects, actions=None) -> Discovery:
    """All (subject, action, subaction, camera) sequences under root, from the D3_Positions_mono files.

    Names that map to none of the 15 actions are reported in `unmatched` (the '_ALL' files too)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory; pass the folder that holds S1, S5, ... S11")
    seqs, unmatched, missing = [], [], []
    for subject in subjects:
        mono = root / subject / "MyPoseFeatures" / "D3_Positions_mono"
        if not mono.is_dir():
            missing.append(subject)
            continue
        for f in sorted(mono.glob("*.cdf")):
            stem, _, camera = f.stem.rpartition(".")
            action = action_of_file_stem(stem)
            if action is None or camera not in CAMERAS:
                unmatched.append(str(f))
                continue
            if actions is None or action in actions:
                seqs.append(Sequence(subject, action, stem, camera, root))
    return Discovery(seqs, unmatched, missing)


def pose_frame_count(path: Path) -> int:
    """Frames in a pose CDF from its header alone (0 when unreadable: the build then skips it by name)."""
    try:
        info = cdflib.CDF(str(path)).varinq("Pose")
    except Exception:  # noqa: BLE001  (damaged files are reported when the sequence is read)
        return 0
    dims = list(info.Dim_Sizes)
    return int(dims[-2] * (info.Last_Rec + 1)) if len(dims) >= 2 else int(info.Last_Rec + 1)


def read_pose_cdf(path: Path, width: int) -> np.ndarray:
    """(frames, width) float64 from a Human3.6M pose CDF (variable 'Pose', shape (1, frames, width))."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: missing pose file")
    try:
        pose = np.asarray(cdflib.CDF(str(path)).varget("Pose"), dtype=np.float64)
    except Exception as e:  # cdflib raises several types on damaged files
        raise SequenceError(
            f"{path}: not a readable CDF with variable 'Pose' ({e}); re-extract it from the release"
        ) from e
    if pose.shape[-1] != width:
        raise SequenceError(f"{path}: expected {width} values per frame ({width // (NUM_H36M_JOINTS)} x 32 joints), "
                            f"got shape {pose.shape}; is this the right D2/D3 folder?")
    pose = pose.reshape(-1, width)
    if len(pose) == 0:
        raise SequenceError(f"{path}: no frames")
    bad = np.nonzero(~np.all(np.isfinite(pose), axis=1))[0]
    if len(bad):
        raise SequenceError(f"{path}: NaN/inf in frames {bad[:5].tolist()}{'...' if len(bad) > 5 else ''}; "
                            "the sequence is skipped")
    return pose


def read_poses(seq: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """(pose3d (F, 17, 3) mm camera coordinates, joints2d (F, 17, 2) pixels) of a sequence.

    2D comes from D2_Positions where present, else from projecting the 3D pose through the camera
    model (distortion included)."""
    p3 = read_pose_cdf(seq.path("d3_mono"), 3 * NUM_H36M_JOINTS).reshape(-1, NUM_H36M_JOINTS, 3)[:, H36M_TO_17]
    if seq.path("d2").is_file():
        p2 = read_pose_cdf(seq.path("d2"), 2 * NUM_H36M_JOINTS).reshape(-1, NUM_H36M_JOINTS, 2)[:, H36M_TO_17]
        n = min(len(p2), len(p3))
        p3, p2 = p3[:n], p2[:n]
    else:
        if np.any(p3[..., 2] <= 0):
            raise SequenceError(f"{seq.path('d3_mono')}: joints behind the camera; is this a D3_Positions_mono file?")
        p2 = project(p3, CAMERA_MODELS[seq.camera])
    return p3, p2


EMPTY_MASK = -1  # read_bboxes: the frame's person mask has no pixel set
NO_MASK_FRAME = -2  # read_bboxes: the mask file ends before this frame


def read_bboxes(path: Path, frames=None) -> np.ndarray:
    """(len(frames), 4) boxes x0, y0, x1, y1 (inclusive pixels) from a ground_truth_bb v7.3 .mat file, all
    frames when `frames` is None; a row is EMPTY_MASK where the frame's mask is empty and NO_MASK_FRAME where
    the file has no such frame."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"{path}: missing bounding-box mask file")
    try:
        with h5py.File(path, "r") as f:
            refs = f["Masks"]
            frames = np.arange(refs.shape[0]) if frames is None else np.asarray(frames)
            boxes = np.full((len(frames), 4), EMPTY_MASK, dtype=np.int64)
            for i, frame in enumerate(frames):
                if frame >= refs.shape[0]:
                    boxes[i] = NO_MASK_FRAME
                    continue
                mask = np.asarray(f[refs[frame, 0]]).T  # stored column-major by MATLAB
                rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
                if len(rows):
                    boxes[i] = cols[0], rows[0], cols[-1], rows[-1]
    except (OSError, KeyError) as e:
        raise SequenceError(f"{path}: not a MATLAB v7.3 file with a 'Masks' cell ({e})") from e
    return boxes


class VideoFrames:
    """Sequential frames of a video with a clear error if it cannot be decoded."""

    def __init__(self, path: Path):
        import cv2  # lazy: OpenCV only where images are read

        self.path = Path(path)
        if not self.path.is_file():
            raise SequenceError(f"{self.path}: missing video")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise SequenceError(f"{self.path}: corrupt or undecodable video; the sequence is skipped")

    def __iter__(self):
        while True:
            ok, frame = self.cap.read()
            if not ok:
                break
            yield frame
        self.cap.release()

    def select(self, indices):
        """(index, frame) for the wanted frame indices (ascending); other frames are only grabbed, not
        converted. Afterwards `self.seen` is the number of frames the video had up to the last one wanted
        (fewer when the video ends early)."""
        self.seen = 0
        wanted = iter(indices)
        target = next(wanted, None)
        while target is not None:
            if not self.cap.grab():
                break
            index, self.seen = self.seen, self.seen + 1
            if index == target:
                ok, frame = self.cap.retrieve()
                if not ok:
                    break
                yield index, frame
                target = next(wanted, None)
        self.cap.release()


# --- writers of the release's formats (the synthetic generator's; each mirrors a reader above) ---------------
def write_pose_cdf(path: Path, poses: np.ndarray) -> None:
    """CDF with variable `Pose` of shape (1, frames, width), as in the release."""
    data = np.asarray(poses, dtype=np.float32).reshape(1, len(poses), -1)
    with atomic_output(path, ".cdf") as tmp:
        tmp.unlink(missing_ok=True)  # cdflib writes no file that exists
        cdf = CDF(str(tmp))
        cdf.write_var({"Variable": "Pose", "Data_Type": CDF.CDF_FLOAT, "Num_Elements": 1, "Rec_Vary": True,
                       "Dim_Sizes": list(data.shape[1:])}, var_attrs={}, var_data=data)
        cdf.close()


MAT73_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


def write_bbox_masks_mat(path: Path, boxes: list, width: int, height: int) -> None:
    """MATLAB v7.3 file whose cell `Masks` holds one (height, width) logical mask per frame, stored
    column-major as MATLAB does (so a reader gets f[f['Masks'][i, 0]] transposed)."""
    with atomic_output(path, ".mat") as tmp:
        with h5py.File(tmp, "w", userblock_size=512) as f:
            refs = f.create_group("#refs#")
            ref_ds = f.create_dataset("Masks", (len(boxes), 1), dtype=h5py.ref_dtype)
            for i, (x0, y0, x1, y1) in enumerate(boxes):
                mask = np.zeros((width, height), dtype=np.uint8)  # MATLAB's (rows, cols) transposed
                mask[x0:x1 + 1, y0:y1 + 1] = 1
                d = refs.create_dataset(f"m{i}", data=mask, compression="gzip", compression_opts=1, chunks=True)
                d.attrs["MATLAB_class"] = np.bytes_("logical")
                ref_ds[i, 0] = d.ref
            ref_ds.attrs["MATLAB_class"] = np.bytes_("cell")
        with open(tmp, "r+b") as fh:
            header = MAT73_HEADER.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
            fh.write(header.ljust(512, b"\x00"))


def write_video(path: Path, frames, fps: int = 50) -> int:
    """MPEG-4 video at the release's 50 fps; returns the number of frames written."""
    import cv2  # lazy: OpenCV only where images are read

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.mp4")
    writer, n = None, 0
    for frame in frames:
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise RuntimeError(f"{tmp}: OpenCV cannot write MPEG-4 video here")
        writer.write(frame)
        n += 1
    if writer is not None:
        writer.release()
        os.replace(tmp, path)
    return n
