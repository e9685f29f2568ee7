"""Where a `caffe time` run's time goes: its per-layer lines summed by layer type. The benchmark (bench/measure.py)
and the GPU machine's kit (tools/device_check.sh, one table in its summary.md) both use it. Standard library only:
the kit runs it on a GPU machine before pycaffe exists there, with the layer types `prototxt.generate
--timing-nets` wrote beside the nets (layer_types.json: {net file: {layer name: type}}).

    python3 bench/layer_profile.py LAYER_TYPES_JSON NET_FILE LABEL=LOG [LABEL=LOG ...]

prints a Markdown table: one row per log (forward + backward ms per layer type, then the total), the types in
the order of the first row's times, those under half a percent of every row's total summed as "other"; then, for
each log of a cuDNN build, one line on the algorithms its convolutions chose (patches-cudnn/ 0011 logs them): how
many use tensor-op math (TF32 on Ampere and later for float data) and the largest workspace."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

USAGE = "python3 bench/layer_profile.py LAYER_TYPES_JSON NET_FILE LABEL=LOG [LABEL=LOG ...]"
# caffe time's per-layer lines, after "Average time per layer:": "I... caffe.cpp:410]      conv1   forward: 1.57862 ms."
LAYER_LINE = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms")
SPLIT_NAME = re.compile(r".+_\d+_split")  # caffe's insert_splits.cpp: SplitLayerName(blob, layer, index)
# patches-cudnn/ 0011's line per convolution and input shape: "cuDNN convolution conv1, input 128 3 225 225 (...),
# workspace limit 8 MiB, cuDNN's heuristics: forward algorithm 1 (FMA math, 0 KiB workspace, ...); backward filter
# algorithm 0 (...); backward data algorithm 1 (...)"; an algorithm taken for want of any that fits has no math
CHOICE_LINE = re.compile(
    r"cuDNN convolution (\S+), input .*?: forward (.*?); backward filter (.*?); backward data (.*)$", re.M)
ALGORITHM = re.compile(r"algorithm (\d+) \((?:([^,()]+) math, (\d+) KiB workspace)?")


def layer_times(log: str) -> dict:
    """{(layer name, 'forward' or 'backward'): ms} from a `caffe time` log."""
    return {(m.group(1), m.group(2)): float(m.group(3)) for m in LAYER_LINE.finditer(log)}


def by_type(types: dict, times: dict) -> dict:
    """{layer type: ms} summed over both directions, largest first. The Split layers Caffe inserts where a blob feeds
    several layers (named <blob>_<layer>_<n>_split, not in the prototxt) count as Split; any other layer missing
    from `types` under its own name."""
    totals: dict = {}
    for (name, _direction), ms in times.items():
        kind = types.get(name, "Split" if SPLIT_NAME.fullmatch(name) else name)
        totals[kind] = totals.get(kind, 0.0) + ms
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def cudnn_choices(log: str) -> list:
    """[(layer, pass, algorithm, math or None, workspace KiB)] from a cuDNN build's log, pass being forward,
    backward filter or backward data; math None where no candidate fitted and the one without workspace ran."""
    found = []
    for m in CHOICE_LINE.finditer(log):
        for step, text in zip(("forward", "backward filter", "backward data"), m.groups()[1:]):
            a = ALGORITHM.match(text)
            if a:
                found.append((m.group(1), step, int(a.group(1)), a.group(2), int(a.group(3) or 0)))
    return found


def choices_line(label: str, choices: list) -> str:
    """One line: how many of a run's convolution algorithms use each math, and the largest workspace."""
    counts: dict = {}
    for _layer, _step, _algo, math, _kib in choices:
        key = math or "none fitted"
        counts[key] = counts.get(key, 0) + 1
    maths = ", ".join(f"{n} {math}" for math, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    largest = max(kib for *_, kib in choices) / 1024
    return f"- {label}: {len(choices)} algorithms ({maths}); the largest workspace {largest:.1f} MiB"


def table(rows: list, min_share: float = 0.005) -> str:
    """A Markdown table of [(label, {type: ms})]: a column per type (ordered by the first row's ms) that takes at
    least `min_share` of some row's total, the rest summed as "other", then the total."""
    if not rows:
        return ""
    order = list(rows[0][1]) + sorted({k for _, totals in rows[1:] for k in totals} - set(rows[0][1]))
    kinds = [k for k in order if any(totals.get(k, 0.0) >= min_share * sum(totals.values()) for _, totals in rows)]
    rest = [k for k in order if k not in kinds]
    lines = ["| run | " + " | ".join(kinds) + (" | other" if rest else "") + " | total |",
             "|---|" + "---:|" * (len(kinds) + bool(rest) + 1)]
    for label, totals in rows:
        cells = [f"{totals[k]:.2f}" if k in totals else "-" for k in kinds]
        if rest:
            cells.append(f"{sum(totals.get(k, 0.0) for k in rest):.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {sum(totals.values()):.2f} |")
    return "\n".join(lines)


def main(argv: list) -> int:
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    if not Path(argv[0]).is_file():  # a bundle from before the layer types came with the nets
        print(f"(no {argv[0]}: make the bundle again with tools/device_bundle.sh for the per-layer-type sums)")
        return 0
    types = json.loads(Path(argv[0]).read_text())[argv[1]]
    rows, chosen = [], []
    for arg in argv[2:]:
        label, log = arg.split("=", 1)
        text = Path(log).read_text(errors="replace") if Path(log).is_file() else ""
        times = layer_times(text)
        if times:  # a timing that gave no figure has its reason below the kit's table already
            rows.append((label, by_type(types, times)))
        choices = cudnn_choices(text)
        if choices:
            chosen.append(choices_line(label, choices))
    print(table(rows) if rows else "(no per-layer times in the logs)")
    if chosen:
        print("\nThe cuDNN convolutions' algorithms (forward, backward filter, backward data of each), by math:")
        print("\n".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
