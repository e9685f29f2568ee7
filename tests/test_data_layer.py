"""The data layer (layers/data_layer.py over data_prep/batches.py) in real Caffe nets: the test crop, seeded
augmentation independent of the workers, ranks, epochs, bad LMDBs, and its position restored from a blob."""
from __future__ import annotations

import json
import shutil
import time

import caffe
import numpy as np
import pytest
from test_pose_layers import net_from_string

from data_prep.batches import BatchSource, batch_indices
from data_prep.records import read_meta
from layers.data_layer import (
    MAX_AUTO_WORKERS,
    WAIT_LIMIT,
    WAIT_SKIP,
    WAIT_WINDOW,
    DataWait,
    default_workers,
    wait_limit,
)


def data_net(tmp_path, lmdb, phase, **params):
    p = json.dumps({"lmdb": str(lmdb), "batch_size": 8, **params})
    return net_from_string(tmp_path, f"""
        layer {{ name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"
          python_param {{ module: "layers.data_layer" layer: "PoseDataLayer" param_str: '{p}' }} }}
        """, phase, f"data_{phase}_{abs(hash(p))}.prototxt")


def test_data_layer_test_phase_is_the_centre_crop_minus_the_mean(tmp_path, lmdb_root):
    out = lmdb_root
    lmdb = out / "walking_test.lmdb"
    net = data_net(tmp_path, lmdb, caffe.TEST, workers=0)
    net.forward()
    source = BatchSource(str(lmdb), 8, 225, False, 0, 0.0)
    import lmdb as lmdb_mod

    from data_prep.records import decode_record
    with lmdb_mod.open(str(lmdb), readonly=True, lock=False).begin() as txn:
        first = decode_record(txn.get(source.keys[0][1]))  # keys: (LMDB index, record key)
    mean = np.asarray(read_meta(lmdb)["mean_bgr"], np.float32)
    expect = first["image"][:, 12:237, 12:237].astype(np.float32) - mean[:, None, None]
    assert np.allclose(net.blobs["data"].data[0], expect, atol=1e-4)
    assert np.allclose(net.blobs["joints2d"].data[0], first["joints2d"] - 12, atol=1e-5)
    assert np.allclose(net.blobs["pose3d"].data[0], first["pose3d"])


def test_data_layer_train_is_seeded_and_independent_of_workers(tmp_path, lmdb_root):
    out = lmdb_root
    lmdb = out / "walking_train.lmdb"
    batches = []
    for workers in (0, 1, 2):
        net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=workers, seed=5)
        batches.append([tuple(net.forward()[k].copy() for k in ("data", "joints2d", "pose3d")) for _ in range(3)])
    for other in batches[1:]:
        for a, b in zip(batches[0], other):
            for x, y in zip(a, b):
                assert np.array_equal(x, y)
    # random crops move the joints with the image: joints stay inside [0, 225) plus the margin
    j = batches[0][0][1]
    assert j.min() > -25 and j.max() < 250
    # a different seed gives different crops/colours
    net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=0, seed=6)
    assert not np.array_equal(net.forward()["data"], batches[0][0][0])


def test_ranks_share_the_single_gpu_order(tmp_path, lmdb_root, monkeypatch):
    """Two data layers of ranks 0 and 1 (of 2, as in two-GPU training): rank r's t-th batch is the single-GPU
    layer's batch 2t + r, crops and colours included, with and without worker processes; ranks come from
    param_str or, in a TRAIN net, from the environment a multi-GPU launcher sets."""
    out = lmdb_root
    lmdb = out / "walking_train.lmdb"
    single = data_net(tmp_path, lmdb, caffe.TRAIN, workers=0, seed=5)
    order = [single.forward()["data"].copy() for _ in range(6)]
    for workers in (0, 2):
        for rank in (0, 1):
            net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=workers, seed=5, rank=rank, ranks=2)
            for t in range(3):
                assert np.array_equal(net.forward()["data"], order[2 * t + rank]), (workers, rank, t)
    from layers.data_layer import data_rank

    monkeypatch.setenv("PARK3D_RANK", "3")
    monkeypatch.setenv("PARK3D_RANKS", "4")
    assert data_rank({"rank": None, "ranks": None}, True) == (3, 4)
    assert data_rank({"rank": 1, "ranks": 2}, True) == (1, 2)
    assert data_rank({"rank": None, "ranks": None}, False) == (0, 1)  # rank 0 tests on the whole test set
    with pytest.raises(ValueError, match="rank 2 of 2"):
        BatchSource(str(lmdb), 4, 225, True, 0, 0.0, rank=2, ranks=2)


def test_batch_indices_cover_each_epoch_once():
    first_epoch = np.concatenate([batch_indices(20, 4, b, seed=1, shuffle=True) for b in range(5)])
    assert sorted(first_epoch.tolist()) == list(range(20))
    second = np.concatenate([batch_indices(20, 4, b, seed=1, shuffle=True) for b in range(5, 10)])
    assert sorted(second.tolist()) == list(range(20)) and not np.array_equal(first_epoch, second)


def test_data_layer_rejects_a_truncated_or_missing_lmdb(tmp_path, lmdb_root):
    out = lmdb_root
    broken = tmp_path / "broken.lmdb"
    shutil.copytree(out / "walking_test.lmdb", broken)
    meta = json.loads((broken / "meta.json").read_text())
    meta["count"] += 5
    (broken / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="truncated or mixed LMDB"):
        BatchSource(str(broken), 8, 225, False, 0, 0.0)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        BatchSource(str(tmp_path), 8, 225, False, 0, 0.0)


def test_a_restored_position_blob_serves_the_batch_it_names(tmp_path, lmdb_root):
    """What a resume relies on: Caffe restores the layer's blob from a snapshot before the first forward; the layer
    then serves the batch the blob names (crops and colours included), and counts on in the blob."""
    lmdb = lmdb_root / "walking_train.lmdb"
    net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=1, seed=5)
    served = [net.forward()["data"].copy() for _ in range(4)]
    assert net.layers[0].blobs[0].data[0] == 4
    again = data_net(tmp_path, lmdb, caffe.TRAIN, workers=1, seed=5)
    again.layers[0].blobs[0].data[0] = 2  # as CopyTrainedLayersFrom does on `caffe train -snapshot`
    assert np.array_equal(again.forward()["data"], served[2]) and np.array_equal(again.forward()["data"], served[3])
    assert again.layers[0].blobs[0].data[0] == 4
    again.layers[0].blobs[0].data[0] = 2.5  # a solver that updated it (no lr_mult 0 / decay_mult 0)
    with pytest.raises(Exception):
        again.forward()


def test_auto_workers_follow_the_machine_only_beside_a_cuda_build():
    assert [default_workers(False, cores) for cores in (1, 2, 16)] == [1, 1, 1]  # the CPU solver wants the cores
    assert [default_workers(True, cores) for cores in (1, 2, 4, 64)] == [1, 1, 3, MAX_AUTO_WORKERS]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_wait(share: float, batches: int, handed: float = 0.0, **kw):
    """DataWait over `batches` solver steps of 1 s each, of which forward takes `share` (by a fake clock), `handed`
    of it handing the batch over."""
    clock = FakeClock()
    wait, said = DataWait(2, 128, clock, **kw), []
    for _ in range(batches):
        started = wait.start()
        clock.now += share
        said.append(wait.done(started, handed))
        clock.now += 1.0 - share
    return [s for s in said if s]


def test_a_solver_kept_waiting_for_data_is_told_once():
    """By hand: forward taking 0.5 of every 1 s step is 50 % waiting, above the 20 % limit: one line after the
    warm-up and window (55 batches), naming the share, the rate (128 images a second) and the workers; 0.1 is not."""
    assert run_wait(0.5, WAIT_SKIP + WAIT_WINDOW - 1) == []
    said = run_wait(0.5, 3 * (WAIT_SKIP + WAIT_WINDOW))
    assert len(said) == 1 and "waited for data 50 % of the time" in said[0]
    assert "128 images/s with 2 worker(s)" in said[0]
    assert "500.0 ms waiting and 0.0 ms handing over a batch" in said[0] and "more workers would help" in said[0]
    assert run_wait(0.1, 3 * (WAIT_SKIP + WAIT_WINDOW)) == []


def test_a_wait_that_is_mostly_the_hand_over_does_not_ask_for_more_workers():
    """By hand: 0.3 of each 1 s step in forward, 0.2 of it handing the batch over: 30 % > 20 %, two thirds of it
    the hand-over, which workers do not shorten; 0.3 with 0.1 handing over (a third) still asks for workers."""
    said = run_wait(0.3, WAIT_SKIP + WAIT_WINDOW, handed=0.2)
    assert len(said) == 1 and "waited for data 30 % of the time" in said[0]
    assert "100.0 ms waiting and 200.0 ms handing over a batch" in said[0]
    assert "more workers do not shorten" in said[0] and "would help" not in said[0]
    assert "more workers would help" in run_wait(0.3, WAIT_SKIP + WAIT_WINDOW, handed=0.1)[0]


def test_the_limit_comes_from_the_environment(monkeypatch):
    """PARK3D_DATA_WAIT_LIMIT=0 reports any share (tools/device_e2e.sh uses it); a word there is one clear error."""
    monkeypatch.setenv("PARK3D_DATA_WAIT_LIMIT", "0")
    assert wait_limit() == 0.0
    assert len(run_wait(0.01, WAIT_SKIP + WAIT_WINDOW, limit=wait_limit())) == 1
    monkeypatch.setenv("PARK3D_DATA_WAIT_LIMIT", "")
    assert wait_limit() == WAIT_LIMIT
    monkeypatch.setenv("PARK3D_DATA_WAIT_LIMIT", "always")
    with pytest.raises(ValueError, match="PARK3D_DATA_WAIT_LIMIT='always' is not a number"):
        wait_limit()


def test_the_wait_line_in_a_real_net_that_does_nothing_but_read(tmp_path, lmdb_root, capfd):
    """A TRAIN net of the data layer alone, read in-process (workers 0): all of its time is data, so it says so."""
    net = data_net(tmp_path, lmdb_root / "walking_train.lmdb", caffe.TRAIN, workers=0, batch_size=2)
    for _ in range(WAIT_SKIP + WAIT_WINDOW):
        net.forward()
    err = capfd.readouterr().err
    assert err.count("PoseDataLayer: the solver waited for data") == 1 and "0 worker(s)" in err
    assert " 0.0 ms handing over a batch, the images read in-process" in err  # nothing to hand over


def test_the_hand_over_from_the_workers_is_timed_in_a_real_net(tmp_path, lmdb_root, capfd, monkeypatch):
    """With a worker, forward hands each ready batch over from its slot: copying 8 x 3 x 225 x 225 floats (4.9 MB;
    PARK3D_DATA_BORROW=0) takes time, so the line (forced by PARK3D_DATA_WAIT_LIMIT=0) gives a hand-over above 0.0 ms;
    lending the image (the default) leaves only the small joint and pose arrays to copy, a shorter hand-over."""
    monkeypatch.setenv("PARK3D_DATA_WAIT_LIMIT", "0")
    handing = {}
    for borrow in ("0", "1"):
        monkeypatch.setenv("PARK3D_DATA_BORROW", borrow)
        net = data_net(tmp_path, lmdb_root / "walking_train.lmdb", caffe.TRAIN, workers=1)
        assert net.layers[0].lend == (borrow == "1")
        for _ in range(WAIT_SKIP + WAIT_WINDOW):
            net.forward()
        line = [s for s in capfd.readouterr().err.splitlines() if "PoseDataLayer: the solver waited" in s]
        assert len(line) == 1 and "1 worker(s)" in line[0], line
        handing[borrow] = float(line[0].split(" ms handing over")[0].rsplit(" ", 1)[1])
        # no card here: pin_host_memory says False, so the lent images are not said to be page-locked
        assert f"a batch, the images {'lent)' if borrow == '1' else 'copied)'}" in line[0], line[0]
        del net
    assert handing["0"] > 0.0 and handing["1"] < handing["0"], handing


def test_a_lent_image_is_the_batch_and_its_slot_waits_for_the_next_forward(tmp_path, lmdb_root):
    """The image top borrows the slot (pycaffe's Blob.borrow_data): the blob's memory is the slot's, its content
    the batch read in-process; with one worker and one slot, the worker cannot refill that slot before the next
    forward asks for the next batch, so the image stays whole while the net uses it (checked after the worker has
    had time to run ahead), and the next forward does not wait forever for a slot the net still holds."""
    lmdb = lmdb_root / "walking_train.lmdb"
    single = data_net(tmp_path, lmdb, caffe.TRAIN, workers=0, seed=5)
    expected = [single.forward()["data"].copy() for _ in range(3)]
    net = data_net(tmp_path, lmdb, caffe.TRAIN, workers=1, seed=5, prefetch=1)
    assert net.layers[0].lend
    for b in range(3):
        image = net.forward()["data"]
        assert image.ctypes.data == net.layers[0].prefetcher.slots[0][0].ctypes.data  # borrowed, not copied
        time.sleep(0.5)  # a worker given the slot back would have overwritten it with batch b + 1 by now
        assert np.array_equal(net.blobs["data"].data, expected[b]), b
