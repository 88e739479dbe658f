"""Fuzzing (Hypothesis): scenario files and conditions — valid, mutated and hostile.

For every case: exit 0, or exit 2 with one message naming the file; no traceback, no
signal; nothing written on error; and a file that `validate` passes runs at a small size
without crashing. The default run checks a bounded number of cases (derandomized, so CI
sees the same ones every time); `make fuzz` runs the long campaign
(`tests/fuzz_campaign.py`).
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from fuzzcases import TypedContext, check_case, expression, scenario_case, typed_expression
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricpower.scenario import load_preset
from metricpower.scenario.expr import ExprError, compile_condition

BOUNDED = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
VOCABULARY = load_preset("essay").vocabulary()


@BOUNDED
@given(st.randoms(use_true_random=False))
def test_scenario_files_validate_and_run_or_fail_cleanly(rng):
    kind, text = scenario_case(rng)
    with tempfile.TemporaryDirectory() as folder:
        outcome = check_case(kind, text, Path(folder))
    assert not outcome.startswith("FAILURE"), (kind, text, outcome)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.randoms(use_true_random=False), st.booleans())
def test_conditions_compile_or_are_refused_and_then_evaluate(rng, typed):
    """A condition the compiler accepts evaluates on the engine's types, at their extreme
    values (int32 scores at both ends, day 0, friendless citizens), to true/false."""
    text = typed_expression(rng, True) if typed else expression(rng)
    try:
        condition = compile_condition(text, VOCABULARY, "rules[0].when")
    except ExprError as err:
        assert str(err).startswith("rules[0].when: "), err
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # inf and NaN from float64 arithmetic compare fine
        result = np.asarray(condition(TypedContext(rng)))
    assert result.dtype == bool, (text, result.dtype)


def test_typed_conditions_are_mostly_accepted():
    """The generator of well-typed conditions is what it says (else the property above
    would test refusals only)."""
    accepted = 0
    for seed in range(300):
        try:
            compile_condition(typed_expression(random.Random(seed), True), VOCABULARY, "w")
            accepted += 1
        except ExprError:
            pass
    assert accepted > 250


def test_hostile_cases_die_by_no_signal(tmp_path):
    """In a process of their own (a segfault or an abort would kill the test runner
    in-process): a few hostile files and conditions end with exit 0 or 2."""
    cases = [scenario_case(random.Random(seed)) for seed in range(2000)]
    picked = [c for c in cases if c[0] == "hostile"][:2] + \
        [c for c in cases if c[0] == "valid"][:1]
    for i, (_, text) in enumerate(picked):
        path = tmp_path / f"case{i}.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        done = subprocess.run(
            [sys.executable, "-c", "from metricpower.cli import app; app()", "run", str(path),
             "--citizens", "200", "--days", "3", "--no-report", "--out", str(tmp_path / f"o{i}")],
            capture_output=True, text=True, timeout=120)
        assert done.returncode in (0, 2), (text, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stderr
