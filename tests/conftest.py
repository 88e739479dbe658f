"""Shared helpers: small, seeded runs of the shipped presets, cached per test session.

Every engine test runs the `essay` (or `null`) preset on 3,000 citizens for 90 days with
a fixed seed: about a second a run on one core, and large enough that each effect under
test shows up more than a few times (hundreds of jaywalking penalties, a dozen false
matches, eight blacklistings with the seed below), so no assertion rests on one event.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from metricpower.runs import Run, simulate
from metricpower.scenario import Scenario, load_preset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_MISSING = ("the report's browser tests need Chromium: install Debian's `chromium` "
                   "package (apt-get install -y chromium; .ci/run does)")


def require_browser(path: str = CHROMIUM) -> str:
    """The Chromium to test the report with. Where it is missing the browser tests are
    skipped with a message naming the package, except under CI (CI=true), where a
    missing browser fails the run: CI must test the report."""
    if Path(path).exists():
        return path
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{BROWSER_MISSING}; CI=true, so a missing browser is a failure")
    pytest.skip(BROWSER_MISSING)


CITIZENS = 3_000
DAYS = 90
SEED = 7

_cache: dict[str, Run] = {}


def responses_off() -> dict:
    """Overrides that switch every response (deterrence, avoidance, income feedback,
    labelling refusals, predictions, appeals) off: then occurrences depend on the seed
    only, and one policy's effect can be read event for event against another's."""
    from metricpower.scenario.schema import Responses

    off = {}
    for name, field in Responses.model_fields.items():
        fields = field.annotation.model_fields
        if "enabled" in fields:
            off[name] = {"enabled": False}
        elif "refusal" in fields:
            off[name] = {"refusal": 0.0}
    return {"responses": off}


def small(overrides: dict | None = None, *, citizens: int = CITIZENS, days: int = DAYS,
          seed: int = SEED) -> dict:
    """`overrides` with the small run settings merged in (theirs win)."""
    overrides = dict(overrides or {})
    overrides["run"] = {"citizens": citizens, "days": days, "seed": seed,
                        **overrides.get("run", {})}
    return overrides


def scenario(preset: str = "essay", overrides: dict | None = None, **size) -> Scenario:
    return load_preset(preset, overrides=small(overrides, **size))


def run_preset(preset: str = "essay", overrides: dict | None = None, **size) -> Run:
    """simulate() of a preset with the small settings, cached: tests must not mutate it."""
    key = json.dumps([preset, small(overrides, **size)], sort_keys=True)
    if key not in _cache:
        _cache[key] = simulate(scenario(preset, overrides, **size))
    return _cache[key]


@pytest.fixture(scope="session")
def essay_run() -> Run:
    return run_preset("essay")


@pytest.fixture(scope="session")
def null_run() -> Run:
    return run_preset("null")


def same_table(a, b) -> bool:
    """Equal tables, NaN equal to NaN (Arrow's `equals` says NaN != NaN)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a[name], b[name]
        if pa.types.is_floating(x.type):
            if not np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True):
                return False
        elif not x.equals(y):
            return False
    return True
