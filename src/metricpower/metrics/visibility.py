"""Process 2, the visible and the invisible: sensors see counts, not reasons, and cameras
charge the wrong people."""

from __future__ import annotations

import polars as pl

from metricpower.ledger.schema import CITIZENS, DAILY, LEDGER
from metricpower.metrics.common import LEVELS, by_levels, daily_total, frame, ratio


def detection_rate(daily, citizens=None, levels=LEVELS) -> pl.DataFrame:
    """Share of occurrences that a sensor saw (observed / occurred; false matches are not
    observations). Overall from the daily totals; by group and region where the citizens
    table carries per-citizen `occurrences` and `observed`."""
    daily, citizens = frame(daily), frame(citizens)
    occ = daily_total(daily, DAILY["occurrences"])
    obs = daily_total(daily, DAILY["observed"])
    overall = pl.DataFrame({"by": ["all"], "who": ["all"], "occurrences": [occ],
                            "observed": [obs]}, schema={"by": pl.String, "who": pl.String,
                                                        "occurrences": pl.Int64,
                                                        "observed": pl.Int64})
    parts = [overall]
    if citizens is not None and CITIZENS.has(citizens, "occurrences"):
        split = by_levels(citizens, [
            pl.col(CITIZENS["occurrences"]).sum().cast(pl.Int64).alias("occurrences"),
            pl.col(CITIZENS["observed"]).sum().cast(pl.Int64).alias("observed")], levels)
        parts.append(split.filter(pl.col("by") != "all"))
    out = pl.concat(parts, how="diagonal_relaxed")
    return out.with_columns(rate=ratio(pl.col("observed"), pl.col("occurrences")))


def benign_penalty_share(evidence: pl.DataFrame, levels=LEVELS) -> pl.DataFrame:
    """Share of penalties whose hidden context was benign (an act with a reason no sensor
    can see: a gift, an emergency), overall, by group and by region; with the shares that
    were misattributed, true acts and derived from state, so the four add up to one."""
    pen = pl.col("penalties")
    return by_levels(evidence, [pen.sum(), pl.col("true").sum(), pl.col("benign").sum(),
                                pl.col("misattributed").sum(), pl.col("derived").sum()],
                     levels).with_columns(
        share=ratio(pl.col("benign"), pen),
        misattributed_share=ratio(pl.col("misattributed"), pen),
        true_share=ratio(pl.col("true"), pen),
        derived_share=ratio(pl.col("derived"), pen),
    )


def misattributed_per_100k(evidence: pl.DataFrame, levels=LEVELS) -> pl.DataFrame:
    """Penalties charged to a citizen for someone else's act (a camera's false match), per
    100,000 citizens, overall, by group and by region."""
    return by_levels(evidence, [pl.len().cast(pl.Int64).alias("citizens"),
                                pl.col("misattributed").sum(),
                                (pl.col("misattributed") > 0).sum().cast(pl.Int64)
                                .alias("citizens_hit")], levels).with_columns(
        per_100k=ratio(pl.col("misattributed") * 100_000, pl.col("citizens")))


#: The ledger columns `penalties_over_time` reads (a reader may load only these).
PENALTY_EVIDENCE = tuple(LEDGER[k] for k in ("day", "points", "behaviour", "benign",
                                             "misattributed"))


def penalties_over_time(ledger) -> pl.DataFrame:
    """Penalties per day by the evidence they rest on: a `true` act, an act with a
    `benign` hidden context, a `misattributed` false match, or `derived` from the citizen's
    state or friends (no act at all)."""
    ledger = frame(ledger)
    schema = {"day": pl.Int64, "evidence": pl.String, "penalties": pl.Int64}
    if ledger is None or ledger.height == 0:
        return pl.DataFrame(schema=schema)
    benign = pl.col(LEDGER["benign"]).fill_null(False)
    mis = pl.col(LEDGER["misattributed"]).fill_null(False)
    evidence = (pl.when(pl.col(LEDGER["behaviour"]).is_null()).then(pl.lit("derived"))
                .when(mis).then(pl.lit("misattributed"))
                .when(benign).then(pl.lit("benign"))
                .otherwise(pl.lit("true")))
    return (ledger.filter(pl.col(LEDGER["points"]) < 0)
            .group_by(pl.col(LEDGER["day"]).cast(pl.Int64).alias("day"),
                      evidence.alias("evidence"))
            .agg(penalties=pl.len().cast(pl.Int64)).sort("day", "evidence")
            .select(list(schema)))
