"""The array-backend seam for conditions: every condition of the essay preset, evaluated
on array-api-strict arrays (a namespace with nothing but the standard), gives what it
gives on NumPy. A condition or a Context method that called NumPy directly on these
arrays would raise (array-api-strict arrays refuse NumPy's functions) or differ."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import array_api_strict as xps
import numpy as np
import pytest

from metricpower.engine import Engine
from metricpower.engine.context import Conditions
from metricpower.population import Citizens, make_citizens, make_network
from metricpower.scenario import load_preset


@pytest.fixture(scope="module")
def engine():
    sc = load_preset("essay", {"run": {"citizens": 2000, "days": 40, "seed": 3}})
    citizens = make_citizens(sc)
    engine = Engine(sc, citizens, make_network(sc, citizens))
    engine.run()
    return engine


def strict(value):
    """NumPy arrays (and dicts of them) as array-api-strict arrays."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    return xps.asarray(value) if isinstance(value, np.ndarray) else value


def test_conditions_give_the_same_under_array_api_strict(engine):
    state = dataclasses.replace(engine.state, **{
        f.name: strict(getattr(engine.state, f.name)) for f in dataclasses.fields(engine.state)})
    citizens = Citizens(**{k: strict(v) for k, v in engine.citizens.columns().items()})
    windows = {k: SimpleNamespace(counts=xps.asarray(w.counts))
               for k, w in engine.windows.items()}
    under_strict = Conditions(engine.compiled, citizens, engine.network, state, windows)
    assert under_strict.xp is not np and "strict" in under_strict.xp.__name__
    day = engine.scenario.run.days - 1
    some = np.arange(0, engine.n, 7)
    held = 0
    for where in engine.compiled:
        want = engine.conditions.holds(where, day)
        got = under_strict.holds(where, day)
        assert isinstance(got, type(xps.asarray(True))), where
        assert np.array_equal(np.from_dlpack(got), want), where
        part = under_strict.holds(where, day, xps.asarray(some))
        assert np.array_equal(np.from_dlpack(part), want[some]), where
        held += int(want.sum())
    # The comparison is not vacuous: the conditions hold for some citizens and not others.
    assert 0 < held < len(engine.compiled) * engine.n
