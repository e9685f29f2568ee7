"""Reading a `caffe train` log back: the losses at each logged iteration, train and test, and the summed 3D loss
curves of Fig. 4."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_TRAIN_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+) \(.*\), loss = ")
_TEST_ITER = re.compile(r"solver\.cpp:\d+\] Iteration (\d+), Testing net")
_OUTPUT = re.compile(r"(Train|Test) net output #\d+: (\S+) = ([-0-9.e+naif]+)")


def parse_caffe_log(text: str) -> dict:
    """{'train': {name: [(iter, value)]}, 'test': {name: [(iter, value)]}} from a `caffe train` log."""
    out = {"train": {}, "test": {}}
    it = {"train": None, "test": None}
    for line in text.splitlines():
        m = _TRAIN_ITER.search(line)
        if m:
            it["train"] = int(m.group(1))
            continue
        m = _TEST_ITER.search(line)
        if m:
            it["test"] = int(m.group(1))
            continue
        m = _OUTPUT.search(line)
        if m:
            phase = m.group(1).lower()
            if it[phase] is not None:
                out[phase].setdefault(m.group(2), []).append((it[phase], float(m.group(3))))
    return out


def loss_3d_curve(parsed: dict, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Iterations and the sum of the 3D losses (over roots) at each logged point."""
    series = [v for k, v in parsed[phase].items() if k.startswith("loss_3d")]
    if not series:
        return np.zeros(0), np.zeros(0)
    iters = np.array([i for i, _ in series[0]])
    n = min(len(s) for s in series)
    return iters[:n], np.sum([[v for _, v in s[:n]] for s in series], axis=0)


def fig4_curves(logs: dict) -> dict:
    """label -> {"train": (iterations, 3D loss), "test": (...)} from `caffe train` logs (label -> log path)."""
    curves = {}
    for label, path in logs.items():
        parsed = parse_caffe_log(Path(path).read_text())
        curves[label] = {phase: loss_3d_curve(parsed, phase) for phase in ("train", "test")}
    return curves
