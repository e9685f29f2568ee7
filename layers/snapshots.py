"""A training run's snapshots on disk: which pairs exist, whether a pair is whole and belongs to the net, moving a
damaged one aside, pruning, and the lock that keeps a second run off the same snapshot prefix.

Caffe (patch 0005) writes every snapshot file under `<file>.partial` and renames it when it is complete, the
weights (`<prefix>_iter_<N>.caffemodel`) before the solver state (`<prefix>_iter_<N>.solverstate`), so a state
on disk means a complete pair. What can still go wrong comes from outside — an older Caffe, a copy cut short,
a disk error, a diverged run's NaN weights, a snapshot of another net — and `verify` finds it: both files parse,
the weights have every learnable layer of the net with its shapes and no other, they are finite, and the state
has one history blob per parameter blob, of the same shapes.
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import socket
import time
from pathlib import Path

import numpy as np
from google.protobuf.message import DecodeError

from data_prep.errors import UserError
from data_prep.files import write_text_atomic

PARTIAL = ".partial"  # Caffe's name for a snapshot file being written (patch 0005)
DAMAGED_DIR = "damaged"  # beside the snapshots: files moved aside, never deleted
KEEP_PAIRS = 2  # complete pairs kept while a run goes on: the latest (resume) and the one before (if it is damaged)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    iteration: int
    weights: Path  # <prefix>_iter_<N>.caffemodel
    state: Path  # <prefix>_iter_<N>.solverstate

    @classmethod
    def of_state(cls, state) -> "Snapshot":
        """The pair a .solverstate belongs to (its weights beside it, same iteration)."""
        state = Path(state)
        return cls(iteration_of(state), state.with_name(state.name.removesuffix(".solverstate") + ".caffemodel"), state)


def iteration_of(path: Path) -> int:
    return int(Path(path).name.rsplit("_iter_", 1)[1].split(".", 1)[0])


def snapshot_files(prefix, suffix: str) -> list:
    """A snapshot prefix's complete files with `suffix` (.solverstate, .caffemodel), oldest iteration first."""
    p = Path(prefix)
    found = [f for f in p.parent.glob(f"{p.name}_iter_*{suffix}") if f.name[len(p.name) + 6:-len(suffix)].isdigit()]
    return sorted(found, key=iteration_of)


def snapshot_pairs(prefix) -> list:
    """Snapshots with a solver state (and so, from Caffe with patch 0005, with their weights), oldest first."""
    return [Snapshot.of_state(s) for s in snapshot_files(prefix, ".solverstate")]


def remove_partial_files(prefix) -> list:
    """Left-over `.partial` files of a killed snapshot write (only while no run holds the prefix's lock)."""
    p = Path(prefix)
    found = sorted(p.parent.glob(f"{p.name}_iter_*{PARTIAL}"))
    for f in found:
        f.unlink()
    return found


def prune(prefix, keep: int = KEEP_PAIRS) -> list:
    """Keep the latest `keep` complete pairs (weights and state) and anything newer; remove the older files. Call it
    only once the newest pair is complete (Caffe logs "Wrote snapshot file <state>"). Returns the removed files."""
    pairs = snapshot_pairs(prefix)
    if not pairs:
        return []
    oldest_kept = pairs[-max(1, keep):][0].iteration
    removed = [f for f in snapshot_files(prefix, ".solverstate") + snapshot_files(prefix, ".caffemodel")
               if iteration_of(f) < oldest_kept]
    for f in removed:
        f.unlink(missing_ok=True)
    return removed


# ---- what a net's parameters are ---------------------------------------------------------------------------

def param_shapes(net) -> dict:
    """{layer name: [blob shape, ...]} of a pycaffe net's layers with parameter blobs, in the net's order (the
    order of a solver state's history)."""
    return {name: [tuple(b.data.shape) for b in blobs] for name, blobs in net.params.items()}


def blob_shape(blob) -> tuple:
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    legacy = (blob.num, blob.channels, blob.height, blob.width)  # Caffe's old 4-D form
    return tuple(int(d) for d in legacy)


def same_shape(file_shape: tuple, net_shape: tuple) -> bool:
    return file_shape == net_shape or (
        len(file_shape) == 4
        and np.prod(file_shape) == np.prod(net_shape)
        and tuple(d for d in file_shape if d != 1) == tuple(d for d in net_shape if d != 1)
    )


def read_proto(path: Path, message):
    """Parse a binary proto file into `message`; a ValueError naming the file if it does not parse."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror})") from e
    if not data:
        raise ValueError(f"{path}: empty")
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError) as e:
        raise ValueError(f"{path}: does not parse (truncated or overwritten: {e})") from e
    return message


def weights_layers(net_param, skip_types=()) -> dict:
    """{layer name: [blob shape, ...]} of a parsed .caffemodel's layers with blobs (types in skip_types left out)."""
    return {layer.name: [blob_shape(b) for b in layer.blobs] for layer in net_param.layer
            if len(layer.blobs) and layer.type not in skip_types}


def shape_mismatches(found: dict, expected: dict) -> list:
    """What differs between a file's layers and a net's (both {name: [shapes]}), as short phrases."""
    problems = []
    missing = [name for name in expected if name not in found]
    unused = [name for name in found if name not in expected]
    if missing:
        problems.append(f"no weights for {len(missing)} layer(s) of the net ({', '.join(missing[:4])}"
                        f"{' ...' if len(missing) > 4 else ''})")
    if unused:
        problems.append(f"{len(unused)} layer(s) the net does not have ({', '.join(unused[:4])}"
                        f"{' ...' if len(unused) > 4 else ''})")
    for name in expected:
        if name in found and (len(found[name]) != len(expected[name]) or
                              not all(same_shape(a, b) for a, b in zip(found[name], expected[name]))):
            problems.append(f"{name}: {found[name]} in the file, {expected[name]} in the net")
            if len(problems) > 4:
                break
    return problems


def verify(snapshot: Snapshot, net, expected: dict) -> str | None:
    """Why `snapshot` cannot be resumed by the solver whose train net is `net` (pycaffe; expected =
    param_shapes(net)), or None when it can. Loads its weights into `net` to check that they are finite."""
    from caffe.proto import caffe_pb2  # lazy: loads libcaffe (and CUDA)

    if not snapshot.weights.is_file():
        return f"{snapshot.weights.name} is missing"
    try:
        weights = read_proto(snapshot.weights, caffe_pb2.NetParameter())
    except ValueError as e:
        return str(e)
    problems = shape_mismatches(weights_layers(weights), expected)
    counts = [len(b.data) == int(np.prod(blob_shape(b))) for layer in weights.layer for b in layer.blobs]
    del weights
    if problems:
        return f"{snapshot.weights}: not the weights of this net: " + "; ".join(problems)
    if not all(counts):
        return f"{snapshot.weights}: a blob holds fewer numbers than its shape says (damaged)"
    try:
        state = read_proto(snapshot.state, caffe_pb2.SolverState())
    except ValueError as e:
        return str(e)
    shapes = [s for blobs in expected.values() for s in blobs]
    history = [blob_shape(b) for b in state.history]
    if state.iter != snapshot.iteration:
        return f"{snapshot.state}: holds iteration {state.iter}, its name says {snapshot.iteration}"
    if len(history) != len(shapes) or not all(same_shape(a, b) for a, b in zip(history, shapes)):
        return (f"{snapshot.state}: {len(history)} history blobs, the net has {len(shapes)} parameter blobs "
                "(a state of another net, or damaged)")
    del state
    net.copy_from(str(snapshot.weights))
    bad = non_finite_layer(net)
    if bad is not None:
        return f"{snapshot.weights}: {bad} holds NaN or infinite weights (a diverged run)"
    return None


def non_finite_layer(net) -> str | None:
    """The first layer of a pycaffe net whose parameters hold a NaN or an infinity, or None."""
    return next((name for name, blobs in net.params.items() if not all(np.isfinite(b.data).all() for b in blobs)), None)


def move_aside(snapshot: Snapshot, reason: str) -> Path:
    """Move a damaged pair into <snapshot dir>/damaged/ (never deleted), with a note saying why."""
    folder = snapshot.state.parent / DAMAGED_DIR
    folder.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for f in (snapshot.weights, snapshot.state):
        if f.exists():
            os.replace(f, folder / f"{f.name}.{stamp}")
    note = folder / f"{snapshot.state.stem}.{stamp}.why.txt"
    write_text_atomic(note, reason + "\n")
    return folder


def latest_good(prefix, net, expected: dict, report=print) -> Snapshot | None:
    """The newest pair that verifies; newer damaged ones are named (report) and moved aside."""
    for snapshot in reversed(snapshot_pairs(prefix)):
        reason = verify(snapshot, net, expected)
        if reason is None:
            return snapshot
        folder = move_aside(snapshot, reason)
        report(f"snapshot at iteration {snapshot.iteration} is unusable: {reason}; moved into {folder}, "
               "trying the one before")
    return None


# ---- one run per snapshot prefix ----------------------------------------------------------------------------

class RunLock:
    """An exclusive lock on <prefix>.lock for as long as the run (the driver and, through the inherited descriptor,
    its caffe) lives; the file says who holds it. A second run waits up to `wait` s (a killed run's data workers
    hold the descriptor for up to a second), then is a UserError naming the holder."""

    def __init__(self, prefix, wait: float = 5.0):
        self.path = Path(f"{prefix}.lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = self.path.read_text().strip() or "another process"
                    os.close(self.fd)
                    raise UserError(f"{self.path}: another training run uses these snapshots ({holder}); wait "
                                    "for it to end or stop it, then run this again") from None
                time.sleep(0.2)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                          .encode())
        os.set_inheritable(self.fd, True)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
