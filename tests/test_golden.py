"""The engine's tables, pinned: a change to the engine's structure must reproduce every
cell of every table of these runs (tests/golden/*.json, written by golden_tables.py).

A planted change shows it can fail: one point more on one ledger entry changes that
column's hash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from golden_tables import GOLDEN_RUNS, fingerprint

from metricpower.metrics.intensification import persistence_after_entry
from metricpower.runs import simulate
from metricpower.scenario import load_preset

GOLDEN = Path(__file__).parent / "golden"

#: Persistence at the bottom in the golden runs (entered, checked 180 days on, stayed),
#: measured from the `bottom` table. Re-pinned with the tables after issue 9 (the preset's
#: court-list blacklist and the engine's threshold, deterrence and list fixes change who
#: falls to the bottom; before them the variant's was 31, 3, 3), and again after issue
#: 10's speed work, which draws the day's occurrences otherwise (one uniform per candidate
#: picks band and citizen; the day's streams are seeded by a keyed hash): the variant's
#: was 34, 4, 4.
BOTTOM_TOTALS = {"essay_3000x60": (0, 0, 0), "essay_1200x260_variant": (35, 4, 4)}


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_tables_match_the_golden_run(name):
    want = json.loads((GOLDEN / f"{name}.json").read_text())
    run = simulate(load_preset("essay", overrides=GOLDEN_RUNS[name]))
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
