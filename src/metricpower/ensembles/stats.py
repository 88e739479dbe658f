"""Means with 95% intervals over members, and paired differences against a baseline arm.

Intervals are Student-t intervals for a mean over seeds (mean ± t(0.975, n − 1) · s/√n):
members on different seeds are independent replicates; for effects, each seed gives one
paired difference (arm − baseline on the same population and random numbers), and the
t-interval is taken over those differences.
"""

from __future__ import annotations

import polars as pl
from scipy import stats as st

LEVEL = 0.95


def t_interval(frame: pl.LazyFrame | pl.DataFrame, by: list[str], value: str = "value"
               ) -> pl.DataFrame:
    """n, mean, sd, and the 95% t-interval (lo, hi) of `value` within each `by` group
    (NaN bounds for a single member)."""
    out = (frame.lazy().group_by(by, maintain_order=True)
           .agg(n=pl.col(value).count(), mean=pl.col(value).mean(), sd=pl.col(value).std())
           .collect())
    q = [float(st.t.ppf(0.5 + LEVEL / 2, n - 1)) if n > 1 else float("nan")
         for n in out["n"].to_list()]
    half = pl.Series("q", q) * out["sd"] / out["n"].cast(pl.Float64).sqrt()
    return out.with_columns(lo=pl.col("mean") - half, hi=pl.col("mean") + half)


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
