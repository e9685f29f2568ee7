"""Where a `caffe time` run's time goes: its per-layer lines summed by layer type. The benchmark (bench/measure.py)
and the GPU machine's kit (tools/device_check.sh, one table in its summary.md) both use it. Standard library only:
the kit runs it on a GPU machine before pycaffe exists there, with the layer types `prototxt.generate
--timing-nets` wrote beside the nets (layer_types.json: {net file: {layer name: type}}).

    python3 bench/layer_profile.py LAYER_TYPES_JSON NET_FILE LABEL=LOG [LABEL=LOG ...]

prints a Markdown table: one row per log (forward + backward ms per layer type, then the total), the types in
the order of the first row's times, those under half a percent of every row's total summed as "other"."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

USAGE = "python3 bench/layer_profile.py LAYER_TYPES_JSON NET_FILE LABEL=LOG [LABEL=LOG ...]"
# caffe time's per-layer lines, after "Average time per layer:": "I... caffe.cpp:410]      conv1   forward: 1.57862 ms."
LAYER_LINE = re.compile(r"\]\s+(\S+)\s+(forward|backward): ([0-9.]+) ms")
SPLIT_NAME = re.compile(r".+_\d+_split")  # caffe's insert_splits.cpp: SplitLayerName(blob, layer, index)


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
    types = json.loads(Path(argv[0]).read_text())[argv[1]]
    rows = []
    for arg in argv[2:]:
        label, log = arg.split("=", 1)
        times = layer_times(Path(log).read_text(errors="replace")) if Path(log).is_file() else {}
        if times:  # a timing that gave no figure has its reason below the kit's table already
            rows.append((label, by_type(types, times)))
    print(table(rows) if rows else "(no per-layer times in the logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
