"""Calibration: fit at most five parameters of a preset to a published series.

A calibration spec (``specs/<preset>.toml``) names the preset, its target series (a CSV
of date, quantity, value, source shipped beside it), what each quantity is in a run, the
free parameters with their ranges, and the last date fitted (later dates are held out).
Each trial runs the preset at the trial's values on `replicates` seeds — the same seeds
in every trial, so trials differ by their parameters and not by their luck (common
random numbers) — scales the runs' counts to the population the preset represents and
scores the fitted dates. Optuna's CMA-ES sampler proposes the values, starting from the
preset's own; the study is kept in SQLite in the output folder, so an interrupted
calibration resumes where it stopped.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import tomllib
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metricpower.engine import Engine
from metricpower.metrics.ranges import NONNEGATIVE as COUNT
from metricpower.metrics.scaling import ERRORS
from metricpower.population import make_citizens, make_network
from metricpower.scenario import Scenario, ScenarioError, load_preset
from metricpower.scenario.load import NAMED_ARRAYS, _key_path, _line_of, merge
from metricpower.store import write_file

SPECS = "metricpower.calibrate.specs"
#: The most free parameters a calibration may fit.
MAX_PARAMETERS = 5
#: Relative error allowed for a published figure in the objective (rounding, definitions),
#: added to the sampling error of a run of the calibration's size.
FIGURE_ERROR = 0.05
#: Trials whose values count towards the fitted values' spread: the best quarter.
SPREAD_SHARE = 0.25


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantity(_Strict):
    """A target quantity as a run records it: a daily column read on the date (`level`:
    citizens in a state) or summed from day 0 (`cumulative`: events)."""

    column: str
    measure: Literal["level", "cumulative"]

    @property
    def kind(self) -> str:
        return "citizens" if self.measure == "level" else "events"


class Parameter(_Strict):
    key: str = Field(description="key path, named entries by name: behaviours.x.rate")
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _range(self):
        if not self.low < self.high:
            raise ValueError(f"low must be below high; found {self.low} and {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0; found {self.low}")
        return self

    def overrides(self, value: float) -> dict:
        """The scenario overrides that set this parameter to `value`."""
        parts = self.key.split(".")
        if parts[0] in NAMED_ARRAYS:
            inner: dict = {"name": parts[1]}
            out = {parts[0]: [inner]}
            parts = parts[2:]
        else:
            inner = out = {}
        for part in parts[:-1]:
            inner = inner.setdefault(part, {})
        inner[parts[-1]] = value
        return out


class Spec(_Strict):
    preset: str
    targets: str
    fit_until: dt.date
    objective: list[str] = Field(min_length=1)
    quantities: dict[str, Quantity]
    parameters: list[Parameter] = Field(min_length=1, max_length=MAX_PARAMETERS)
    overrides: dict = Field(default_factory=dict,
                            description="scenario overrides for every run (a smaller test)")

    @model_validator(mode="after")
    def _names(self):
        for name in self.objective:
            if name not in self.quantities:
                raise ValueError(f"objective: unknown quantity {name!r}; expected one of "
                                 f"{sorted(self.quantities)}")
        keys = [p.key for p in self.parameters]
        if len(set(keys)) != len(keys):
            raise ValueError(f"parameters: a key appears twice in {keys}")
        return self

    def with_values(self, values: dict[str, float]) -> dict:
        """Scenario overrides: the spec's own, then the parameters at `values`."""
        out: dict = self.overrides
        for p in self.parameters:
            out = merge(out, p.overrides(values[p.key]))
        return out


@dataclass(frozen=True)
class Target:
    date: dt.date
    quantity: str
    value: float
    source: str
    line: int


class CalibrationError(ScenarioError):
    """A calibration that cannot run; its message is meant for the user as it is."""


def spec_names() -> list[str]:
    files = resources.files(SPECS).iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".toml"))


def load_spec(name: str | Path) -> tuple[Spec, list[Target]]:
    """The calibration spec of preset `name` (shipped), or in a file, and its targets
    (a CSV named relative to the spec), checked."""
    if str(name).endswith(".toml") and Path(name).is_file():
        file, folder = str(name), Path(name).parent
        text = Path(name).read_text()
    elif name in spec_names():
        file, folder = f"calibration spec {name!r}", resources.files(SPECS)
        text = folder.joinpath(f"{name}.toml").read_text()
    else:
        raise CalibrationError(f"calibration {name!r}", "no calibration spec for this preset; "
                               f"expected one of {spec_names()} or a spec file", key="preset")
    try:
        spec = Spec.model_validate(tomllib.loads(text))
    except ValidationError as err:
        first = err.errors()[0]
        key = _key_path(first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"] and ": " in message:
            key, message = message.split(": ", 1)
        raise CalibrationError(file, message, key=key, line=_line_of(key, text)) from None
    targets = read_targets(spec, folder.joinpath(spec.targets).read_text(), spec.targets)
    scenario = load_preset(spec.preset, spec.overrides)
    dumped = scenario.model_dump()
    for i, p in enumerate(spec.parameters):
        where = f"parameters[{i}].key"
        if not _has_key(dumped, p.key):
            raise CalibrationError(file, f"the preset has no key {p.key!r}", key=where,
                                   line=_line_of(where, text))
        for bound in (p.low, p.high):
            try:
                load_preset(spec.preset, merge(spec.overrides, p.overrides(bound)))
            except ScenarioError as err:
                raise CalibrationError(file, f"{bound} is not a valid value of {p.key}: "
                                       f"{err.message}", key=where,
                                       line=_line_of(where, text)) from None
    last = scenario.date_of(scenario.run.days - 1)
    for t in targets:
        if not scenario.run.start <= t.date <= last:
            raise CalibrationError(spec.targets, f"date {t.date} is outside the run "
                                   f"({scenario.run.start} to {last})", line=t.line)
    return spec, targets


def _has_key(data: dict, key: str) -> bool:
    parts = key.split(".")
    if parts[0] in NAMED_ARRAYS:
        entries = [e for e in data.get(parts[0], []) if e.get("name") == parts[1]]
        if not entries:
            return False
        data, parts = entries[0], parts[2:]
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return isinstance(data, int | float) and not isinstance(data, bool)


def read_targets(spec: Spec, text: str, file: str) -> list[Target]:
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0] != ["date", "quantity", "value", "source"]:
        raise CalibrationError(file, "expected the header date,quantity,value,source; found "
                               f"{','.join(rows[0]) if rows else 'nothing'}", line=1)
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 4:
            raise CalibrationError(file, f"expected 4 fields, found {len(row)}", line=line)
        date, quantity, value, source = row
        try:
            when = dt.date.fromisoformat(date)
        except ValueError:
            raise CalibrationError(file, f"expected a date (YYYY-MM-DD), found {date!r}",
                                   key="date", line=line) from None
        if quantity not in spec.quantities:
            raise CalibrationError(file, f"unknown quantity {quantity!r}; expected one of "
                                   f"{sorted(spec.quantities)}", key="quantity", line=line)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not number > 0:
            raise CalibrationError(file, f"expected a positive number, found {value!r}",
                                   key="value", line=line)
        out.append(Target(when, quantity, number, source, line))
    return out


# ---------------------------------------------------------------- runs
def series(scenarios: list[Scenario], quantities: dict[str, Quantity]
           ) -> list[dict[str, np.ndarray]]:
    """Runs' daily counts of each quantity (unscaled), the engine alone, no metrics: the
    replicates of one trial (the same parameters, other seeds) side by side in one
    engine, each what its run alone would give (engine/members.py)."""
    populations = [make_citizens(sc) for sc in scenarios]
    engine = Engine.batch(scenarios, [(c, make_network(sc, c))
                                      for sc, c in zip(scenarios, populations, strict=True)])
    engine.run()
    m = len(scenarios)
    out: list[dict[str, np.ndarray]] = [{} for _ in scenarios]
    for name, q in quantities.items():
        if not any(q.column in row for row in engine.daily):
            raise CalibrationError(f"calibration spec {scenarios[0].name!r}",
                                   f"the run records no column {q.column!r}",
                                   key=f"quantities.{name}.column")
        # A day's value is one number, or one per member where the engine holds several.
        values = np.array([np.broadcast_to(np.asarray(row.get(q.column, 0)), (m,))
                           for row in engine.daily], dtype=np.int64)
        if q.measure == "cumulative":
            values = np.cumsum(values, axis=0)
        for mine, column in zip(out, values.T, strict=True):
            mine[name] = column
    return out


def _replicates(args) -> list[dict[str, np.ndarray]]:
    preset, overrides, quantities = args
    return series([load_preset(preset, o) for o in overrides], quantities)


@dataclass
class Simulated:
    """Replicate runs at one set of values: daily counts per quantity, scaled."""

    scenario: Scenario
    runs: list[dict[str, np.ndarray]]

    @property
    def factor(self) -> float:
        return self.scenario.run.represents / self.scenario.run.citizens

    def mean(self, quantity: str) -> np.ndarray:
        return np.mean([r[quantity] for r in self.runs], axis=0) * self.factor

    def at(self, quantity: str, date: dt.date) -> float:
        return float(self.mean(quantity)[self.scenario.day_of(date)])

    def se(self, quantity: str, kind: str, date: dt.date) -> float:
        """Sampling error of the replicates' mean at `date` (binomial for citizens in a
        state, Poisson for events; see metrics.scaling)."""
        n, r = self.scenario.run.citizens, len(self.runs)
        k = self.at(quantity, date) / self.factor
        var = k * (1 - k / n) if kind == "citizens" else k
        return self.factor * math.sqrt(max(var, 0.0) / r)


def simulate_at(spec: Spec, values: dict[str, float], settings: dict,
                pool: ProcessPoolExecutor | None = None, workers: int = 1) -> Simulated:
    """The replicates at these values: one batch side by side per worker of `pool`."""
    overrides = spec.with_values(values)
    base = {"run": {"citizens": settings["citizens"]}}
    seeds = [merge(merge(overrides, base), {"run": {"seed": settings["seed"] + r}})
             for r in range(settings["replicates"])]
    # Batches in replicate order (the mean adds them in that order).
    parts = 1 if pool is None else max(1, min(workers, len(seeds)))
    jobs = [(spec.preset, [seeds[i] for i in group], spec.quantities)
            for group in np.array_split(np.arange(len(seeds)), parts)]
    batches = pool.map(_replicates, jobs) if pool is not None else map(_replicates, jobs)
    runs = [run for batch in batches for run in batch]
    return Simulated(load_preset(spec.preset, merge(overrides, base)), runs)


def loss(spec: Spec, targets: list[Target], sim: Simulated) -> float:
    """Mean squared standardised error over the fitted dates: each figure's error counts
    against a 5% allowance for the figure plus the sampling error a run of this size
    has at that count, so figures the run can barely resolve weigh little."""
    z = []
    for t in targets:
        if t.date > spec.fit_until or t.quantity not in spec.objective:
            continue
        sd = math.sqrt((FIGURE_ERROR * t.value) ** 2 + sim.factor * t.value)
        z.append((sim.at(t.quantity, t.date) - t.value) / sd)
    return float(np.mean(np.square(z)))


# ---------------------------------------------------------------- the study
def _optuna():
    try:
        import optuna
    except ImportError:
        raise CalibrationError("calibrate", "Optuna is not installed; install the extra: "
                               "pip install 'metricpower[calibrate]'") from None
    return optuna


@dataclass
class Calibration:
    spec: Spec
    targets: list[Target]
    best: dict[str, float]
    spread: dict[str, tuple[float, float]]
    trials: int
    best_loss: float
    simulated: Simulated
    settings: dict
    seconds: float

    def table(self) -> list[dict]:
        """Observed against simulated for every target, fitted or held out."""
        rows = []
        for t in self.targets:
            kind = self.spec.quantities[t.quantity].kind
            sim = self.simulated.at(t.quantity, t.date)
            se = self.simulated.se(t.quantity, kind, t.date)
            rows.append({
                "date": t.date.isoformat(), "quantity": t.quantity,
                "fitted": t.date <= self.spec.fit_until and t.quantity in self.spec.objective,
                "observed": t.value, "simulated": sim,
                "low": max(sim - 1.96 * se, COUNT.low), "high": sim + 1.96 * se,
                "error": (sim - t.value) / t.value,
                "sampling_error": ERRORS[kind], "source": t.source})
        return rows

    def increments(self) -> list[dict]:
        """What each cumulative quantity added between consecutive published dates (the
        first period from the run's start), per day, observed against simulated: where a
        held-out miss comes from — a rate the fitted dates set that later periods do not
        keep, or a level already off when the fitting ended. The objective's quantities
        only: the others' sources count different things from date to date."""
        sim, sc = self.simulated, self.simulated.scenario
        rows = []
        for name in self.spec.objective:
            if self.spec.quantities[name].measure != "cumulative":
                continue
            points = sorted((t.date, t.value) for t in self.targets if t.quantity == name)
            before = (sc.run.start, 0.0, 0.0)
            for date, value in points:
                start, observed_then, simulated_then = before
                days = (date - start).days
                simulated = sim.at(name, date)
                observed = (value - observed_then) / days
                modelled = (simulated - simulated_then) / days
                rows.append({"quantity": name, "from": start.isoformat(),
                             "to": date.isoformat(), "held_out": date > self.spec.fit_until,
                             "observed_per_day": observed, "simulated_per_day": modelled,
                             "ratio": modelled / observed if observed > 0 else math.nan})
                before = (date, value, simulated)
        return rows


def calibrate(name: str, out: Path, trials: int = 40, replicates: int = 3,
              citizens: int | None = None, seed: int = 1, workers: int = 1,
              progress: Callable[[int, int, float], None] | None = None) -> Calibration:
    """Run (or resume) the study in `out/study.db` up to `trials` finished trials, then
    run the best values once more and return the comparison."""
    import time

    optuna = _optuna()
    spec, targets = load_spec(name)
    preset = load_preset(spec.preset, spec.overrides)
    settings = {"citizens": citizens or preset.run.citizens, "replicates": replicates,
                "seed": seed}
    out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    current = preset.model_dump()
    start = {p.key: _value(current, p.key) for p in spec.parameters}
    study = optuna.create_study(
        study_name=spec.preset, storage=f"sqlite:///{out / 'study.db'}", load_if_exists=True,
        direction="minimize", sampler=_sampler(optuna, start, seed))
    kept = study.user_attrs.get("settings")
    if kept is None:
        study.set_user_attr("settings", settings)
        # The preset's own values first: the fit can only do better than them.
        study.enqueue_trial(start)
    elif kept != settings:
        raise CalibrationError(str(out / "study.db"), f"this study was run with {kept}, not "
                               f"{settings}; give the same settings to resume it, or "
                               "another --out")
    complete = optuna.trial.TrialState.COMPLETE
    began = time.perf_counter()
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        def objective(trial) -> float:
            values = {p.key: trial.suggest_float(p.key, p.low, p.high, log=p.log)
                      for p in spec.parameters}
            value = loss(spec, targets, simulate_at(spec, values, settings, pool, workers))
            if progress is not None:
                done = len(study.get_trials(deepcopy=False, states=(complete,))) + 1
                progress(done, trials, value)
            return value

        left = trials - len(study.get_trials(deepcopy=False, states=(complete,)))
        if left > 0:
            study.optimize(objective, n_trials=left)
        finished = study.get_trials(deepcopy=False, states=(complete,))
        best = study.best_params
        ranked = sorted(finished, key=lambda t: t.value)
        top = ranked[:max(3, math.ceil(SPREAD_SHARE * len(ranked)))]
        spread = {p.key: (min(t.params[p.key] for t in top), max(t.params[p.key] for t in top))
                  for p in spec.parameters}
        simulated = simulate_at(spec, best, settings, pool, workers)
    finally:
        if pool is not None:
            pool.shutdown()
    return Calibration(spec, targets, best, spread, len(finished), study.best_value,
                       simulated, settings, time.perf_counter() - began)


def _sampler(optuna, start: dict[str, float], seed: int):
    """CMA-ES from the preset's own values, a step of a tenth of each (log) range: a
    preset's values are worked out by hand from the published figures, so the search
    refines them rather than sampling the whole box (TPE, which does, did not improve on
    them in 40 trials). Small generations (6) give several updates within a short study."""
    try:
        import cmaes  # noqa: F401  (Optuna's CMA-ES sampler needs it)
    except ImportError:
        raise CalibrationError("calibrate", "the cmaes package is not installed; install the "
                               "extra: pip install 'metricpower[calibrate]'") from None
    with warnings.catch_warnings():
        # x0 and sigma0 are deprecated from Optuna 4.9 (removed in 6; the extra pins < 5).
        warnings.simplefilter("ignore", FutureWarning)
        return optuna.samplers.CmaEsSampler(x0=start, sigma0=0.1, seed=seed, popsize=6,
                                            n_startup_trials=0)


def _value(data: dict, key: str) -> float:
    parts = key.split(".")
    if parts[0] in NAMED_ARRAYS:
        data = next(e for e in data[parts[0]] if e.get("name") == parts[1])
        parts = parts[2:]
    for part in parts:
        data = data[part]
    return float(data)


# ---------------------------------------------------------------- writing
def _write_atomic(path: Path, text: str) -> None:
    """Write `text` through a temporary sibling renamed into place (store.write_file)."""
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_outputs(cal: Calibration, out: Path) -> dict[str, Path]:
    """The report, the comparison table (CSV) and the fitted values (JSON) in `out`."""
    from metricpower.calibrate.report import render

    rows = cal.table()
    paths = {"report": out / "calibration.html", "table": out / "calibration.csv",
             "fitted": out / "fitted.json"}
    _write_atomic(paths["report"], render(cal))
    _write_atomic(paths["table"], _csv(rows))
    _write_atomic(paths["fitted"], json.dumps({
        "preset": cal.spec.preset, "fitted": cal.best,
        "spread": {k: list(v) for k, v in cal.spread.items()}, "trials": cal.trials,
        "loss": cal.best_loss, "settings": cal.settings, "seconds": cal.seconds,
        "table": rows}, indent=2))
    return paths


def _csv(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def save(cal: Calibration, folder: Path | None = None) -> list[Path]:
    """Write the fitted values into the preset's own TOML (the line of each parameter,
    with its spread in a comment) and the held-out table beside it, so that
    `run --preset <name>` uses them. `folder`: the presets folder (default: the package's)."""
    folder = folder or Path(str(resources.files("metricpower.scenario.presets")))
    path = folder / f"{cal.spec.preset}.toml"
    lines = path.read_text().splitlines(keepends=True)
    data = tomllib.loads("".join(lines))
    for p in cal.spec.parameters:
        local = _local(data, p.key)
        n = _line_of(local, "".join(lines))
        head, sep, _ = lines[n - 1].partition("=")
        if not sep or head.strip() != p.key.split(".")[-1]:
            raise CalibrationError(str(path), f"{p.key} is not written as `key = number` on "
                                   "a line of its own; cannot save the fitted value",
                                   key=local, line=n)
        low, high = cal.spread[p.key]
        value = f"{cal.best[p.key]:.4g}"
        lines[n - 1] = (f"{head}= {value}".ljust(len(head) + 2 + 14) +
                        f"# fitted ({cal.trials} trials; best quarter {low:.3g} to "
                        f"{high:.3g})\n")
    text = "".join(lines)
    tomllib.loads(text)  # still TOML
    _write_atomic(path, text)
    held = [r for r in cal.table() if r["date"] > cal.spec.fit_until.isoformat()]
    holdout = folder / f"{cal.spec.preset}.holdout.csv"
    _write_atomic(holdout, _csv([{k: r[k] for k in ("date", "quantity", "observed",
                                                    "simulated", "low", "high", "error",
                                                    "source")} for r in held]))
    return [path, holdout]


def _local(data: dict, key: str) -> str:
    """`behaviours.x.rate` as the file's key path, `behaviours[3].rate`."""
    parts = key.split(".")
    if parts[0] in NAMED_ARRAYS:
        i = next(i for i, e in enumerate(data[parts[0]]) if e.get("name") == parts[1])
        return f"{parts[0]}[{i}]." + ".".join(parts[2:])
    return key


__all__ = ["MAX_PARAMETERS", "Calibration", "CalibrationError", "Parameter", "Quantity",
           "Spec", "Target", "calibrate", "load_spec", "loss", "read_targets", "save",
           "series", "simulate_at", "spec_names", "write_outputs"]
