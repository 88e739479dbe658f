"""Disparate impact with uncertainty: intervals, tests, and flags that chance does not
raise more often than the stated level, while a disparity a researcher cares about is
flagged."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from metricpower.metrics import disparate
from metricpower.metrics.common import citizen_evidence, frame
from metricpower.metrics.measure import bottom_tiers, measure, summary


def rates_table(numerators, denominators, adverse=True, rate="sanctioned"):
    who = [f"g{i}" for i in range(len(numerators))]
    return pl.DataFrame({
        "rate": [rate] * len(who), "adverse": [adverse] * len(who), "by": ["group"] * len(who),
        "who": who, "numerator": numerators, "denominator": denominators,
        "value": [x / n for x, n in zip(numerators, denominators, strict=True)]},
        schema=disparate._SCHEMA)


def get(di, who, rate="sanctioned"):
    return di.filter((pl.col("who") == who) & (pl.col("rate") == rate)).row(0, named=True)


def test_ratio_interval_and_test_match_the_textbook():
    di = disparate.disparate_impact(rates_table([50, 90, 60], [1000, 1000, 1000]))
    g1 = get(di, "g1")
    assert g1["reference_who"] == "g0" and g1["impact_ratio"] == pytest.approx(50 / 90)
    # Katz's log interval of the ratio of two proportions
    se = np.sqrt(1 / 50 - 1 / 1000 + 1 / 90 - 1 / 1000)
    z = stats.norm.ppf(0.975)
    assert g1["ci_low"] == pytest.approx(50 / 90 * np.exp(-z * se))
    assert g1["ci_high"] == pytest.approx(50 / 90 * np.exp(z * se))
    # Pearson's chi-squared test of the 2x2 table, without continuity correction
    chi2 = stats.chi2_contingency([[50, 950], [90, 910]], correction=False)
    assert g1["p_value"] == pytest.approx(chi2.pvalue)
    # Holm over the three pairs (g0-g1, g0-g2, g1-g2): the smallest p times 3
    assert g1["p_adjusted"] == pytest.approx(3 * chi2.pvalue)
    assert g1["flagged"] and g1["below_four_fifths"]
    g2 = get(di, "g2")  # ratio 0.83: neither below four fifths nor significant
    assert not g2["flagged"] and not g2["below_four_fifths"]
    assert g2["ci_low"] < 1 < g2["ci_high"]
    assert get(di, "g0")["ci_low"] is None and not get(di, "g0")["flagged"]


def test_small_counts_use_fishers_exact_test_and_are_not_flagged_on_four_fifths():
    # 1 event against 6: far below four fifths, but no evidence at a family-wise 5%
    di = disparate.disparate_impact(rates_table([1, 6], [400, 400]))
    g1 = get(di, "g1")
    assert g1["below_four_fifths"] and not g1["flagged"]
    assert g1["p_value"] == pytest.approx(stats.fisher_exact([[1, 399], [6, 394]]).pvalue)


def scipy_fisher(a, b, c, d) -> float:
    return float(stats.fisher_exact(np.array([[a, b], [c, d]], dtype=np.int64)).pvalue)


def test_p_values_of_a_real_run_are_scipys(essay_run):
    # every pair of groups that the run tests by Fisher's exact test, against scipy's
    # own call on the same table; the others against scipy's chi-squared test
    rates = measure(essay_run)["group_rates"].filter(pl.col("value").is_not_null())
    pairs = rates.join(rates, on=["rate", "by"], suffix="_b").filter(
        pl.col("who") < pl.col("who_b"))
    x1, n1, x2, n2 = (pairs[c].to_numpy() for c in ("numerator", "denominator",
                                                     "numerator_b", "denominator_b"))
    got = disparate.pair_test(x1, n1, x2, n2)
    hits, n = x1 + x2, n1 + n2
    expected = np.stack([n1 * hits, n1 * (n - hits), n2 * hits, n2 * (n - hits)]) / n
    exact = (expected.min(axis=0) < disparate.MIN_EXPECTED) & (x1 <= n1) & (x2 <= n2)
    assert exact.sum() >= 20 and (~exact).sum() >= 20
    for i in np.flatnonzero(exact):
        assert got[i] == scipy_fisher(x1[i], n1[i] - x1[i], x2[i], n2[i] - x2[i])
    for i in np.flatnonzero(~exact & (x1 <= n1) & (x2 <= n2) & (hits > 0) & (hits < n)):
        table = [[x1[i], n1[i] - x1[i]], [x2[i], n2[i] - x2[i]]]
        assert got[i] == pytest.approx(
            stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9, abs=1e-300)


def test_favourable_rates_compare_with_the_most_favoured_group():
    di = disparate.disparate_impact(rates_table([300, 150], [1000, 1000], adverse=False,
                                                rate="rewarded"))
    g1 = get(di, "g1", "rewarded")
    assert g1["impact_ratio"] == pytest.approx(0.5) and g1["flagged"]
    assert g1["ci_low"] < 0.5 < g1["ci_high"] < 0.8


def test_holm_adjustment():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.5])
    got = disparate.holm(p)
    # sorted: 0.01*4, 0.03*3, 0.04*2, 0.5*1 -> monotone 0.04, 0.09, 0.09, 0.5
    assert np.allclose(got[[0, 3, 1, 4]], [0.04, 0.09, 0.09, 0.5]) and np.isnan(got[2])


def _citizen_rates(citizens, evidence, group, region):
    citizens = citizens.with_columns(group=pl.Series(group), region=pl.Series(region))
    evidence = evidence.with_columns(group=pl.Series(group), region=pl.Series(region))
    return pl.concat([disparate.group_rates(citizens, evidence, by=by,
                                            bottom=bottom_tiers_of_essay(),
                                            lists={"blacklist": True, "redlist": False})
                      for by in ("group", "region")])


def bottom_tiers_of_essay():
    return ["C", "D"]


def test_shuffled_groups_raise_flags_no_more_often_than_the_level(essay_run):
    """Shuffle the group and region labels of a real run: groups then differ in nothing,
    so any flag is a false one. With Holm's correction over the whole table the chance
    of one or more flags in a shuffle is at most 5%: over 120 shuffles the count stays
    within three binomial standard errors of 6 (a method that falsely flags one shuffle
    in five, 24 expected, fails)."""
    citizens = frame(essay_run.tables["citizens"])
    lawful = {b.name for b in essay_run.scenario.behaviours if b.lawful}
    evidence = citizen_evidence(citizens, frame(essay_run.tables["ledger"]), lawful)
    assert evidence["citizen"].to_list() == citizens["citizen"].to_list()
    rng = np.random.default_rng(3)
    group, region = citizens["group"].to_numpy(), citizens["region"].to_numpy()
    shuffles, any_flag, below = 120, 0, 0
    for _ in range(shuffles):
        rates = _citizen_rates(citizens, evidence, rng.permutation(group),
                               rng.permutation(region))
        di = disparate.disparate_impact(rates)
        any_flag += bool(di["flagged"].any())
        below += bool(di["below_four_fifths"].any())
    bound = shuffles * 0.05 + 3 * np.sqrt(shuffles * 0.05 * 0.95)
    assert any_flag <= bound, (any_flag, bound)
    # the descriptive four-fifths reading alone fires on chance in many shuffles
    assert below > 3 * bound


def _planted(rng, base, factor, size=4000, groups=4):
    hits = [rng.binomial(size, base * (factor if g == 1 else 1.0)) for g in range(groups)]
    return disparate.disparate_impact(rates_table(hits, [size] * groups))


def test_power_a_planted_disparity_is_flagged_and_none_is_not():
    """Power: a sanction rate 1.5 times as high in one of four groups of 4,000 (base
    rate 5%) — an impact ratio of 0.67 — is flagged in at least 90% of 200 draws; with
    nothing planted, draws with a flag stay near the 5% level."""
    rng = np.random.default_rng(11)
    draws = 200
    found = sum(get(_planted(rng, 0.05, 1.5), "g1")["flagged"] for _ in range(draws))
    assert found >= 0.9 * draws, found
    false = sum(bool(_planted(rng, 0.05, 1.0)["flagged"].any()) for _ in range(draws))
    assert false <= draws * 0.05 + 3 * np.sqrt(draws * 0.05 * 0.95), false


def test_summary_tells_significant_from_chance(essay_run):
    s = summary(essay_run)["disparate_impact"]
    assert s["level"] == disparate.ALPHA and "Holm" in s["rule"]
    di = disparate.disparate_impact(pl.DataFrame(schema=disparate._SCHEMA))
    assert di.height == 0
    for f in s["flagged"]:
        assert f["p_adjusted"] < disparate.ALPHA
    for f in s["below_four_fifths_not_significant"]:
        assert f["below_four_fifths"] and not (f["p_adjusted"] or 1) < disparate.ALPHA
    assert bottom_tiers(essay_run.scenario)
