"""Members side by side in one engine (engine/members.py, runs.simulate_batch) give each
member exactly the run it gets alone: every table, to the last bit, and its metrics."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from metricpower.engine import Engine
from metricpower.ensembles.member import batches
from metricpower.ensembles.plan import BATCH_CITIZENS, Arm, Member, Plan, packed, with_seed
from metricpower.population import build_population
from metricpower.runs import simulate, simulate_batch
from metricpower.scenario import load_preset
from metricpower.scenario.load import preset_names

SEEDS = (3, 4, 5)


def same(x: pa.Table, y: pa.Table) -> bool:
    """Equal tables, NaN equal to NaN (a run's assortativity can be NaN)."""
    if x.schema != y.schema or x.num_rows != y.num_rows:
        return False
    for name in x.column_names:
        a, b = x[name], y[name]
        if pa.types.is_floating(a.type):
            if not (a.is_null().equals(b.is_null()) and np.array_equal(
                    a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False),
                    equal_nan=True)):
                return False
        elif not a.equals(b):
            return False
    return True


def differing(batch, alone) -> list[tuple[int, str]]:
    """(member, table) where a batched member's run is not its run alone."""
    out = []
    for m, (b, a) in enumerate(zip(batch, alone, strict=True)):
        out += [(m, t) for t in a.tables if not same(a.tables[t], b.tables[t])]
        if b.metrics != a.metrics:
            out.append((m, "metrics.json"))
    return out


def _batch_and_alone(base):
    scenarios = [with_seed(base, s) for s in SEEDS]
    populations = [build_population(sc) for sc in scenarios]
    batch = simulate_batch(scenarios, populations)
    alone = [simulate(sc, population=p) for sc, p in zip(scenarios, populations, strict=True)]
    return batch, alone


@pytest.mark.parametrize("preset", preset_names())
def test_a_batch_gives_each_member_its_run_alone(preset):
    base = load_preset(preset, {"run": {"citizens": 1_200, "days": 100}})
    batch, alone = _batch_and_alone(base)
    assert differing(batch, alone) == []
    # The members are different runs (else equality would say nothing about whose draws
    # each got).
    daily = [r.tables["daily"] for r in alone]
    assert not same(daily[0], daily[1]) and not same(daily[1], daily[2])


def test_a_batch_on_a_shared_population_with_a_sampled_ledger_and_open_appeals():
    """Members on one population (a fixed population seed), a ledger keeping half the
    citizens, and an appeal office without a cap: each member still its own run."""
    base = load_preset("essay", {"run": {"citizens": 1_500, "days": 90, "population_seed": 11,
                                         "ledger_sample": 0.5},
                                 "responses": {"appeals": {"capacity_per_100k": "unlimited"}}})
    batch, alone = _batch_and_alone(base)
    assert differing(batch, alone) == []
    kept = [r.tables["citizens"]["in_ledger"].to_numpy(zero_copy_only=False) for r in alone]
    assert 0.4 < kept[0].mean() < 0.6 and not np.array_equal(kept[0], kept[1])


def test_a_member_whose_draws_went_to_another_is_caught():
    """The comparison has power: members given each other's streams (the first two
    members' seeds swapped inside the engine) no longer match their runs alone."""
    base = load_preset("essay", {"run": {"citizens": 1_000, "days": 40}})
    scenarios = [with_seed(base, s) for s in SEEDS]
    populations = [build_population(sc) for sc in scenarios]
    engine = Engine.batch(scenarios, [(p.citizens, p.network_copy()) for p in populations])
    streams = engine.members.streams
    streams[0], streams[1] = streams[1], streams[0]
    engine.run()
    engine.host()
    from metricpower.runs import _run

    batch = [_run(engine.member(m)) for m in range(len(scenarios))]
    alone = [simulate(sc, population=p) for sc, p in zip(scenarios, populations, strict=True)]
    wrong = {m for m, _ in differing(batch, alone)}
    assert wrong == {0, 1}


def test_members_of_one_engine_must_differ_in_their_seeds_only():
    a = load_preset("essay", {"run": {"citizens": 300, "days": 5}})
    b = load_preset("essay", {"run": {"citizens": 300, "days": 5},
                              "responses": {"deterrence": {"enabled": False}}})
    with pytest.raises(ValueError, match="differ in their seeds only"):
        simulate_batch([a, b], [build_population(a), build_population(b)])


def _members(n_seeds: int, citizens: int, arms: int = 1) -> tuple[Plan, list[Member]]:
    base = load_preset("essay", {"run": {"citizens": citizens, "days": 5}})
    plan = Plan("sweep", [Arm(f"arm{i}", {}, base) for i in range(arms)],
                list(range(n_seeds)))
    return plan, plan.members()


def test_small_members_are_packed_into_one_task_per_worker():
    plan, members = _members(32, 10_000)
    tasks = plan.groups(members, workers=2)
    assert [len(t) for t in tasks] == [16, 16]
    assert sorted(m.member for t in tasks for m in t) == list(range(32))


def test_no_batch_passes_the_limit_and_a_large_member_runs_alone():
    plan, members = _members(8, 150_000)
    tasks = plan.groups(members, workers=2)
    assert sorted(m.member for t in tasks for m in t) == list(range(8))
    assert all(len(b) == 1 for t in tasks for b in batches(t))
    # Two arms on each population: a task holds both arms of its seeds; a batch is one
    # arm's members, within the limit.
    plan, members = _members(8, 50_000, arms=2)
    for task in plan.groups(members, workers=2):
        for batch in batches(sorted(task, key=lambda m: (m.arm, m.member))):
            assert len({m.arm for m in batch}) == 1
            assert sum(m.scenario.run.citizens for m in batch) <= BATCH_CITIZENS
            assert len(batch) == 4
    assert packed([], 2) == []


def test_a_batch_on_array_api_strict_gives_the_numpy_batch():
    """The members' bookkeeping (whose entry is whose, counts per member, each member's
    draws) goes through the backend seam: on array-api-strict, refusing any NumPy call on
    its arrays, a batch gives the tables the NumPy batch gives."""
    import array_api_strict as xps
    from golden_tables import fingerprint

    from metricpower.engine.backend import ArrayApiStrictBackend, NumpyBackend
    from metricpower.runs import _tables

    base = load_preset("essay", {"run": {"citizens": 800, "days": 40},
                                 "responses": {"prediction": {"every": 10, "horizon": 10}}})
    scenarios = [with_seed(base, s) for s in SEEDS]
    populations = [build_population(sc) for sc in scenarios]

    def tables(backend):
        engine = Engine.batch(scenarios, [(p.citizens, p.network_copy()) for p in populations],
                              backend)
        engine.run()
        engine.host()
        return [fingerprint(_tables(engine.member(m))) for m in range(len(scenarios))]

    def refuse(self, *args, **kwargs):
        raise TypeError("a NumPy function was called on an array-api-strict array")

    want = tables(NumpyBackend())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(xps.asarray(0)), "__array__", refuse)
        got = tables(ArrayApiStrictBackend())
    assert got == want
