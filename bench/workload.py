"""What the benchmark's sections run on: its options, the small synthetic dataset and its LMDBs, the full
model's nets at the benchmark's batch, weights at initialisation, and the reference net."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import caffe
from caffe import layers as L
from caffe import params as P

from data_prep.cli import REPO
from data_prep.lmdb_build import build_lmdbs
from data_prep.records import read_meta
from data_prep.synthetic_lmdbs import prepare_synthetic
from layers.config import CONV_LAYERS, INPUT_SIZE
from prototxt.generate import build_net, write_net

from .measure import CACHE, caffe_cpu_model


@dataclasses.dataclass
class Options:
    """The benchmark's settings (tools/benchmark.py's flags, where each is described)."""
    work: Path = REPO / "out" / "bench"
    batch: int = 32
    frames: int = 100
    batches: int = 20
    long_frames: int = 5000
    gpu: int | None = None
    tf32: bool = False
    train_iters: int = 30
    torch_iters: int = 5
    torch_venv: Path = CACHE / "torch-venv"
    install_torch: bool = False
    caffe_home: str | None = None
    speed_iters: int = 5
    speed_rounds: int = 2
    weights: str | None = None
    lmdb_root: str | None = None


def zfnet_like(batch):
    """A ZFNet-like reference net: the paper's trunk (layers.config.CONV_LAYERS: conv 7x7/2, pool 3/2, conv 5x5/2,
    pool 3/2, three 3x3 convs, pool 3/2) without BatchNorm, then fc 1024 and a softmax loss."""
    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch, 3, INPUT_SIZE, INPUT_SIZE]), dict(dim=[batch])], ntop=2,
                                  data_filler=[dict(type="gaussian", std=1), dict(type="constant")])
    x = n.data
    for name, maps, kernel, stride, pad, pool in CONV_LAYERS:
        x = L.Convolution(x, num_output=maps, kernel_size=kernel, stride=stride, pad=pad,
                          weight_filler=dict(type="msra"))
        setattr(n, name, x)
        x = L.ReLU(x, in_place=True)
        setattr(n, name.replace("conv", "relu"), x)
        if pool:
            x = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2)
            setattr(n, name.replace("conv", "pool"), x)
    n.fc = L.InnerProduct(x, num_output=1024, weight_filler=dict(type="msra"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n.to_proto()


def ensure_data(work: Path, frames: int) -> Path:

    return prepare_synthetic(work, ("Walking",), frames, 2, progress=False)


def encoded_lmdb(work: Path, frames: int, encoding: str) -> Path:
    """The benchmark's Walking LMDBs in one encoding, read once so that timings start from the page cache."""
    ensure_data(work, frames)
    out = work / f"lmdb_{encoding}"
    if (
        not (out / "walking_test.lmdb" / "meta.json").is_file()
        or read_meta(out / "walking_test.lmdb").get("encoding") != encoding
    ):
        build_lmdbs(work / "h36m", out, actions=("Walking",), step=2, workers=2, progress=False, encoding=encoding)
    with open(out / "walking_train.lmdb" / "data.mdb", "rb") as f:
        while f.read(1 << 24):
            pass
    return out


def random_weights(work: Path) -> Path:
    """The full model's weights at their initialisation, BatchNorm set to mean 0 and variance 1 (its zero statistics
    would scale every layer by 1/sqrt(eps) and overflow: a speed measured on infinities is no speed)."""
    path = work / "random_both_bn1.caffemodel"
    if not path.is_file():
        net = caffe.Net(str(REPO / "prototxt" / "deploy_both.prototxt"), caffe.TEST)
        for name, layer in zip(net._layer_names, net.layers):
            if layer.type == "BatchNorm":
                mean, var, factor = net.params[name]
                mean.data[...], var.data[...], factor.data[...] = 0, 1, 1
        net.save(str(path))
    return path


def full_model_nets(work: Path, opts, prefix: str) -> tuple[Path, Path]:
    """The full model's train net over the synthetic LMDB and its deploy net, both at --batch, for `caffe time`."""
    lmdb = ensure_data(work, opts.frames)
    train = work / f"{prefix}_train_both.prototxt"
    write_net(train, build_net("train", multi_root=True, use_2d_cls=True, batch_size=opts.batch,
                               lmdb=str(lmdb / "walking_train.lmdb"), lambda_step_iter=100))
    deploy = work / f"{prefix}_deploy_both.prototxt"
    net, layout = build_net("deploy", multi_root=True, use_2d_cls=True)
    net.layer[0].input_param.shape[0].dim[0] = opts.batch
    write_net(deploy, (net, layout))
    return train, deploy


def print_cpu(extra: str = "") -> None:
    print(f"  CPU: {caffe_cpu_model()}, {os.cpu_count()} cores; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset: OpenBLAS detects)')}{extra}", flush=True)
