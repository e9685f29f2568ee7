"""The data layer of section 4 over the LMDBs of tools/make_lmdb.py.

Tops: image (N, 3, 225, 225) float32 BGR minus the training mean; joints2d (N, 17, 2) in the 225 crop's
pixels; pose3d (N, 17, 3) normalised (zero mean, unit Frobenius norm).
TRAIN: a random 225 crop of the 250 crop, fancy-PCA colour augmentation, reshuffled every epoch.
TEST: the centre crop, records in key order, no augmentation. Seeded: batch b of epoch e is the same
whatever the number of workers.

Batches are prepared by worker processes into shared-memory slots (the caffe tool holds Python's GIL
while it runs C++, so a Python thread would starve); forward only copies a ready slot into the tops.

  layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"
          python_param { module: "layers.data_layer" layer: "PoseDataLayer"
                         param_str: '{"lmdb": "data/lmdb/walking_train.lmdb", "batch_size": 128}' } }

"lmdb" may be a list: the layer then draws from the union of the LMDBs (pooled training over several actions
without a pooled copy), with the training statistics pooled from their meta.json (data_prep.pooled).
Records may be raw or JPEG (data_prep.records); decoding happens in the worker processes.
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path

import caffe
import numpy as np

from data_prep.lmdb_build import read_meta
from data_prep.pooled import pooled_statistics
from data_prep.records import decode_record

from .config import INPUT_SIZE, PCA_SIGMA
from .pose_layers import ReportingLayer, check_counts, parse_params


def augment_record(record: dict, rng: np.random.Generator | None, crop: int, mean_bgr: np.ndarray,
                   eigval_rgb: np.ndarray, eigvec_rgb: np.ndarray, pca_sigma: float):
    """One decoded record -> (image (3, crop, crop) float32, joints2d (J, 2), pose3d (J, 3)).

    rng None: centre crop, no colour change. Otherwise a random crop offset and a fancy-PCA shift
    sum_i alpha_i * sqrt(lambda_i) * p_i, alpha_i ~ N(0, pca_sigma), added to every pixel (0-255 scale).
    (Krizhevsky scales by the eigenvalue of the covariance of [0, 1] pixels; on the 0-255 scale its
    square root, the standard deviation along p_i, gives the same few-level shifts.)
    """
    image = record["image"]
    size = image.shape[1]
    if size < crop or image.shape[2] < crop:
        raise ValueError(f"record image {image.shape[1:]} is smaller than the crop {crop}")
    if rng is None:
        oy = ox = (size - crop) // 2
    else:
        oy, ox = rng.integers(0, size - crop + 1, 2)
    out = image[:, oy:oy + crop, ox:ox + crop].astype(np.float32)
    shift_bgr = -np.asarray(mean_bgr, dtype=np.float32)
    if rng is not None and pca_sigma > 0:
        alpha = rng.normal(0.0, pca_sigma, 3)
        shift_bgr = shift_bgr + (eigvec_rgb @ (alpha * np.sqrt(eigval_rgb)))[::-1].astype(np.float32)
    out += shift_bgr[:, None, None]
    joints = record["joints2d"] - np.array([ox, oy], dtype=np.float32)
    return out, joints, record["pose3d"]


def batch_indices(num_records: int, batch_size: int, batch: int, seed: int, shuffle: bool) -> np.ndarray:
    """Record indices of global batch number `batch`: epochs wrap, each epoch its own permutation."""
    start = batch * batch_size
    out = np.empty(batch_size, dtype=np.int64)
    for k in range(batch_size):
        pos = start + k
        epoch, i = divmod(pos, num_records)
        perm = _permutation(num_records, seed, epoch) if shuffle else None
        out[k] = perm[i] if shuffle else i
    return out


_perm_cache: dict = {}


def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    key = (n, seed, epoch)
    if key not in _perm_cache:
        _perm_cache.clear()
        _perm_cache[key] = np.random.default_rng([seed, epoch]).permutation(n)
    return _perm_cache[key]


def lmdb_list(lmdb) -> list:
    """param_str's "lmdb": one path or a list of paths read as one (their union)."""
    paths = [lmdb] if isinstance(lmdb, (str, Path)) else list(lmdb)
    if not paths or not all(isinstance(p, (str, Path)) and str(p) for p in paths):
        raise ValueError(f"lmdb: expected a path or a list of paths, got {lmdb!r}")
    return [str(p) for p in paths]


class BatchSource:
    """Reads and augments batches from one LMDB, or from the union of several (pooled statistics,
    data_prep.pooled); used in worker processes and in-process."""

    def __init__(self, lmdb_path, batch_size: int, crop: int, train: bool, seed: int, pca_sigma: float):
        import lmdb

        self.paths = lmdb_list(lmdb_path)
        self.path = self.paths[0] if len(self.paths) == 1 else " + ".join(self.paths)
        metas = [read_meta(p) for p in self.paths]
        self.meta = metas[0] if len(metas) == 1 else pooled_statistics(metas, self.paths)
        self.envs, self.keys = [], []  # keys: (LMDB index, record key), each LMDB in key order, in list order
        for n, (path, meta) in enumerate(zip(self.paths, metas)):
            try:
                env = lmdb.open(path, readonly=True, lock=False, readahead=False, max_readers=64)
            except lmdb.Error as e:
                raise ValueError(f"{path}: cannot open LMDB ({e}); rebuild it with tools/make_lmdb.py") from e
            with env.begin() as txn:
                keys = list(txn.cursor().iternext(keys=True, values=False))
            if len(keys) != meta["count"]:
                raise ValueError(f"{path}: {len(keys)} records but meta.json says {meta['count']}: "
                                 "truncated or mixed LMDB; rebuild it with tools/make_lmdb.py")
            self.envs.append(env)
            self.keys.extend((n, k) for k in keys)
        self.batch_size, self.crop, self.train, self.seed, self.pca_sigma = batch_size, crop, train, seed, pca_sigma
        self.mean_bgr = np.asarray(self.meta["mean_bgr"], dtype=np.float32)
        self.eigval = np.asarray(self.meta["pca_eigval_rgb"], dtype=np.float64)
        self.eigvec = np.asarray(self.meta["pca_eigvec_rgb"], dtype=np.float64)

    def fill(self, batch: int, image: np.ndarray, joints: np.ndarray, pose: np.ndarray, extra: dict | None = None) -> None:
        """Fill the arrays with batch number `batch`; `extra` maps other record fields (e.g. 'pose3d_mm')
        to arrays to fill as well."""
        idx = batch_indices(len(self.keys), self.batch_size, batch, self.seed, self.train)
        rng = np.random.default_rng([self.seed, 1_000_003, batch]) if self.train else None
        txns = [env.begin() for env in self.envs]
        try:
            for k, i in enumerate(idx):
                n, key = self.keys[i]
                value = txns[n].get(key)
                if value is None:
                    raise ValueError(f"{self.paths[n]}: record {key!r} vanished; the LMDB is damaged, rebuild it")
                record = decode_record(value)
                image[k], joints[k], pose[k] = augment_record(record, rng, self.crop, self.mean_bgr,
                                                              self.eigval, self.eigvec, self.pca_sigma)
                for name, array in (extra or {}).items():
                    array[k] = record[name]
        finally:
            for txn in txns:
                txn.abort()


def _worker(source_args, worker, workers, shm_name, shapes, free_q, ready_q, first_batch):
    """Fills slots for batches worker, worker + workers, ...; exits when its parent goes away."""
    import queue
    from multiprocessing import shared_memory

    parent = os.getppid()
    source = BatchSource(*source_args)
    shm = shared_memory.SharedMemory(name=shm_name)
    slots = _slot_views(shm.buf, shapes)
    batch = first_batch + worker
    try:
        while True:
            try:
                slot = free_q.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:
                    return
                continue
            if slot is None:
                return
            source.fill(batch, *slots[slot])
            ready_q.put((slot, batch))
            batch += workers
    finally:
        del slots
        shm.close()


def _shutdown(shm, pool):
    for proc in pool:
        proc.terminate()
        proc.join(timeout=2)
    try:
        shm.close()
    except BufferError:  # a view is still alive somewhere; unlinking still frees the name
        pass
    shm.unlink()


def _slot_views(buf, shapes):
    """Per slot: (image, joints, pose) float32 views into one shared buffer."""
    per_slot = sum(int(np.prod(s)) for s in shapes)
    n_slots = len(buf) // (4 * per_slot)
    views = []
    for s in range(n_slots):
        off = s * per_slot * 4
        parts = []
        for shape in shapes:
            n = int(np.prod(shape))
            parts.append(np.ndarray(shape, dtype=np.float32, buffer=buf, offset=off))
            off += 4 * n
        views.append(parts)
    return views


class PoseDataLayer(ReportingLayer):
    """See the module docstring. param_str (JSON): lmdb (required: a path, or a list of paths drawn from as
    one set, e.g. every action's training LMDB for pooled training), batch_size (128), crop_size (225),
    seed (0), pca_sigma (0.1; train only), workers (1), prefetch (slots per worker, 2), shuffle
    (default: true in TRAIN)."""

    def setup(self, bottom, top):
        check_counts(self, bottom, top, 0, 3)
        p = parse_params(self, {"lmdb": None, "batch_size": 128, "crop_size": INPUT_SIZE, "seed": 0,
                                "pca_sigma": PCA_SIGMA, "workers": 1, "prefetch": 2, "shuffle": None})
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
        self.source_args = (paths, self.batch_size, crop, shuffle, int(p["seed"]),
                            float(p["pca_sigma"]) if train else 0.0)
        self.source = BatchSource(*self.source_args)  # validates the LMDB here, with a clear error
        j = len(self.source.meta["joints"])
        self.shapes = [(self.batch_size, 3, crop, crop), (self.batch_size, j, 2), (self.batch_size, j, 3)]
        self.workers = max(0, int(p["workers"]))
        self.prefetch = max(1, int(p["prefetch"]))
        self.batch = 0
        self._pool = None

    def reshape(self, bottom, top):
        for i, shape in enumerate(self.shapes):  # index: pycaffe's blob vectors cannot be iterated
            top[i].reshape(*shape)

    def _start_workers(self):
        import multiprocessing as mp
        from multiprocessing import shared_memory

        ctx = mp.get_context("fork")
        per_slot = sum(int(np.prod(s)) for s in self.shapes) * 4
        n_slots = self.workers * self.prefetch
        self._shm = shared_memory.SharedMemory(create=True, size=per_slot * n_slots)
        self._slots = _slot_views(self._shm.buf, self.shapes)
        self._free = [ctx.Queue() for _ in range(self.workers)]
        self._ready = [ctx.Queue() for _ in range(self.workers)]
        for s in range(n_slots):
            self._free[s % self.workers].put(s)
        self._pool = [ctx.Process(target=_worker, daemon=True,
                                  args=(self.source_args, w, self.workers, self._shm.name, self.shapes,
                                        self._free[w], self._ready[w], self.batch))
                      for w in range(self.workers)]
        for proc in self._pool:
            proc.start()
        # Stop the workers and free the shared memory when the net goes away (pycaffe); under the caffe
        # tool the workers exit when their parent does and multiprocessing's tracker frees the memory.
        weakref.finalize(self, _shutdown, self._shm, self._pool)

    def forward(self, bottom, top):
        if self.workers == 0:
            self.source.fill(self.batch, top[0].data, top[1].data, top[2].data)
        else:
            if self._pool is None:
                self._start_workers()
            w = self.batch % self.workers
            slot, batch = self._next_ready(w)
            assert batch == self.batch, (batch, self.batch)
            for i, view in enumerate(self._slots[slot]):
                top[i].data[...] = view
            self._free[w].put(slot)
        self.batch += 1

    def _next_ready(self, w):
        import queue

        while True:
            try:
                return self._ready[w].get(timeout=5.0)
            except queue.Empty:
                if not self._pool[w].is_alive():
                    raise RuntimeError(f"PoseDataLayer: data worker {w} for {self.source.path} died "
                                       f"(exit code {self._pool[w].exitcode}); see its error above")

    def backward(self, top, propagate_down, bottom):
        pass
