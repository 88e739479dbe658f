"""An ensemble's results, read back from its folder: the tidy table, every metric's mean
with its 95% interval, effects against the baseline arm, which parameters matter most."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from metricpower.ensembles.stats import means, paired, t_interval

#: The numbers the report and `.plot()` lead with (those a run has).
HEADLINE = ("sanctions_total", "penalties.total", "penalties.misattributed_per_100k",
            "penalties.benign_context_share", "mean_score", "score_gini",
            "processes.judgements.wrongful_sanctions", "effects.lawful_acts_chilled",
            "effects.income_gini")


#: A paired comparison's effects (A − B), led with.
EFFECTS = ("effects.sanctions_total", "effects.citizens_sanctioned", "effects.penalties",
           "effects.wrongful_penalties", "effects.wrongful_sanctions",
           "effects.acts_chilled", "effects.lawful_acts_chilled", "effects.score_gini",
           "effects.income_gini")


class Results:
    """`Results(folder)`: `.table()` (the tidy table), `.summary()`, `.effects()`,
    `.sensitivity()`, `.plot()` and `.report()`."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.plan = json.loads((self.out / "plan.json").read_text())
        self.kind = self.plan["kind"]
        self.arms = [a["label"] for a in self.plan["arms"]]
        self.params = list(dict.fromkeys(k for a in self.plan["arms"] for k in a["params"]))
        base = self.plan.get("baseline")
        self.baseline = self.arms[base] if base is not None and len(self.arms) > 1 else None

    @property
    def keys(self) -> list[str]:
        """The columns that name an arm (none for a plain ensemble)."""
        return [] if self.kind == "ensemble" else ["arm", *self.params]

    def table(self) -> pl.DataFrame:
        return pl.read_parquet(self.out / "results.parquet")

    def members(self) -> list[Path]:
        return sorted((self.out / "members").iterdir())

    def summary(self) -> pl.DataFrame:
        """Per arm and metric: members, mean, sd and the 95% interval of the mean (lo, hi):
        the t-interval cut to the metric's range (`stats.means`)."""
        return means(pl.scan_parquet(self.out / "results.parquet"), [*self.keys, "metric"])

    def effects(self, baseline: str | None = None) -> pl.DataFrame:
        """Per arm other than the baseline, and metric: the mean paired difference from the
        baseline arm on the same seeds, with its 95% t-interval. A paired comparison's
        `effects.*` metrics are already differences, so they are summarised as they are."""
        baseline = baseline or self.baseline
        if baseline is None:
            return pl.DataFrame()
        table = pl.scan_parquet(self.out / "results.parquet")
        diffs = paired(table.filter(~pl.col("metric").str.starts_with("effects.")),
                       baseline, self.keys)
        own = t_interval(table.filter(pl.col("metric").str.starts_with("effects."))
                         .rename({"value": "difference"}), [*self.keys, "metric"],
                         "difference")
        return pl.concat([own, diffs]) if own.height else diffs

    def sensitivity(self) -> pl.DataFrame:
        """For each headline metric and parameter: how far the metric's mean moves across the
        parameter's values (the range of the means over arms grouped by that value),
        largest first."""
        if not self.params:
            return pl.DataFrame()
        s = self.summary().filter(pl.col("metric").is_in(self.headline()))
        rows = []
        for metric in self.headline():
            m = s.filter(pl.col("metric") == metric)
            for p in self.params:
                means = m.group_by(p).agg(pl.col("mean").mean())["mean"]
                if len(means) > 1:
                    rows.append({"metric": metric, "parameter": p,
                                 "range": float(means.max() - means.min())})
        if not rows:
            return pl.DataFrame()
        return pl.DataFrame(rows).sort(["metric", "range"], descending=[False, True])

    def headline(self) -> list[str]:
        present = set(pl.scan_parquet(self.out / "results.parquet").select("metric").unique()
                      .collect()["metric"])
        return [m for m in HEADLINE if m in present]

    def write_summaries(self) -> None:
        self.summary().write_parquet(self.out / "summary.parquet")
        effects = self.effects()
        if effects.height:
            effects.write_parquet(self.out / "effects.parquet")

    def plot(self, metric: str | None = None):
        """A matplotlib Figure: each headline metric (or `metric`) by arm, or over the sweep's
        first parameter, with its 95% interval."""
        from metricpower.report.ensemble import metric_figure

        return metric_figure(self, [metric] if metric else self.headline())

    def report(self, path: str | Path | None = None) -> Path:
        from metricpower.report.ensemble import write_ensemble_report

        return write_ensemble_report(self, Path(path) if path else self.out / "report.html")

    def __repr__(self) -> str:
        return (f"Results({str(self.out)!r}: {self.kind}, {len(self.arms)} arm(s) × "
                f"{len(self.plan['seeds'])} seed(s))")
