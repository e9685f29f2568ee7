"""Running the `caffe` tool from the drivers (demo, train_all, ablation) so that a long run survives faults: one
run per snapshot prefix (a lock), the inputs and the disk checked before caffe starts, resume from the latest
snapshot that verifies (layers.snapshots), caffe's log written by caffe itself and followed for the progress bar
and for pruning, caffe stopped with a snapshot when the driver is stopped or dies, and one line for a diverged
loss, a full disk or a damaged input (docs/design.md, "Long runs")."""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from data_prep.batches import lmdb_list
from data_prep.cli import REPO
from data_prep.errors import LAYER_ERROR, DiskFullError, Interrupted, UserError
from data_prep.files import require_free_space
from data_prep.progress import Progress
from data_prep.records import check_lmdb

from . import snapshots as S
from .caffe_build import caffe_binary, caffe_env
from .device import caffe_fault_advice, require_gpu
from .snapshots import KEEP_PAIRS, iteration_of

# Lines of a `caffe train` log the driver acts on (Caffe with patch 0005).
_PROGRESS = re.compile(r"\] Iteration (\d+)")
_WROTE = re.compile(r"\] Wrote snapshot file (\S+)")
_STOPPED = re.compile(r"caffe train stopped: (.*)")
_DIVERGED = re.compile(r"Training diverged at iteration (\d+): the loss is (\S+);")
_CANNOT_WRITE = re.compile(r"Cannot write (\S+) \((\w+): ([^)]*)\)")
DISK_FULL_ERRORS = ("No space left on device", "Disk quota exceeded", "File too large")


class DivergedError(UserError):
    """The loss became NaN or infinite; the last good snapshot is kept."""


class TrainingInterrupted(Interrupted):
    """The driver was asked to stop (SIGINT, SIGTERM); caffe stopped with a snapshot."""


def die_with_parent() -> None:
    """In the child before exec: SIGHUP when the driver dies, however it dies; `caffe train -sighup_effect stop`
    then stops it with a snapshot, as Ctrl-C would."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGHUP)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def stop_signals(on_signal):
    """While the block runs: SIGINT and SIGTERM call on_signal(name) instead of stopping this process (in the main
    thread only, where Python can take signals); the previous handlers come back after it. Both training drivers
    use it: the caffe tool's (_Stopper) and the multi-GPU one (layers/multi_gpu.py)."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, lambda signum, frame: on_signal(signal.Signals(signum).name))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Stopper:
    """While caffe runs: the driver's first SIGINT/SIGTERM asks caffe to stop with a snapshot (its SIGINT), a
    second one kills it."""

    def __init__(self, proc):
        self.proc, self.signal = proc, None
        self._guard = stop_signals(self._handle)

    def __enter__(self):
        self._guard.__enter__()
        return self

    def _handle(self, name):
        if self.proc.poll() is not None:
            return
        if self.signal is None:
            self.signal = name
            print(f"\n{name}: asking caffe to stop with a snapshot (again to kill it)", file=sys.stderr, flush=True)
            self.proc.send_signal(signal.SIGINT)
        else:
            self.proc.kill()

    def __exit__(self, *exc):
        return self._guard.__exit__(*exc)


def _follow(path: Path, offset: int, proc, on_line) -> None:
    """on_line(line) for each line appended to `path` after `offset` until `proc` has exited."""
    with open(path, "r", errors="replace") as f:
        f.seek(offset)
        pending = ""
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *lines, pending = pending.split("\n")
                for line in lines:
                    on_line(line)
            elif proc.poll() is not None:
                if pending:
                    on_line(pending)
                return
            else:
                time.sleep(0.1)


def run_caffe_train(solver: Path, log_path: Path, max_iter: int, resume: Path | None = None, cwd: Path = REPO,
                    progress: bool | str = True, desc: str = "caffe train", extra_args=(), on_snapshot=None,
                    pass_fds=()) -> dict:
    """`caffe train -solver solver [-snapshot resume]`, its output appended to log_path (written by caffe itself,
    so it goes on if the driver dies; the driver follows the file). progress: True for a bar on a terminal,
    "lines" for plain lines with the rate and ETA (logs, CI; data_prep.progress), False for nothing.
    on_snapshot(path) runs once each snapshot file is complete. Caffe runs in a session of its own and stops
    with a snapshot when the driver is asked to stop or dies. Returns what happened: {"code", "signal" (the
    driver's, if asked to stop), "stopped" (caffe's own one-line reason), "layer_error", "tail"}; raises nothing
    itself."""
    cmd = [caffe_binary(), "train", "-solver", str(solver), "-sigint_effect", "stop", "-sighup_effect", "stop",
           *extra_args]
    if resume is not None:
        cmd += ["-snapshot", str(resume)]
    env = caffe_env(GLOG_logtostderr="1", GLOG_minloglevel="0")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = iteration_of(resume) if resume else 0
    shown = Progress(max_iter, desc, unit="iterations", mode=progress, initial=start)
    seen = {"tail": [], "stopped": None, "layer_error": None}

    def on_line(line: str) -> None:
        seen["tail"] = (seen["tail"] + [line + "\n"])[-40:]
        m = _PROGRESS.search(line)
        if m and "solver.cpp" in line:
            shown.update_to(int(m.group(1)))
        m = _WROTE.search(line)
        if m and on_snapshot is not None:
            on_snapshot(Path(m.group(1)))
        m = _STOPPED.search(line)
        if m:
            seen["stopped"] = m.group(1)
        if line.startswith(LAYER_ERROR):
            seen["layer_error"] = line[len(LAYER_ERROR):].strip()

    with open(log_path, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent, pass_fds=tuple(pass_fds))
    try:
        with _Stopper(proc) as stopper:
            _follow(log_path, offset, proc, on_line)
            code = proc.wait()
    except BaseException:
        proc.kill()
        raise
    shown.close()
    return {"code": code, "signal": stopper.signal, **seen}


def read_solver(path: Path):
    from caffe.proto import caffe_pb2  # lazy: loads libcaffe (and CUDA)

    s = caffe_pb2.SolverParameter()
    try:
        text_format.Merge(Path(path).read_text(), s)
    except (OSError, text_format.ParseError) as e:
        raise UserError(f"{path}: not a readable solver prototxt ({e})") from e
    return s


def _in(cwd: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else Path(cwd) / path


def train_net_of(solver_param, solver: Path, cwd: Path):
    """The solver's train net, built by pycaffe in TEST phase (its data layers check their LMDBs here, before caffe
    starts): what a snapshot of this run must match."""
    import caffe  # lazy: loads libcaffe (and CUDA)

    net_path = _in(cwd, solver_param.train_net or solver_param.net)
    for path in [net_path, *(_in(cwd, t) for t in solver_param.test_net)]:
        if not path.is_file():
            raise UserError(f"{solver}: its net {path} is missing (paths are relative to {cwd})")
        for lmdb in data_layer_lmdbs(path):
            check_lmdb(_in(cwd, lmdb))  # meta.json's fields and its count against the records, before caffe runs
    previous = os.getcwd()
    os.chdir(cwd)  # the net's LMDB paths are relative to where caffe runs
    try:
        return caffe.Net(str(net_path), caffe.TEST)
    finally:
        os.chdir(previous)


def data_layer_lmdbs(net_path: Path) -> list:
    """The LMDBs a net's PoseDataLayers read (their param_str's "lmdb")."""
    from caffe.proto import caffe_pb2  # lazy: loads libcaffe (and CUDA)

    try:
        net = text_format.Parse(Path(net_path).read_text(), caffe_pb2.NetParameter())
    except text_format.ParseError as e:
        raise UserError(f"{net_path}: not a readable net prototxt ({e})") from None
    found = []
    for layer in net.layer:
        if layer.type == "Python" and layer.python_param.layer == "PoseDataLayer":
            try:
                found += lmdb_list(json.loads(layer.python_param.param_str or "{}").get("lmdb") or [])
            except (ValueError, AttributeError):
                pass  # the layer itself says what is wrong with its param_str
    return found


def snapshot_disk_need(net, keep: int = KEEP_PAIRS) -> int:
    """Bytes a run's snapshots take at their peak with pruning: `keep` pairs plus the pair being written (a
    .caffemodel holds 4 bytes a parameter, a .solverstate about as many: SGD's history)."""
    parameters = sum(int(np.prod(b.data.shape)) for blobs in net.params.values() for b in blobs)
    return 2 * (keep + 1) * 4 * parameters


@dataclasses.dataclass
class ClaimedRun:
    """A training run that holds its snapshot prefix (claim_run): its solver, where it resumes from."""
    solver_param: object
    prefix: Path
    resume: object  # layers.snapshots.Snapshot, or None to start from scratch
    lock: object  # layers.snapshots.RunLock

    @property
    def finished(self) -> bool:
        return self.resume is not None and self.resume.iteration >= self.solver_param.max_iter


@contextlib.contextmanager
def claim_run(solver: Path, cwd: Path = REPO, report=print, resume_from: Path | None = None):
    """Everything before a training run starts, for the caffe tool's runs and tools/train_multi_gpu.py alike: the
    lock on the snapshot prefix (held until the block ends), a killed write's leftovers removed, the nets' LMDBs
    checked, the latest snapshot that verifies against the train net chosen (damaged ones named and moved
    aside) or `resume_from` (a .solverstate) verified, and the disk checked for the rest of the run's snapshots.
    Yields a ClaimedRun."""
    s = read_solver(solver)
    if not s.snapshot_prefix:
        raise UserError(f"{solver}: no snapshot_prefix; the drivers resume from snapshots, so give one")
    prefix = _in(cwd, s.snapshot_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with S.RunLock(prefix) as lock:
        S.remove_partial_files(prefix)  # nobody else writes under the lock
        net = train_net_of(s, solver, cwd)
        if resume_from is None:
            resume = S.latest_good(prefix, net, S.param_shapes(net), report)
        else:
            resume = S.Snapshot.of_state(resume_from)
            reason = S.verify(resume, net, S.param_shapes(net))
            if reason:
                raise UserError(f"--snapshot {resume_from}: cannot be resumed: {reason}")
        # the snapshots already there are part of the peak (pruning removes them as new ones come)
        have = sum(
            f.stat().st_size for suffix in (".caffemodel", ".solverstate") for f in S.snapshot_files(prefix, suffix)
        )
        need = snapshot_disk_need(net)
        del net
        run = ClaimedRun(s, prefix, resume, lock)
        if not run.finished:
            require_free_space(prefix.parent, need - have, "this run's snapshots (the rest of them)",
                               f"point snapshot_prefix in {solver} elsewhere")
        yield run


def train_to_completion(solver: Path, log: Path, cwd: Path = REPO, gpu: int | None = None, progress: bool | str = True,
                        desc: str = "caffe train", report=None) -> Path:
    """Train until the solver's final snapshot exists and verifies (layers.snapshots.verify): skipped when it
    does, resumed from the latest good snapshot otherwise (claim_run). Snapshots are pruned as the run goes (the
    latest KEEP_PAIRS pairs: the one before is the fallback for a damaged latest) and, once the final pair has
    verified, only it is kept (finish_run). A diverged loss, a full disk or a damaged input is a UserError (one line);
    a stop request (Ctrl-C, SIGTERM) stops caffe with a
    snapshot and raises TrainingInterrupted. Returns the final .caffemodel."""
    report = report or (lambda message: print(f"{desc}: {message}", file=sys.stderr, flush=True))
    if gpu is not None:
        require_gpu(gpu)  # before the caffe tool aborts on it
    with claim_run(solver, cwd, report) as claimed:
        prefix, s = claimed.prefix, claimed.solver_param
        if claimed.finished:
            S.prune(prefix, keep=1)
            return claimed.resume.weights
        if claimed.resume is not None:
            report(f"resuming from {claimed.resume.state.name}")
        result = run_caffe_train(solver, log, s.max_iter, resume=claimed.resume.state if claimed.resume else None,
                                 cwd=cwd, progress=progress, desc=desc,
                                 extra_args=["-gpu", str(gpu)] if gpu is not None else [],
                                 on_snapshot=lambda f: f.suffix == ".solverstate" and S.prune(prefix),
                                 pass_fds=(claimed.lock.fd,))
        latest = (S.snapshot_pairs(prefix) or [None])[-1]
        raise_for_result(result, solver, Path(log), latest, gpu)
        return finish_run(claimed, solver, cwd, latest, log)


def finish_run(claimed: ClaimedRun, solver: Path, cwd: Path, latest, log) -> Path:
    """After a run that ended well: its final pair verified as the next run would verify it (a truncated final is
    not finished), then kept as the only pair. Returns the final .caffemodel."""
    s, prefix = claimed.solver_param, claimed.prefix
    if latest is None or latest.iteration < s.max_iter:
        raise RuntimeError(f"training ended at iteration {latest.iteration if latest else 0} without the final "
                           f"snapshot {prefix.name}_iter_{s.max_iter}; is `snapshot` a divisor of max_iter? log: {log}")
    net = train_net_of(s, solver, cwd)
    reason = S.verify(latest, net, S.param_shapes(net))
    if reason:
        raise RuntimeError(f"training ended with a final snapshot that does not verify: {reason}; log: {log}")
    S.prune(prefix, keep=1)
    return latest.weights


def raise_for_result(result: dict, solver: Path, log: Path, latest, gpu: int | None = None) -> None:
    """The one line for a run that did not end well (nothing when it did), a CUDA fault's included (the card out
    of memory, no such GPU, a driver too old: layers.device.cuda_error_advice)."""
    last = f"the last complete snapshot is {latest.state}" if latest else "there is no complete snapshot yet"
    where = f"log: {log}"
    if result["signal"]:
        raise TrainingInterrupted(f"stopped on {result['signal']}; {last}; run the same command again to resume")
    if result["code"] == 0:
        return
    stopped = result["stopped"] or ""
    m = _DIVERGED.search(stopped)
    if m:
        then = (f"the last complete snapshot, {latest.state}, is kept: lower base_lr and run again to resume from it"
                if latest else "no snapshot was written before it: lower base_lr and run again, which starts afresh")
        raise DivergedError(f"{solver}: training diverged at iteration {m.group(1)} (the loss is {m.group(2)}); {then} "
                            f"({where})")
    m = _CANNOT_WRITE.search(stopped)
    if m:
        path, _, why = m.groups()
        if any(e in why for e in DISK_FULL_ERRORS):
            raise DiskFullError(f"{Path(path).parent}: the disk is full ({why}): {Path(path).name} was not written "
                                f"and nothing of it is left; {last}; free space and run the same command to resume")
        raise UserError(f"{path}: cannot be written ({why}); {last}; {where}")
    if result["layer_error"]:
        raise UserError(f"{result['layer_error']} ({where})")
    advice = caffe_fault_advice(result["tail"], gpu)
    if advice:
        raise UserError(f"caffe train stopped on GPU {gpu}: {advice}; {last} ({where})")
    if result["code"] < 0:
        raise UserError(f"caffe train was killed (signal {-result['code']}, not by this driver); {last}; run the same "
                        f"command again to resume ({where})")
    raise RuntimeError(
        f"caffe train failed (exit {result['code']}); {last}; full log: {log}\n" + "".join(result["tail"])
    )
