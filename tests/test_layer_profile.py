"""bench/layer_profile.py: `caffe time`'s per-layer lines summed by layer type, checked on a log worked by hand (the
format of Caffe's caffe.cpp, as the H200's logs have it), and its command line as tools/device_check.sh calls it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.layer_profile import by_type, choices_line, cudnn_choices, layer_times, table

REPO = Path(__file__).resolve().parents[1]

LOG = """I1204 10:00:00.000000  1234 caffe.cpp:404] Average time per layer:
I1204 10:00:00.000001  1234 caffe.cpp:407]       data	forward: 0.0025 ms.
I1204 10:00:00.000002  1234 caffe.cpp:410]       data	backward: 0.004 ms.
I1204 10:00:00.000003  1234 caffe.cpp:407]      conv1	forward: 1.5 ms.
I1204 10:00:00.000004  1234 caffe.cpp:410]      conv1	backward: 1.75 ms.
I1204 10:00:00.000005  1234 caffe.cpp:407]   conv1_bn	forward: 1.25 ms.
I1204 10:00:00.000006  1234 caffe.cpp:410]   conv1_bn	backward: 2.5 ms.
I1204 10:00:00.000007  1234 caffe.cpp:407]      conv2	forward: 0.5 ms.
I1204 10:00:00.000008  1234 caffe.cpp:410]      conv2	backward: 0.25 ms.
I1204 10:00:00.000009  1234 caffe.cpp:407]      extra	forward: 0.125 ms.
I1204 10:00:00.000009  1234 caffe.cpp:407] pool5_pool5_0_split	forward: 0.5 ms.
I1204 10:00:00.000009  1234 caffe.cpp:410] pool5_pool5_0_split	backward: 1.5 ms.
I1204 10:00:00.000010  1234 caffe.cpp:415] Average Forward pass: 3.3775 ms.
I1204 10:00:00.000011  1234 caffe.cpp:417] Average Backward pass: 4.504 ms.
"""
TYPES = {"data": "Input", "conv1": "Convolution", "conv1_bn": "BatchNorm", "conv2": "Convolution"}


def test_per_layer_lines_and_their_sums_by_type_by_hand():
    times = layer_times(LOG)
    assert len(times) == 11 and times["conv1", "backward"] == 1.75 and times["extra", "forward"] == 0.125
    totals = by_type(TYPES, times)
    # Convolution 1.5 + 1.75 + 0.5 + 0.25 = 4.0; BatchNorm 3.75; the split Caffe inserted 2.0; a layer without a type
    # under its name; largest first
    assert totals == pytest.approx({"Convolution": 4.0, "BatchNorm": 3.75, "Split": 2.0, "extra": 0.125,
                                    "Input": 0.0065})
    assert list(totals) == ["Convolution", "BatchNorm", "Split", "extra", "Input"]


def test_the_table_orders_columns_by_the_first_row_and_marks_what_a_row_lacks():
    text = table([("a", {"Scale": 3.0, "BatchNorm": 1.0}), ("b", {"BatchNorm": 2.0, "Pooling": 0.5})])
    assert text.splitlines() == [
        "| run | Scale | BatchNorm | Pooling | total |",
        "|---|---:|---:|---:|---:|",
        "| a | 3.00 | 1.00 | - | 4.00 |",
        "| b | - | 2.00 | 0.50 | 2.50 |",
    ]


def test_types_under_the_share_in_every_row_are_summed_as_other():
    # ReLU: 0.04 of 100.05 and 0.3 of 10.3, both under 5 %; Pooling 0.01 of 100.05 but 1 of 10.3 (9.7 %): a column
    rows = [
        ("a", {"Convolution": 100.0, "ReLU": 0.04, "Pooling": 0.01}),
        ("b", {"Convolution": 9.0, "Pooling": 1.0, "ReLU": 0.3}),
    ]
    assert table(rows, min_share=0.05).splitlines() == [
        "| run | Convolution | Pooling | other | total |",
        "|---|---:|---:|---:|---:|",
        "| a | 100.00 | 0.01 | 0.04 | 100.05 |",
        "| b | 9.00 | 1.00 | 0.30 | 10.30 |",
    ]


def test_the_command_line_as_the_kit_calls_it(tmp_path):
    (tmp_path / "layer_types.json").write_text(json.dumps({"time_both_b2.prototxt": TYPES}))
    (tmp_path / "a.log").write_text(LOG)
    (tmp_path / "failed.log").write_text("F1204 check failed: out of memory\n")
    run = [sys.executable, str(REPO / "bench" / "layer_profile.py"), str(tmp_path / "layer_types.json"),
           "time_both_b2.prototxt"]
    out = subprocess.run([*run, f"cudnn9 FP32={tmp_path / 'a.log'}", f"x={tmp_path / 'failed.log'}",
                          f"y={tmp_path / 'missing.log'}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # a log without per-layer lines (a run that failed, or none) gives no row: the kit names its reason elsewhere
    # Input's 0.0065 ms is under half a percent of 9.88: "other"
    assert out.stdout.splitlines()[0] == "| run | Convolution | BatchNorm | Split | extra | other | total |"
    assert out.stdout.splitlines()[2] == "| cudnn9 FP32 | 4.00 | 3.75 | 2.00 | 0.12 | 0.01 | 9.88 |"
    assert len(out.stdout.splitlines()) == 3
    bad = subprocess.run([*run, "no-label"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("usage: ") and not bad.stdout
    # an older bundle without the layer types: one line saying what to do, and no table
    old = subprocess.run([sys.executable, str(REPO / "bench" / "layer_profile.py"), str(tmp_path / "none.json"),
                          "time_both_b2.prototxt", f"a={tmp_path / 'a.log'}"], capture_output=True, text=True)
    assert old.returncode == 0 and old.stdout.startswith("(no ") and "tools/device_bundle.sh" in old.stdout
    assert len(old.stdout.splitlines()) == 1


def test_the_h200_profile_in_the_docs_from_its_log(tmp_path):
    """The per-layer lines of the first card's `caffe time` (an H200, the cuDNN build, full model, batch 128, FP32;
    tests/data holds that log's per-layer part), summed with the layer types of the nets the kit carries: the
    figures docs/benchmarks.md gives for it (Scale 24.8 ms, Convolution 13.3, BatchNorm 9.8, InnerProduct 3.7,
    Pooling 1.8, ReLU 1.3 of 56.5; the issue that first read them off the log said 3.8 for InnerProduct)."""
    from prototxt.generate import write_timing_nets

    write_timing_nets(tmp_path, 128)
    types = json.loads((tmp_path / "layer_types.json").read_text())["time_both_b128.prototxt"]
    totals = by_type(types, layer_times((REPO / "tests" / "data" / "h200_caffe_time_cudnn9_both_b128.log").read_text()))
    assert list(totals)[:6] == ["Scale", "Convolution", "BatchNorm", "InnerProduct", "Pooling", "ReLU"]
    assert [round(totals[k], 1) for k in list(totals)[:6]] == [24.8, 13.3, 9.8, 3.7, 1.8, 1.3]
    assert round(sum(totals.values()), 1) == 56.5


# patches-cudnn/ 0011's lines as cudnn_conv_layer.cpp writes them (its LOG(INFO) and cudnn.hpp's chooseAlgorithm)
PREFIX = "I1206 21:00:00.000001  1234 cudnn_conv_layer.cpp:171] cuDNN convolution "
CHOICES = (
    PREFIX + "conv1, input 128 3 225 225 (19440000), workspace limit 1024 MiB, cuDNN's heuristics: "
    "forward algorithm 1 (tensor-op math, 2048 KiB workspace, deterministic, candidate 1 of 8); "
    "backward filter algorithm 3 (FMA math, 0 KiB workspace, not deterministic, candidate 2 of 7); "
    "backward data algorithm 1 (tensor-op math, 412672 KiB workspace, deterministic, candidate 1 of 6)\n"
    + PREFIX + "conv2, input 128 96 55 55 (37171200), workspace limit 8 MiB, cuDNN's heuristics: "
    "forward algorithm 0 (none of the 8 candidates fits: the one without workspace); "
    "backward filter algorithm 1 (FMA math, 512 KiB workspace, deterministic, candidate 1 of 7); "
    "backward data algorithm 0 (FMA math, 0 KiB workspace, not deterministic, candidate 3 of 6)\n"
)


def test_the_cudnn_choices_by_hand():
    assert cudnn_choices(CHOICES) == [
        ("conv1", "forward", 1, "tensor-op", 2048),
        ("conv1", "backward filter", 3, "FMA", 0),
        ("conv1", "backward data", 1, "tensor-op", 412672),
        ("conv2", "forward", 0, None, 0),
        ("conv2", "backward filter", 1, "FMA", 512),
        ("conv2", "backward data", 0, "FMA", 0),
    ]
    # 412672 KiB = 403.0 MiB; FMA 3, tensor-op 2, none fitted 1
    assert choices_line("cudnn9-ws TF32", cudnn_choices(CHOICES)) == \
        "- cudnn9-ws TF32: 6 algorithms (3 FMA, 2 tensor-op, 1 none fitted); the largest workspace 403.0 MiB"
    assert cudnn_choices(LOG) == []  # a log without them (the build without cuDNN)


def test_the_command_line_adds_the_cudnn_choices_of_the_logs_that_have_them(tmp_path):
    (tmp_path / "layer_types.json").write_text(json.dumps({"time_both_b2.prototxt": TYPES}))
    (tmp_path / "plain.log").write_text(LOG)
    (tmp_path / "cudnn.log").write_text(CHOICES + LOG)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "layer_profile.py"), str(tmp_path / "layer_types.json"),
                          "time_both_b2.prototxt", f"plain FP32={tmp_path / 'plain.log'}",
                          f"cudnn9 TF32={tmp_path / 'cudnn.log'}"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| plain FP32", "| cudnn9 TF32"]
    assert lines[-2].startswith("The cuDNN convolutions' algorithms") and lines[-1].startswith("- cudnn9 TF32: 6 ")
