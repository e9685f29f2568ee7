"""Fault injection on real `caffe train` runs (layers.training, layers.snapshots, Caffe's patch 0005): kills at
random times and inside snapshot writes, a stop request, a dead driver, a second run, a diverged loss, a full
disk, damaged snapshots and inputs, weights of another variant. Each run is compared with an uninterrupted run of
the same schedule: the final weights must be equal bit for bit. The nets are the paper's, from the same
generator at 1/8 width (14 MB snapshots), trained for 24 iterations of 8 images with a snapshot every 4."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from caffe.proto import caffe_pb2
from google.protobuf import text_format

from conftest import REPO, read_only_mount, small_disk_at
from data_prep.records import read_meta
from prototxt.generate import VARIANTS, Schedule, build_net, write_experiment, write_net

WIDTH = 0.125
SCHEDULE = Schedule(batch_size=8, test_batch_size=16, display=1, max_iter=24, snapshot=4, test_interval=24)
PY = str(REPO / ".venv" / "bin" / "python")
# The drivers' library call (train_all, ablation, demo, learning_curve) under the tools' error handling.
DRIVER = """
import sys
from pathlib import Path
import layers
from data_prep.cli import run_tool
from layers.training import train_to_completion
sys.exit(run_tool(lambda argv: print(train_to_completion(Path(argv[0]), Path(argv[1]), progress=False)) or 0,
                  sys.argv[1:]))
"""


def write_run(d: Path, lmdb_root, variant="both", max_iter=24, train_lmdb=None, snapshot_dir=None, **solver_fields):
    out = lmdb_root
    train = Path(train_lmdb or out / "walking_train.lmdb")
    d.mkdir(parents=True, exist_ok=True)
    solver = write_experiment(d, "walking", variant=variant, train_lmdb=str(train),
                              test_lmdb=str(out / "walking_test.lmdb"), train_count=read_meta(train)["count"],
                              test_count=read_meta(out / "walking_test.lmdb")["count"],
                              snapshot_prefix=str(Path(snapshot_dir or d) / "snap"),
                              schedule=dataclasses.replace(SCHEDULE, max_iter=max_iter), width=WIDTH)
    if solver_fields:
        s = caffe_pb2.SolverParameter()
        text_format.Merge(solver.read_text(), s)
        for k, v in solver_fields.items():
            setattr(s, k, v)
        solver.write_text(text_format.MessageToString(s))
    return solver


STARTED: list[subprocess.Popen] = []


def start(solver: Path, log: Path) -> subprocess.Popen:
    driver = subprocess.Popen([PY, "-c", DRIVER, str(solver), str(log)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    STARTED.append(driver)
    return driver


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """A test that fails before it ends its training run must not leave the run holding the cores for the rest of
    the suite: the drivers still running are killed, and their caffe follows (it dies with its parent)."""
    yield
    while STARTED:
        driver = STARTED.pop()
        if driver.poll() is None:
            driver.kill()
            driver.communicate(timeout=60)


def run(solver: Path, log: Path, timeout=300) -> tuple[int, str]:
    p = start(solver, log)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err


def one_line(err: str) -> str:
    lines = [l for l in err.strip().splitlines() if not l.startswith("caffe train: ")]  # the driver's notes
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    return lines[0]


def weights_of(path: Path) -> dict:
    net = caffe_pb2.NetParameter()
    net.ParseFromString(Path(path).read_bytes())
    return {layer.name: [np.asarray(b.data, np.float32).tobytes() for b in layer.blobs] for layer in net.layer
            if layer.blobs}


def assert_same_weights(path: Path, reference: dict) -> None:
    found = weights_of(path)
    assert found.keys() == reference.keys()
    differ = [name for name in reference if found[name] != reference[name]]
    assert not differ, f"{len(differ)} of {len(reference)} layers differ: {differ[:5]}"


def children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def caffe_of(driver: subprocess.Popen, timeout=60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = children(driver.pid)
        if kids:
            return kids[0]
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.01)
    raise AssertionError("caffe did not start")


def wait_for(log: Path, text: str, timeout=120, offset=0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and text in log.read_text(errors="replace")[offset:]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {log}")


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory, lmdb_root):
    """The uninterrupted run's final weights; a second uninterrupted run gives the same bits."""
    finals = []
    for k in range(2):
        d = tmp_path_factory.mktemp(f"reference{k}")
        code, err = run(write_run(d, lmdb_root), d / "train.log")
        assert code == 0, err[-3000:]
        finals.append(d / "snap_iter_24.caffemodel")
    ref = weights_of(finals[0])
    assert_same_weights(finals[1], ref)
    return ref, finals[0].parent


def test_a_finished_run_keeps_only_its_final_pair(reference):
    _, d = reference
    log = (d / "train.log").read_text()
    assert all(f"Wrote snapshot file {d}/snap_iter_{i}.solverstate" in log for i in (4, 8, 12, 16, 20, 24))
    assert sorted(f.name for f in d.glob("snap_iter_*")) == ["snap_iter_24.caffemodel", "snap_iter_24.solverstate"]


def test_prune_removes_only_what_is_older_than_the_kept_pairs(tmp_path):
    from layers.snapshots import prune

    for it in (2, 4, 6):
        for suffix in (".caffemodel", ".solverstate"):
            (tmp_path / f"run_iter_{it}{suffix}").write_text("x")
    (tmp_path / "run_iter_8.caffemodel").write_text("x")  # weights whose state was never written (killed)
    (tmp_path / "run_iter_8.solverstate.partial").write_text("x")
    (tmp_path / "other_iter_2.caffemodel").write_text("x")
    assert sorted(f.name for f in prune(tmp_path / "run", keep=2)) == [
        "run_iter_2.caffemodel",
        "run_iter_2.solverstate",
    ]
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "other_iter_2.caffemodel", "run_iter_4.caffemodel", "run_iter_4.solverstate", "run_iter_6.caffemodel",
        "run_iter_6.solverstate", "run_iter_8.caffemodel", "run_iter_8.solverstate.partial"]


def test_random_kills_some_inside_snapshot_writes_then_the_run_equals_the_uninterrupted_one(tmp_path, lmdb_root,
                                                                                           reference):
    """Six kill -9s of caffe: three as soon as a snapshot file is being written (its .partial exists, and is still
    there after the kill: the kill landed inside the write), three at random times; then the same command again."""
    ref, _ = reference
    solver = write_run(tmp_path, lmdb_root)
    rng = random.Random(7)
    inside = 0
    for k in range(6):
        driver = start(solver, tmp_path / "train.log")
        pid = caffe_of(driver)
        if k % 2 == 0:
            deadline = time.monotonic() + 60
            while not any(n.endswith(".partial") for n in os.listdir(tmp_path)):
                assert time.monotonic() < deadline and driver.poll() is None
                time.sleep(0.0005)
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
            inside += any(n.endswith(".partial") for n in os.listdir(tmp_path))
        else:
            time.sleep(rng.uniform(0.3, 2.0))
            os.kill(pid, signal.SIGKILL)
        _, err = driver.communicate(timeout=60)
        if driver.returncode == 0:
            break  # finished before the kill landed
        assert driver.returncode == 2 and "caffe train was killed (signal 9" in one_line(err)
        states = list(tmp_path.glob("snap_iter_*.solverstate"))
        for f in states:  # what is on disk is complete
            assert f.with_suffix(".caffemodel").is_file()
        # pruned as it went: two pairs, and the weights of a pair whose state was being written
        assert len(states) <= 2 and len(list(tmp_path.glob("snap_iter_*.caffemodel"))) <= 3
    assert inside >= 2, inside
    code, err = run(solver, tmp_path / "train.log")
    assert code == 0, err[-3000:]
    assert_same_weights(tmp_path / "snap_iter_24.caffemodel", ref)
    assert not list(tmp_path.glob("*.partial"))


def test_a_damaged_latest_snapshot_is_named_moved_aside_and_the_one_before_used(tmp_path, lmdb_root, reference):
    ref, _ = reference
    solver, log = write_run(tmp_path, lmdb_root), tmp_path / "train.log"
    driver = start(solver, log)
    pid = caffe_of(driver)
    wait_for(log, f"Wrote snapshot file {tmp_path}/snap_iter_12.solverstate")
    os.kill(pid, signal.SIGKILL)
    driver.communicate(timeout=60)
    state = tmp_path / "snap_iter_12.solverstate"
    assert (tmp_path / "snap_iter_8.solverstate").is_file()
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])  # as an older Caffe left it
    code, err = run(solver, log)
    assert code == 0, err[-3000:]
    assert f"snapshot at iteration 12 is unusable: {state}: does not parse" in err
    assert "resuming from snap_iter_8.solverstate" in err
    damaged = sorted(p.name for p in (tmp_path / "damaged").iterdir())
    assert len(damaged) == 3 and any(n.startswith("snap_iter_12.solverstate.") for n in damaged)
    assert "does not parse" in next((tmp_path / "damaged").glob("*.why.txt")).read_text()
    assert_same_weights(tmp_path / "snap_iter_24.caffemodel", ref)


def test_a_truncated_final_caffemodel_is_not_finished_and_is_retrained(tmp_path, lmdb_root, reference):
    """A finished run keeps only its final pair, so there is nothing before it: training starts again."""
    ref, d = reference
    for f in d.glob("snap_iter_*"):
        shutil.copy(f, tmp_path / f.name)
    final = tmp_path / "snap_iter_24.caffemodel"
    final.write_bytes(final.read_bytes()[:1000])
    code, err = run(write_run(tmp_path, lmdb_root), tmp_path / "train.log")
    assert code == 0, err[-3000:]
    assert f"snapshot at iteration 24 is unusable: {final}: does not parse" in err and "resuming" not in err
    assert_same_weights(final, ref)


def test_ctrl_c_stops_caffe_with_a_snapshot_and_the_next_run_resumes_to_the_same_weights(tmp_path, lmdb_root,
                                                                                         reference):
    ref, _ = reference
    solver, log = write_run(tmp_path, lmdb_root), tmp_path / "train.log"
    driver = start(solver, log)
    pid = caffe_of(driver)
    wait_for(log, "] Iteration 6 ")
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130 and not alive(pid)
    line = one_line(err.replace("\nSIGINT: asking caffe to stop with a snapshot (again to kill it)", ""))
    stopped = int(line.split("_iter_")[1].split(".")[0])
    assert "stopped on SIGINT; the last complete snapshot is" in line and 6 <= stopped < 24, line
    assert "Optimization stopped early" in log.read_text()
    code, err = run(solver, log)
    assert code == 0 and f"resuming from snap_iter_{stopped}.solverstate" in err, err[-3000:]
    assert_same_weights(tmp_path / "snap_iter_24.caffemodel", ref)


def test_caffe_stops_with_a_snapshot_when_its_driver_is_killed(tmp_path, lmdb_root, reference):
    ref, _ = reference
    solver, log = write_run(tmp_path, lmdb_root), tmp_path / "train.log"
    driver = start(solver, log)
    pid = caffe_of(driver)
    wait_for(log, "] Iteration 5 ")
    driver.kill()
    driver.communicate()
    deadline = time.monotonic() + 30
    while alive(pid):
        assert time.monotonic() < deadline, "caffe outlived its driver"
        time.sleep(0.05)
    assert "Optimization stopped early" in log.read_text()
    code, err = run(solver, log)
    assert code == 0, err[-3000:]
    assert_same_weights(tmp_path / "snap_iter_24.caffemodel", ref)


def test_a_second_run_on_the_same_snapshots_is_one_line_naming_the_first(tmp_path, lmdb_root):
    solver, log = write_run(tmp_path, lmdb_root, max_iter=2000), tmp_path / "train.log"
    first = start(solver, log)
    caffe_of(first)
    code, err = run(solver, tmp_path / "second.log")
    assert code == 2
    line = one_line(err)
    assert f"{tmp_path}/snap.lock: another training run uses these snapshots (pid {first.pid} on " in line, line
    assert not (tmp_path / "second.log").exists() and first.poll() is None
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err[-3000:]


def test_a_diverged_loss_stops_the_run_in_one_line_and_keeps_the_last_good_snapshot(tmp_path, lmdb_root):
    from layers.snapshots import snapshot_pairs

    solver = write_run(tmp_path, lmdb_root, base_lr=100.0, snapshot=1)
    code, err = run(solver, tmp_path / "train.log")
    assert code == 2
    line = one_line(err)
    assert "training diverged at iteration" in line and "lower base_lr" in line, line
    at = int(line.split("training diverged at iteration ")[1].split()[0])
    pairs = snapshot_pairs(tmp_path / "snap")
    assert 0 < at < 24 and pairs and pairs[-1].iteration == at, (at, pairs)  # no update, no snapshot with the NaN
    for p in pairs:
        assert all(np.isfinite(np.frombuffer(b, np.float32)).all() for bs in weights_of(p.weights).values() for b in bs)
    assert f"the last complete snapshot, {pairs[-1].state}, is kept: lower base_lr and run again to resume" in line


def test_a_loss_that_diverges_before_the_first_snapshot_says_the_next_run_starts_afresh(tmp_path, lmdb_root):
    solver = write_run(tmp_path, lmdb_root, base_lr=100.0, snapshot=1000)
    code, err = run(solver, tmp_path / "train.log")
    line = one_line(err)
    assert code == 2 and "training diverged at iteration" in line, line
    assert "no snapshot was written before it: lower base_lr and run again, which starts afresh" in line, line


def deploy_net(directory: Path, variant: str, split="deploy") -> Path:
    multi_root, use_2d_cls = VARIANTS[variant]
    return write_net(directory / f"{split}_{variant}.prototxt",
                     build_net(split, multi_root=multi_root, use_2d_cls=use_2d_cls, width=WIDTH))


def initial_weights(directory: Path, lmdb_root, variant: str) -> Path:
    """A variant's weights as a .caffemodel, from its train net as initialised (no training needed)."""
    import caffe

    solver = write_run(directory / variant, lmdb_root, variant=variant)
    net = caffe.Net(str(solver.parent / "walking_train.prototxt"), caffe.TEST)
    path = directory / f"{variant}.caffemodel"
    net.save(str(path))
    return path


def test_weights_of_another_variant_are_one_line_naming_the_variant_they_hold(tmp_path, lmdb_root):
    from data_prep.errors import UserError
    from layers.deploy import load_deploy_net

    weights = {v: initial_weights(tmp_path, lmdb_root, v) for v in VARIANTS}
    for net_variant, weights_variant in (("both", "baseline"), ("baseline", "both"), ("multireg", "baseline"),
                                         ("2dcls", "both")):
        with pytest.raises(UserError, match=f"it holds the weights of the {weights_variant} variant: pass --deploy "
                                            f"prototxt/deploy_{weights_variant}.prototxt"):
            load_deploy_net(deploy_net(tmp_path, net_variant), weights[weights_variant])
    load_deploy_net(deploy_net(tmp_path, "2dcls"), weights["2dcls"])  # its own: fine
    with pytest.raises(UserError, match="it holds weights of another net"):  # the paper's width, 1/8-width weights
        load_deploy_net(REPO / "prototxt" / "deploy_both.prototxt", weights["both"])


def test_evaluate_refuses_nan_weights_and_names_the_layer(tmp_path, lmdb_root, reference):
    _, d = reference
    out = lmdb_root
    net = caffe_pb2.NetParameter()
    net.ParseFromString((d / "snap_iter_24.caffemodel").read_bytes())
    layer = next(l for l in net.layer if l.name == "fc1_3d")
    layer.blobs[0].data[5] = float("nan")
    bad = tmp_path / "nan.caffemodel"
    bad.write_bytes(net.SerializeToString())
    evaluate = subprocess.run(
        [
            PY,
            str(REPO / "tools" / "evaluate.py"),
            "--deploy",
            str(deploy_net(tmp_path, "both", "evaluate")),
            "--lmdb-root",
            str(out),
            "--weights",
            f"Walking={bad}",
            "--bn-batches",
            "0",
            "--quiet",
            "--out",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert evaluate.returncode == 2 and "layer fc1_3d holds NaN or infinite weights" in one_line(evaluate.stderr)
    assert not (tmp_path / "results").exists()


def damaged_copy(lmdb_root, tmp_path) -> tuple[Path, bytes]:
    import lmdb

    out = lmdb_root
    copy = tmp_path / "walking_train.lmdb"
    shutil.copytree(out / "walking_train.lmdb", copy)
    env = lmdb.open(str(copy))
    with env.begin(write=True) as txn:
        key = list(txn.cursor().iternext(values=False))[17]
        txn.put(key, b"\x08\xff garbage \x00" * 40)
    env.close()
    return copy, key


def test_a_damaged_record_is_one_line_naming_the_lmdb_and_its_key(tmp_path, lmdb_root):
    copy, key = damaged_copy(lmdb_root, tmp_path)
    code, err = run(write_run(tmp_path / "run", lmdb_root, train_lmdb=copy), tmp_path / "train.log")
    assert code == 2
    line = one_line(err)
    assert f"{copy}: record '{key.decode()}' is damaged" in line and "rebuild the LMDB" in line, line
    from data_prep.batches import BatchSource

    source = BatchSource(str(copy), 8, 225, train=False, seed=0, pca_sigma=0.0)  # evaluation reads the same way
    image, joints, pose = (
        np.empty((8, 3, 225, 225), np.float32),
        np.empty((8, 17, 2), np.float32),
        np.empty((8, 17, 3), np.float32),
    )
    with pytest.raises(ValueError, match=f"record '{key.decode()}' is damaged"):
        for b in range(-(-len(source.keys) // 8)):
            source.fill(b, image, joints, pose)


def test_meta_json_faults_are_named_before_caffe_starts(tmp_path, lmdb_root):
    out = lmdb_root
    copy = tmp_path / "walking_train.lmdb"
    shutil.copytree(out / "walking_train.lmdb", copy)
    solver = write_run(tmp_path / "run", lmdb_root, train_lmdb=copy)
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "count": meta["count"] + 3}))
    code, err = run(solver, tmp_path / "train.log")
    assert code == 2 and f"{copy}: {meta['count']} records but meta.json says {meta['count'] + 3}" in one_line(err)
    del meta["mean_bgr"]
    (copy / "meta.json").write_text(json.dumps(meta))
    code, err = run(solver, tmp_path / "train.log")
    assert code == 2 and f'{copy}/meta.json: field "mean_bgr" is missing' in one_line(err)
    assert not (tmp_path / "train.log").exists()  # caffe never started


@pytest.fixture
def small_disk(tmp_path):
    with small_disk_at(tmp_path / "disk", 120 * 2 ** 20) as mount:  # passes the start's check (6 x 14.5 MB) with room
        yield mount


def test_a_disk_that_fills_during_a_run_is_one_line_with_nothing_partial_left(tmp_path, lmdb_root, reference,
                                                                             small_disk):
    ref, _ = reference
    solver, log = write_run(tmp_path, lmdb_root, snapshot_dir=small_disk), tmp_path / "train.log"
    driver = start(solver, log)
    wait_for(log, f"Wrote snapshot file {small_disk}/snap_iter_8.solverstate")
    free = shutil.disk_usage(small_disk).free
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # another program takes the disk, but for 20 MB: the next pair needs 29 MB
        f.write(b"\0" * (free - 20 * 2 ** 20))
    _, err = driver.communicate(timeout=120)
    line = one_line(err)
    assert driver.returncode == 2 and f"{small_disk}: the disk is full (No space left on device)" in line, line
    assert f"the last complete snapshot is {small_disk}/snap_iter_8.solverstate" in line
    assert "was not written and nothing of it is left" in line and "resume" in line
    assert not [n for n in os.listdir(small_disk) if n.endswith(".partial")]
    filler.unlink()
    code, err = run(solver, log)
    assert code == 0, err[-3000:]
    assert_same_weights(small_disk / "snap_iter_24.caffemodel", ref)


@pytest.fixture
def read_only(tmp_path):
    yield from read_only_mount(tmp_path / "read-only")


def test_snapshots_on_a_read_only_mount_are_one_line_naming_the_path(tmp_path, lmdb_root, read_only):
    """A cluster's read-only mount as the solver's snapshot folder: one line naming the lock file and what to do,
    exit 2, no traceback, no log written (checked with a real read-only mount)."""
    solver, log = write_run(tmp_path / "run", lmdb_root, snapshot_dir=read_only), tmp_path / "train.log"
    code, err = run(solver, log)
    line = one_line(err)
    assert (
        code == 2 and f"{read_only}/snap.lock: Read-only file system; that file system is mounted read-only" in line
    ), line
    assert not log.exists()


def test_logs_on_a_read_only_mount_are_one_line_naming_the_log(tmp_path, lmdb_root, read_only):
    solver = write_run(tmp_path / "run", lmdb_root)
    code, err = run(solver, read_only / "walking_both.log")
    line = one_line(err)
    assert code == 2 and f"{read_only}/walking_both.log: Read-only file system; " in line, line
    assert "(--out, --logs, the solver's snapshot_prefix)" in line


@pytest.fixture
def read_only_lmdbs(tmp_path, lmdb_root):
    yield from read_only_mount(tmp_path / "lmdb-read-only", source=lmdb_root)


def test_training_reads_its_lmdbs_from_a_read_only_mount(tmp_path, read_only_lmdbs, reference):
    """Datasets on a cluster often sit on a read-only mount: the data layer, the statistics and the checks read the
    LMDBs without writing beside them, and the weights equal those of the run on the writable copy."""
    ref, _ = reference
    solver = write_run(tmp_path / "run", read_only_lmdbs)
    code, err = run(solver, tmp_path / "train.log")
    assert code == 0, err[-3000:]
    assert_same_weights(tmp_path / "run" / "snap_iter_24.caffemodel", ref)


def test_predict_bbox_outside_the_image_is_one_line(tmp_path, reference, lmdb_root):
    import cv2

    _, d = reference
    out = lmdb_root
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.zeros((1002, 1000, 3), np.uint8))
    p = subprocess.run(
        [
            PY,
            str(REPO / "tools" / "predict.py"),
            str(image),
            "--weights",
            str(d / "snap_iter_24.caffemodel"),
            "--deploy",
            str(deploy_net(tmp_path, "both")),
            "--train-lmdb",
            str(out / "walking_train.lmdb"),
            "--bbox",
            "5000",
            "5000",
            "100",
            "100",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert p.returncode == 2 and "--bbox 5000 5000 100 100 lies outside the 1000x1002 image" in one_line(p.stderr)
    assert not list(tmp_path.glob("frame.pose3d*"))


def test_evaluate_defaults_do_not_depend_on_the_working_directory():
    from tools import evaluate, predict, train_all

    assert (
        Path(evaluate.parse_args(["--lmdb-root", "x", "--weights", "a"]).deploy)
        == REPO / "prototxt" / "evaluate_both.prototxt"
    )
    assert (
        Path(predict.parse_args(["x.png", "--weights", "w", "--train-lmdb", "t"]).deploy)
        == REPO / "prototxt" / "deploy_both.prototxt"
    )
    assert Path(train_all.parse_args([]).lmdb_root) == REPO / "data" / "lmdb"
