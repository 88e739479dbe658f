"""Findings that must come from the dynamics, not from how the engine is built (issue 9,
engine side): each test here failed on the engine before its fix.

Runs are the `essay` preset on 3,000 citizens for 90 days, seed 7 (conftest.py), with
the overrides each test names.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from conftest import responses_off, run_preset


def ledger_of(run, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(citizen, day) of every ledger entry of `rule`."""
    ledger = run.tables["ledger"]
    mine = pc.equal(ledger["rule"].cast("string"), rule)
    kept = ledger.filter(mine)
    return kept["citizen"].to_numpy(), kept["day"].to_numpy().astype(np.int64)


# ---------------------------------------------------------------- thresholds (defect 9)


def test_a_threshold_falls_on_the_act_that_crosses_it():
    """`count('jaywalking', 7) > 2` must penalise the third act in seven days and those
    after it, not the acts of the same day that came before the third. Every observed
    jaywalking act has an entry of the plain jaywalking rule, so the ledger tells how many
    acts came before each day's; the threshold rule must have exactly
    max(0, before + today - 2) - max(0, before - 2) entries that day. The old engine
    counted the whole day's acts for every act of the day: on these settings it put
    hundreds of penalties too many (a citizen with 1 act before and 2 today got 2)."""
    overrides = responses_off() | {
        "behaviours": [{"name": "jaywalking", "rate": 0.2}],
        "rules": [{"name": "repeat_jaywalking", "kind": "event", "behaviour": "jaywalking",
                   "when": "count('jaywalking', 7) > 2", "points": -1}],
    }
    run = run_preset("essay", overrides)
    days = run.scenario.run.days
    n = run.tables["citizens"].num_rows
    acts = np.zeros((n, days + 7), np.int64)  # padded: days before the run hold nothing
    citizen, day = ledger_of(run, "jaywalking")
    np.add.at(acts, (citizen, day + 7), 1)
    window = np.cumsum(acts, axis=1)
    before = window[:, 6:6 + days] - window[:, :days]  # days d-6 .. d-1
    today = acts[:, 7:]
    want = np.maximum(0, before + today - 2) - np.maximum(0, before - 2)
    got = np.zeros((n, days), np.int64)
    np.add.at(got, ledger_of(run, "repeat_jaywalking"), 1)
    crossing = (today > 1) & (before < 2) & (before + today > 2)
    assert crossing.sum() > 50  # the case the test is about happens often here
    np.testing.assert_array_equal(got, want)
