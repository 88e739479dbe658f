"""Process 4, judgements and predictions: consequences that gate services and act on
citizens, who they fall on wrongly, and how a risk model errs."""

from __future__ import annotations

import polars as pl

from metricpower.ledger.schema import CITIZENS, CONSEQUENCES, SERVICES
from metricpower.metrics.common import LEVELS, by_levels, frame, ratio

SERVICE_EFFECTS = ("deny", "throttle", "reward")


def _with_all(df: pl.LazyFrame, keys: list[str], sums: list[str]) -> pl.LazyFrame:
    """Add a group = "all" row per `keys`, summing `sums`."""
    total = df.group_by(keys, maintain_order=True).agg([pl.col(c).sum() for c in sums])
    total = total.with_columns(group=pl.lit("all"))
    return pl.concat([total.select(df.collect_schema().names()), df])


def group_sizes(citizens) -> pl.DataFrame:
    citizens = frame(citizens)
    return citizens.group_by(CITIZENS["group"]).agg(citizens=pl.len().cast(pl.Int64))


def consequence_rates(consequences, services, citizens) -> pl.DataFrame:
    """Each consequence applied, by group and overall: for those acting on a service, per
    attempt at the service (a denial rate, a grant rate); for those acting on the citizen
    (pet confiscation, public labelling), per citizen."""
    # lazy, as one query: a query's fixed cost is most of a small table's time
    cons, svc = frame(consequences).lazy(), frame(services).lazy()
    sizes = group_sizes(citizens)
    cons = cons.with_columns(pl.col(CONSEQUENCES["applied"]).cast(pl.Int64))
    svc = svc.with_columns(pl.col(SERVICES["attempts"]).cast(pl.Int64))
    group, applied, attempts = CONSEQUENCES["group"], CONSEQUENCES["applied"], \
        SERVICES["attempts"]
    df = (cons.join(svc, on=[SERVICES["service"], SERVICES["group"]], how="left",
                    maintain_order="left")
          .join(sizes.lazy(), on=group, how="left", maintain_order="left")
          .with_columns(pl.col(attempts).fill_null(0), pl.col("citizens").fill_null(0)))
    keys = [CONSEQUENCES[k] for k in ("consequence", "effect", "service", "sanction",
                                      "provenance")]
    df = _with_all(df.select(*keys, group, applied, attempts, "citizens"), keys,
                   [applied, attempts, "citizens"])
    on_service = pl.col(CONSEQUENCES["effect"]).is_in(SERVICE_EFFECTS)
    return df.with_columns(
        per=pl.when(on_service).then(pl.lit("attempt")).otherwise(pl.lit("citizen")),
        rate=pl.when(on_service).then(ratio(pl.col("applied"), pl.col("attempts")))
        .otherwise(ratio(pl.col("applied"), pl.col("citizens"))),
    ).collect()


def service_decisions(consequences, services) -> pl.DataFrame:
    """Attempts at each service by group and overall, with how many the score denied,
    throttled and rewarded, how many others (employers, lenders) refused because the
    citizen was publicly labelled, and the rates per attempt."""
    cons, svc = frame(consequences), frame(services)
    if not SERVICES.has(svc, "refused_by_others"):
        svc = svc.with_columns(refused_by_others=pl.lit(0))
    cons, svc = cons.lazy(), svc.lazy()  # one query: its fixed cost is most of its time
    svc = svc.with_columns(pl.col(SERVICES["attempts"]).cast(pl.Int64),
                           pl.col(SERVICES["refused_by_others"]).cast(pl.Int64))
    applied, effect = pl.col(CONSEQUENCES["applied"]), pl.col(CONSEQUENCES["effect"])
    applied = cons.filter(pl.col(CONSEQUENCES["service"]).is_not_null()).group_by(
        CONSEQUENCES["service"], CONSEQUENCES["group"]).agg(
        denied=applied.filter(effect == "deny").sum().cast(pl.Int64),
        throttled=applied.filter(effect == "throttle").sum().cast(pl.Int64),
        granted=applied.filter(effect == "reward").sum().cast(pl.Int64),
    )
    df = svc.join(applied, on=[SERVICES["service"], SERVICES["group"]], how="left",
                  maintain_order="left") \
        .with_columns([pl.col(c).fill_null(0) for c in ("denied", "throttled", "granted")])
    counts = [SERVICES["attempts"], "denied", "throttled", "granted",
              SERVICES["refused_by_others"]]
    df = _with_all(df.select(SERVICES["service"], SERVICES["group"], *counts),
                   [SERVICES["service"]], counts)
    return df.with_columns(denial_rate=ratio(pl.col("denied"), pl.col("attempts")),
                           throttle_rate=ratio(pl.col("throttled"), pl.col("attempts")),
                           grant_rate=ratio(pl.col("granted"), pl.col("attempts")),
                           refusal_rate=ratio(pl.col("refused_by_others"),
                                              pl.col("attempts"))).collect()


def sanctioned_citizens(citizens, levels=LEVELS) -> pl.DataFrame:
    """Share of citizens sanctioned at least once (denied, throttled, labelled, pet taken)
    and sanctions per citizen; the same for rewards; overall, by group and by region."""
    citizens = frame(citizens)
    sanctions, rewards = pl.col(CITIZENS["sanctions"]), pl.col(CITIZENS["rewards"])
    return by_levels(citizens, [
        pl.len().cast(pl.Int64).alias("citizens"),
        (sanctions > 0).sum().cast(pl.Int64).alias("sanctioned"),
        sanctions.sum().cast(pl.Int64).alias("sanctions"),
        (rewards > 0).sum().cast(pl.Int64).alias("rewarded"),
        rewards.sum().cast(pl.Int64).alias("rewards"),
    ], levels).with_columns(
        sanctioned_share=ratio(pl.col("sanctioned"), pl.col("citizens")),
        sanctions_per_citizen=ratio(pl.col("sanctions"), pl.col("citizens")),
        rewarded_share=ratio(pl.col("rewarded"), pl.col("citizens")),
        rewards_per_citizen=ratio(pl.col("rewards"), pl.col("citizens")),
    )


def wrongful_sanctions(evidence: pl.DataFrame, conduct_median: float | None = None,
                       levels=LEVELS) -> pl.DataFrame:
    """Sanctioned citizens who did not deserve it: those whose hidden conduct is in the
    better half of the population (above the median), or at least half of whose penalty
    points rest on benign-context or misattributed evidence; overall, by group and region.
    `any_tainted` counts the sanctioned with at least one such penalty."""
    conduct = CITIZENS["conduct"]  # the evidence table carries the citizens' columns
    median = (float(evidence[conduct].median()) if conduct_median is None
              else conduct_median)
    sanctioned = pl.col(CITIZENS["sanctions"]) > 0
    better = pl.col(conduct) > median
    mostly = (pl.col("penalty_points") > 0) & (2 * pl.col("tainted_points")
                                               >= pl.col("penalty_points"))
    return by_levels(evidence, [
        pl.len().cast(pl.Int64).alias("citizens"),
        sanctioned.sum().cast(pl.Int64).alias("sanctioned"),
        (sanctioned & better).sum().cast(pl.Int64).alias("better_half"),
        (sanctioned & mostly).sum().cast(pl.Int64).alias("mostly_tainted"),
        (sanctioned & (pl.col("tainted_points") > 0)).sum().cast(pl.Int64)
        .alias("any_tainted"),
        (sanctioned & (better | mostly)).sum().cast(pl.Int64).alias("wrongful"),
    ], levels).with_columns(share=ratio(pl.col("wrongful"), pl.col("sanctioned")),
                            per_100k=ratio(pl.col("wrongful") * 100_000, pl.col("citizens")))


def prediction_errors(predictions) -> pl.DataFrame | None:
    """The risk model's confusion counts against the hidden truth, summed over the run, by
    group and overall: precision, recall, false-positive rate (innocent citizens flagged
    / all innocent) and false-negative rate, and the base rate (the share whose hidden
    truth was positive) that precision must be read against: flags drawn at random
    would have the base rate as their precision. None when predictions were off."""
    pred = frame(predictions)
    if pred is None or pred.height == 0:
        return None
    counts = ["tp", "fp", "fn", "tn"]
    per = pred.group_by("group").agg([pl.col(c).sum().cast(pl.Int64) for c in counts]).sort(
        "group")
    total = per.select([pl.col(c).sum() for c in counts]).with_columns(group=pl.lit("all"))
    df = pl.concat([total.select(per.columns), per])
    tp, fp, fn, tn = (pl.col(c) for c in counts)
    return df.with_columns(precision=ratio(tp, tp + fp), recall=ratio(tp, tp + fn),
                           false_positive_rate=ratio(fp, fp + tn),
                           false_negative_rate=ratio(fn, fn + tp),
                           base_rate=ratio(tp + fn, tp + fp + fn + tn))
