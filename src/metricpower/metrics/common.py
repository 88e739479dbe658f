"""Shared helpers: tables as Polars frames, splits by group and region, ranks, per-citizen
evidence from the ledger."""

from __future__ import annotations

import math
import weakref

import numpy as np
import polars as pl
import polars.selectors as cs
import pyarrow as pa

from metricpower.ledger.schema import CITIZENS, LEDGER

#: The splits every per-citizen metric is reported at, besides the whole population.
LEVELS = ("group", "region")


def frame(table) -> pl.DataFrame | None:
    """An Arrow table (or a Polars frame, or None) as a Polars frame with dictionary /
    categorical columns as plain strings."""
    if table is None:
        return None
    if isinstance(table, pa.Table):  # names decoded by Arrow, faster than a Polars cast
        table = pa.table([c.cast(c.type.value_type) if pa.types.is_dictionary(c.type)
                          and pa.types.is_string(c.type.value_type) else c
                          for c in table.columns], names=table.column_names)
    df = table if isinstance(table, pl.DataFrame) else pl.from_arrow(table)
    if isinstance(df, pl.Series):
        df = df.to_frame()
    cats = [c for c, t in df.schema.items() if isinstance(t, pl.Categorical | pl.Enum)]
    return df.with_columns([pl.col(c).cast(pl.String) for c in cats]) if cats else df


def by_levels(df: pl.DataFrame, aggs: list[pl.Expr], levels=LEVELS) -> pl.DataFrame:
    """`aggs` over everyone (by = "all"), then per value of each column in `levels` that
    `df` has (by = "group", who = the group's name, …)."""
    lazy = df.lazy()  # one query: a query's fixed cost is most of a small table's
    parts = [lazy.select(aggs).with_columns(by=pl.lit("all"), who=pl.lit("all"))]
    for col in levels:
        if CITIZENS.has(df, col):  # a level is a declared citizens column
            part = (lazy.group_by(col).agg(aggs)
                    .with_columns(by=pl.lit(col), who=pl.col(col).cast(pl.String))
                    .drop(col).sort("who"))
            parts.append(part)
    out = pl.concat(parts, how="diagonal_relaxed").collect()
    first = ["by", "who"]
    return out.select(first + [c for c in out.columns if c not in first])


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den as float, null where den is 0."""
    return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64)).otherwise(None)


#: What was worked out from each table seen, by what it was: tables are not modified after
#: a run, and several metrics ask the same of one table.
_SEEN: dict[tuple[int, str], tuple[weakref.ref, object]] = {}


def once(df: pl.DataFrame, what: str, compute):
    """`compute(df)`, worked out once per table object and `what`, and forgotten with the
    table."""
    key = (id(df), what)
    hit = _SEEN.get(key)
    if hit is None or hit[0]() is not df:
        hit = (weakref.ref(df, lambda _, key=key: _SEEN.pop(key, None)), compute(df))
        _SEEN[key] = hit
    return hit[1]


def daily_total(daily: pl.DataFrame | None, col: str) -> int:
    """The total of one column of a daily table. Every column is summed at the first ask:
    metrics ask for one column at a time, and a table of 20,000 behaviours has 60,000."""
    if daily is None:
        return 0
    sums = once(daily, "totals", lambda d: d.select(cs.numeric().fill_null(0).sum())
                .row(0, named=True) if d.height else {})
    return int(sums.get(col) or 0)


def average_ranks(x) -> np.ndarray:
    """1-based ranks of x, ties sharing their average rank."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0)
    # Ties share their average rank whatever order a sort leaves them in, so the fast
    # unstable sort gives the same ranks; NaNs (each its own rank) keep their order.
    order = np.argsort(x, kind="mergesort" if np.isnan(x).any() else "quicksort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def pearson(x, y) -> float:
    """Pearson correlation; NaN when either side is constant or there are < 2 values."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return math.nan
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy = float(xc @ xc), float(yc @ yc)
    if sxx <= 0 or syy <= 0:
        return math.nan
    return float(xc @ yc / math.sqrt(sxx * syy))


def spearman(x, y) -> float:
    """Spearman rank correlation (ties take average ranks); NaN when either is constant."""
    return pearson(average_ranks(x), average_ranks(y))


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve of `scores` for the boolean `labels`: the chance that a
    random positive scores above a random negative (ties count one half). NaN when one
    class is empty."""
    return ranked_auc(labels, average_ranks(scores))


def ranked_auc(labels, ranks) -> float:
    """`roc_auc` from the scores' `average_ranks` (for a caller that has them already)."""
    labels = np.asarray(labels, dtype=bool)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return math.nan
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def citizen_evidence(citizens: pl.DataFrame, ledger: pl.DataFrame | None,
                     lawful: set[str] | frozenset[str] = frozenset()) -> pl.DataFrame:
    """One row per citizen whose ledger is kept: group, region, conduct, sanctions, and
    what their penalties rest on — counts of penalties by evidence (`true` acts, `benign`
    context, `misattributed` to them by a false match, `derived` from their state or
    friends by a periodic rule), penalty points, points on benign or misattributed
    evidence (`tainted_points`), penalised events of lawful behaviours, and penalties
    `reversed` on appeal. Penalties count as recorded, whether later reversed or not;
    reversal entries (a `reverses` value) are not penalties."""
    keep = citizens
    if CITIZENS.has(citizens, "in_ledger"):
        keep = citizens.filter(pl.col(CITIZENS["in_ledger"]))
    base_cols = [CITIZENS[c] for c in ("citizen", "group", "region", "conduct", "score",
                                       "sanctions", "rewards") if CITIZENS.has(keep, c)]
    base = keep.select(base_cols)
    counts = ["penalties", "true", "benign", "misattributed", "derived", "lawful",
              "penalty_points", "tainted_points", "reversed"]
    if ledger is None or ledger.height == 0:
        return base.with_columns([pl.lit(0, dtype=pl.Int64).alias(c) for c in counts])
    reverses, points = pl.col(LEDGER["reverses"]), pl.col(LEDGER["points"])
    is_reversal = (reverses.is_not_null() & (reverses >= 0)
                   if LEDGER.has(ledger, "reverses") else pl.lit(False))
    ledger = ledger.lazy()  # one query: a query's fixed cost is most of a small one's time
    pen = ledger.filter((points < 0) & ~is_reversal)
    behaviour = pl.col(LEDGER["behaviour"])
    event = behaviour.is_not_null()
    benign = pl.col(LEDGER["benign"]).fill_null(False)
    mis = pl.col(LEDGER["misattributed"]).fill_null(False)
    tainted = event & (benign | mis)
    per = pen.group_by(LEDGER["citizen"]).agg(
        penalties=pl.len().cast(pl.Int64),
        true=(event & ~benign & ~mis).sum().cast(pl.Int64),
        benign=(event & benign).sum().cast(pl.Int64),
        misattributed=(event & mis).sum().cast(pl.Int64),
        derived=(~event).sum().cast(pl.Int64),
        lawful=(event & behaviour.is_in(sorted(lawful))).sum().cast(pl.Int64),
        penalty_points=(-points).sum().cast(pl.Int64),
        tainted_points=pl.when(tainted).then(-points).otherwise(0).sum().cast(pl.Int64),
    )
    rev = (ledger.filter(is_reversal).group_by(LEDGER["citizen"])
           .agg(reversed=pl.len().cast(pl.Int64)))
    per = per.join(rev, on="citizen", how="full", coalesce=True)
    per = per.with_columns(pl.col("citizen").cast(base.schema["citizen"]))
    return base.lazy().join(per, on="citizen", how="left", maintain_order="left").with_columns(
        [pl.col(c).fill_null(0) for c in counts]).collect()


def clean(value):
    """A value made JSON-able: NaN/inf become None, NumPy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
