"""The data layer of section 4 over the LMDBs of tools/make_lmdb.py.

Tops: image (N, 3, 225, 225) float32 BGR minus the training mean; joints2d (N, 17, 2) in the 225 crop's
pixels; pose3d (N, 17, 3) normalised (zero mean, unit Frobenius norm).
TRAIN: a random 225 crop of the 250 crop, fancy-PCA colour augmentation, reshuffled every epoch.
TEST: the centre crop, records in key order, no augmentation. Seeded: batch b of epoch e is the same
whatever the number of workers.

The batches come from data_prep.batches (record decoding, crops, augmentation: no Caffe there), prepared
ahead by worker processes (layers.prefetch); forward only hands a ready batch to the tops: the image top borrows
the batch's shared memory, the small joint and pose tops get a copy.

  layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"
          python_param { module: "layers.data_layer" layer: "PoseDataLayer"
                         param_str: '{"lmdb": "data/lmdb/walking_train.lmdb", "batch_size": 128}' } }

"lmdb" may be a list: the layer then draws from the union of the LMDBs (pooled training over several actions
without a pooled copy), with the training statistics pooled from their meta.json (data_prep.pooled).
Records may be raw or JPEG (data_prep.records); decoding happens in the worker processes.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import caffe

from data_prep.batches import BatchSource, lmdb_list

from .config import INPUT_SIZE, PCA_SIGMA
from .device import caffe_has_cuda
from .pose_layers import ReportingLayer, check_counts, parse_params
from .prefetch import Prefetcher


def data_rank(params: dict, train: bool) -> tuple[int, int]:
    """(rank, ranks) of this data layer: param_str first, then, for a TRAIN net, the environment of a multi-GPU
    run. A TEST net is not sharded by the environment: only rank 0 tests, and it must see the whole test set."""
    env = os.environ if train else {}
    rank = params["rank"] if params["rank"] is not None else int(env.get("PARK3D_RANK", 0))
    ranks = params["ranks"] if params["ranks"] is not None else int(env.get("PARK3D_RANKS", 1))
    return int(rank), int(ranks)


MAX_POSITION = 2 ** 24  # batches a float32 blob counts exactly
MAX_AUTO_WORKERS = 8  # "workers": "auto" on a CUDA build: every core but one, at most this many
WAIT_WINDOW, WAIT_SKIP, WAIT_LIMIT = 50, 5, 0.2  # the data-wait check: batches, warm-up batches, share of time


def default_workers(has_cuda: bool, cores: int) -> int:
    """The data layer's "workers": "auto": one worker beside a CPU-only Caffe (the solver's OpenBLAS threads want the
    other cores), every core but one (at most MAX_AUTO_WORKERS) beside a CUDA build, where the card waits for the
    data. What one worker delivers, and what a card takes: docs/benchmarks.md, "Data layer workers"."""
    return min(max(cores - 1, 1), MAX_AUTO_WORKERS) if has_cuda else 1


class DataWait:
    """How much of the solver's time the data layer keeps it waiting: forward's own time (waiting for a batch, then
    handing it to the net) against the time from one forward to the next, over WAIT_WINDOW batches after
    WAIT_SKIP warm-up ones. done() returns one line, once, when the share is above `limit`, saying how much of it
    was the hand-over, which more workers do not shorten, and how the images were handed over (`images`, which the
    layer sets: lent, from page-locked memory or not, or copied); times come from `clock`."""

    def __init__(self, workers: int, batch_size: int, clock=time.perf_counter, limit: float = WAIT_LIMIT):
        self.workers, self.batch_size, self.clock, self.limit = workers, batch_size, clock, limit
        self.calls, self.waited, self.handed, self.first, self.said = 0, 0.0, 0.0, None, False
        self.images = "read in-process" if workers == 0 else "copied"

    def start(self) -> float:
        return self.clock()

    def done(self, started: float, handed: float = 0.0) -> str | None:
        """`handed`: the seconds of this forward spent handing the ready batch over (the rest waited for it)."""
        now = self.clock()
        self.calls += 1
        if self.calls == WAIT_SKIP:
            self.first, self.waited, self.handed = now, 0.0, 0.0
        elif self.calls > WAIT_SKIP:
            self.waited += now - started
            self.handed += handed
        if self.said or self.calls != WAIT_SKIP + WAIT_WINDOW:
            return None
        elapsed = max(now - self.first, 1e-9)
        share = self.waited / elapsed
        if share <= self.limit:
            return None
        self.said = True
        rate = WAIT_WINDOW * self.batch_size / elapsed
        per_batch = (f"{1000 * (self.waited - self.handed) / WAIT_WINDOW:.1f} ms waiting and "
                     f"{1000 * self.handed / WAIT_WINDOW:.1f} ms handing over a batch, the images {self.images}")
        said = (f"PoseDataLayer: the solver waited for data {100 * share:.0f} % of the time over {WAIT_WINDOW} batches "
                f"({rate:.0f} images/s with {self.workers} worker(s), {os.cpu_count()} cores; {per_batch})")
        if self.handed >= 0.5 * self.waited:
            return said + ": mostly handing the ready batches to the net, which more workers do not shorten"
        return said + ": more workers would help (\"workers\" in the data layer's param_str)"


def wait_limit() -> float:
    """The share of the solver's time above which the data layer says it kept the solver waiting: WAIT_LIMIT, or
    PARK3D_DATA_WAIT_LIMIT (0: always say it; tools/device_e2e.sh does, to see where a card's time goes)."""
    value = os.environ.get("PARK3D_DATA_WAIT_LIMIT", "")
    try:
        return float(value) if value else WAIT_LIMIT
    except ValueError:
        raise ValueError(f"PoseDataLayer: PARK3D_DATA_WAIT_LIMIT={value!r} is not a number (a share of the time, "
                         f"e.g. {WAIT_LIMIT}; 0 reports always)") from None


def lend_images() -> bool:
    """Whether the image top borrows each prefetched batch's memory (pycaffe's Blob.borrow_data, patch 0012)
    instead of a copy: where that pycaffe has it, unless PARK3D_DATA_BORROW=0 (the copy, to measure the two)."""
    return hasattr(caffe._caffe.Blob, "borrow_data") and os.environ.get("PARK3D_DATA_BORROW", "1") != "0"


def position_of(value) -> int:
    """The batch number a data layer's position blob holds; a clear error if the solver changed it."""
    value = float(value)
    if abs(value - round(value)) > 1e-3 or not 0 <= value < MAX_POSITION:
        raise ValueError(f"PoseDataLayer: its position blob holds {value}, not a batch number: the solver updated it; "
                         "give the layer `param { lr_mult: 0 decay_mult: 0 }` (prototxt/generate.py does)")
    return int(round(value))


class PoseDataLayer(ReportingLayer):
    """See the module docstring. param_str (JSON): lmdb (required: a path, or a list of paths drawn from as
    one set, e.g. every action's training LMDB for pooled training), batch_size (128), crop_size (225),
    seed (0), pca_sigma (0.1; train only), workers ("auto": default_workers; or a number, 0: read in the layer's
    own process), prefetch (slots per worker, 2), shuffle
    (default: true in TRAIN), rank / ranks (multi-GPU training: this process's share of the batches; default
    from PARK3D_RANK / PARK3D_RANKS, which tools/train_multi_gpu.py sets, else 0 of 1).

    In TRAIN the layer keeps the number of the next batch in a parameter blob (give the layer `param { lr_mult: 0
    decay_mult: 0 }`), as the 2D loss keeps its iteration count: Caffe saves it in every snapshot and restores it
    on `caffe train -snapshot`, so a resumed run reads the batches (and their crops and colour draws, which
    depend only on the batch number) that the uninterrupted run reads. A TEST layer has the blob too (Caffe
    shares a test net's layers with the train net's by name) but counts its batches itself."""

    def setup(self, bottom, top):
        check_counts(self, bottom, top, 0, 3)
        p = parse_params(self, {"lmdb": None, "batch_size": 128, "crop_size": INPUT_SIZE, "seed": 0,
                                "pca_sigma": PCA_SIGMA, "workers": "auto", "prefetch": 2, "shuffle": None,
                                "rank": None, "ranks": None})
        if not p["lmdb"]:
            raise ValueError("PoseDataLayer: param_str needs \"lmdb\": the path of an LMDB made by tools/make_lmdb.py "
                             "(or a list of them)")
        paths = lmdb_list(p["lmdb"])
        for path in paths:
            if not Path(path).is_dir():
                raise ValueError(f"PoseDataLayer: {path}: no such LMDB; build it with tools/make_lmdb.py "
                                 "(paths are relative to the directory caffe runs in)")
        train = self.phase == caffe.TRAIN
        shuffle = train if p["shuffle"] is None else bool(p["shuffle"])
        self.batch_size = int(p["batch_size"])
        crop = int(p["crop_size"])
        rank, ranks = data_rank(p, train)
        self.source_args = (paths, self.batch_size, crop, shuffle, int(p["seed"]),
                            float(p["pca_sigma"]) if train else 0.0, rank, ranks)
        self.source = BatchSource(*self.source_args)  # validates the LMDB here, with a clear error
        j = len(self.source.meta["joints"])
        self.shapes = [(self.batch_size, 3, crop, crop), (self.batch_size, j, 2), (self.batch_size, j, 3)]
        auto = p["workers"] == "auto"
        self.workers = default_workers(caffe_has_cuda(), os.cpu_count() or 1) if auto else max(0, int(p["workers"]))
        self.prefetch = max(1, int(p["prefetch"]))
        self.lend = lend_images()
        self.train = train
        if len(self.blobs) == 0:  # the next TRAIN batch, in a blob that snapshots save (docstring)
            self.blobs.add_blob(1)
            self.blobs[0].data[...] = 0
        self.batch = 0  # the next batch
        self.prefetcher = None
        self.wait = DataWait(self.workers, self.batch_size, limit=wait_limit()) if train else None

    def reshape(self, bottom, top):
        for i, shape in enumerate(self.shapes):  # index: pycaffe's blob vectors cannot be iterated
            top[i].reshape(*shape)

    def forward(self, bottom, top):
        started = self.wait.start() if self.wait else 0.0
        handed = self.fill(top)
        said = self.wait.done(started, handed) if self.wait else None
        if said:
            print(said, file=sys.stderr, flush=True)

    def fill(self, top) -> float:
        """The next batch into the tops; returns the seconds spent handing it over from a worker's slot (0
        in-process). From a worker, the image top borrows the slot's memory instead of a copy (lend_images)."""
        if self.train:
            self.batch = position_of(self.blobs[0].data[0])
        handed = 0.0
        if self.workers == 0:
            self.source.fill(self.batch, *(top[i].data for i in range(3)))
        else:
            borrow = top[0].borrow_data if self.lend else None
            if self.prefetcher is None or self.prefetcher.next_batch != self.batch:  # first, or restored elsewhere
                pin = (caffe._caffe.pin_host_memory, caffe._caffe.unpin_host_memory) if self.lend else None
                self.prefetcher = Prefetcher(self.source_args, self.shapes, self.workers, self.prefetch, self.batch,
                                             pin=pin)
                if self.wait and self.lend:
                    self.wait.images = f"lent{' from page-locked memory' if self.prefetcher.unpin else ''}"
            # top[0].data is not asked for when lending: it would allocate the blob's own (pinned, on a GPU) copy
            self.prefetcher.get(self.batch, [None if borrow else top[0].data, top[1].data, top[2].data], borrow)
            handed = self.prefetcher.handed
        self.batch += 1
        if self.train:
            self.blobs[0].data[0] = self.batch
        return handed

    def backward(self, top, propagate_down, bottom):
        pass
