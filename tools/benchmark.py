"""Speed figures the issues ask for, printed as a Markdown table (copy them into docs/benchmarks.md).

  python tools/benchmark.py                      # every section, on a small synthetic dataset in out/bench
  python tools/benchmark.py --sections caffe-time data-layer

Sections:
  setup       warm `tools/setup.sh` (the cold build time is printed by setup.sh itself)
  caffe-time  `caffe time` forward/backward per batch: a ZFNet-like net and the paper's four variants
  lmdb        LMDB build frames/s with 1 and 2 workers vs raw video decode frames/s; bytes per record
  data-layer  PoseDataLayer images/s (TRAIN, augmentation) with 0, 1, 2 worker processes
  train       images/s of a real `caffe train` run of the full model
  eval        evaluation images/s through the deploy net (pycaffe)
  torch       the same net in PyTorch, training images/s (if torch is installed)
"""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # before Caffe loads: its INFO log drowns the output

import argparse
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("setup", "caffe-time", "lmdb", "data-layer", "train", "eval", "torch")
rows = []


def row(section, what, value, unit):
    rows.append((section, what, value, unit))
    print(f"  {section:11s} {what:60s} {value:>10.2f} {unit}", flush=True)


def zfnet_like(batch):
    """Issue 2's reference net: conv 7x7/2, pool 3/2, conv 5x5/2, pool 3/2, three 3x3 convs, pool 3/2, fc 1024."""
    import caffe
    from caffe import layers as L, params as P

    n = caffe.NetSpec()
    n.data, n.label = L.DummyData(shape=[dict(dim=[batch, 3, 225, 225]), dict(dim=[batch])], ntop=2,
                                  data_filler=[dict(type="gaussian", std=1), dict(type="constant")])
    x = n.data
    for i, (maps, k, s, p, pool) in enumerate([(64, 7, 2, 0, True), (128, 5, 2, 0, True), (192, 3, 1, 1, False),
                                               (192, 3, 1, 1, False), (192, 3, 1, 1, True)], 1):
        x = L.Convolution(x, num_output=maps, kernel_size=k, stride=s, pad=p, weight_filler=dict(type="msra"))
        setattr(n, f"conv{i}", x)
        x = L.ReLU(x, in_place=True)
        setattr(n, f"relu{i}", x)
        if pool:
            x = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=3, stride=2)
            setattr(n, f"pool{i}", x)
    n.fc = L.InnerProduct(x, num_output=1024, weight_filler=dict(type="msra"))
    n.loss = L.SoftmaxWithLoss(n.fc, n.label)
    return n.to_proto()


def caffe_time(model: Path, iterations: int = 5) -> tuple[float, float]:
    from tools.training import caffe_env

    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "time", "-model", str(model), "-iterations", str(iterations)],
                         capture_output=True, text=True, env=caffe_env(GLOG_minloglevel="0"), cwd=REPO)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    fwd = float(re.search(r"Average Forward pass: ([0-9.]+) ms", out.stderr).group(1))
    bwd = float(re.search(r"Average Backward pass: ([0-9.]+) ms", out.stderr).group(1))
    return fwd, bwd


def ensure_data(work: Path, frames: int) -> Path:
    from tools.experiments import prepare_synthetic

    return prepare_synthetic(work, ("Walking",), frames, 2, progress=False)


def section_setup(work, a):
    t0 = time.time()
    subprocess.run(["bash", str(REPO / "tools" / "setup.sh")], check=True, capture_output=True)
    row("setup", "warm tools/setup.sh (everything cached)", time.time() - t0, "s")


def section_caffe_time(work, a):
    from prototxt.generate import VARIANTS, build_net, write_text

    lmdb = ensure_data(work, a.frames)
    path = work / "zfnet_like.prototxt"
    write_text(path, zfnet_like(a.batch))
    fwd, bwd = caffe_time(path)
    row("caffe-time", f"ZFNet-like (issue 2), batch {a.batch}, forward", fwd, "ms")
    row("caffe-time", f"ZFNet-like (issue 2), batch {a.batch}, backward", bwd, "ms")
    for variant, (multi_root, use_2d_cls) in VARIANTS.items():
        path = work / f"train_{variant}.prototxt"
        write_text(path, build_net("train", multi_root=multi_root, use_2d_cls=use_2d_cls, batch_size=a.batch,
                                   lmdb=str(lmdb / "walking_train.lmdb"), lambda_step_iter=100))
        fwd, bwd = caffe_time(path)
        row("caffe-time", f"paper net {variant}, batch {a.batch}, forward", fwd, "ms")
        row("caffe-time", f"paper net {variant}, batch {a.batch}, backward", bwd, "ms")
        row("caffe-time", f"paper net {variant}, batch {a.batch}, forward+backward images/s", a.batch * 1000 / (fwd + bwd), "img/s")


def _decode_count(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.grab() and cap.retrieve()[0]:
        n += 1
    return n


def section_lmdb(work, a):
    import shutil

    from data_prep.lmdb_build import build_lmdbs

    ensure_data(work, a.frames)
    videos = sorted((work / "h36m").glob("S*/Videos/*.mp4"))
    for workers in (1, 2):
        t0 = time.time()
        with ProcessPoolExecutor(workers) as pool:
            n = sum(pool.map(_decode_count, videos))
        row("lmdb", f"raw video decode, {workers} process(es) ({n} frames)", n / (time.time() - t0), "frames/s")
    for step in (1, 5):
        for workers in (1, 2):
            out = work / f"lmdb_bench_{step}_{workers}"
            shutil.rmtree(out, ignore_errors=True)
            s = build_lmdbs(work / "h36m", out, actions=("Walking",), step=step, workers=workers, progress=False)
            row("lmdb", f"LMDB build, frame step {step}, {workers} worker(s): video frames/s ({s.frames} records)",
                n / s.seconds, "frames/s")
    size = sum(f.stat().st_size for f in (out / "walking_train.lmdb").glob("data.mdb"))
    from data_prep.lmdb_build import read_meta

    row("lmdb", "LMDB bytes per record (data.mdb / records)", size / read_meta(out / "walking_train.lmdb")["count"] / 1024, "KiB")


def section_data_layer(work, a):
    import caffe

    lmdb = ensure_data(work, a.frames)
    for workers in (0, 1, 2):
        p = json.dumps({"lmdb": str(lmdb / "walking_train.lmdb"), "batch_size": a.batch, "workers": workers})
        net_file = work / f"data_{workers}.prototxt"
        net_file.write_text('layer { name: "data" type: "Python" top: "data" top: "joints2d" top: "pose3d"\n'
                            f'  python_param {{ module: "layers.data_layer" layer: "PoseDataLayer" param_str: \'{p}\' }} }}\n')
        net = caffe.Net(str(net_file), caffe.TRAIN)
        net.forward()
        t0 = time.time()
        for _ in range(a.batches):
            net.forward()
        row("data-layer", f"PoseDataLayer TRAIN, batch {a.batch}, {workers} worker process(es)",
            a.batches * a.batch / (time.time() - t0), "img/s")
        del net


def section_train(work, a):
    from tools.experiments import short_schedule_solver
    from tools.training import caffe_env

    lmdb = ensure_data(work, a.frames)
    solver, _ = short_schedule_solver(work / "train", "Walking", "both", lmdb, a.batch, 28, work / "train")
    text = re.sub(r"max_iter: \d+", f"max_iter: {a.train_iters}", solver.read_text())
    text = re.sub(r"(test_interval|snapshot): \d+", r"\1: 100000", text)
    solver.write_text(text)
    out = subprocess.run([str(REPO / ".venv" / "bin" / "caffe"), "train", "-solver", str(solver)], capture_output=True,
                         text=True, env=caffe_env(GLOG_minloglevel="0"), cwd=REPO)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    stamps = [time.mktime(time.strptime(m.group(1), "%Y%m%d %H:%M:%S")) + float("0." + m.group(2))
              for m in re.finditer(r"^I(\d{8} \d\d:\d\d:\d\d)\.(\d+) .*solver\.cpp:\d+\] Iteration \d+ \(", out.stderr, re.M)]
    per_display = (stamps[-1] - stamps[0]) / max(1, len(stamps) - 1)  # the solver displays every 10 iterations
    row("train", f"caffe train full model, batch {a.batch} ({a.train_iters} iterations)",
        a.batch * 10 / per_display if per_display > 0 else float("nan"), "img/s")


def section_eval(work, a):
    import caffe

    from data_prep.lmdb_build import read_meta
    from layers.deploy import load_deploy_net
    from layers.inference import predict_lmdb

    lmdb = ensure_data(work, a.frames)
    caffe.set_mode_cpu()
    net = load_deploy_net(REPO / "prototxt" / "deploy_both.prototxt", _random_weights(work), batch_size=a.batch)
    meta = read_meta(lmdb / "walking_test.lmdb")
    t0 = time.time()
    p = predict_lmdb(net, str(lmdb / "walking_test.lmdb"), meta["mean_torso_lengths_mm"])
    row("eval", f"evaluation through the deploy net (CPU), batch {a.batch}", len(p.gt_mm) / (time.time() - t0), "img/s")


def _random_weights(work: Path) -> Path:
    import caffe

    path = work / "random_both.caffemodel"
    if not path.is_file():
        net = caffe.Net(str(REPO / "prototxt" / "deploy_both.prototxt"), caffe.TEST)
        net.save(str(path))
    return path


def section_torch(work, a):
    try:
        import torch
        from torch import nn
    except ImportError:
        print("  torch       not installed (pip install torch==2.13.0 into .venv to compare); skipped")
        return
    torch.set_num_threads(os.cpu_count())

    def block(cin, cout, k, s, p):
        return [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    def fc(cin, cout):
        return nn.Sequential(nn.Linear(cin, cout, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True), nn.Dropout(0.3))

    class Net(nn.Module):  # the paper's full model (six roots + 2D-cls), as prototxt/generate.py builds it
        def __init__(self):
            super().__init__()
            pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
            self.trunk = nn.Sequential(*block(3, 64, 7, 2, 0), pool(), *block(64, 128, 5, 2, 0), pool(),
                                       *block(128, 192, 3, 1, 1), *block(192, 192, 3, 1, 1), *block(192, 192, 3, 1, 1), pool(),
                                       nn.Flatten())
            self.b2d = nn.Sequential(fc(6912, 2048), fc(2048, 2048), nn.Linear(2048, 17 * 256))
            self.fc1_3d, self.fc_probs = fc(6912, 2048), fc(17 * 256, 2048)
            self.heads = nn.ModuleList([nn.Sequential(fc(4096, 2048), nn.Linear(2048, 48)) for _ in range(6)])

        def forward(self, x):
            t = self.trunk(x)
            logits = self.b2d(t).view(-1, 17, 256)
            h = torch.cat([self.fc1_3d(t), self.fc_probs(torch.softmax(logits, 2).flatten(1))], 1)
            return logits, [head(h) for head in self.heads]

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.01 * a.batch / 128, momentum=0.9, weight_decay=0.001)
    x, t2, t3 = torch.randn(a.batch, 3, 225, 225), torch.softmax(torch.randn(a.batch, 17, 256), 2), torch.randn(a.batch, 48)

    def step():
        opt.zero_grad()
        logits, outs = net(x)
        loss = 0.1 * -(t2 * torch.log_softmax(logits, 2)).sum() / a.batch + sum(0.5 * ((o - t3) ** 2).sum() / a.batch for o in outs)
        loss.backward()
        opt.step()

    step()
    t0 = time.time()
    for _ in range(a.torch_iters):
        step()
    row("torch", f"PyTorch {torch.__version__} same net, train step, batch {a.batch}", a.torch_iters * a.batch / (time.time() - t0), "img/s")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--work", default=str(REPO / "out" / "bench"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=100, help="frames per synthetic sequence")
    p.add_argument("--batches", type=int, default=20, help="data-layer batches to time")
    p.add_argument("--train-iters", type=int, default=30)
    p.add_argument("--torch-iters", type=int, default=5)
    a = p.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    print(f"benchmark on {os.cpu_count()} cores; batch {a.batch}")
    for s in a.sections:
        globals()[f"section_{s.replace('-', '_')}"](work, a)
    print("\n| section | measurement | value | unit |\n|---|---|---:|---|")
    for section, what, value, unit in rows:
        print(f"| {section} | {what} | {value:.2f} | {unit} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
