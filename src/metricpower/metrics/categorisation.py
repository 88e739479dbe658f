"""Process 3, categorisation: scores sorted into tiers and lists."""

from __future__ import annotations

import numpy as np
import polars as pl

from metricpower.ledger.schema import CITIZENS, DAILY
from metricpower.metrics.common import LEVELS, by_levels, frame, ratio
from metricpower.metrics.headline import gini


def tier_shares_over_time(daily, tiers: list[str]) -> pl.DataFrame:
    """Share of citizens in each tier at the end of each day (tiers best first)."""
    daily = frame(daily)
    cols = {DAILY["tier", t]: t for t in tiers}
    wide = daily.select([DAILY["day"], *cols]).rename(cols)
    total = pl.sum_horizontal(tiers)
    long = wide.with_columns(total=total).unpivot(
        index=["day", "total"], on=tiers, variable_name="tier", value_name="citizens")
    order = {t: i for i, t in enumerate(tiers)}
    return (long.with_columns(rank=pl.col("tier").replace_strict(order, return_dtype=pl.Int64),
                              share=ratio(pl.col("citizens"), pl.col("total")))
            .sort("day", "rank").select("day", "tier", "citizens", "share"))


def tier_shares(citizens, tiers: list[str], levels=LEVELS) -> pl.DataFrame:
    """Share of citizens in each tier at the end of the run, overall, by group and by
    region."""
    citizens = frame(citizens)
    # every tier's count in one pass (columns by position: a tier may be named anything)
    wide = by_levels(citizens, [pl.len().cast(pl.Int64).alias("citizens"), *[
        (pl.col(CITIZENS["tier"]) == t).sum().cast(pl.Int64).alias(str(i))
        for i, t in enumerate(tiers)]], levels)
    out = wide.unpivot(on=[str(i) for i in range(len(tiers))], index=["by", "who", "citizens"],
                       variable_name="tier", value_name="in_tier")
    out = out.with_columns(pl.col("tier").replace_strict(
        {str(i): t for i, t in enumerate(tiers)}, return_dtype=pl.String))
    return out.with_columns(share=ratio(pl.col("in_tier"), pl.col("citizens"))).select(
        "by", "who", "tier", "in_tier", "citizens", "share")


def score_gini(citizens, levels=LEVELS) -> pl.DataFrame:
    """Gini coefficient of final scores (negative scores counted as 0; 0 = everyone has the
    same score), with the mean score, overall, by group and by region."""
    citizens = frame(citizens)
    score = CITIZENS["score"]
    rows = [("all", "all", citizens[score].to_numpy())]
    for col in levels:
        if CITIZENS.has(citizens, col):
            groups = citizens.select(col, score).group_by(col)  # the column read
            for (who,), part in sorted(groups, key=lambda kv: str(kv[0][0])):
                rows.append((col, str(who), part[score].to_numpy()))
    return pl.DataFrame(
        [{"by": by, "who": who, "citizens": len(s),
          "mean_score": float(s.mean()) if len(s) else None,
          "gini": gini(np.maximum(s, 0))} for by, who, s in rows],
        schema={"by": pl.String, "who": pl.String, "citizens": pl.Int64,
                "mean_score": pl.Float64, "gini": pl.Float64})


def list_sizes_over_time(daily, lists: list[str]) -> pl.DataFrame:
    """Citizens on each list at the end of each day, with entries and exits that day."""
    daily = frame(daily)
    parts = []
    for name in lists:
        cols = {"size": ("list", name), "entered": ("entered", name), "left": ("left", name)}
        parts.append(daily.select(
            pl.col(DAILY["day"]), pl.lit(name).alias("list"),
            *[(pl.col(DAILY[c]) if DAILY.has(daily, c) else pl.lit(0)).cast(pl.Int64).alias(k)
              for k, c in cols.items()]))
    if not parts:
        return pl.DataFrame(schema={"day": pl.Int64, "list": pl.String, "size": pl.Int64,
                                    "entered": pl.Int64, "left": pl.Int64})
    return pl.concat(parts)


def list_shares(citizens, lists: list[str], levels=LEVELS) -> pl.DataFrame:
    """Share of citizens on each list at the end of the run and share ever listed during
    it, overall, by group and by region."""
    citizens = frame(citizens)
    if not lists:
        return pl.DataFrame(schema={"by": pl.String, "who": pl.String, "list": pl.String,
                                    "citizens": pl.Int64, "on_list": pl.Int64,
                                    "ever_listed": pl.Int64, "share": pl.Float64,
                                    "ever_share": pl.Float64})
    # every list's counts in one pass (columns by position: a list may be named anything)
    aggs = [pl.len().cast(pl.Int64).alias("citizens")]
    for i, name in enumerate(lists):
        on = pl.col(CITIZENS["on", name])
        ever = (pl.col(CITIZENS["days_on", name]) > 0
                if CITIZENS.has(citizens, ("days_on", name)) else on)
        aggs += [on.sum().cast(pl.Int64).alias(f"on {i}"),
                 (ever | on).sum().cast(pl.Int64).alias(f"ever {i}")]
    wide = by_levels(citizens, aggs, levels)
    out = pl.concat([wide.select("by", "who", "citizens", on_list=pl.col(f"on {i}"),
                                 ever_listed=pl.col(f"ever {i}"), list=pl.lit(name))
                     for i, name in enumerate(lists)])
    return out.with_columns(share=ratio(pl.col("on_list"), pl.col("citizens")),
                            ever_share=ratio(pl.col("ever_listed"), pl.col("citizens"))).select(
        "by", "who", "list", "citizens", "on_list", "ever_listed", "share", "ever_share")
