"""The benchmark's data sections: LMDB building against raw video decoding, make_lmdb.py's peak memory, the data
layer's images/s by workers and encoding, and the person detectors against the mask boxes."""
from __future__ import annotations

import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import caffe
import cv2
import numpy as np

from data_prep.cli import REPO
from data_prep.detect import box_iou, detect_person, detect_person_haar
from data_prep.h36m import VideoFrames, discover, read_bboxes
from data_prep.lmdb_build import build_lmdbs
from data_prep.records import ENCODINGS, read_meta
from data_prep.skeleton import CAMERAS
from data_prep.synthetic import GeneratorConfig, generate

from .measure import peak_rss_of
from .workload import encoded_lmdb, ensure_data


def _decode_count(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab() and cap.retrieve()[0]:
        n += 1
    return n


def section_lmdb(work, opts):
    ensure_data(work, opts.frames)
    videos = sorted((work / "h36m").glob("S*/Videos/*.mp4"))
    for workers in (1, 2):
        t0 = time.time()
        with ProcessPoolExecutor(workers) as pool:
            n = sum(pool.map(_decode_count, videos))
        yield (f"raw video decode, {workers} process(es) ({n} frames)", n / (time.time() - t0), "frames/s")
    for encoding in ENCODINGS:
        for step in (1, 5):
            for workers in (1, 2):
                out = work / f"lmdb_bench_{step}_{workers}"
                shutil.rmtree(out, ignore_errors=True)
                s = build_lmdbs(work / "h36m", out, actions=("Walking",), step=step, workers=workers, progress=False,
                                encoding=encoding)
                yield (f"LMDB build ({encoding}), frame step {step}, {workers} worker(s): video frames/s "
                            f"({s.frames} records)", n / s.seconds, "frames/s")
        size = sum(f.stat().st_size for f in (out / "walking_train.lmdb").glob("data.mdb"))
        yield (f"LMDB bytes per record ({encoding}; data.mdb / records)",
            size / read_meta(out / "walking_train.lmdb")["count"] / 1024, "KiB")


def section_memory(work, opts):
    """make_lmdb.py at frame step 1 on sequences of --long-frames frames (two cameras of S1 for training, two
    of S9 for testing), two workers: the peak resident memory of the whole process tree."""
    root = work / f"h36m_long_{opts.long_frames}"
    if not (root / "DONE").is_file():
        generate(GeneratorConfig(root, subjects=("S1", "S9"), cameras=CAMERAS[:2], frames=opts.long_frames), workers=2,
                 progress=False)
        (root / "DONE").write_text("")
    for encoding in ENCODINGS:
        mib, seconds = peak_rss_of([sys.executable, str(REPO / "tools" / "make_lmdb.py"), "--h36m", str(root),
                                    "--out", str(work / "lmdb_long"), "--actions", "Walking", "--train-subjects", "S1",
                                    "--test-subjects", "S9", "--frame-step", "1", "--workers", "2",
                                    "--encoding", encoding, "--quiet"])
        yield (f"make_lmdb.py peak RSS, {opts.long_frames}-frame sequences, step 1, 2 workers ({encoding})",
            mib, "MiB")
        yield (f"  its build rate ({encoding})", 4 * opts.long_frames / seconds, "frames/s")


def section_data_layer(work, opts):
    for encoding in ENCODINGS:
        lmdb = encoded_lmdb(work, opts.frames, encoding)
        for workers in (0, 1, 2):
            p = json.dumps({"lmdb": str(lmdb / "walking_train.lmdb"), "batch_size": opts.batch, "workers": workers})
            net_file = work / f"data_{workers}.prototxt"
            net_file.write_text(
                'layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"\n'
                f'  python_param {{ module: "layers.data_layer" layer: "PoseDataLayer" param_str: \'{p}\' }} }}\n'
            )
            net = caffe.Net(str(net_file), caffe.TRAIN)
            net.forward()
            t0 = time.time()
            handed = []
            for _ in range(opts.batches):
                net.forward()
                if workers:
                    handed.append(net.layers[0].prefetcher.handed)  # the Python layer itself
            yield (f"PoseDataLayer TRAIN ({encoding}), batch {opts.batch}, {workers} worker process(es)",
                opts.batches * opts.batch / (time.time() - t0), "img/s")
            if workers:  # in the solver's own time, whatever the workers (docs/design.md, "How many workers")
                how = "the image lent" if net.layers[0].lend else "copied: PARK3D_DATA_BORROW=0"
                yield (f"  of it, handing a ready batch to the net ({how}; median of {opts.batches})",
                       1000 * float(np.median(handed)), "ms")
            del net


def section_detector(work, opts):
    """Every 4th frame of one test subject's four cameras per action; the box each detector finds against the
    mask's box."""
    root = work / "detector_h36m"
    actions = ("Walking", "Sitting", "SittingDown", "Purchases")
    if not (root / "DONE").is_file():
        generate(GeneratorConfig(root, actions=actions, frames=40, seed=5), workers=2, progress=False)
        (root / "DONE").write_text("")
    detectors = {"HOG people detector (predict.py's)": detect_person, "Haar full-body cascade": detect_person_haar}
    for action in actions:
        seqs = [s for s in discover(root, ("S9",), (action,)).sequences]
        found = {name: [0, 0, 0.0] for name in detectors}  # found, IoU >= 0.5, sum of IoU
        frames = 0
        for seq in seqs:
            wanted = list(range(0, 40, 4))
            boxes = read_bboxes(seq.path("bbox"), wanted)
            for (i, frame), truth in zip(VideoFrames(seq.path("video")).select(wanted), boxes):
                frames += 1
                for name, detect in detectors.items():
                    d = detect(frame)
                    if d is not None:
                        iou = box_iou(d.box, truth)
                        found[name][0] += 1
                        found[name][1] += iou >= 0.5
                        found[name][2] += iou
        for name, (hits, good, total) in found.items():
            yield (f"{action}, {frames} frames: {name}, found", hits / frames, "")
            yield (f"{action}: {name}, IoU >= 0.5 with the mask box", good / frames, "")
