"""Shared helpers: small, seeded runs of the shipped presets, cached per test session.

Every engine test runs the `essay` (or `null`) preset on 3,000 citizens for 90 days with
a fixed seed: about a second a run on one core, and large enough that each effect under
test shows up many times (e.g. ~950 jaywalking penalties, ~15 false matches, ~17
blacklistings with the seed below), so no assertion rests on a handful of events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metricpower.runs import Run, simulate
from metricpower.scenario import Scenario, load_preset

CITIZENS = 3_000
DAYS = 90
SEED = 7

_cache: dict[str, Run] = {}


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


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
