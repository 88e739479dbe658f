"""Disparate impact: every sanction (and reward) rate compared across groups and regions,
with a confidence interval and a test for each comparison; the four-fifths reading is
kept as a description, a flag needs the test.

The test of two groups' rates is Pearson's chi-squared test of their 2×2 table (Fisher's
exact test where an expected count is below 5); p-values are Holm-adjusted over every
pair of groups of every rate in the table, so on a population whose groups differ in
nothing the chance of one or more flags is at most `ALPHA`.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl
from scipy import stats

from metricpower.ledger.schema import CITIZENS
from metricpower.metrics.common import frame
from metricpower.metrics.judgements import consequence_rates

#: The four-fifths rule: a group's rate ratio below this is read as adverse impact.
FOUR_FIFTHS = 0.8
#: Significance level of a flag (family-wise, over the whole table), and 1 - the
#: confidence level of the intervals.
ALPHA = 0.05
#: Below this expected count in any cell the chi-squared approximation is not trusted
#: and Fisher's exact test is used.
MIN_EXPECTED = 5.0
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
    parts = []  # lazy, collected as one query: a query's fixed cost is most of its time
    if consequences is not None and services is not None and by == "group":
        rates = consequence_rates(consequences, services, citizens).lazy().filter(
            pl.col("group") != "all")
        parts.append(rates.select(
            rate=pl.col("consequence"), adverse=pl.col("sanction"), by=pl.lit("group"),
            who=pl.col("group"), numerator=pl.col("applied"),
            denominator=pl.when(pl.col("per") == "attempt").then(pl.col("attempts"))
            .otherwise(pl.col("citizens"))))

    def shares(df: pl.DataFrame, conds: list[tuple[str, bool, pl.Expr]]) -> None:
        """Each (rate, adverse, condition)'s share of `df` per group, in one query, as
        one part per rate."""
        counts = df.lazy().group_by(by).agg(pl.len().cast(pl.Int64).alias("denominator"), *[
            cond.sum().cast(pl.Int64).alias(f"numerator {i}")
            for i, (_, _, cond) in enumerate(conds)])
        parts.extend(counts.select(
            rate=pl.lit(name), adverse=pl.lit(adverse), by=pl.lit(by),
            who=pl.col(by).cast(pl.String), numerator=pl.col(f"numerator {i}"),
            denominator=pl.col("denominator")) for i, (name, adverse, _) in enumerate(conds))

    of_citizens = [("sanctioned", True, pl.col(CITIZENS["sanctions"]) > 0),
                   ("rewarded", False, pl.col(CITIZENS["rewards"]) > 0)]
    if bottom:
        of_citizens.append(("bottom_tier", True, pl.col(CITIZENS["tier"]).is_in(bottom)))
    of_citizens += [(CITIZENS["on", name], adverse, pl.col(CITIZENS["on", name]))
                    for name, adverse in (lists or {}).items()]
    shares(citizens, of_citizens)
    if evidence is not None:
        shares(evidence, [("penalised", True, pl.col("penalties") > 0),
                          ("misattributed", True, pl.col("misattributed") > 0),
                          ("wrongly_penalised", True,
                           (pl.col("benign") + pl.col("misattributed")) > 0)])
    out = pl.concat([p.with_columns(pl.col("numerator").cast(pl.Int64),
                                    pl.col("denominator").cast(pl.Int64)) for p in parts],
                    how="diagonal_relaxed")
    out = out.with_columns(value=pl.when(pl.col("denominator") > 0)
                           .then(pl.col("numerator") / pl.col("denominator")))
    return out.select(list(_SCHEMA)).sort("rate", "who", maintain_order=True).collect()


def disparate_impact(rates: pl.DataFrame, alpha: float = ALPHA,
                     threshold: float = FOUR_FIFTHS) -> pl.DataFrame:
    """Each group's impact ratio for each rate, with a confidence interval and a test.

    The ratio compares the group with the reference group of its rate and split: for
    adverse rates the least-affected group's rate over the group's own, for favourable
    rates the group's rate over the most-favoured group's, so 1 is parity and lower is
    worse for the group. `below_four_fifths` (under 0.8) is the descriptive four-fifths
    reading. `ci_low`/`ci_high` bound the ratio at level 1 − alpha (Katz's log interval,
    with 0.5 added to every cell of a table with an empty cell). `p_value` is the test
    of the group against the reference (`p_value` of `pair_test`); `p_adjusted` is
    Holm's step-down adjustment over every pair of groups of every rate and split in the
    table — the reference is picked after seeing the data, so all pairs count as
    tested, and the chance of any false flag in the table stays below alpha.
    `flagged` when p_adjusted < alpha: a disparity that chance does not explain.
    Rates whose numerator can exceed the denominator (events, not citizens) get no
    test."""
    valid = rates.filter(pl.col("value").is_not_null())
    adverse = pl.col("adverse").first()
    target = pl.when(adverse).then(pl.col("value").min()).otherwise(pl.col("value").max())
    # lazy, as one query each side of the tests: a query's fixed cost is most of its time
    ref = valid.lazy().group_by("rate", "by").agg(
        reference=target,
        ref_who=pl.col("who").filter(pl.col("value") == target).sort().first(),
    )
    ref = ref.join(rates.lazy().select("rate", "by", ref_who="who", ref_num="numerator",
                                       ref_den="denominator"), on=["rate", "by", "ref_who"])
    df = rates.lazy().join(ref, on=["rate", "by"], how="left", maintain_order="left")
    v, r = pl.col("value"), pl.col("reference")
    ratio = (pl.when(v.is_null() | r.is_null()).then(None)
             .when(pl.col("adverse")).then(pl.when(v > 0).then(r / v).otherwise(1.0))
             .otherwise(pl.when(r > 0).then(v / r).otherwise(1.0)))
    relative = pl.when(r > 0).then(v / r).otherwise(None)
    df = df.with_columns(impact_ratio=ratio, relative=relative).with_columns(
        below_four_fifths=pl.col("impact_ratio").fill_null(1.0) < threshold).collect()
    pairs = _all_pairs(valid)
    adjusted = holm(pairs["p_value"].to_numpy())
    pairs = pairs.with_columns(p_adjusted=pl.Series(adjusted, dtype=pl.Float64).fill_nan(None))
    low, high = _katz(df, alpha)
    df = df.lazy().with_columns(ci_low=pl.Series(low, dtype=pl.Float64).fill_nan(None),
                                ci_high=pl.Series(high, dtype=pl.Float64).fill_nan(None))
    key = pl.when(pl.col("who") < pl.col("ref_who"))
    df = df.with_columns(a=key.then(pl.col("who")).otherwise(pl.col("ref_who")),
                         b=key.then(pl.col("ref_who")).otherwise(pl.col("who")))
    df = df.join(pairs.lazy().select("rate", "by", "a", "b", "p_value", "p_adjusted"),
                 on=["rate", "by", "a", "b"], how="left", maintain_order="left")
    return df.with_columns(
        flagged=(pl.col("p_adjusted") < alpha).fill_null(False),
        level=pl.lit(alpha)).drop("a", "b", "ref_num", "ref_den").rename(
        {"ref_who": "reference_who"}).collect()


def pair_test(x1, n1, x2, n2) -> np.ndarray:
    """Two-sided p-values for equal proportions x1/n1 and x2/n2 (arrays): Pearson's
    chi-squared test of the 2×2 table, Fisher's exact test where an expected count is
    below MIN_EXPECTED; NaN where a table is empty or a count exceeds its total."""
    x1, n1, x2, n2 = (np.asarray(a, dtype=np.float64) for a in (x1, n1, x2, n2))
    out = np.full(x1.shape, np.nan)
    ok = (n1 > 0) & (n2 > 0) & (x1 <= n1) & (x2 <= n2) & (x1 >= 0) & (x2 >= 0)
    n = n1 + n2
    hits = x1 + x2
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.stack([n1 * hits, n1 * (n - hits), n2 * hits, n2 * (n - hits)]) / n
        small = ok & (expected.min(axis=0) < MIN_EXPECTED)
        big = ok & ~small
        both = (hits > 0) & (hits < n)
        pooled = hits / n
        z2 = (x1 / n1 - x2 / n2) ** 2 / (pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    out[big] = np.where(both[big], stats.chi2.sf(z2[big], 1), 1.0)
    for i in np.flatnonzero(small):
        table = [[x1[i], n1[i] - x1[i]], [x2[i], n2[i] - x2[i]]]
        out[i] = stats.fisher_exact(np.asarray(table, dtype=np.int64)).pvalue
    return out


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of p-values (NaN stays NaN and does not count)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(stepped, 1.0)
    return out


def _all_pairs(valid: pl.DataFrame) -> pl.DataFrame:
    """Every pair of groups (a < b) of every rate and split, with the pair's p-value."""
    left = valid.select("rate", "by", a="who", xa="numerator", na="denominator")
    right = valid.select("rate", "by", b="who", xb="numerator", nb="denominator")
    pairs = left.join(right, on=["rate", "by"]).filter(pl.col("a") < pl.col("b"))
    p = pair_test(pairs["xa"].to_numpy(), pairs["na"].to_numpy(),
                  pairs["xb"].to_numpy(), pairs["nb"].to_numpy())
    return pairs.with_columns(p_value=pl.Series(p, dtype=pl.Float64).fill_nan(None))


def _katz(df: pl.DataFrame, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Katz's log interval for each row's impact ratio (a ratio of two proportions),
    with 0.5 added to each cell of a table that has an empty cell; NaN on the reference
    row itself and where there is no reference."""
    x = df["numerator"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    n = df["denominator"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    xr = df["ref_num"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    nr = df["ref_den"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    adverse = df["adverse"].to_numpy()
    own = (df["who"] == df["ref_who"]).fill_null(True).to_numpy()
    bad = own | (n <= 0) | (nr <= 0) | (x > n) | (xr > nr) | np.isnan(x) | np.isnan(xr)
    with np.errstate(invalid="ignore", divide="ignore"):
        empty = (x == 0) | (x == n) | (xr == 0) | (xr == nr)
        x, n = np.where(empty, x + 0.5, x), np.where(empty, n + 1.0, n)
        xr, nr = np.where(empty, xr + 0.5, xr), np.where(empty, nr + 1.0, nr)
        log_ratio = np.log(xr / nr) - np.log(x / n)
        log_ratio = np.where(adverse, log_ratio, -log_ratio)
        se = np.sqrt(1 / x - 1 / n + 1 / xr - 1 / nr)
    z = stats.norm.ppf(1 - alpha / 2)
    low, high = np.exp(log_ratio - z * se), np.exp(log_ratio + z * se)
    low[bad], high[bad] = np.nan, np.nan
    return low, high
