"""Means with 95% intervals over members, and paired differences against a baseline arm.

Intervals are Student-t intervals for a mean over seeds (mean ± t(0.975, n − 1) · s/√n):
members on different seeds are independent replicates; for effects, each seed gives one
paired difference (arm − baseline on the same population and random numbers), and the
t-interval is taken over those differences. A metric's mean lies in the metric's range
(`metricpower.metrics.ranges`: a count is never negative, a share never above 1), so the
interval of a mean is cut to that range: it covers the true mean whenever the t-interval
does, and never names an impossible value. Differences are not cut.
"""

from __future__ import annotations

import polars as pl
from scipy import stats as st

from metricpower.metrics.ranges import range_of

LEVEL = 0.95

#: How the interval of a mean is made, in the words every report and page uses.
INTERVAL = ("95% Student-t interval over seeds (mean ± t(0.975, n − 1) · sd/√n), cut to "
            "the metric's range where it has one (a count's interval stops at 0, a "
            "share's at 0 and 100%); differences and effects are not cut")


def t_interval(frame: pl.LazyFrame | pl.DataFrame, by: list[str], value: str = "value"
               ) -> pl.DataFrame:
    """n, mean, sd, and the 95% t-interval (lo, hi) of `value` within each `by` group
    (NaN bounds for a single member)."""
    out = (frame.lazy().group_by(by, maintain_order=True)
           .agg(n=pl.col(value).count(), mean=pl.col(value).mean(), sd=pl.col(value).std())
           .collect())
    # One quantile per distinct number of members, not per row: SciPy's call costs some
    # 0.1 ms, and an ensemble's summary has hundreds of rows with the same n.
    ns = out["n"].to_list()
    quantile = {n: float(st.t.ppf(0.5 + LEVEL / 2, n - 1)) if n > 1 else float("nan")
                for n in set(ns)}
    q = [quantile[n] for n in ns]
    half = pl.Series("q", q) * out["sd"] / out["n"].cast(pl.Float64).sqrt()
    return out.with_columns(lo=pl.col("mean") - half, hi=pl.col("mean") + half)


def within_range(summary: pl.DataFrame) -> pl.DataFrame:
    """`summary` (a `t_interval` of metrics' values, with a `metric` column) with each
    interval cut to its metric's declared range; NaN and missing bounds stay so."""
    metrics = summary["metric"].unique(maintain_order=True)
    ranges = pl.DataFrame({"metric": metrics,
                           "low": [range_of(m).low for m in metrics],
                           "high": [range_of(m).high for m in metrics]},
                          schema={"metric": summary.schema["metric"], "low": pl.Float64,
                                  "high": pl.Float64})
    return (summary.join(ranges, on="metric", how="left", maintain_order="left")
            .with_columns(lo=pl.when(pl.col("lo") < pl.col("low")).then(pl.col("low"))
                          .otherwise(pl.col("lo")),
                          hi=pl.when(pl.col("hi") > pl.col("high")).then(pl.col("high"))
                          .otherwise(pl.col("hi")))
            .drop("low", "high"))


def means(frame: pl.LazyFrame | pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """n, mean, sd and the 95% interval (lo, hi) of each metric's mean within each `by`
    group (`by` names the `metric` column): the t-interval cut to the metric's range."""
    return within_range(t_interval(frame, by))


def paired(table: pl.LazyFrame | pl.DataFrame, baseline: str, keys: list[str]) -> pl.DataFrame:
    """Each arm's paired differences from the baseline arm (same seed, same metric), with
    their mean and 95% t-interval; `keys` are the arm's columns (arm label, parameters)."""
    t = table.lazy()
    base = (t.filter(pl.col("arm") == baseline)
            .select("seed", "metric", pl.col("value").alias("base")))
    diffs = (t.filter(pl.col("arm") != baseline)
             .join(base, on=["seed", "metric"], how="inner")
             .with_columns(difference=pl.col("value") - pl.col("base")))
    return t_interval(diffs, [*keys, "metric"], "difference")


def between(a: pl.DataFrame, b: pl.DataFrame, paired_seeds: bool) -> pl.DataFrame:
    """Two sets of members (each `seed, metric, value`: two ensembles, or two arms of a
    sweep) compared metric by metric: each side's mean with its 95% interval (`means`),
    and the difference A − B with its 95% interval. With `paired_seeds` (both sides ran
    the same seeds on the same populations) the difference is paired: a t-interval over
    the seeds both have. Otherwise the sides are independent and the interval is Welch's (unequal
    variances, Welch–Satterthwaite degrees of freedom). Only metrics both sides have."""
    sides = [means(x.lazy(), ["metric"]).rename(
        {"n": f"n_{s}", "mean": f"mean_{s}", "sd": f"sd_{s}", "lo": f"lo_{s}",
         "hi": f"hi_{s}"}) for x, s in ((a, "a"), (b, "b"))]
    out = sides[0].join(sides[1], on="metric", how="inner", maintain_order="left")
    if paired_seeds:
        diffs = (a.lazy().join(b.lazy().select("seed", "metric", base=pl.col("value")),
                               on=["seed", "metric"], how="inner")
                 .with_columns(difference=pl.col("value") - pl.col("base")))
        d = t_interval(diffs, ["metric"], "difference").select(
            "metric", n=pl.col("n"), difference=pl.col("mean"), lo=pl.col("lo"),
            hi=pl.col("hi"))
        return out.join(d, on="metric", how="inner", maintain_order="left").with_columns(
            paired=pl.lit(True))
    va = out["sd_a"] ** 2 / out["n_a"]
    vb = out["sd_b"] ** 2 / out["n_b"]
    se = (va + vb).sqrt()
    dof = (va + vb) ** 2 / (va ** 2 / (out["n_a"] - 1) + vb ** 2 / (out["n_b"] - 1))
    q = [float(st.t.ppf(0.5 + LEVEL / 2, f)) if f == f and f > 0 else
         (0.0 if s == 0 else float("nan"))
         for f, s in zip(dof.fill_null(float("nan")).to_list(),
                         se.fill_null(float("nan")).to_list(), strict=True)]
    diff = out["mean_a"] - out["mean_b"]
    half = pl.Series("q", q) * se
    return out.with_columns(n=pl.min_horizontal("n_a", "n_b"), difference=diff,
                            lo=diff - half, hi=diff + half, paired=pl.lit(False))
