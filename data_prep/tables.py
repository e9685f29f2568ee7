"""Result tables in the layout of the paper's Table 1 (MPJPE per action, Average) and Table 2 (ablation),
with the paper's own figures beside ours."""
from __future__ import annotations

from .skeleton import ABLATION_ACTIONS, ACTIONS

# Table 1, "Our method" (mm).
PAPER_TABLE1 = dict(zip(ACTIONS + ("Average",), (
    100.34, 116.19, 89.96, 116.49, 115.34, 149.55, 117.57, 106.94, 137.21, 190.82, 105.78, 125.12, 131.90, 62.64,
    96.18, 117.34)))
# Table 2 (mm), actions in ABLATION_ACTIONS order.
PAPER_TABLE2 = {
    "baseline": (125.45, 95.21, 120.69, 119.66, 153.76, 72.55),
    "multireg": (122.71, 94.67, 119.70, 119.25, 153.54, 71.19),
    "2dcls": (118.19, 91.39, 118.19, 115.84, 149.97, 64.27),
    "both": (116.19, 89.96, 116.49, 115.34, 149.55, 62.64),
}
VARIANT_LABELS = {"baseline": "Baseline CNN", "multireg": "Multi-reg", "2dcls": "2D-cls", "both": "Multi-reg+2D-cls"}


def _cell(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def format_table1(rows: dict, actions=ACTIONS) -> str:
    """rows: label -> {action: mm}. Columns in Table 1's order, blocks of six as printed in the paper;
    Average over the actions present in each row."""
    cols = list(actions) + ["Average"]
    full = {}
    for label, values in rows.items():
        present = [values[a] for a in actions if values.get(a) is not None]
        full[label] = {**values, "Average": sum(present) / len(present) if present else None}
    width = max(12, max(len(l) for l in full) + 1)
    lines = []
    for start in range(0, len(cols), 6):
        block = cols[start:start + 6]
        lines.append("".ljust(width) + "".join(c.rjust(13) for c in block))
        for label, values in full.items():
            lines.append(label.ljust(width) + "".join(_cell(values.get(c)).rjust(13) for c in block))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def format_table2(results: dict, actions=ABLATION_ACTIONS) -> str:
    """results: variant -> {action: mm}; rows in Table 2's order, ours and the paper's."""
    width = 26
    lines = ["".ljust(width) + "".join(a.rjust(12) for a in actions)]
    for variant, label in VARIANT_LABELS.items():
        if variant in results:
            lines.append(f"{label} (ours)".ljust(width) + "".join(_cell(results[variant].get(a)).rjust(12) for a in actions))
    for variant, label in VARIANT_LABELS.items():
        paper = dict(zip(ABLATION_ACTIONS, PAPER_TABLE2[variant]))
        lines.append(f"{label} (paper)".ljust(width) + "".join(_cell(paper.get(a)).rjust(12) for a in actions))
    return "\n".join(lines) + "\n"
