"""The engine's tables and the metrics made of them, pinned: a change to the engine's
structure must reproduce every cell of every table of these runs, and a change to how the
metrics are computed (faster, say) every number of their metrics.json, to the last bit
(tests/golden/*.json, written by golden_tables.py).

Planted changes show it can fail: one point more on one ledger entry changes that
column's hash; one p-value a bit off is named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from golden_tables import GOLDEN_RUNS, fingerprint, golden_run

from metricpower.metrics.intensification import persistence_after_entry

GOLDEN = Path(__file__).parent / "golden"

#: Persistence at the bottom in the golden runs (entered, checked 180 days on, stayed),
#: measured from the `bottom` table. Re-pinned with the tables after issue 9 (the preset's
#: court-list blacklist and the engine's threshold, deterrence and list fixes change who
#: falls to the bottom; before them the variant's was 31, 3, 3), and again after issue
#: 10's speed work, which draws the day's occurrences otherwise (one uniform per candidate
#: picks band and citizen; the day's streams are seeded by a keyed hash): the variant's
#: was 34, 4, 4.
BOTTOM_TOTALS = {"essay_3000x60": (0, 0, 0), "essay_1200x260_variant": (35, 4, 4)}


_runs: dict = {}


def run_of(name: str):
    if name not in _runs:
        _runs[name] = golden_run(name)
    return _runs[name]


def differences(want, got, at: str = "") -> list[str]:
    """Where two metrics.json values differ: keys missing on either side, or values not
    equal (floats to the last bit; key order aside)."""
    if isinstance(want, dict) and isinstance(got, dict):
        return [d for k in want.keys() | got.keys() for d in (
            [f"{at}/{k}: missing"] if k not in got else [f"{at}/{k}: new"] if k not in want
            else differences(want[k], got[k], f"{at}/{k}"))]
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (a, b) in enumerate(zip(want, got, strict=True))
                for d in differences(a, b, f"{at}[{i}]")]
    same = type(want) is type(got) and want == got
    return [] if same else [f"{at}: {want!r} -> {got!r}"]


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_metrics_match_the_golden_run(name):
    want = json.loads((GOLDEN / f"{name}.metrics.json").read_text())
    got = json.loads(json.dumps(run_of(name).metrics))
    assert not differences(want, got)


def test_metrics_comparison_sees_one_p_value_a_bit_off():
    want = json.loads((GOLDEN / "essay_1200x260_variant.metrics.json").read_text())
    flagged = want["processes"]["disparate_impact"]["flagged"]
    assert flagged, "the variant's run flags disparities: the pin covers the tests' p-values"
    got = json.loads(json.dumps(want))
    p = got["processes"]["disparate_impact"]["flagged"][0]["p_value"]
    off = float(np.nextafter(p, 1.0))
    got["processes"]["disparate_impact"]["flagged"][0]["p_value"] = off
    assert differences(want, got) == [
        f"/processes/disparate_impact/flagged[0]/p_value: {p!r} -> {off!r}"]


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_tables_match_the_golden_run(name):
    want = json.loads((GOLDEN / f"{name}.json").read_text())
    run = run_of(name)
    got = fingerprint(run.tables)
    for table, expect in want.items():
        assert got[table]["rows"] == expect["rows"], table
        # The same columns; their order may differ (appeals now run as their own stage,
        # after scoring, so the daily appeals_* columns follow the penalty counts).
        assert sorted(got[table]["columns"]) == sorted(expect["columns"]), table
        changed = [c for c, h in expect["columns"].items() if got[table]["columns"][c] != h]
        assert not changed, f"{table}: {changed}"
    pe = persistence_after_entry(run.tables["bottom"], run.scenario.run.days).row(0)
    assert pe[:3] == BOTTOM_TOTALS[name]


def test_fingerprint_sees_one_changed_cell():
    ledger = pa.table({"citizen": [0, 1, 2], "points": pa.array([-5, 3, -10], pa.int32())})
    planted = ledger.set_column(1, "points", pa.array([-5, 4, -10], pa.int32()))
    tables = dict.fromkeys(("daily", "citizens", "consequences", "services", "tiers", "ties",
                            "predictions"), pa.table({"x": [1]}))
    a = fingerprint(tables | {"ledger": ledger})["ledger"]["columns"]
    b = fingerprint(tables | {"ledger": planted})["ledger"]["columns"]
    assert a["citizen"] == b["citizen"] and a["points"] != b["points"]
