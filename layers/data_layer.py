"""The data layer of section 4 over the LMDBs of tools/make_lmdb.py.

Tops: image (N, 3, 225, 225) float32 BGR minus the training mean; joints2d (N, 17, 2) in the 225 crop's
pixels; pose3d (N, 17, 3) normalised (zero mean, unit Frobenius norm).
TRAIN: a random 225 crop of the 250 crop, fancy-PCA colour augmentation, reshuffled every epoch.
TEST: the centre crop, records in key order, no augmentation. Seeded: batch b of epoch e is the same
whatever the number of workers.

The batches come from data_prep.batches (record decoding, crops, augmentation: no Caffe there), prepared
ahead by worker processes (layers.prefetch); forward only copies a ready batch into the tops.

  layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"
          python_param { module: "layers.data_layer" layer: "PoseDataLayer"
                         param_str: '{"lmdb": "data/lmdb/walking_train.lmdb", "batch_size": 128}' } }

"lmdb" may be a list: the layer then draws from the union of the LMDBs (pooled training over several actions
without a pooled copy), with the training statistics pooled from their meta.json (data_prep.pooled).
Records may be raw or JPEG (data_prep.records); decoding happens in the worker processes.
"""
from __future__ import annotations

import os
from pathlib import Path

import caffe

from data_prep.batches import BatchSource, lmdb_list

from .config import INPUT_SIZE, PCA_SIGMA
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
    seed (0), pca_sigma (0.1; train only), workers (1), prefetch (slots per worker, 2), shuffle
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
                                "pca_sigma": PCA_SIGMA, "workers": 1, "prefetch": 2, "shuffle": None,
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
        self.workers = max(0, int(p["workers"]))
        self.prefetch = max(1, int(p["prefetch"]))
        self.train = train
        if len(self.blobs) == 0:  # the next TRAIN batch, in a blob that snapshots save (docstring)
            self.blobs.add_blob(1)
            self.blobs[0].data[...] = 0
        self.batch = 0  # the next batch
        self.prefetcher = None

    def reshape(self, bottom, top):
        for i, shape in enumerate(self.shapes):  # index: pycaffe's blob vectors cannot be iterated
            top[i].reshape(*shape)

    def forward(self, bottom, top):
        if self.train:
            self.batch = position_of(self.blobs[0].data[0])
        tops = [top[i].data for i in range(3)]
        if self.workers == 0:
            self.source.fill(self.batch, *tops)
        else:
            if self.prefetcher is None or self.prefetcher.next_batch != self.batch:  # first, or restored elsewhere
                self.prefetcher = Prefetcher(self.source_args, self.shapes, self.workers, self.prefetch, self.batch)
            self.prefetcher.get(self.batch, tops)
        self.batch += 1
        if self.train:
            self.blobs[0].data[0] = self.batch

    def backward(self, top, propagate_down, bottom):
        pass
