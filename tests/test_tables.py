"""The result tables (data_prep/tables.py): their layouts, and the paired seed comparison of the ablation table."""
from __future__ import annotations

import pytest

from data_prep.tables import format_table1, format_table2, format_table2_seeds, paired_verdict


def test_table_layouts():
    t1 = format_table1({"Ours": {"Walking": 50.0, "Eating": 70.0}})
    assert "Average" in t1 and "60.00" in t1 and t1.index("Directions") < t1.index("Posing") < t1.index("Walk")
    t2 = format_table2({"baseline": {"Walking": 80.0}, "both": {"Walking": 60.0}}, ["Walking"])
    assert "Baseline CNN (ours)" in t2 and "72.55" in t2 and "62.64" in t2


def test_paired_seed_verdicts_by_hand():
    # differences -3, -2, -4: mean -3, sd 1, t = -3 / (1 / sqrt 3) = -5.20 < -4.30 (2 d.o.f.): holds
    v = paired_verdict([97, 98, 96], [100, 100, 100])
    assert v["verdict"] == "holds" and v["t"] == pytest.approx(-3 * 3 ** 0.5)
    assert paired_verdict([101, 99, 97], [100, 100, 100])["verdict"] == "undecided at this size"
    assert paired_verdict([110, 112, 111], [100, 100, 100])["verdict"] == "does not hold"
    assert paired_verdict([90], [100])["verdict"].startswith("undecided")
    text = format_table2_seeds(
        {"baseline": {"Walking": [100.0, 110.0, 105.0]}, "multireg": {"Walking": [97.0, 108.0, 101.0]}},
        ["Walking"],
        {"Mean pose (training, P1)": {"Walking": 160.0}},
    )
    assert "105.0 ± 5.0 (3)" in text and "160.00" in text and "72.55" in text
    assert "Multi-reg < Baseline" in text and "holds" in text  # differences -3, -2, -4
