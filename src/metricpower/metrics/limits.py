"""Process 1, the creation of limits: what the policy defines as good and bad conduct,
and how much of ordinary, lawful life it actually reached."""

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


def acts_scored(by_behaviour: pl.DataFrame, ledger, citizens) -> pl.DataFrame:
    """How much of life the policy reached: the share of all acts (occurrences, seen or
    not) that an event rule scored, and the share of lawful acts it penalised — both
    depend on what sensors saw and on which acts the rules' conditions caught, so they
    are findings, not the catalogue's design. Scored acts are the ledger's event entries
    on real acts (not false matches, not reversals), counted whether or not an appeal
    later reversed them. Where the ledger keeps a sample of citizens, its counts are
    scaled up by the share kept (`scaled` says so)."""
    occ = pl.col("occurrences")
    totals = by_behaviour.select(
        occurrences=occ.sum(),
        lawful_occurrences=occ.filter(pl.col("lawful")).sum(),
        source=pl.col("source").first())
    ledger, citizens = frame(ledger), frame(citizens)
    kept, n = 1.0, (citizens.height if citizens is not None else 0)
    if citizens is not None and "in_ledger" in citizens.columns and n:
        kept = float(citizens["in_ledger"].sum()) / n
    lawful = by_behaviour.filter(pl.col("lawful"))["behaviour"].to_list()
    scored = penalised = 0.0
    if ledger is not None and ledger.height:
        original = (pl.col("reverses").is_null() | (pl.col("reverses") < 0)
                    if "reverses" in ledger.columns else pl.lit(True))
        acts = ledger.filter(pl.col("behaviour").is_not_null() & original
                             & ~pl.col("misattributed").fill_null(False))
        scored = float(acts.height)
        penalised = float(acts.filter((pl.col("points") < 0)
                                      & pl.col("behaviour").cast(pl.String).is_in(lawful)
                                      ).height)
    scale = 1.0 / kept if kept > 0 else 0.0
    return totals.with_columns(
        acts_scored=pl.lit(scored * scale), lawful_penalised=pl.lit(penalised * scale),
        scaled=pl.lit(kept < 1.0),
    ).with_columns(
        share=ratio(pl.col("acts_scored"), pl.col("occurrences")),
        lawful_penalised_share=ratio(pl.col("lawful_penalised"), pl.col("lawful_occurrences")),
    )


def lawful_penalised_share(evidence: pl.DataFrame, levels=LEVELS) -> pl.DataFrame:
    """Share of penalised events (event-rule penalties) whose behaviour breaks no law —
    offences only this policy creates — overall, by group and by region."""
    event = pl.col("penalties") - pl.col("derived")
    return by_levels(evidence, [
        event.sum().alias("penalised_events"),
        pl.col("lawful").sum().alias("lawful"),
    ], levels).with_columns(share=ratio(pl.col("lawful"), pl.col("penalised_events")))
