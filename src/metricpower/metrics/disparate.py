"""Disparate impact: every sanction (and reward) rate compared across groups and regions,
with the four-fifths rule flagged."""

from __future__ import annotations

import re

import polars as pl

from metricpower.ledger.schema import CITIZENS
from metricpower.metrics.common import frame
from metricpower.metrics.judgements import consequence_rates

#: The four-fifths rule: a group's rate ratio below this is flagged as adverse impact.
FOUR_FIFTHS = 0.8
#: A flag needs at least this many events in the group (for adverse rates) so that one
#: chance event in a small group does not raise it.
MIN_EVENTS = 5

_SCHEMA = {"rate": pl.String, "adverse": pl.Boolean, "by": pl.String, "who": pl.String,
           "numerator": pl.Int64, "denominator": pl.Int64, "value": pl.Float64}


def list_direction(scenario_lists: list[str], consequences) -> dict[str, bool]:
    """Whether being on each list is adverse (a sanction depends on it) or favourable (a
    reward does); lists no consequence reads are left out."""
    out: dict[str, bool] = {}
    for c in consequences:
        for name in scenario_lists:
            if re.search(rf"on_list\(\s*['\"]{re.escape(name)}['\"]\s*\)", c.when):
                out.setdefault(name, c.is_sanction)
    return out


def group_rates(citizens, evidence: pl.DataFrame | None = None, consequences=None,
                services=None, by: str = "group", bottom: list[str] | None = None,
                lists: dict[str, bool] | None = None) -> pl.DataFrame:
    """Every sanction and reward rate per group (or region): each consequence per attempt
    or per citizen (groups only: the consequence totals are kept by group), the share of
    citizens sanctioned, rewarded, penalised, charged by a false match, wrongly penalised
    (benign or misattributed evidence), at the bottom (`bottom` tiers) and on each list.
    `adverse` says whether a higher rate is worse for the group."""
    citizens = frame(citizens)
    by = CITIZENS[by]
    parts = []
    if consequences is not None and services is not None and by == "group":
        rates = consequence_rates(consequences, services, citizens).filter(
            pl.col("group") != "all")
        parts.append(rates.select(
            rate=pl.col("consequence"), adverse=pl.col("sanction"), by=pl.lit("group"),
            who=pl.col("group"), numerator=pl.col("applied"),
            denominator=pl.when(pl.col("per") == "attempt").then(pl.col("attempts"))
            .otherwise(pl.col("citizens"))))

    def share(df: pl.DataFrame, name: str, adverse: bool, cond: pl.Expr) -> pl.DataFrame:
        return (df.group_by(by).agg(numerator=cond.sum().cast(pl.Int64),
                                    denominator=pl.len().cast(pl.Int64))
                .select(rate=pl.lit(name), adverse=pl.lit(adverse), by=pl.lit(by),
                        who=pl.col(by).cast(pl.String), numerator=pl.col("numerator"),
                        denominator=pl.col("denominator")))

    parts.append(share(citizens, "sanctioned", True, pl.col(CITIZENS["sanctions"]) > 0))
    parts.append(share(citizens, "rewarded", False, pl.col(CITIZENS["rewards"]) > 0))
    if bottom:
        parts.append(share(citizens, "bottom_tier", True,
                           pl.col(CITIZENS["tier"]).is_in(bottom)))
    for name, adverse in (lists or {}).items():
        on = CITIZENS["on", name]
        parts.append(share(citizens, on, adverse, pl.col(on)))
    if evidence is not None:
        parts.append(share(evidence, "penalised", True, pl.col("penalties") > 0))
        parts.append(share(evidence, "misattributed", True, pl.col("misattributed") > 0))
        parts.append(share(evidence, "wrongly_penalised", True,
                           (pl.col("benign") + pl.col("misattributed")) > 0))
    out = pl.concat([p.with_columns(pl.col("numerator").cast(pl.Int64),
                                    pl.col("denominator").cast(pl.Int64)) for p in parts],
                    how="diagonal_relaxed")
    out = out.with_columns(value=pl.when(pl.col("denominator") > 0)
                           .then(pl.col("numerator") / pl.col("denominator")))
    return out.select(list(_SCHEMA)).sort("rate", "who", maintain_order=True)


def disparate_impact(rates: pl.DataFrame, threshold: float = FOUR_FIFTHS,
                     min_events: int = MIN_EVENTS) -> pl.DataFrame:
    """Each group's impact ratio for each rate: for adverse rates the least-affected
    group's rate divided by the group's own (for favourable rates, the group's rate divided
    by the most-favoured group's), so 1 is parity and lower is worse for the group;
    `below_four_fifths` when under 0.8. `flagged` when it is also not down to chance in
    small numbers: the gap rests on at least `min_events` events (the group's adverse
    events, or the favoured group's rewards) and the other side would have expected as
    many at the higher rate. A zero adverse rate is never below; `relative` is the
    group's rate over the reference."""
    valid = rates.filter(pl.col("value").is_not_null())
    adverse = pl.col("adverse").first()
    target = pl.when(adverse).then(pl.col("value").min()).otherwise(pl.col("value").max())
    ref = valid.group_by("rate", "by").agg(
        reference=target,
        reference_events=pl.col("numerator").filter(pl.col("value") == target).max(),
        reference_size=pl.col("denominator").filter(pl.col("value") == target).max())
    df = rates.join(ref, on=["rate", "by"], how="left")
    v, r = pl.col("value"), pl.col("reference")
    ratio = (pl.when(v.is_null() | r.is_null()).then(None)
             .when(pl.col("adverse")).then(pl.when(v > 0).then(r / v).otherwise(1.0))
             .otherwise(pl.when(r > 0).then(v / r).otherwise(1.0)))
    relative = pl.when(r > 0).then(v / r).otherwise(None)
    enough = (pl.when(pl.col("adverse"))
              .then((pl.col("numerator") >= min_events)
                    & (pl.col("reference_size") * v >= min_events))
              .otherwise((pl.col("reference_events") >= min_events)
                         & (pl.col("denominator") * r >= min_events)))
    return df.with_columns(impact_ratio=ratio, relative=relative).with_columns(
        below_four_fifths=pl.col("impact_ratio").fill_null(1.0) < threshold).with_columns(
        flagged=pl.col("below_four_fifths") & enough.fill_null(False)).drop(
        "reference_events", "reference_size")
