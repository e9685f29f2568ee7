"""Result tables in the layout of the paper's Table 1 (MPJPE per action, Average) and Table 2 (ablation),
with the paper's own figures beside ours, and the results files (JSON, CSV) the evaluation writes."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .files import write_text_atomic
from .metrics import PROTOCOL_LABELS, PROTOCOLS
from .skeleton import ABLATION_ACTIONS, ACTIONS, JOINTS

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
            lines.append(
                f"{label} (ours)".ljust(width) + "".join(_cell(results[variant].get(a)).rjust(12) for a in actions)
            )
    for variant, label in VARIANT_LABELS.items():
        paper = dict(zip(ABLATION_ACTIONS, PAPER_TABLE2[variant]))
        lines.append(f"{label} (paper)".ljust(width) + "".join(_cell(paper.get(a)).rjust(12) for a in actions))
    return "\n".join(lines) + "\n"


# ---- Table 2 over several training seeds ----------------------------------------------------------

# Two-sided 95 % critical values of Student's t for n - 1 degrees of freedom (n paired seeds).
T_CRITICAL_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
CLAIMS = (("multireg", "baseline", "Multi-reg < Baseline"), ("2dcls", "baseline", "2D-cls < Baseline"),
          ("both", "multireg", "Multi-reg+2D-cls < Multi-reg"), ("both", "2dcls", "Multi-reg+2D-cls < 2D-cls"),
          ("both", "baseline", "Multi-reg+2D-cls < Baseline"))


def paired_verdict(better: list, worse: list) -> dict:
    """Whether `better` < `worse` over paired seeds (same data, same seed): a paired t-test at 95 %.
    'holds' / 'does not hold' (significantly the other way) / 'undecided at this size'."""
    diffs = [b - w for b, w in zip(better, worse)]
    n = len(diffs)
    mean = sum(diffs) / n if n else float("nan")
    if n < 2:
        return {"diffs": diffs, "mean_diff": mean, "t": None, "verdict": "undecided at this size (one seed)"}
    sd = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5
    t = mean / (sd / n ** 0.5) if sd > 0 else (float("-inf") if mean < 0 else float("inf") if mean > 0 else 0.0)
    crit = T_CRITICAL_95.get(n - 1, 1.96)
    verdict = "holds" if t < -crit else "does not hold" if t > crit else "undecided at this size"
    return {"diffs": diffs, "mean_diff": mean, "t": t, "verdict": verdict}


def mean_std(values: list) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, ((sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0)


def format_table2_seeds(per_seed: dict, actions, references: dict | None = None) -> str:
    """per_seed: variant -> action -> [P1 mm per seed]; rows 'mean ± std (n seeds)' in Table 2's order, then
    reference rows (label -> action -> mm) and the paper's rows; then the paired verdict of each claim."""
    width = 30
    lines = ["".ljust(width) + "".join(a.rjust(18) for a in actions)]
    for variant, label in VARIANT_LABELS.items():
        if variant in per_seed:
            cells = []
            for a in actions:
                values = per_seed[variant].get(a)
                cells.append("-" if not values else "%.1f ± %.1f (%d)" % (*mean_std(values), len(values)))
            lines.append(f"{label} (ours)".ljust(width) + "".join(c.rjust(18) for c in cells))
    for label, values in (references or {}).items():
        lines.append(label.ljust(width) + "".join(_cell(values.get(a)).rjust(18) for a in actions))
    for variant, label in VARIANT_LABELS.items():
        paper = dict(zip(ABLATION_ACTIONS, PAPER_TABLE2[variant]))
        lines.append(f"{label} (paper)".ljust(width) + "".join(_cell(paper.get(a)).rjust(18) for a in actions))
    lines.append("")
    lines.append("Paired per-seed comparisons (P1, paired t-test at 95 %):")
    for better, worse, text in CLAIMS:
        for a in actions:
            if better in per_seed and worse in per_seed and per_seed[better].get(a) and per_seed[worse].get(a):
                v = paired_verdict(per_seed[better][a], per_seed[worse][a])
                diffs = ", ".join(f"{d:+.1f}" for d in v["diffs"])
                lines.append(f"  {text:32s} {a:10s} {v['verdict']:24s} (differences per seed: {diffs} mm)")
    return "\n".join(lines) + "\n"


RESULT_ROWS = (("mpjpe", "ours"), ("mean_pose", "mean pose"), ("scale_floor", "scale floor"))


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """results.json and results.csv (one row per action: each row of RESULT_ROWS under each protocol, then the
    per-joint P1 errors) into out_dir, each written under a temporary name first."""
    js = write_text_atomic(out_dir / "results.json", json.dumps(results, indent=1))
    columns = [(row, protocol) for row, _ in RESULT_ROWS for protocol in PROTOCOLS]
    rows = io.StringIO(newline="")
    w = csv.writer(rows)
    w.writerow(["action", "frames"] + [f"{row}_{protocol}_mm" for row, protocol in columns]
               + [f"{j}_p1_mm" for j in JOINTS])
    for action, r in results.items():
        w.writerow([action, r["frames"]] + [f"{r[row][protocol]:.2f}" for row, protocol in columns]
                   + [f"{e:.2f}" for e in r["per_joint_p1"]])
    return js, write_text_atomic(out_dir / "results.csv", rows.getvalue())


def report(results: dict) -> str:
    """The Table 1 layout under each protocol (the paper's row beside P1) and the per-joint P1 errors."""
    actions = [a for a in ACTIONS if a in results]
    text = ""
    for protocol in PROTOCOLS:
        rows = {"Ours (this run)": {a: results[a]["mpjpe"][protocol] for a in actions},
                "Mean pose (training, mm)": {a: results[a]["mean_pose"][protocol] for a in actions},
                "Scale floor (GT, rescaled)": {a: results[a]["scale_floor"][protocol] for a in actions}}
        if protocol == "p1":
            rows["Paper, Table 1"] = {a: PAPER_TABLE1[a] for a in actions}
        text += f"{PROTOCOL_LABELS[protocol]} in mm, Table 1 layout\n" + format_table1(rows, actions) + "\n"
    text += "Per-joint MPJPE (P1, mm), mean over actions\n"
    per_joint = [sum(results[a]["per_joint_p1"][j] for a in actions) / len(actions) for j in range(len(JOINTS))]
    text += "  ".join(f"{n} {e:.1f}" for n, e in zip(JOINTS, per_joint)) + "\n"
    return text
