"""Running a scenario and keeping its results: in memory, in a run directory, and back.

A run directory holds:

- ``scenario.toml`` — the resolved scenario (every default filled in; runs as it is);
- one Parquet file per table of the results schema (``metricpower.ledger.schema``, which
  declares every column with its type, unit and meaning): ``daily``, ``citizens``,
  ``ledger``, ``consequences``, ``services``, ``tiers``, ``ties``, ``predictions``,
  ``bottom``;
- ``metrics.json`` — the headline numbers;
- ``report.html`` — the report, self-contained (written by the report package).

DuckDB and Polars read the Parquet files in place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from metricpower.checkpoints import Checkpoints
from metricpower.engine import Engine
from metricpower.engine.backend import backend_named
from metricpower.engine.core import Recorded
from metricpower.engine.gpu import GpuUnavailable
from metricpower.ledger.schema import CITIZENS, RESULTS, TIERS
from metricpower.memory import MemoryTooSmall, check_memory
from metricpower.population import Population, build_population
from metricpower.scenario import Scenario, ScenarioError, load_scenario, to_toml
from metricpower.store import OutputError, program_version, verify, write_run, write_table

#: The tables of a run directory, as the results schema declares them.
TABLES = tuple(RESULTS)


@dataclass
class Run:
    """A finished run: the resolved scenario, its tables (Arrow) and headline metrics."""

    scenario: Scenario
    tables: dict[str, pa.Table]
    metrics: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> pa.Table:
        tables = self.__dict__.get("tables", {})
        if name in tables:
            return tables[name]
        raise AttributeError(name)

    def polars(self, name: str):
        import polars as pl

        return pl.from_arrow(self.tables[name])

    def pandas(self, name: str):
        """A table as a pandas DataFrame (needs the `pandas` extra)."""
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise ImportError("Run.pandas() needs pandas: pip install 'metricpower[pandas]' "
                              "(or use run.polars(), or run.tables for Arrow)") from None
        return self.tables[name].to_pandas()

    def plot(self, figure: str, tables: dict | None = None):
        """One of the report's figures, e.g. ``run.plot("tier-shares")`` (an SVG that a
        notebook shows; `metricpower.report.FIGURES` lists them)."""
        from metricpower.report import plot

        return plot(self, figure, tables)

    def write(self, out: str | Path, report: bool = True, *, force: bool = False,
              fresh_name: bool = False) -> Path:
        """Write the run directory all at once (see `metricpower.store`): refused on a
        folder that is not a run, and on an earlier run unless `force`; with
        `fresh_name`, the first free name from `out` (out, out-2, …). Returns where it
        went."""
        def fill(tmp: Path) -> dict:
            (tmp / "scenario.toml").write_text(to_toml(self.scenario))
            for name in TABLES:
                write_table(self.tables[name], tmp / f"{name}.parquet")
            (tmp / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
            if report:
                from metricpower.report import write_report

                write_report(self, tmp / "report.html")
            rs = self.scenario.run
            return {"version": program_version(), "scenario": self.scenario.name,
                    "scenario_sha256": hashlib.sha256(
                        (tmp / "scenario.toml").read_bytes()).hexdigest(),
                    "seed": rs.seed, "citizens": rs.citizens, "days": rs.days}

        return write_run(Path(out), fill, force=force, fresh_name=fresh_name, tables=TABLES)


def simulate(scenario: Scenario, progress: Callable[[int], None] | None = None,
             population: Population | None = None,
             checkpoints: Checkpoints | None = None) -> Run:
    """Run a scenario in memory. `progress(day)` is called after each day. `population`
    (from `build_population`) runs it on a population built before, shared by runs of
    other seeds or policies; it must have been built for this scenario's population. With
    `checkpoints`, the run goes on from their saved state, if any, and saves its own.
    Refused (MemoryTooSmall) before anything is made when it would not fit in memory."""
    backend = backend_for(scenario)
    check_memory(scenario, backend)
    if population is None:
        population = build_population(scenario)
        network = population.network
    else:
        _check_fits(scenario, population)
        network = population.network_copy()
    engine = Engine(scenario, population.citizens, network, backend)
    start = 0
    if checkpoints is not None:
        start = checkpoints.restore(engine)

        def tick(day: int, inner=progress) -> None:
            checkpoints.after(engine, day)
            if inner is not None:
                inner(day)

        progress = tick
    engine.run(progress, start)
    engine.host()
    return _run(engine.member(0))


def simulate_batch(scenarios: list[Scenario], populations: list[Population]) -> list[Run]:
    """Run several scenarios differing in their seeds only, each on its population, side
    by side in one engine (engine/members.py): each run is what `simulate` would give, to
    the last bit, and the day's fixed cost is paid once for all."""
    backend = backend_for(scenarios[0])
    for sc, pop in zip(scenarios, populations, strict=True):
        check_memory(sc, backend)
        _check_fits(sc, pop)
    engine = Engine.batch(scenarios, [(p.citizens, p.network_copy()) for p in populations],
                          backend)
    engine.run()
    engine.host()
    return [_run(engine.member(m)) for m in range(len(scenarios))]


def backend_for(scenario: Scenario):
    """The scenario's backend; a machine that cannot run it is told before any work."""
    try:
        return backend_named(scenario.run.backend)
    except GpuUnavailable as e:
        raise ScenarioError(f"scenario {scenario.name}", str(e), key="run.backend") from None


def _check_fits(scenario: Scenario, population: Population) -> None:
    if not population.fits(scenario):
        raise ValueError(f"scenario {scenario.name!r}: the population given was built from "
                         "other population or network settings, number of citizens or "
                         "population seed")


def _run(recorded: Recorded) -> Run:
    """A finished run from what one member of an engine recorded: its tables, checked,
    and its metrics."""
    from metricpower.metrics import headline, summary

    tables = _tables(recorded)
    run = Run(recorded.scenario, tables, headline(recorded.scenario, tables))
    run.metrics["processes"] = summary(run)
    return run


def _names(values: np.ndarray, labels: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(values.astype(np.int32)),
                                          pa.array(labels, pa.string()))


def _tables(engine: Recorded) -> dict[str, pa.Table]:
    """The run's tables (from what one member of an engine recorded), each built and
    checked against its declaration in the results schema (an undeclared, missing or
    mistyped column stops the run)."""
    sc, citizens, state = engine.scenario, engine.citizens, engine.state
    groups = [g.name for g in sc.population.groups]
    cols = {
        "citizen": np.arange(engine.n, dtype=np.int64),
        "region": _names(citizens.region, [r.name for r in sc.population.regions]),
        "urban": citizens.urban,
        "group": _names(citizens.group, groups),
        "conduct": citizens.conduct,
        "gamer": citizens.gamer,
        "prosociality": citizens.prosociality,
        "pet_owner": citizens.pet_owner,
        "has_child": citizens.has_child,
        "income": citizens.income,
        "friends": engine.friends.astype(np.int32),
        "score": state.score,
        "tier": _names(state.tier, [t.name for t in sc.tiers]),
    }
    for spec in sc.lists:
        cols[CITIZENS["on", spec.name]] = state.on_list[spec.name]
        cols[CITIZENS["days_on", spec.name]] = state.days_listed(spec.name, sc.run.days)
    cols.update(occurrences=state.acts, observed=state.observed,
                income_final=state.income, flagged=state.flagged,
                true_offences=state.true_offences,
                sanctions=state.sanctions, rewards=state.rewards,
                pets_confiscated=state.pets_confiscated,
                days_labelled=state.days_labelled(sc.run.days),
                in_ledger=engine.ledger.kept)
    # the daily rows as columns (None where a day lacks one), in one pass over the rows
    keys = dict.fromkeys(chain.from_iterable(engine.daily))
    daily = {k: [None] * len(engine.daily) for k in keys}
    for day, row in enumerate(engine.daily):
        for k, v in row.items():
            daily[k][day] = v
    cons = [(c, g, int(engine.applied[ci, gi])) for ci, c in enumerate(sc.consequences)
            for gi, g in enumerate(groups)]
    svc = [(s.name, g, int(engine.attempts[si, gi]), int(engine.refused[si, gi]))
           for si, s in enumerate(sc.services) for gi, g in enumerate(groups)]
    tier_names = [t.name for t in sc.tiers]
    tiers = {"citizen": np.arange(engine.n, dtype=np.int64)} | {
        TIERS["day", d]: _names(t, tier_names) for d, t in sorted(engine.snapshots.items())}
    log = engine.ties
    ties = {
        "day": log["day"], "citizen": log["citizen"], "friend": log["friend"],
        "change": _names(log["formed"].astype(np.int8), ["dropped", "formed"]),
        "reason": _names(log["public"].astype(np.int8), ["association_rule", "public_list"]),
    }
    moves = engine.bottom
    bottom = {"day": moves["day"], "citizen": moves["citizen"],
              "change": _names((~moves["entered"]).astype(np.int8), ["entered", "left"])}
    pred = engine.predictions
    ledger = engine.ledger.table()
    values = {
        "daily": daily,
        "citizens": cols,
        "ledger": {name: ledger[name] for name in ledger.column_names},
        "consequences": {
            "consequence": [c.name for c, _, _ in cons], "effect": [c.effect for c, _, _ in cons],
            "service": [c.service for c, _, _ in cons],
            "sanction": [c.is_sanction for c, _, _ in cons],
            "provenance": [c.provenance for c, _, _ in cons], "group": [g for _, g, _ in cons],
            "applied": [n for _, _, n in cons]},
        "services": {"service": [s[0] for s in svc], "group": [s[1] for s in svc],
                     "attempts": [s[2] for s in svc], "refused_by_others": [s[3] for s in svc]},
        "tiers": tiers,
        "ties": ties,
        "predictions": {"day": [r["day"] for r in pred],
                        "group": [groups[r["group"]] for r in pred]}
        | {k: [r[k] for r in pred] for k in ("tp", "fp", "fn", "tn")},
        "bottom": bottom,
    }
    return {name: RESULTS[name].build(values[name], sc) for name in TABLES}


def load_run(path: str | Path) -> Run:
    """Read a complete run directory back: the scenario, the tables (Arrow) and the
    metrics. OutputError when it is not one (see `metricpower.store.verify`)."""
    path = Path(path)
    manifest = verify(path)
    files = manifest["files"]
    for name in ("scenario.toml", "metrics.json", "citizens.parquet", "daily.parquet"):
        if name not in files:
            raise OutputError(f"{path}: {name} is not part of this run; the run is incomplete")
    scenario = load_scenario(path / "scenario.toml")
    tables = {}
    for name in TABLES:
        entry = files.get(f"{name}.parquet")
        if entry is None:
            continue  # tables added in later versions are missing from older runs
        try:
            tables[name] = pq.read_table(path / f"{name}.parquet")
        except (pa.ArrowException, OSError) as err:
            raise OutputError(f"{path}: {name}.parquet cannot be read ({err})") from None
        if tables[name].num_rows != entry.get("rows"):
            raise OutputError(f"{path}: {name}.parquet has {tables[name].num_rows:,} rows, "
                              f"the run wrote {entry.get('rows')}")
    try:
        metrics = json.loads((path / "metrics.json").read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise OutputError(f"{path}: metrics.json cannot be read ({err})") from None
    return Run(scenario, tables, metrics)


__all__ = ["MemoryTooSmall", "OutputError", "Run", "ScenarioError", "load_run", "simulate"]
