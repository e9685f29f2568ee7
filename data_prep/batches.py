"""The data layer's batches without Caffe (section 4): which records make global batch b (each epoch its own
seeded permutation), and each record turned into the net's input — a 225 crop of the 250 crop (random in
training, the centre at test), the training mean subtracted, fancy-PCA colour augmentation in training —
and an input turned back into an image for figures (preprocess / deprocess, as Caffe's SimpleTransformer).

A BatchSource reads one LMDB of tools/make_lmdb.py, or the union of several (their training statistics
pooled, data_prep.pooled); layers/data_layer.py serves its batches to Caffe.
"""
from __future__ import annotations

import functools
from pathlib import Path

import lmdb
import numpy as np
from google.protobuf.message import DecodeError

from .pooled import pooled_statistics
from .records import decode_record, read_meta


def preprocess(image: np.ndarray, crop: int, mean_bgr, rng: np.random.Generator | None = None,
               eigval_rgb=None, eigvec_rgb=None, pca_sigma: float = 0.0) -> tuple[np.ndarray, tuple[int, int]]:
    """(3, H, W) uint8 BGR -> ((3, crop, crop) float32 net input, (ox, oy) offset of the crop).

    rng None: the centre crop, no colour change. Otherwise a random crop offset and a fancy-PCA shift
    sum_i alpha_i * sqrt(lambda_i) * p_i, alpha_i ~ N(0, pca_sigma), added to every pixel (0-255 scale).
    (Krizhevsky scales by the eigenvalue of the covariance of [0, 1] pixels; on the 0-255 scale its
    square root, the standard deviation along p_i, gives the same few-level shifts.)
    """
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
    return out, (int(ox), int(oy))


def deprocess(data: np.ndarray, mean_bgr) -> np.ndarray:
    """Net inputs (..., 3, H, W) back to BGR images on the 0-255 scale (float32; the mean added back)."""
    return data + np.asarray(mean_bgr, dtype=np.float32)[:, None, None]


def augment_record(record: dict, rng: np.random.Generator | None, crop: int, mean_bgr: np.ndarray,
                   eigval_rgb: np.ndarray, eigvec_rgb: np.ndarray, pca_sigma: float):
    """One decoded record -> (image (3, crop, crop) float32, joints2d (J, 2) in the crop, pose3d (J, 3))."""
    out, (ox, oy) = preprocess(record["image"], crop, mean_bgr, rng, eigval_rgb, eigvec_rgb, pca_sigma)
    joints = record["joints2d"] - np.array([ox, oy], dtype=np.float32)
    return out, joints, record["pose3d"]


@functools.lru_cache(maxsize=2)
def epoch_permutation(num_records: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_records)


def batch_indices(num_records: int, batch_size: int, batch: int, seed: int, shuffle: bool) -> np.ndarray:
    """Record indices of global batch number `batch`: epochs wrap, each epoch its own permutation."""
    start = batch * batch_size
    out = np.empty(batch_size, dtype=np.int64)
    for k in range(batch_size):
        epoch, i = divmod(start + k, num_records)
        out[k] = epoch_permutation(num_records, seed, epoch)[i] if shuffle else i
    return out


def lmdb_list(lmdb) -> list:
    """param_str's "lmdb": one path or a list of paths read as one (their union)."""
    paths = [lmdb] if isinstance(lmdb, (str, Path)) else list(lmdb)
    if not paths or not all(isinstance(p, (str, Path)) and str(p) for p in paths):
        raise ValueError(f"lmdb: expected a path or a list of paths, got {lmdb!r}")
    return [str(p) for p in paths]


def global_batch(local: int, rank: int = 0, ranks: int = 1) -> int:
    """The global batch a data layer of rank `rank` (of `ranks`, one per GPU) serves as its local batch `local`:
    rank r takes r, r + k, r + 2k, ..., so one step of all k ranks covers global batches tk ... tk + k - 1 and
    the union over the ranks is the single-GPU order."""
    if not 0 <= rank < ranks:
        raise ValueError(f"rank {rank} of {ranks}: expected 0 <= rank < ranks")
    return local * ranks + rank


class BatchSource:
    """Reads and augments batches from one LMDB, or from the union of several (pooled statistics,
    data_prep.pooled); used in worker processes and in-process. With several ranks (multi-GPU training)
    fill(b) serves this rank's share, global_batch(b, rank, ranks)."""

    def __init__(self, lmdb_path, batch_size: int, crop: int, train: bool, seed: int, pca_sigma: float,
                 rank: int = 0, ranks: int = 1):
        global_batch(0, rank, ranks)  # validates
        self.rank, self.ranks = rank, ranks
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

    def fill(
        self, batch: int, image: np.ndarray, joints: np.ndarray, pose: np.ndarray, extra: dict | None = None
    ) -> None:
        """Fill the arrays with this rank's batch number `batch`; `extra` maps other record fields (e.g.
        'pose3d_mm') to arrays to fill as well."""
        batch = global_batch(batch, self.rank, self.ranks)
        idx = batch_indices(len(self.keys), self.batch_size, batch, self.seed, self.train)
        rng = np.random.default_rng([self.seed, 1_000_003, batch]) if self.train else None
        txns = [env.begin() for env in self.envs]
        try:
            for k, i in enumerate(idx):
                n, key = self.keys[i]
                value = txns[n].get(key)
                if value is None:
                    raise ValueError(f"{self.paths[n]}: record {key!r} vanished; the LMDB is damaged, rebuild it")
                try:
                    record = decode_record(value)
                    image[k], joints[k], pose[k] = augment_record(record, rng, self.crop, self.mean_bgr,
                                                                  self.eigval, self.eigvec, self.pca_sigma)
                except (ValueError, DecodeError) as e:
                    raise ValueError(f"{self.paths[n]}: record {key.decode(errors='replace')!r} is damaged ({e}); "
                                     "rebuild the LMDB with tools/make_lmdb.py") from None
                for name, array in (extra or {}).items():
                    array[k] = record[name]
        finally:
            for txn in txns:
                txn.abort()
