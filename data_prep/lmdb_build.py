"""Human3.6M layout -> per-action LMDBs of person crops with 2D joints and normalised 3D poses (section 4).

<out>/<action>_train.lmdb and <out>/<action>_test.lmdb (train S1 S5 S6 S7 S8, test S9 S11), each with a
meta.json beside its data: counts, joint names, record layout, the training crops' BGR mean and RGB
covariance eigen-decomposition (fancy-PCA augmentation), and the training set's mean bone lengths
(scale recovery at test time), and the record encoding (raw or JPEG). Sequences are processed in parallel
and stream their records in bounded chunks to the main process, the only writer; each LMDB is written under
a '.partial' name and renamed when complete.
"""
from __future__ import annotations

import dataclasses
import errno
import multiprocessing as mp
import os
import queue
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import lmdb
import numpy as np

from .crop import CROP_SIZE, apply_affine, crop_person
from .errors import DiskFullError
from .files import human_bytes, require_free_space
from .h36m import (
    NO_MASK_FRAME,
    Sequence,
    SequenceError,
    VideoFrames,
    discover,
    pose_frame_count,
    read_bboxes,
    read_poses,
)
from .metrics import mean_torso_lengths, root_aligned
from .poses import bone_lengths, normalise_poses
from .progress import Progress
from .records import DEFAULT_ENCODING, ENCODINGS, FLOAT_FIELDS, FORMAT_VERSION, encode_record, record_key, write_meta
from .skeleton import ACTIONS, BONES, JOINTS, TEST_SUBJECTS, TORSO_BONES, TRAIN_SUBJECTS, action_slug

DEFAULT_FRAME_STEP = 5  # docs/design.md: protocol; the paper does not say which frames it used
LMDB_MAP_SIZE = 1 << 40  # sparse on Linux; only what is written takes disk space


@dataclasses.dataclass
class SequenceResult:
    """What one sequence gave, without its records (those were streamed to the writer in chunks)."""
    sequence: Sequence
    poses_mm: np.ndarray  # (n, 17, 3)
    pixel_sum: np.ndarray  # (3,) BGR
    pixel_outer: np.ndarray  # (3, 3) RGB
    pixel_count: int
    frames_used: int
    note: str = ""  # e.g. frame-count mismatch
    error: str = ""  # the sequence was skipped
    frames_wanted: int = 0  # every step-th pose of the sequence
    dropped: dict = dataclasses.field(default_factory=dict)  # reason -> frames of `frames_wanted` not written


DROP_NO_MASK_FRAME = "mask file shorter than the poses"
DROP_EMPTY_MASK = "empty person mask"
DROP_SHORT_VIDEO = "video shorter than the poses"
LOUD_DROP_FRACTION = 0.05  # a sequence losing more than this is reported as a warning
CHUNK_RECORDS = 32  # records handed to the writer at a time: memory stays bounded at any frame step


def drop_line(r: SequenceResult) -> str:
    """'<sequence>: N of M frames dropped (reason n, ...)' for the summary."""
    lost = sum(r.dropped.values())
    reasons = ", ".join(f"{reason} {n}" for reason, n in r.dropped.items())
    return f"{r.sequence.key}: {lost} of {r.frames_wanted} frames dropped ({reasons})"


def process_sequence(seq: Sequence, emit, step: int = DEFAULT_FRAME_STEP, crop_size: int = CROP_SIZE,
                     encoding: str = DEFAULT_ENCODING) -> SequenceResult:
    """Every `step`-th frame of one sequence as records, handed to `emit(list of (key, value))` in chunks of
    CHUNK_RECORDS; errors become a skipped result, never a crash. A skipped sequence may have emitted records
    already: the caller removes them when the result has an error (_SplitBuild.discard)."""
    empty = SequenceResult(seq, np.zeros((0, len(JOINTS), 3)), np.zeros(3), np.zeros((3, 3)), 0, 0)
    try:
        pose3d_mm, joints2d = read_poses(seq)
        wanted = np.arange(0, len(pose3d_mm), step)
        boxes = read_bboxes(seq.path("bbox"), wanted)
        normalised, mean, scale = normalise_poses(pose3d_mm[wanted])
        result = dataclasses.replace(empty, pixel_sum=np.zeros(3), pixel_outer=np.zeros((3, 3)),
                                     frames_wanted=len(wanted), dropped={})
        kept, chunk = [], []
        wanted_pos = 0
        video = VideoFrames(seq.path("video"))
        for index, frame in video.select(wanted):
            i = wanted_pos
            wanted_pos += 1
            if boxes[i, 0] < 0:  # no person box: counted, and named in the summary
                reason = DROP_NO_MASK_FRAME if boxes[i, 0] == NO_MASK_FRAME else DROP_EMPTY_MASK
                result.dropped[reason] = result.dropped.get(reason, 0) + 1
                continue
            crop, affine = crop_person(frame, boxes[i], crop_size)
            sample = crop[::4, ::4].reshape(-1, 3).astype(np.float64)
            result.pixel_sum += sample.sum(0)
            rgb = sample[:, ::-1]
            result.pixel_outer += rgb.T @ rgb
            result.pixel_count += len(sample)
            chunk.append((record_key(seq.key, index), encode_record(
                crop, index, encoding, joints2d=apply_affine(joints2d[index], affine), pose3d=normalised[i],
                pose3d_mm=pose3d_mm[index], mean_mm=mean[i], scale_mm=[scale[i]])))
            kept.append(i)
            if len(chunk) == CHUNK_RECORDS:
                emit(chunk)
                chunk = []
        if chunk:
            emit(chunk)
        if video.seen == 0:
            raise SequenceError(f"{seq.path('video')}: no decodable frame (corrupt video); the sequence is skipped")
        if wanted_pos < len(wanted):
            result.note = (f"{seq.path('video')}: {video.seen} video frames for {len(pose3d_mm)} poses; "
                           f"used the common prefix")
            result.dropped[DROP_SHORT_VIDEO] = len(wanted) - wanted_pos
        result.poses_mm = pose3d_mm[wanted[kept]]
        result.frames_used = len(kept)
        return result
    except SequenceError as e:
        return dataclasses.replace(empty, error=str(e))


_records_queue = None  # in each worker process: where its chunks go (set by _init_worker)


def _init_worker(records_queue):
    global _records_queue
    _records_queue = records_queue


def _process_in_worker(seq: Sequence, step: int, crop_size: int, encoding: str) -> None:
    """Streams ("records", key, chunk) messages, then ("done", key, result), through the bounded queue."""
    result = process_sequence(seq, lambda chunk: _records_queue.put(("records", seq.key, chunk)), step, crop_size,
                              encoding)
    _records_queue.put(("done", seq.key, result))


class _LmdbWriter:
    """Writes one LMDB under <path>.partial; commit() renames it into place."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        shutil.rmtree(self.partial, ignore_errors=True)
        self.env = lmdb.open(str(self.partial), map_size=LMDB_MAP_SIZE, subdir=True, meminit=False, map_async=True)
        self.count = 0

    def put_many(self, records):
        with self.env.begin(write=True) as txn:
            for key, value in records:
                if not txn.put(key, value, overwrite=False):
                    raise ValueError(f"{self.path}: duplicate record key {key!r}")
        self.count += len(records)

    def delete(self, keys):
        with self.env.begin(write=True) as txn:
            for key in keys:
                self.count -= bool(txn.delete(key))

    def commit(self, meta: dict):
        self.env.sync()
        self.env.close()
        write_meta(self.partial, meta)
        shutil.rmtree(self.path, ignore_errors=True)
        os.replace(self.partial, self.path)

    def abort(self):
        try:
            self.env.close()
        finally:
            shutil.rmtree(self.partial, ignore_errors=True)


def image_statistics(pixel_sum, pixel_outer, count) -> dict:
    """BGR mean and the eigen-decomposition of the RGB covariance (0-255 scale) for fancy-PCA."""
    if count == 0:
        raise ValueError("no training pixels: no training frame was readable")
    mean_bgr = pixel_sum / count
    mean_rgb = mean_bgr[::-1]
    cov = pixel_outer / count - np.outer(mean_rgb, mean_rgb)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    return {"mean_bgr": mean_bgr.tolist(), "pca_eigval_rgb": np.maximum(eigval[order], 0).tolist(),
            "pca_eigvec_rgb": eigvec[:, order].tolist()}  # columns are eigenvectors


@dataclasses.dataclass
class BuildSummary:
    sequences: int = 0
    frames: int = 0
    skipped: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    dropped_frames: int = 0  # frames of kept sequences not written (no mask, empty mask, short video)
    drops: list = dataclasses.field(default_factory=list)  # one line per sequence that lost frames
    loud_drops: list = dataclasses.field(default_factory=list)  # those that lost more than LOUD_DROP_FRACTION
    unmatched: list = dataclasses.field(default_factory=list)
    outputs: dict = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["frames_per_second"] = self.frames_per_second
        return d


def pose_statistics(poses_mm: np.ndarray) -> dict:
    """What meta.json records of the training poses (N, 17, 3) in mm: mean bone and torso lengths (scale
    recovery), the mean normalised pose, and the mean root-centred pose in mm, camera coordinates, unscaled
    (the "mean pose" reference row of the evaluation)."""
    return {"mean_bone_lengths_mm": bone_lengths(poses_mm).mean(0).tolist(),
            "mean_torso_lengths_mm": mean_torso_lengths(poses_mm).tolist(),
            "mean_pose_normalised": normalise_poses(poses_mm)[0].mean(0).tolist(),
            "mean_pose_root_centred_mm": root_aligned(poses_mm).mean(0).tolist()}


class _SplitBuild:
    """One LMDB being written (one action's train or test split), with the statistics its meta.json needs.
    Records arrive in chunks (put); a sequence's statistics arrive once it is done (add), in sequence order."""

    def __init__(self, path: Path, action: str, split: str, encoding: str):
        self.path, self.action, self.split, self.encoding = Path(path), action, split, encoding
        self.writer = _LmdbWriter(path)
        self.pixel_sum, self.pixel_outer, self.pixel_count = np.zeros(3), np.zeros((3, 3)), 0
        self.poses, self.sequences, self.subjects = [], [], set()
        self.keys_of = {}  # sequence key -> record keys written, until the sequence is done
        self.done = False

    def put(self, sequence_key: str, records) -> None:
        self.writer.put_many(records)
        self.keys_of.setdefault(sequence_key, []).extend(k for k, _ in records)

    def discard(self, sequence_key: str) -> None:
        """A skipped sequence: remove whatever records it streamed before failing."""
        self.writer.delete(self.keys_of.pop(sequence_key, []))

    def add(self, r: SequenceResult):
        self.keys_of.pop(r.sequence.key, None)
        self.pixel_sum = self.pixel_sum + r.pixel_sum
        self.pixel_outer = self.pixel_outer + r.pixel_outer
        self.pixel_count += r.pixel_count
        self.poses.append(r.poses_mm)
        self.sequences.append(r.sequence.key)
        self.subjects.add(r.sequence.subject)

    def require_records(self):
        if self.writer.count == 0:
            raise ValueError(f"{self.path}: every {self.split} sequence of {self.action} was skipped; "
                             "see the messages above")

    def training_statistics(self) -> dict:
        """Image mean, fancy-PCA eigen-decomposition and mean bone lengths of this (training) split."""
        stats = image_statistics(self.pixel_sum, self.pixel_outer, self.pixel_count)
        return {**stats, **pose_statistics(np.concatenate(self.poses)), "train_count": self.writer.count}

    def commit(self, train_stats: dict, step: int, crop_size: int) -> int:
        self.require_records()
        self.writer.commit(dict(
            format_version=FORMAT_VERSION, action=self.action, split=self.split, count=self.writer.count,
            subjects=sorted(self.subjects), sequences=self.sequences, frame_step=step,
            crop_size=crop_size, encoding=self.encoding, joints=list(JOINTS), bones=[list(b) for b in BONES],
            torso_bones=[list(b) for b in TORSO_BONES],
            float_fields={k: {"offset": o, "shape": list(s)} for k, (o, s) in FLOAT_FIELDS.items()},
            image_stats_from="train", **train_stats))
        self.done = True
        return self.writer.count

    def abort(self):
        if not self.done:
            self.writer.abort()


RECORD_BYTES = {"raw": 188_500,  # a 250x250 record with its labels in the LMDB: 184 KiB (docs/benchmarks.md)
                "jpeg": 48_000}  # quality 95: 31 KiB measured on synthetic crops; real photos run larger


def estimated_bytes(sequences, step: int, encoding: str = DEFAULT_ENCODING) -> int:
    """Disk the LMDBs of these sequences will take at frame step `step` (read from the pose files' headers)."""
    records = sum(-(-pose_frame_count(s.path("d3_mono")) // step) for s in sequences)
    return records * RECORD_BYTES[encoding]


def _is_disk_full(error: Exception) -> bool:
    text = str(error)
    return getattr(error, "errno", None) == errno.ENOSPC or any(
        s in text for s in ("No space left", "Input/output error", "MDB_MAP_FULL", "Disk quota"))


def build_lmdbs(root: Path, out: Path, actions=ACTIONS, step: int = DEFAULT_FRAME_STEP, workers: int = 1,
                train_subjects=TRAIN_SUBJECTS, test_subjects=TEST_SUBJECTS, progress: bool | str = True,
                crop_size: int = CROP_SIZE, encoding: str = DEFAULT_ENCODING) -> BuildSummary:
    """Build <out>/<action>_{train,test}.lmdb for each action. Bad sequences are skipped and counted.
    Pooled training over several actions needs no copy: the data layer takes a list of LMDBs.
    progress: True (bar), "lines" (plain lines for logs) or False (data_prep.progress)."""

    for a in actions:
        action_slug(a)  # validates the name
    if step < 1:
        raise ValueError(f"frame step must be >= 1, got {step}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding {encoding!r}: expected one of {', '.join(ENCODINGS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = BuildSummary()
    t0 = time.time()
    found = discover(root, tuple(train_subjects) + tuple(test_subjects), actions)
    summary.unmatched = found.unmatched
    if found.missing_subjects:
        summary.notes.append(f"{root}: no MyPoseFeatures/D3_Positions_mono for {', '.join(found.missing_subjects)}")
    if not found.sequences:
        raise FileNotFoundError(f"{root}: no D3_Positions_mono/*.cdf for subjects {train_subjects + test_subjects} "
                                f"and actions {list(actions)}; is this the Human3.6M root (holding S1, S5, ...)?")
    need = estimated_bytes(found.sequences, step, encoding)
    require_free_space(out, need, f"the build ({len(found.sequences)} sequences at frame step {step}, {encoding})",
                       "pass --out on another disk")
    bar = Progress(len(found.sequences), "LMDB", unit="sequences", mode=progress)
    splits = (("train", tuple(train_subjects)), ("test", tuple(test_subjects)))
    try:
        with _SequenceRunner(workers) as runner:
            for action in actions:
                _build_action(runner, found.sequences, out, action, splits, step, crop_size, encoding, bar, summary)
    except Exception as e:  # the LMDBs are written under .partial and never left behind; say why in one line
        if isinstance(e, (lmdb.Error, OSError)) and _is_disk_full(e):
            raise DiskFullError(f"{out}: the disk is full ({e}); the build needs about {human_bytes(need)}; "
                                "free space or pass --out on another disk") from e
        raise
    bar.close()
    summary.seconds = time.time() - t0
    return summary


def _build_action(runner, sequences, out: Path, action: str, splits, step: int, crop_size: int, encoding: str, bar,
                  summary: BuildSummary) -> None:
    """<out>/<action>_train.lmdb, then <action>_test.lmdb with the training split's statistics in its meta.json."""
    train_stats = None
    for split, subjects in splits:
        seqs = [s for s in sequences if s.action == action and s.subject in subjects]
        if not seqs:
            summary.notes.append(f"{action} {split}: no sequences found")
            continue
        build = _SplitBuild(out / f"{action_slug(action)}_{split}.lmdb", action, split, encoding)
        try:
            for r in runner.run(seqs, build, step, crop_size, encoding, bar):  # in sequence order
                _account(r, build, summary)
            build.require_records()
            if split == "train":
                train_stats = build.training_statistics()
            if train_stats is None:
                raise ValueError(f"{action}: no training LMDB, so no image mean or bone lengths for {split}")
            summary.outputs[str(build.path)] = build.commit(train_stats, step, crop_size)
        finally:
            build.abort()


def _account(r: SequenceResult, build: _SplitBuild, summary: BuildSummary) -> None:
    """One finished sequence into its LMDB's statistics and the summary (skips, notes, drops)."""
    if r.error:
        build.discard(r.sequence.key)
        summary.skipped.append(r.error)  # named once, in the summary the tool prints
        return
    if r.note:
        summary.notes.append(r.note)
    if r.dropped:
        lost, line = sum(r.dropped.values()), drop_line(r)
        summary.dropped_frames += lost
        summary.drops.append(line)
        if lost > LOUD_DROP_FRACTION * r.frames_wanted:
            summary.loud_drops.append(line)
    build.add(r)
    summary.sequences += 1
    summary.frames += r.frames_used


class _SequenceRunner:
    """Runs process_sequence over sequences, in this process (workers <= 1) or in a pool of worker processes
    that stream their records in chunks through one bounded queue to this process, the only writer: at most
    about 2 chunks per worker are in flight, so memory does not grow with the length of a sequence."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self.pool = self.queue = None

    def __enter__(self):
        if self.workers > 1:
            ctx = mp.get_context("fork")
            self.queue = ctx.Queue(maxsize=2 * self.workers)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(self.queue,))
        return self

    def __exit__(self, *exc):
        if self.pool is None:
            return
        if exc[0] is not None:  # workers may be blocked on the full queue that nobody reads any more
            for proc in list(getattr(self.pool, "_processes", {}).values()):
                proc.terminate()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, seqs, build: _SplitBuild, step: int, crop_size: int, encoding: str, bar) -> list:
        """Every sequence's records into `build`; their results in the order of `seqs`."""
        if self.pool is None:
            results = []
            for seq in seqs:
                results.append(process_sequence(seq, lambda chunk, key=seq.key: build.put(key, chunk), step,
                                                crop_size, encoding))
                bar.update()
            return results

        futures = [self.pool.submit(_process_in_worker, seq, step, crop_size, encoding) for seq in seqs]
        done = {}
        while len(done) < len(seqs):
            try:
                kind, key, payload = self.queue.get(timeout=1.0)
            except queue.Empty:
                for f in futures:  # a worker that crashed never sends "done"
                    if f.done() and f.exception() is not None:
                        raise f.exception()
                continue
            if kind == "records":
                build.put(key, payload)
            else:
                done[key] = payload
                bar.update()
        return [done[seq.key] for seq in seqs]
