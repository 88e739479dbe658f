"""Ensembles and sweeps as the dashboard sees them: the plan and the tidy table of an
ensemble folder read once (and again when results.parquet changes), each arm's members,
and two sets of members — two ensembles, or two arms of a sweep — compared with 95%
intervals (`metricpower.ensembles.stats.between`)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from metricpower.ensembles.results import EFFECTS, HEADLINE
from metricpower.ensembles.stats import between, means


class NotAnEnsemble(Exception):
    """A folder without a finished ensemble (plan.json and results.parquet)."""


@dataclass
class LoadedEnsemble:
    name: str
    path: Path
    plan: dict
    table: pl.DataFrame        # member, seed, [arm, parameters…], metric, value

    @property
    def kind(self) -> str:
        return str(self.plan.get("kind", "ensemble"))

    @property
    def arms(self) -> list[str]:
        return [str(a.get("label", i)) for i, a in enumerate(self.plan.get("arms", []))]

    @property
    def seeds(self) -> list[int]:
        return list(self.plan.get("seeds", []))

    def members(self, arm: int) -> pl.DataFrame:
        """`seed, metric, value` of one arm's members."""
        t = self.table
        if "arm" in t.columns:
            t = t.filter(pl.col("arm") == self.arms[arm])
        return t.select("seed", "metric", "value")

    def scenario(self, arm: int):
        from metricpower.scenario import Scenario

        return Scenario.model_validate(self.plan["arms"][arm]["scenario"])

    def summary(self) -> pl.DataFrame:
        """Per arm (where there are several) and metric: n, mean, sd and the 95% interval
        of the mean, cut to the metric's range (`stats.means`)."""
        keys = ["arm"] if "arm" in self.table.columns else []
        return means(self.table.lazy(), [*keys, "metric"])

    def arm_name(self, arm: int) -> str:
        return self.name if self.kind == "ensemble" else f"{self.name} — {self.arms[arm]}"


class Ensembles:
    """Ensemble folders of a runs folder, read once while their results are unchanged."""

    def __init__(self, folder):
        self.folder = folder
        self._cache: dict[tuple, LoadedEnsemble] = {}
        self._lock = threading.Lock()

    def get(self, rel: str) -> LoadedEnsemble:
        path = self.folder.inside(rel)
        plan_file, results = path / "plan.json", path / "results.parquet"
        if not plan_file.is_file() or not results.is_file():
            raise NotAnEnsemble(f"{rel!r} is not a finished ensemble or sweep (it needs "
                                "plan.json and results.parquet)")
        key = (path, results.stat().st_mtime_ns)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        try:
            plan = json.loads(plan_file.read_text())
            table = pl.read_parquet(results)
        except (OSError, ValueError, pl.exceptions.PolarsError) as e:
            raise NotAnEnsemble(f"{rel!r}: its results cannot be read ({e})") from None
        loaded = LoadedEnsemble(rel, path, plan, table)
        with self._lock:
            for old in [k for k in self._cache if k[0] == path]:
                del self._cache[old]
            self._cache[key] = loaded
        return loaded


def choice(value: str) -> tuple[str, int]:
    """A compare form's choice "FOLDER#ARM" (the arm's index) as (folder, arm)."""
    name, sep, arm = value.rpartition("#")
    if not sep or not arm.isdigit():
        raise ValueError(f"expected FOLDER#ARM (an ensemble and the index of one of its "
                         f"arms), found {value!r}")
    return name, int(arm)


def paired_seeds(ea: LoadedEnsemble, arm_a: int, eb: LoadedEnsemble, arm_b: int) -> bool:
    """Whether the two sides' members on a seed share one population and its random
    numbers: they have seeds in common, and their scenarios agree on population, network,
    number of citizens and population seed (compared on one seed)."""
    from metricpower.compare import differences
    from metricpower.ensembles.plan import with_seed

    if not set(ea.seeds) & set(eb.seeds):
        return False
    sa, sb = with_seed(ea.scenario(arm_a), 0), with_seed(eb.scenario(arm_b), 0)
    return not differences(sa, sb)


@dataclass
class EnsembleComparison:
    a: str
    b: str
    paired: bool
    seeds_a: int
    seeds_b: int
    rows: pl.DataFrame   # metric, n_a, mean_a, lo_a, hi_a, n_b, …, difference, lo, hi

    def headline(self) -> pl.DataFrame:
        """The effects (a paired comparison's own) and headline metrics, in that order."""
        order = [m for m in (*EFFECTS, *HEADLINE) if m in set(self.rows["metric"])]
        return (self.rows.filter(pl.col("metric").is_in(order))
                .with_columns(order=pl.col("metric").replace_strict(
                    order, list(range(len(order))), return_dtype=pl.Int64))
                .sort("order").drop("order"))


def compare(ea: LoadedEnsemble, arm_a: int, eb: LoadedEnsemble, arm_b: int
            ) -> EnsembleComparison:
    paired = paired_seeds(ea, arm_a, eb, arm_b)
    rows = between(ea.members(arm_a), eb.members(arm_b), paired)
    return EnsembleComparison(ea.arm_name(arm_a), eb.arm_name(arm_b), paired,
                              len(ea.seeds), len(eb.seeds), rows)


__all__ = ["EnsembleComparison", "Ensembles", "LoadedEnsemble", "NotAnEnsemble", "choice",
           "compare", "paired_seeds"]
