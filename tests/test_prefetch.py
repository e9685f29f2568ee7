"""layers/prefetch.py: batches from worker processes equal those read in-process, in the same order whatever the
number of workers; a worker that dies is named; the shared memory leaves no name behind, is not bounded by the size
of /dev/shm (small in containers), and outlives the Prefetcher for a blob that still points into it; a caffe run's
log ends without the resource tracker's warning about leaked segments, and its weights are the same whether the
image top borrows the slots or receives copies."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, caffe_env
from data_prep.batches import BatchSource
from data_prep.records import read_meta
from layers.data_layer import lend_images
from layers.prefetch import Prefetcher
from prototxt.generate import Schedule, write_experiment

CROP = 64


def source_args(lmdb_root, batch_size=4):
    return (str(lmdb_root / "walking_train.lmdb"), batch_size, CROP, True, 7, 0.1)


def shapes_of(args):
    joints = len(BatchSource(*args).meta["joints"])
    return [(args[1], 3, CROP, CROP), (args[1], joints, 2), (args[1], joints, 3)]


def batches(prefetcher, shapes, first, count):
    out = []
    for b in range(first, first + count):
        arrays = [np.zeros(s, np.float32) for s in shapes]
        prefetcher.get(b, arrays)
        out.append(arrays)
    return out


def test_batches_are_those_read_in_process_whatever_the_number_of_workers(lmdb_root):
    args = source_args(lmdb_root)
    shapes = shapes_of(args)
    source = BatchSource(*args)
    expected = []
    for b in range(3, 9):
        arrays = [np.zeros(s, np.float32) for s in shapes]
        source.fill(b, *arrays)
        expected.append(arrays)
    for workers in (1, 3):
        got = batches(Prefetcher(args, shapes, workers, 2, first_batch=3), shapes, 3, 6)
        for e, g in zip(expected, got):
            for a, b in zip(e, g):
                np.testing.assert_array_equal(a, b)


def test_a_dead_worker_is_named(lmdb_root):
    args = source_args(lmdb_root)
    shapes = shapes_of(args)
    prefetcher = Prefetcher(args, shapes, 2, 1, first_batch=0)
    batches(prefetcher, shapes, 0, 2)
    os.kill(prefetcher.processes[0].pid, signal.SIGKILL)
    prefetcher.processes[0].join(timeout=10)
    with pytest.raises(RuntimeError, match=r"data worker 0 for .*walking_train\.lmdb died \(exit code -9\)"):
        batches(prefetcher, shapes, 2, 4)  # batch 2 may be ready before the kill; batch 4 is worker 0's next


def test_the_shared_memory_leaves_no_name_behind(lmdb_root):
    before = set(os.listdir("/dev/shm"))
    args = source_args(lmdb_root)
    prefetcher = Prefetcher(args, shapes_of(args), 2, 2, first_batch=0)
    assert set(os.listdir("/dev/shm")) == before  # the workers use the mapping they inherited
    batches(prefetcher, shapes_of(args), 0, 3)
    del prefetcher


def test_the_slots_do_not_need_room_in_dev_shm(tmp_path, lmdb_root):
    """The slots (1.5 MiB here) in a private mount namespace whose /dev/shm is a 256 KiB tmpfs, as in a container
    with little shared memory (Docker's default is 64 MiB, against about 1.2 GB for 8 workers at batch 128): the
    batches still equal those read in-process. A named /dev/shm segment made the workers die of SIGBUS here."""
    # a new mount namespace in which /dev/shm is made private, then a 256 KiB tmpfs is mounted over it: nothing
    # reaches the machine's own /dev/shm (unshare's default, a private "/", fails in a chroot such as
    # tools/distro_check.sh's, where "/" is not a mount point)
    small_shm = ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c",
                 'mount --make-private /dev/shm && mount -t tmpfs -o size=256k shm /dev/shm && exec "$0" "$@"']
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to mount a small /dev/shm in a private mount namespace")
    probe = subprocess.run(small_shm + ["df", "-k", "/dev/shm"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or " 256 " not in probe.stdout:
        pytest.skip(f"cannot mount a small /dev/shm here: {(probe.stderr or probe.stdout).strip()[-200:]}")
    args = source_args(lmdb_root, batch_size=8)
    shapes = shapes_of(args)
    child = f"""
import sys, numpy as np
sys.path.insert(0, {str(REPO)!r})
from layers.prefetch import Prefetcher
shapes = {shapes!r}
prefetcher = Prefetcher({args!r}, shapes, 2, 2, first_batch=0)
got = []
for b in range(4):
    arrays = [np.zeros(s, np.float32) for s in shapes]
    prefetcher.get(b, arrays)
    got += arrays
np.savez({str(tmp_path / "got.npz")!r}, *got)
"""
    script = tmp_path / "child.py"
    script.write_text(child)
    out = subprocess.run(small_shm + [sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.load(tmp_path / "got.npz")
    source = BatchSource(*args)
    for b in range(4):
        arrays = [np.zeros(s, np.float32) for s in shapes]
        source.fill(b, *arrays)
        for i, a in enumerate(arrays):
            np.testing.assert_array_equal(a, got[f"arr_{3 * b + i}"])


def test_a_caffe_run_ends_without_the_resource_trackers_warning(tmp_path, lmdb_root):
    """The caffe tool with the data layer's workers (train and test nets), as a user runs it."""
    train, test = lmdb_root / "walking_train.lmdb", lmdb_root / "walking_test.lmdb"
    schedule = Schedule(batch_size=4, test_batch_size=4, display=1, max_iter=2, snapshot=2, test_interval=2)
    solver = write_experiment(tmp_path, "walking", variant="both", train_lmdb=str(train), test_lmdb=str(test),
                              train_count=read_meta(train)["count"], test_count=read_meta(test)["count"],
                              snapshot_prefix=str(tmp_path / "snap"), schedule=schedule, width=0.125)
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "train", "-solver", str(solver)], cwd=REPO,
                         capture_output=True, text=True, env=caffe_env(), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "workers" in (tmp_path / "walking_train.prototxt").read_text()
    assert "resource_tracker" not in out.stderr and "leaked" not in out.stderr, out.stderr[-2000:]


def test_training_with_lent_images_equals_training_with_copies(tmp_path, lmdb_root):
    """The caffe tool, 3 iterations of the paper's net (at 1/8 width) with one worker: the image top borrowing each
    batch's slot (the default) and receiving a copy (PARK3D_DATA_BORROW=0) give byte-identical weights, so the
    slot is not refilled while forward or backward (conv1's weight gradient reads it) still use it."""
    assert lend_images(), "this pycaffe has no Blob.borrow_data (patch 0012)"
    train, test = lmdb_root / "walking_train.lmdb", lmdb_root / "walking_test.lmdb"
    weights = {}
    for borrow in ("1", "0"):
        out = tmp_path / f"borrow{borrow}"
        schedule = Schedule(batch_size=4, test_batch_size=4, display=1, max_iter=3, snapshot=3, test_interval=1000,
                            workers=1)
        solver = write_experiment(out, "walking", variant="both", train_lmdb=str(train), test_lmdb=str(test),
                                  train_count=read_meta(train)["count"], test_count=read_meta(test)["count"],
                                  snapshot_prefix=str(out / "snap"), schedule=schedule, width=0.125)
        run = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "train", "-solver", str(solver)], cwd=REPO,
                             capture_output=True, text=True, env={**caffe_env(), "PARK3D_DATA_BORROW": borrow},
                             timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        weights[borrow] = (out / "snap_iter_3.caffemodel").read_bytes()
    assert weights["1"] == weights["0"]


def test_a_blob_that_outlives_its_prefetcher_reads_zeros(tmp_path, lmdb_root):
    """After the Prefetcher has ended, the image blob still points into its mapping: the memory has been given
    back, but the addresses stay mapped, so reading the blob gives zeros instead of a crash (in a child process,
    so that a crash fails this test only)."""
    child = f"""
import sys, json
sys.path.insert(0, {str(REPO)!r})
import caffe, gc
p = json.dumps({{"lmdb": {str(lmdb_root / "walking_train.lmdb")!r}, "batch_size": 4, "workers": 1}})
open({str(tmp_path / "d.prototxt")!r}, "w").write(
    'layer {{ name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d" python_param {{ '
    'module: "layers.data_layer" layer: "PoseDataLayer" param_str: \\'' + p + '\\' }} }}')
net = caffe.Net({str(tmp_path / "d.prototxt")!r}, caffe.TRAIN)
assert net.layers[0].lend and net.forward()["data"].any()
net.layers[0].prefetcher = None
gc.collect()
print("zeros" if not net.blobs["data"].data.any() else "not zeros")
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=caffe_env(), timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "zeros", (out.returncode, out.stdout, out.stderr[-2000:])
