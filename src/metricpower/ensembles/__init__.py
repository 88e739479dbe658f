"""Ensembles, sweeps and paired comparisons: many members (arms × seeds), run on a local
process pool or on Ray, streamed to disk, summarised with 95% intervals.

    mp.ensemble(scenario, seeds=10, out="runs/essay-ensemble")
    mp.sweep(scenario, grid="examples/sweep.toml", seeds=8, out="runs/essay-sweep")
    mp.compare("essay", "null", seeds=10, out="runs/essay-vs-null")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from metricpower.ensembles.executors import Executor, ExtraMissing, LocalPool, RayExecutor
from metricpower.ensembles.plan import (
    BATCH_CITIZENS,
    Arm,
    Plan,
    PlanError,
    load_grid,
    seed_list,
    sweep_plan,
)
from metricpower.ensembles.results import Results
from metricpower.ensembles.store import Store
from metricpower.memory import check_memory


def run_plan(plan: Plan, out: str | Path, *, executor: Executor | None = None,
             resume: bool = False, reports: bool = False, report: bool = True,
             progress: Callable[[int, int], None] | None = None,
             batch: int = BATCH_CITIZENS) -> Results:
    """Run every member of `plan` not yet finished in `out`, then write the tidy table,
    the summaries and (with `report`) report.html. `reports` also writes each member's own
    report.html. `progress(done, total)` is called as members finish. Members of one arm
    run side by side in one engine up to `batch` citizens (0: each member alone; the
    results are the same either way). Refused (MemoryTooSmall) before anything is made
    when one member would not fit in memory."""
    store = Store(out, plan)
    try:
        for arm in plan.arms:
            check_memory(arm.scenario)
        done = store.open(resume)
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    members = plan.members()
    todo = [m for m in members if m.member not in done]
    executor = executor or LocalPool()
    baseline = plan.baseline if plan.kind == "compare" else None
    by_id = {m.member: m for m in members}
    tasks = [(str(store.out), group, reports, baseline, batch)
             for group in plan.groups(todo, executor.workers, batch)]
    if progress:
        progress(len(done), len(members))
    try:
        for result in executor.map(tasks):
            for member, rows, seconds in result:
                store.record(by_id[member], rows, seconds)
                done.add(member)
            if progress:
                progress(len(done), len(members))
    finally:
        executor.close()
    store.assemble(members)
    results = Results(store.out)
    results.write_summaries()
    if report:
        results.report()
    return results


def executor_of(ray: bool = False, address: str | None = None,
                workers: int | None = None) -> Executor:
    """The local process pool, or Ray (`ray=True`, or an `address` of a cluster)."""
    if ray or address:
        return RayExecutor(address, workers)
    return LocalPool(workers)


def ensemble(scenario, seeds: int | list[int], out: str | Path, **options) -> Results:
    """`seeds` replicates of one scenario (a Scenario, a file or a preset name): each on its
    own seed and (unless the scenario fixes `population_seed`) its own population."""
    from metricpower.compare import side_of

    sc = side_of(scenario)
    plan = Plan("ensemble", [Arm(sc.name, {}, sc)], seed_list(sc, seeds))
    return run_plan(plan, out, **_split(options))


def sweep(scenario, grid: str | Path | dict[str, list] | list[dict[str, Any]],
          seeds: int | list[int] | None = None, out: str | Path = "runs/sweep",
          baseline: int = 0, **options) -> Results:
    """Arms over scenario keys, each on the same seeds and populations. `grid` is a
    GRID.toml path, a dict of key → values (every combination) or a list of dicts (one
    arm each); keys are dotted scenario keys (`rules.jaywalking.points`,
    `sensors.camera.false_match_by_group.minority_women`, `responses.deterrence.enabled`).
    The baseline arm (the first unless given) is what effects are measured against."""
    import itertools

    from metricpower.compare import side_of

    sc = side_of(scenario)
    labels, file = None, "<sweep>"
    if isinstance(grid, str | Path):
        file = str(grid)
        arms, labels, baseline, grid_seeds = load_grid(grid)
        seeds = seeds or grid_seeds
    elif isinstance(grid, dict):
        arms = [dict(zip(grid, c, strict=True)) for c in itertools.product(*grid.values())]
    else:
        arms = list(grid)
    plan = sweep_plan(sc, arms, seeds or 1, baseline, labels, file)
    return run_plan(plan, out, **_split(options))


def paired(a, b, name_a: str, name_b: str, seeds: int | list[int], out: str | Path,
           **options) -> Results:
    """A (policy) against B (baseline) on the same seeds and populations; each member of A
    also carries the comparison's effects against B's member on its seed."""
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    plan = Plan("compare", [Arm(name_a, {}, a), Arm(name_b, {}, b)], seed_list(a, seeds), 1)
    return run_plan(plan, out, **_split(options))


def _split(options: dict) -> dict:
    """`ray`, `address` and `workers` pick the executor; the rest go to run_plan."""
    options = dict(options)
    if "executor" not in options:
        options["executor"] = executor_of(options.pop("ray", False),
                                          options.pop("address", None),
                                          options.pop("workers", None))
    return options


__all__ = ["Executor", "ExtraMissing", "LocalPool", "Plan", "PlanError", "RayExecutor",
           "Results", "ensemble", "executor_of", "paired", "run_plan", "sweep"]
