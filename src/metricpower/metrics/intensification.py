"""Process 5, intensification: the system changes how people live and feeds on it —
mobility between tiers, persistence at the bottom, segregation of the network, chilling of
lawful life, and income that follows the tier."""

from __future__ import annotations

import numpy as np
import polars as pl

from metricpower.ledger.schema import CITIZENS, DAILY, TIERS, TIES
from metricpower.metrics.common import LEVELS, daily_total, frame, once, ratio

#: Horizons (days) of the tier mobility matrices.
HORIZONS = (30, 90, 365)
#: Persistence at the bottom is checked this many days after a citizen enters it.
PERSISTENCE_DAYS = 180


def snapshot_days(tiers_table) -> list[int]:
    """The days of the tier snapshots in a `tiers` table (columns `day_<d>`: each
    citizen's tier after d days), ascending."""
    df = frame(tiers_table)
    if df is None:
        return []
    return sorted(int(d) for d in TIERS.members(df, "day"))


def snapshot_pairs(days: list[int], horizon: int) -> list[tuple[int, int]]:
    """Pairs of snapshot days about `horizon` apart: for each day d, the snapshot at
    d + horizon, or one day either side of it (a run's last day is 0-based, so a 365-day
    run ends on day 364)."""
    have = set(days)
    pairs = []
    for d in days:
        for b in (d + horizon, d + horizon - 1, d + horizon + 1):
            if b in have and b > d:
                pairs.append((d, b))
                break
    return pairs


def _day_codes(df: pl.DataFrame, tiers: list[str]) -> dict[int, np.ndarray]:
    """Each snapshot day's tier codes (0 = best, -1 = missing) from tier names or integer
    codes: every day in one query, once per table (mobility and persistence both read
    every snapshot, and a day is in many pairs)."""
    def compute(df: pl.DataFrame) -> dict[int, np.ndarray]:
        days = snapshot_days(df)
        names = [TIERS["day", d] for d in days]
        exprs = [pl.col(c) if df.schema[c].is_integer() else
                 pl.col(c).cast(pl.String).cast(pl.Enum(tiers), strict=False).to_physical()
                 for c in names]
        codes = df.select([e.cast(pl.Int64).fill_null(-1) for e in exprs])
        return {d: codes[c].to_numpy() for d, c in zip(days, names, strict=True)}

    return once(df, f"tier codes {tiers}", compute)


def mobility(tiers_table, tiers: list[str], horizons=HORIZONS) -> pl.DataFrame | None:
    """Tier mobility matrices: for each horizon h, of the citizens in tier `from_tier` on a
    snapshot day d, the share in tier `to_tier` on day d + h, pooled over every pair of
    snapshots h days apart (± 1 day). None when the run kept no tier snapshots."""
    df = frame(tiers_table)
    days = snapshot_days(df)
    if not days:
        return None
    k = len(tiers)
    codes = _day_codes(df, tiers)
    rows = []
    for h in horizons:
        pairs = snapshot_pairs(days, h)
        if not pairs:
            continue
        counts = np.zeros((k, k), dtype=np.int64)
        for a, b in pairs:
            ca, cb = codes[a], codes[b]
            ok = (ca >= 0) & (cb >= 0) & (ca < k) & (cb < k)
            counts += np.bincount(ca[ok] * k + cb[ok], minlength=k * k).reshape(k, k)
        totals = counts.sum(axis=1)
        for i in range(k):
            for j in range(k):
                rows.append({"horizon": h, "pairs": len(pairs), "from_tier": tiers[i],
                             "to_tier": tiers[j], "citizens": int(counts[i, j]),
                             "share": counts[i, j] / totals[i] if totals[i] else None})
    return pl.DataFrame(rows, schema={"horizon": pl.Int64, "pairs": pl.Int64,
                                      "from_tier": pl.String, "to_tier": pl.String,
                                      "citizens": pl.Int64, "share": pl.Float64})


def persistence(tiers_table, tiers: list[str], citizens=None, bottom: list[str] | None = None,
                horizons=HORIZONS, levels=LEVELS) -> pl.DataFrame | None:
    """Persistence at the bottom: of the citizens in the bottom tiers (`bottom`, default
    the worst tier) on a snapshot day, the share still there h days later, pooled over
    snapshot pairs; overall and, given the citizens table, by group and region. None
    without snapshots."""
    df = frame(tiers_table)
    days = snapshot_days(df)
    if not days:
        return None
    bottom = bottom or [tiers[-1]]
    worst = np.array([tiers.index(t) for t in bottom])
    # each split as integer codes: (codes per citizen, names)
    splits = {"all": (np.zeros(df.height, dtype=np.int64), ["all"])}
    citizens = frame(citizens)
    if citizens is not None and TIERS.has(df, "citizen"):
        joined = df.select(TIERS["citizen"]).join(citizens.select(
            [CITIZENS["citizen"], *[CITIZENS[c] for c in levels if CITIZENS.has(citizens, c)]]),
            on="citizen", how="left", maintain_order="left")
        for col in levels:
            if col in joined.columns:
                who = joined[col].cast(pl.String).fill_null("?")
                names = who.unique().sort().to_list()
                codes = who.cast(pl.Enum(names)).to_physical().cast(pl.Int64).to_numpy()
                splits[col] = (codes, names)
    at_bottom = {d: np.isin(c, worst) for d, c in _day_codes(df, tiers).items()}
    rows = []
    for h in horizons:
        pairs = snapshot_pairs(days, h)
        if not pairs:
            continue
        totals = {by: (np.zeros(len(names)), np.zeros(len(names)))
                  for by, (_, names) in splits.items()}
        for a, b in pairs:
            start = at_bottom[a]
            stay = start & at_bottom[b]
            for by, (codes, names) in splits.items():
                n0, n1 = totals[by]
                n0 += np.bincount(codes[start], minlength=len(names))
                n1 += np.bincount(codes[stay], minlength=len(names))
        for by, (_, names) in splits.items():
            n0, n1 = totals[by]
            for k, who in enumerate(names):
                rows.append({"horizon": h, "by": by, "who": str(who), "at_bottom": int(n0[k]),
                             "stayed": int(n1[k]),
                             "share": float(n1[k] / n0[k]) if n0[k] else None})
    return pl.DataFrame(rows, schema={"horizon": pl.Int64, "by": pl.String, "who": pl.String,
                                      "at_bottom": pl.Int64, "stayed": pl.Int64,
                                      "share": pl.Float64})


def persistence_after_entry(bottom, days: int,
                            after: int = PERSISTENCE_DAYS) -> pl.DataFrame | None:
    """Of the citizens who entered the bottom tiers, the share still there `after` days
    after entering, pooled over every entry that the run lasted long enough to check;
    from the `bottom` table (each move into or out of the bottom: day, citizen, change).
    A citizen is still there when an even number of moves (none, or a way out and back
    in) follow the entry within those days. None when the run did not record moves."""
    bottom = frame(bottom)
    if bottom is None:
        return None
    moves = bottom.lazy().select(pl.col("day").cast(pl.Int64), "citizen",
                                 entered=pl.col("change").cast(pl.String) == "entered")
    entries = moves.filter("entered").select("day", "citizen")
    checked = entries.filter(pl.col("day") + after <= days - 1)
    later = (checked.join(moves.select("citizen", moved=pl.col("day")), on="citizen")
             .filter((pl.col("moved") > pl.col("day"))
                     & (pl.col("moved") <= pl.col("day") + after))
             .group_by("citizen", "day").len())
    stayed = (checked.join(later, on=["citizen", "day"], how="left")
              .filter(pl.col("len").fill_null(0) % 2 == 0))
    # the three counts in one call: a query's fixed cost is most of a small one's time
    counts = [c.item() for c in pl.collect_all(
        [entries.select(pl.len()), checked.select(pl.len()), stayed.select(pl.len())])]
    return pl.DataFrame({"entered": [counts[0]], "checked": [counts[1]],
                         "stayed": [counts[2]]},
                        schema={"entered": pl.Int64, "checked": pl.Int64,
                                "stayed": pl.Int64}).with_columns(
        share=ratio(pl.col("stayed"), pl.col("checked")))


def assortativity_over_time(daily) -> pl.DataFrame | None:
    """The network's score assortativity (correlation of friends' scores) on each day it
    was computed. None when the run did not record it."""
    daily = frame(daily)
    if daily is None or not DAILY.has(daily, "assortativity"):
        return None
    out = daily.select(DAILY["day"], pl.col(DAILY["assortativity"]).cast(pl.Float64))
    return out.filter(pl.col("assortativity").is_not_null()
                      & pl.col("assortativity").is_not_nan())


def ties_over_time(daily) -> pl.DataFrame | None:
    """Ties dropped and formed each day (association avoidance and rewiring), with running
    totals. None when the run did not record them."""
    daily = frame(daily)
    names = ("ties_dropped", "ties_formed")
    if daily is None or not any(DAILY.has(daily, c) for c in names):
        return None
    cols = [(pl.col(DAILY[c]) if DAILY.has(daily, c) else pl.lit(0)).fill_null(0)
            .cast(pl.Int64).alias(c) for c in names]
    out = daily.select(pl.col(DAILY["day"]), *cols)
    return out.with_columns(dropped_total=pl.col("ties_dropped").cum_sum(),
                            formed_total=pl.col("ties_formed").cum_sum())


def tie_changes(ties) -> pl.DataFrame | None:
    """Ties dropped and formed over the run by reason (the association rule, a public
    list). None when the run kept no tie log."""
    ties = frame(ties)
    if ties is None or not (TIES.has(ties, "change") and TIES.has(ties, "reason")):
        return None
    keys = (TIES["change"], TIES["reason"])
    return ties.group_by(*keys).agg(ties=pl.len().cast(pl.Int64)).sort(*keys)


def chilling(daily, policy: pl.DataFrame, baseline_daily=None) -> pl.DataFrame | None:
    """Chilling per behaviour: occurrences that would have happened without the policy but
    did not. Against a counterfactual run (same population and seed) it is baseline minus
    policy occurrences; within one run it is read from the daily `chilled_<behaviour>`
    counts (acts deterred, drawn with common random numbers). `lawful_chilled` counts acts
    that broke no law: every chilled act of a lawful behaviour, and the chilled acts with
    a benign context of the others (expected from the behaviour's benign share where the
    run has no per-behaviour benign counts). None when neither source exists."""
    daily, base = frame(daily), frame(baseline_daily)
    rows = []
    for row in policy.iter_rows(named=True):
        b = row["behaviour"]
        occ, benign_occ = ("occurrences", b), ("benign_occurrences", b)
        if base is not None:
            if not (DAILY.has(daily, occ) and DAILY.has(base, occ)):
                continue
            before = daily_total(base, DAILY[occ])
            chilled = before - daily_total(daily, DAILY[occ])
            benign = (daily_total(base, DAILY[benign_occ]) - daily_total(daily, DAILY[benign_occ])
                      if DAILY.has(daily, benign_occ) and DAILY.has(base, benign_occ) else None)
            source = "counterfactual"
        else:
            if daily is None or not DAILY.has(daily, ("chilled", b)):
                continue
            chilled = daily_total(daily, DAILY["chilled", b])
            before = (daily_total(daily, DAILY[occ]) + chilled if DAILY.has(daily, occ)
                      else None)
            benign = (daily_total(daily, DAILY["benign_chilled", b])
                      if DAILY.has(daily, ("benign_chilled", b)) else None)
            source = "deterred"
        if benign is None:
            benign = round(chilled * row["benign_share"])
        lawful = chilled if row["lawful"] else benign
        rows.append({"behaviour": b, "lawful": row["lawful"], "penalised": row["penalised"],
                     "without_policy": before, "chilled": chilled, "chilled_benign": benign,
                     "lawful_chilled": lawful, "source": source})
    if not rows:
        return None
    out = pl.DataFrame(rows, schema={"behaviour": pl.String, "lawful": pl.Boolean,
                                     "penalised": pl.Boolean, "without_policy": pl.Int64,
                                     "chilled": pl.Int64, "chilled_benign": pl.Int64,
                                     "lawful_chilled": pl.Int64, "source": pl.String})
    return out.with_columns(share=ratio(pl.col("chilled"), pl.col("without_policy")))


def income_by_tier(citizens, tiers: list[str]) -> pl.DataFrame:
    """Mean income index by final tier: at the start of the run and at the end (the same
    when the run has no economic feedback, i.e. no `income_final`), and its change."""
    citizens = frame(citizens)
    end = CITIZENS["income_final" if CITIZENS.has(citizens, "income_final") else "income"]
    df = citizens.group_by(CITIZENS["tier"]).agg(
        citizens=pl.len().cast(pl.Int64),
        income_start=pl.col(CITIZENS["income"]).cast(pl.Float64).mean(),
        income_end=pl.col(end).cast(pl.Float64).mean(),
    )
    order = pl.DataFrame({"tier": tiers, "rank": list(range(len(tiers)))})
    out = order.join(df, on="tier", how="left").sort("rank").drop("rank")
    return out.with_columns(pl.col("citizens").fill_null(0),
                            change=pl.col("income_end") - pl.col("income_start"))


def income_gap(by_tier: pl.DataFrame, min_citizens: int = 10) -> dict:
    """Income gap by tier: mean income of the best tier divided by that of the worst tier
    (1 = no gap), at the start and at the end of the run, among tiers holding at least
    `min_citizens` citizens (any occupied tier when fewer than two do)."""
    occ = by_tier.filter(pl.col("citizens") >= min_citizens)
    if occ.height < 2:
        occ = by_tier.filter(pl.col("citizens") > 0)
    if occ.height < 2:
        return {"top": None, "bottom": None, "ratio_start": None, "ratio_end": None}
    top, bot = occ.row(0, named=True), occ.row(-1, named=True)

    def r(a, b):
        return a / b if b else None
    return {"top": top["tier"], "bottom": bot["tier"],
            "ratio_start": r(top["income_start"], bot["income_start"]),
            "ratio_end": r(top["income_end"], bot["income_end"])}


def income_over_time(daily) -> pl.DataFrame | None:
    """Mean income index per day. None when the run did not record it."""
    daily = frame(daily)
    if daily is None or not DAILY.has(daily, "mean_income"):
        return None
    return daily.select(DAILY["day"], pl.col(DAILY["mean_income"]).cast(pl.Float64))
