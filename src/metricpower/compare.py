"""Counterfactual comparison: two policies on the same population with common random
numbers, so their difference is the policy's effect and nothing else.

`compare(a, b)` takes two finished runs (A: the policy, B: the baseline, often `null`),
checks that they share population, network, seed and number of citizens, and reports every
metric for both with the difference A − B, and the effects attributable to A's policy:
sanctions caused, penalties (and wrongful ones), lawful acts chilled, inequality added.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from metricpower.metrics import gini, measure, summary
from metricpower.metrics.common import clean, daily_total, frame
from metricpower.metrics.intensification import chilling
from metricpower.metrics.limits import policy_table
from metricpower.store import write_file


class NotComparable(ValueError):
    """Two runs that do not share population, network, seed and citizens."""


def null_of(scenario):
    """`scenario` with no policy: no rules, lists or consequences — the same population,
    network, behaviours, sensors, services and run settings, so it is the baseline for
    common random numbers. Of the responses only the economy stays, as it is: it is how
    the population lives, not the policy (charity still costs money, incomes still drift
    back), and without it the policy's effect on incomes would be confounded with it.
    The rest respond to the policy and stay off."""
    from metricpower.scenario import Scenario

    data = scenario.model_dump(mode="python")
    data.update(name="null", rules=[], lists=[], consequences=[],
                description=f"No policy: {scenario.name}'s population, behaviours, sensors "
                            "and services with no rules, lists or consequences.")
    data["responses"] = {"economy": data["responses"]["economy"]}
    # With no lists nobody is listed: what only the listed do (paying off a court debt)
    # does not happen.
    for b in data["behaviours"]:
        if b.get("when") and "on_list(" in b["when"]:
            b["when"] = "False"
    return Scenario.model_validate(data)


def differences(sa, sb) -> list[str]:
    """What stops two scenarios sharing common random numbers: a different population,
    network, seed or number of citizens (empty when they can be compared)."""
    out = []
    if sa.population != sb.population:
        out.append("population")
    if sa.network != sb.network:
        out.append("network")
    if sa.run.seed != sb.run.seed:
        out.append(f"seed ({sa.run.seed} vs {sb.run.seed})")
    pa, pb = sa.run.effective_population_seed, sb.run.effective_population_seed
    if pa != pb:
        out.append(f"population seed ({pa} vs {pb})")
    if sa.run.citizens != sb.run.citizens:
        out.append(f"citizens ({sa.run.citizens:,} vs {sb.run.citizens:,})")
    return out


def check_comparable(sa, sb, name_a: str = "A", name_b: str = "B") -> None:
    """Raise NotComparable, naming what differs, unless the two scenarios share population,
    network, seed and number of citizens."""
    diff = differences(sa, sb)
    if diff:
        raise NotComparable(
            f"cannot compare {name_a} and {name_b}: they differ in {', '.join(diff)}. A "
            "comparison needs the same population, network, seed and number of citizens "
            "(common random numbers), so that the difference is the policy's effect alone; "
            "rerun one of them with the other's settings.")


@dataclass
class Comparison:
    """Two runs on the same population and seed, their metrics, and the difference."""

    a: object
    b: object
    name_a: str
    name_b: str
    summary_a: dict             # A's process summary, chilling measured against B
    summary_b: dict
    rows: pl.DataFrame          # process, metric, a, b, difference (a − b)
    effects: dict               # what A's policy caused, against B
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return clean({"a": self.name_a, "b": self.name_b, "effects": self.effects,
                      "notes": self.notes, "metrics": self.rows.to_dicts()})

    def write(self, out, report: bool = True) -> Path:
        """Write comparison.json (and comparison.html) into the folder `out`; an `out`
        ending in .html names the report itself, with the JSON beside it."""
        out = Path(out)
        if out.suffix == ".html":
            html_path, json_path = out, out.with_suffix(".json")
        else:
            html_path, json_path = out / "comparison.html", out / "comparison.json"
        html_path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2)
        # Each file through a temporary sibling renamed into place: never half-written.
        write_file(json_path, lambda tmp: tmp.write_text(text))
        if report:
            from metricpower.report.comparison import write_comparison_report

            write_comparison_report(self, html_path)
        return html_path


def _flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        elif isinstance(v, bool):
            out[key] = float(v)
        elif isinstance(v, int | float) and v is not None:
            out[key] = float(v)
    return out


#: Counts that a run without the thing counted simply has none of (a policy without
#: consequences applied none): missing on one side means zero.
ZERO_IF_MISSING = ("judgements.applied.", "judgements.sanctions_total", "judgements.denials",
                   "judgements.throttles", "judgements.grants", "intensification.chilled.",
                   "intensification.lawful_chilled", "intensification.ties_",
                   "intensification.tie_changes.", "categorisation.list_sizes_")


def _metric_rows(sa: dict, sb: dict) -> pl.DataFrame:
    fa, fb = _flatten(sa), _flatten(sb)
    rows = []
    for key in list(dict.fromkeys([*fa, *fb])):
        process = key.split(".", 1)[0]
        a, b = fa.get(key), fb.get(key)
        if key.startswith(ZERO_IF_MISSING) and key not in fa:
            a = 0.0
        if key.startswith(ZERO_IF_MISSING) and key not in fb:
            b = 0.0
        diff = a - b if a is not None and b is not None else None
        rows.append({"process": process, "metric": key.split(".", 1)[-1], "a": a, "b": b,
                     "difference": diff})
    return pl.DataFrame(rows, schema={"process": pl.String, "metric": pl.String,
                                      "a": pl.Float64, "b": pl.Float64,
                                      "difference": pl.Float64})


def _effect(a, b) -> dict:
    diff = None if a is None or b is None else a - b
    return {"a": a, "b": b, "difference": diff}


def _sanctions(run) -> dict[str, int]:
    cons = frame(run.tables["consequences"])
    if cons is None or cons.height == 0:
        return {}
    s = cons.filter(pl.col("sanction")).group_by("consequence", maintain_order=True).agg(
        pl.col("applied").sum())
    return dict(zip(s["consequence"], (int(x) for x in s["applied"]), strict=True))


def _refusals(run) -> int:
    svc = frame(run.tables.get("services"))
    if svc is None or "refused_by_others" not in svc.columns:
        return 0
    return int(svc["refused_by_others"].sum())


def effects(a, b, sa: dict, sb: dict) -> dict:
    """What A's policy caused against baseline B (A − B): sanctions by consequence,
    citizens sanctioned, penalties (and those on benign or misattributed evidence),
    wrongful sanctions, acts and lawful acts chilled, and inequality added. Read from the
    daily, citizens, consequences and services tables and the two summaries only (never
    the ledger), so that it is quick for runs of any size."""
    da, db = frame(a.tables["daily"]), frame(b.tables["daily"])
    ca, cb = frame(a.tables["citizens"]), frame(b.tables["citizens"])
    out: dict = {}
    sanc_a, sanc_b = _sanctions(a), _sanctions(b)
    names = list(dict.fromkeys([*sanc_a, *sanc_b]))
    out["sanctions"] = {n: _effect(sanc_a.get(n, 0), sanc_b.get(n, 0)) for n in names}
    out["sanctions_total"] = _effect(sum(sanc_a.values()), sum(sanc_b.values()))
    out["refusals_by_others"] = _effect(_refusals(a), _refusals(b))
    out["citizens_sanctioned"] = _effect(int((ca["sanctions"] > 0).sum()),
                                         int((cb["sanctions"] > 0).sum()))
    for key, col in (("penalties", "penalties"), ("benign_penalties", "benign_penalties"),
                     ("misattributed_penalties", "misattributed_penalties")):
        out[key] = _effect(daily_total(da, col), daily_total(db, col))
    out["wrongful_penalties"] = _effect(
        out["benign_penalties"]["a"] + out["misattributed_penalties"]["a"],
        out["benign_penalties"]["b"] + out["misattributed_penalties"]["b"])
    out["wrongful_sanctions"] = _effect(sa["judgements"]["wrongful_sanctions"],
                                        sb["judgements"]["wrongful_sanctions"])
    out["occurrences"] = _effect(daily_total(da, "occurrences"),
                                 daily_total(db, "occurrences"))
    ch = chilling(da, policy_table(a.scenario), db)
    if ch is not None:
        out["acts_chilled"] = int(ch["chilled"].sum())
        out["lawful_acts_chilled"] = int(ch["lawful_chilled"].sum())
        out["chilled_by_behaviour"] = {r["behaviour"]: {"chilled": r["chilled"],
                                                        "lawful_chilled": r["lawful_chilled"]}
                                       for r in ch.iter_rows(named=True)}
    else:
        out["acts_chilled"] = out["occurrences"]["b"] - out["occurrences"]["a"]
        out["lawful_acts_chilled"] = None
    score_a, score_b = ca["score"].to_numpy(), cb["score"].to_numpy()
    out["score_gini"] = _effect(_score_gini(a, score_a), _score_gini(b, score_b))
    inc = "income_final" if "income_final" in ca.columns else "income"
    inc_b = "income_final" if "income_final" in cb.columns else "income"
    out["income_gini"] = _effect(gini(ca[inc].to_numpy()), gini(cb[inc_b].to_numpy()))
    out["income_gap_by_tier"] = _effect(
        sa["intensification"]["income_gap"].get("ratio_end"),
        sb["intensification"]["income_gap"].get("ratio_end"))
    out["inequality_added"] = {k: out[k]["difference"] for k in
                               ("score_gini", "income_gini", "income_gap_by_tier")}
    if len(score_a) == len(score_b):
        moved = score_a != score_b
        out["citizens_scored_differently"] = int(moved.sum())
        out["mean_score_change"] = float((score_a - score_b).mean()) if len(score_a) else 0.0
    return clean(out)


def _score_gini(run, score) -> float:
    """The run's score Gini as metrics.json keeps it (the same formula), else computed."""
    kept = run.metrics.get("score_gini") if isinstance(run.metrics, dict) else None
    return kept if kept is not None else gini(np.maximum(score, 0))


def compare_runs(a, b, name_a: str | None = None, name_b: str | None = None) -> Comparison:
    """Compare run `a` (the policy) with run `b` (the baseline). Raises NotComparable when
    they do not share population, network, seed and number of citizens, or when their
    citizens differ although the scenarios agree."""
    name_a = name_a or a.scenario.name
    name_b = name_b or b.scenario.name
    if name_a == name_b:
        name_a, name_b = f"A: {name_a}", f"B: {name_b}"
    check_comparable(a.scenario, b.scenario, name_a, name_b)
    ca, cb = frame(a.tables["citizens"]), frame(b.tables["citizens"])
    if ca.height != cb.height or not np.array_equal(ca["conduct"].to_numpy(),
                                                    cb["conduct"].to_numpy()):
        raise NotComparable(f"cannot compare {name_a} and {name_b}: their citizens differ "
                            "although their scenarios agree (were they made by different "
                            "versions of metricpower?)")
    notes = []
    if a.scenario.run.days != b.scenario.run.days:
        notes.append(f"The runs cover different spans ({a.scenario.run.days} vs "
                     f"{b.scenario.run.days} days): totals are not like for like.")
    sa, sb = summary_against(a, b), summary_against(b)
    rows = _metric_rows(sa, sb)
    eff = effects(a, b, sa, sb)
    return Comparison(a, b, name_a, name_b, sa, sb, rows, eff, notes)


def summary_against(run, baseline=None) -> dict:
    """`summary(run)` with chilling measured against `baseline` (when given). The summary
    that `simulate` computed and metrics.json keeps under "processes" is used where the
    run has it: only chilling depends on the baseline, and it is read from the two daily
    tables, so a comparison never measures either run again. A run without it (made by
    hand) is measured."""
    stored = run.metrics.get("processes") if isinstance(run.metrics, dict) else None
    if stored is None:
        return summary(run, measure(run, baseline=baseline))
    if baseline is None:
        return stored
    s = copy.deepcopy(stored)
    ch = chilling(frame(run.tables["daily"]), policy_table(run.scenario),
                  frame(baseline.tables["daily"]))
    kept = {}
    for key, value in s.get("intensification", {}).items():
        if key == "income_by_tier" and ch is not None:  # where `summary` puts chilling
            kept["chilled"] = {r["behaviour"]: r["chilled"] for r in ch.iter_rows(named=True)}
            kept["lawful_chilled"] = int(ch["lawful_chilled"].sum())
        if key not in ("chilled", "lawful_chilled"):
            kept[key] = value
    s["intensification"] = kept
    return clean(s)


# ---------------------------------------------------------------- the two sides
#: The run settings a run directory imposes on a scenario compared with it.
SETTINGS = ("citizens", "days", "seed", "population_seed")


@dataclass
class Sides:
    """The two sides of a comparison after deciding whose settings win: each a Run (a run
    directory, kept as it is) or a Scenario (to be simulated), and their names."""

    a: object
    b: object
    name_a: str
    name_b: str

    def scenarios(self):
        return [s.scenario if _is_run(s) else s for s in (self.a, self.b)]


def _is_run(side) -> bool:
    from metricpower.runs import Run

    return isinstance(side, Run)


def side_of(spec, label: str = "A"):
    """One side as given by a user: a Run, a Scenario or None ("null") is kept; a string or
    path is a run directory, a scenario file or a preset name, in that order."""
    from metricpower.runs import Run, load_run
    from metricpower.scenario import (
        Scenario,
        ScenarioError,
        load_preset,
        load_scenario,
        preset_names,
    )

    if spec is None or isinstance(spec, Run | Scenario):
        return spec
    if str(spec) == "null":
        return None
    path = Path(spec)
    if path.is_dir():
        return load_run(path)
    if path.is_file():
        return load_scenario(path)
    if str(spec) in preset_names():
        return load_preset(str(spec))
    raise ScenarioError(str(spec), f"{label} is not a run directory, a scenario file or a "
                                   f"preset name (presets: {', '.join(preset_names())}; "
                                   "or `null`)")


def _with_run(sc, settings: dict):
    if not settings:
        return sc
    data = sc.model_dump(mode="python")
    data["run"] = {**data["run"], **settings}
    from metricpower.scenario import Scenario

    return Scenario.model_validate(data)


def sides(a, b, *, citizens: int | None = None, days: int | None = None,
          seed: int | None = None, population_seed: int | None = None,
          names: tuple[str | None, str | None] = (None, None)) -> Sides:
    """Decide what is compared with what. A run directory keeps its own settings and the
    scenario on the other side follows them (so both share one population and seed);
    `citizens`, `days`, `seed` and `population_seed` apply to scenarios only; `null` is
    the other side with no policy. Raises NotComparable when the request cannot hold."""
    given = {"citizens": citizens, "days": days, "seed": seed,
             "population_seed": population_seed}
    settings = {k: v for k, v in given.items() if v is not None}
    pair = [side_of(a, "A"), side_of(b, "B")]
    labels = [names[0] or (Path(a).name if isinstance(a, str | Path) and Path(a).is_dir()
                           else None),
              names[1] or (Path(b).name if isinstance(b, str | Path) and Path(b).is_dir()
                           else None)]
    if pair == [None, None]:
        raise NotComparable("A and B cannot both be `null`")
    runs = [s for s in pair if _is_run(s)]
    if settings and runs:
        raise NotComparable("--citizens/--days/--seed apply to scenarios; a run directory "
                            "keeps its own settings (the other side follows them)")
    for i, side in enumerate(pair):
        other = pair[1 - i]
        if _is_run(side) and other is not None and not _is_run(other):
            rs = side.scenario.run
            pair[1 - i] = _with_run(other, {k: getattr(rs, k) for k in SETTINGS})
    pair = [s if s is None or _is_run(s) else _with_run(s, settings) for s in pair]
    for i, side in enumerate(pair):
        if side is None:
            other = pair[1 - i]
            pair[i] = null_of(other.scenario if _is_run(other) else other)
    out = [label or (s.scenario.name if _is_run(s) else s.name)
           for label, s in zip(labels, pair, strict=True)]
    result = Sides(pair[0], pair[1], out[0], out[1])
    check_comparable(*result.scenarios(), *out)
    return result


def compare(a, b, name_a: str | None = None, name_b: str | None = None, *,
            citizens: int | None = None, days: int | None = None, seed: int | None = None,
            population_seed: int | None = None, seeds: int | None = None, out=None,
            runner=None, **ensemble_options):
    """Compare A (the policy) with B (the baseline) on one population with common random
    numbers. Each side is a Run, a Scenario, a run directory, a scenario file, a preset
    name, or None / "null" (the other side with no policy); see `sides` for whose settings
    win.

    With `seeds=None` the two sides run once (`runner(scenario, population)`, default
    `simulate`) and a Comparison comes back. With `seeds=N` both run on N seeds (N
    populations, each shared by A and B) through the ensemble machinery, writing to `out`;
    the result's effects are paired differences with 95% t-intervals."""
    s = sides(a, b, citizens=citizens, days=days, seed=seed, population_seed=population_seed,
              names=(name_a, name_b))
    if seeds is not None:
        if _is_run(s.a) or _is_run(s.b):
            raise NotComparable("a run directory holds one seed; compare scenarios or "
                                "presets with --seeds")
        from metricpower.ensembles import paired

        if out is None:
            raise ValueError("compare with seeds writes its members: give `out`")
        return paired(s.a, s.b, s.name_a, s.name_b, seeds=seeds, out=out,
                      **ensemble_options)
    from metricpower.population import build_population, population_of
    from metricpower.runs import simulate

    runner = runner or (lambda sc, population: simulate(sc, population=population))
    populations: dict[str, object] = {}
    done = []
    for side in (s.a, s.b):
        if _is_run(side):
            done.append(side)
            continue
        pop = populations.get(key := population_of(side))
        if pop is None:
            pop = populations[key] = build_population(side)
        done.append(runner(side, pop))
    return compare_runs(done[0], done[1], s.name_a, s.name_b)


def describe(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}"
    return f"{int(value):,}"


__all__ = ["Comparison", "NotComparable", "Sides", "check_comparable", "compare",
           "compare_runs", "describe", "differences", "effects", "null_of", "side_of", "sides",
           "summary_against"]
