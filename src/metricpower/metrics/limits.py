"""Process 1, the creation of limits: what the policy defines as good and bad conduct,
and how much of ordinary, lawful life falls under it."""

from __future__ import annotations

import polars as pl

from metricpower.ledger.schema import CITIZENS, DAILY
from metricpower.metrics.common import LEVELS, by_levels, daily_total, frame, ratio


def policy_table(scenario) -> pl.DataFrame:
    """One row per behaviour: whether it is lawful, its share of benign occurrences, the
    event rules that score it and their points, and whether the policy regulates it (some
    event rule gives it non-zero points)."""
    rows = []
    for b in scenario.behaviours:
        rules = [r for r in scenario.rules if r.kind == "event" and r.behaviour == b.name]
        rows.append({
            "behaviour": b.name, "lawful": b.lawful, "public": b.public,
            "benign_share": float(b.benign_share), "rate": float(b.rate),
            "requires": b.requires, "rules": ", ".join(r.name for r in rules),
            "points": int(sum(r.points for r in rules)),
            "penalised": any(r.points < 0 for r in rules),
            "rewarded": any(r.points > 0 for r in rules),
            "regulated": any(r.points != 0 for r in rules),
        })
    schema = {"behaviour": pl.String, "lawful": pl.Boolean, "public": pl.Boolean,
              "benign_share": pl.Float64, "rate": pl.Float64, "requires": pl.String,
              "rules": pl.String, "points": pl.Int64, "penalised": pl.Boolean,
              "rewarded": pl.Boolean, "regulated": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)


def behaviours_regulated(policy: pl.DataFrame) -> pl.DataFrame:
    """How many behaviours the policy regulates (scores with an event rule), penalises and
    rewards, out of all behaviours, and how many of the penalised ones break no law."""
    return policy.select(
        behaviours=pl.len().cast(pl.Int64),
        regulated=pl.col("regulated").sum().cast(pl.Int64),
        penalised=pl.col("penalised").sum().cast(pl.Int64),
        rewarded=pl.col("rewarded").sum().cast(pl.Int64),
        lawful_penalised=(pl.col("penalised") & pl.col("lawful")).sum().cast(pl.Int64),
    )


def occurrences_by_behaviour(daily, policy: pl.DataFrame, citizens=None,
                             days: int | None = None) -> pl.DataFrame:
    """Occurrences (ground truth, seen or not) of each behaviour over the run, measured
    from the daily `occurrences_<behaviour>` columns; where the run did not record them,
    the number expected from the behaviour's mean rate × days × citizens who can act
    (`source` says which)."""
    daily = frame(daily)
    citizens = frame(citizens)
    measured = daily is not None and all(DAILY.has(daily, ("occurrences", b))
                                         for b in policy["behaviour"])
    rows = []
    for row in policy.iter_rows(named=True):
        b = row["behaviour"]
        if measured:
            occ = float(daily_total(daily, DAILY["occurrences", b]))
            benign = (float(daily_total(daily, DAILY["benign_occurrences", b]))
                      if DAILY.has(daily, ("benign_occurrences", b))
                      else occ * row["benign_share"])
        else:
            if citizens is None:
                eligible = 0
            elif row["requires"] is None:
                eligible = citizens.height
            else:
                eligible = int(citizens[CITIZENS[row["requires"]]].sum())
            n_days = days if days is not None else (daily.height if daily is not None else 0)
            occ = row["rate"] * n_days * eligible
            benign = occ * row["benign_share"]
        rows.append({"behaviour": b, "regulated": row["regulated"],
                     "penalised": row["penalised"], "lawful": row["lawful"],
                     "occurrences": occ, "benign_occurrences": benign,
                     "source": "measured" if measured else "expected"})
    schema = {"behaviour": pl.String, "regulated": pl.Boolean, "penalised": pl.Boolean,
              "lawful": pl.Boolean, "occurrences": pl.Float64,
              "benign_occurrences": pl.Float64, "source": pl.String}
    out = pl.DataFrame(rows, schema=schema)
    total = out["occurrences"].sum()
    return out.with_columns(share_of_all=pl.col("occurrences") / total if total else
                            pl.lit(None, pl.Float64))


def occurrences_under_rule(by_behaviour: pl.DataFrame) -> pl.DataFrame:
    """Share of all occurrences (everything citizens did, seen or not) that are of a
    behaviour some event rule scores — how much of life the policy reaches; and the share
    that are lawful acts the policy penalises."""
    occ = pl.col("occurrences")
    return by_behaviour.select(
        occurrences=occ.sum(),
        under_rule=occ.filter(pl.col("regulated")).sum(),
        lawful_penalised=occ.filter(pl.col("lawful") & pl.col("penalised")).sum(),
        source=pl.col("source").first(),
    ).with_columns(
        share=ratio(pl.col("under_rule"), pl.col("occurrences")),
        lawful_penalised_share=ratio(pl.col("lawful_penalised"), pl.col("occurrences")),
    )


def lawful_penalised_share(evidence: pl.DataFrame, levels=LEVELS) -> pl.DataFrame:
    """Share of penalised events (event-rule penalties) whose behaviour breaks no law —
    offences only this policy creates — overall, by group and by region."""
    event = pl.col("penalties") - pl.col("derived")
    return by_levels(evidence, [
        event.sum().alias("penalised_events"),
        pl.col("lawful").sum().alias("lawful"),
    ], levels).with_columns(share=ratio(pl.col("lawful"), pl.col("penalised_events")))
