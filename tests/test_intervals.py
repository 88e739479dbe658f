"""Intervals of a mean stay inside the metric's range: each metric's range is declared once
(`metricpower.metrics.ranges`), every number a run writes has one, and the ensemble
summary, the dashboard's ensemble pages, `compare --seeds` and the ensemble report cut
the t-interval of a mean to it, while differences and effects keep both signs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import run_preset, scenario
from polars.testing import assert_frame_equal
from scipy import stats as st

import metricpower as mp
from metricpower.compare import compare_runs
from metricpower.ensembles import LocalPool
from metricpower.ensembles.member import effect_numbers, numbers
from metricpower.ensembles.stats import INTERVAL, between, means, paired, t_interval
from metricpower.metrics.ranges import (
    CORRELATION,
    FRACTION,
    NONNEGATIVE,
    UNBOUNDED,
    declared,
    range_of,
)
from metricpower.report.html import esc
from metricpower.report.labels import metric_label

PRESETS = ("essay", "null", "rongcheng", "sesame_like", "weihai", "court_blacklist")
COUNT = "processes.judgements.wrongful_sanctions"
SHARE = "penalties.benign_context_share"
EFFECT = "effects.sanctions_total"


def t_bounds(values) -> tuple[float, float]:
    x = np.asarray(values, dtype=float)
    half = st.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean() - half, x.mean() + half


def tidy(columns: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame([{"seed": i, "metric": m, "value": v}
                         for m, vs in columns.items() for i, v in enumerate(vs)])


# ---------------------------------------------------------------- the declaration
def test_every_number_a_run_writes_has_one_declared_range_and_lies_in_it():
    """Every number of metrics.json (and of a comparison's effects) on every shipped
    preset has a declared range (exactly one: `declared` refuses two), and its value lies
    in it."""
    seen = {}
    # the last: predictions judged and services denied (as in test_engine_validity)
    runs = [run_preset(p) for p in PRESETS] + [run_preset("essay", {"bottom_tier": "B"},
                                                          days=240)]
    for run in runs:
        seen |= {k: seen.get(k, []) + [v] for k, v in numbers(run.metrics).items()}
    eff = compare_runs(run_preset("essay"), run_preset("null"), "A", "B").effects
    seen |= {f"effects.{k}": [v] for k, v in effect_numbers(eff).items()}
    assert len(seen) > 400 and any(".predictions." in k for k in seen)
    assert any(".denial_rate_by_service." in k for k in seen)
    for key, values in seen.items():
        r = declared(key)
        assert r is not None, key
        assert all(r.low <= v <= r.high for v in values), (key, r, values)
    assert declared("processes.totals.penalties") is NONNEGATIVE
    assert declared("tier_shares.AA") is FRACTION
    assert declared("processes.authority.spearman_by_group.majority_men") is CORRELATION
    assert declared("mean_score") is UNBOUNDED and declared(EFFECT) is UNBOUNDED
    assert declared("no_such_metric") is None and range_of("no_such_metric") is UNBOUNDED


def test_a_name_the_scenario_gives_is_never_read_as_a_pattern_word():
    """A tier called `share` stays a tier: its count is a count, its share a share."""
    assert range_of("tier_counts.share") is NONNEGATIVE
    assert range_of("tier_shares.applied") is FRACTION
    assert range_of("consequences.sanction.applied") is NONNEGATIVE
    assert range_of("consequences.applied.sanction") is FRACTION


# ---------------------------------------------------------------- hand-made tables
def test_a_count_a_share_a_correlation_and_an_effect_on_a_hand_made_table():
    values = {COUNT: [0.0, 0.0, 0.0, 3.0], SHARE: [0.97, 0.99, 1.0, 0.93],
              "processes.authority.spearman": [-0.99, -0.9, -1.0, -0.95],
              EFFECT: [-3.0, 1.0, -2.0, 0.0]}
    raw = t_interval(tidy(values), ["metric"])
    cut = means(tidy(values), ["metric"])
    row = {r["metric"]: r for r in cut.iter_rows(named=True)}
    lo, hi = t_bounds(values[COUNT])
    assert lo < 0 and row[COUNT]["lo"] == 0.0 and row[COUNT]["hi"] == pytest.approx(hi)
    lo, hi = t_bounds(values[SHARE])
    assert hi > 1 and row[SHARE]["hi"] == 1.0 and row[SHARE]["lo"] == pytest.approx(lo)
    lo, _ = t_bounds(values["processes.authority.spearman"])
    assert lo < -1 and row["processes.authority.spearman"]["lo"] == -1.0
    lo, hi = t_bounds(values[EFFECT])
    assert lo < 0 and row[EFFECT]["lo"] == pytest.approx(lo)
    assert row[EFFECT]["hi"] == pytest.approx(hi)
    # only the bounds move: n, mean and sd are the t-interval's
    assert cut.drop("lo", "hi").equals(raw.drop("lo", "hi"))


def test_one_member_keeps_no_interval():
    """A single member has no interval (a missing bound), and cutting does not make one."""
    cut = means(tidy({COUNT: [2.0]}), ["metric"])
    assert cut["lo"][0] is None and cut["hi"][0] is None
    assert cut["n"][0] == 1 and cut["mean"][0] == 2.0
    assert cut.equals(t_interval(tidy({COUNT: [2.0]}), ["metric"]))


def test_differences_of_counts_keep_their_negative_bounds():
    """Paired differences (sweep effects) and A − B between two ensembles are not cut,
    though the metric is a count; each side's mean is."""
    t = pl.DataFrame({"arm": ["b"] * 4 + ["x"] * 4, "seed": [1, 2, 3, 4] * 2,
                      "metric": [COUNT] * 8,
                      "value": [3.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0]})
    d = [-3.0, 0.0, -2.0, 1.0]
    e = paired(t, "b", ["arm"])
    assert e["lo"][0] == pytest.approx(t_bounds(d)[0]) and e["lo"][0] < -3
    a = t.filter(pl.col("arm") == "x").drop("arm")
    b = t.filter(pl.col("arm") == "b").drop("arm")
    for paired_seeds in (True, False):
        c = between(a, b, paired_seeds)
        assert c["lo_a"][0] == 0.0 and c["lo_b"][0] == 0.0
        assert c["lo"][0] < -3 and c["difference"][0] == pytest.approx(-1.0)


def test_cutting_never_loses_a_mean_the_t_interval_covered():
    """Poisson(0.3) samples of 5, 4,000 of them (seed 0): wherever the t-interval covers
    the true mean 0.3, the cut interval does too, and it lies inside the t-interval and
    the range [0, ∞). Most of these intervals reach below 0, so the check is not empty."""
    rng = np.random.default_rng(0)
    reps, n, mu = 4000, 5, 0.3
    x = rng.poisson(mu, size=(reps, n)).astype(float)
    frame = pl.DataFrame({"rep": np.repeat(np.arange(reps), n), "metric": COUNT,
                          "value": x.ravel()})
    raw = t_interval(frame, ["rep", "metric"]).sort("rep")
    cut = means(frame, ["rep", "metric"]).sort("rep")
    ok = raw["sd"] > 0
    raw, cut = raw.filter(ok), cut.filter(ok)
    covers_raw = (raw["lo"] <= mu) & (raw["hi"] >= mu)
    covers_cut = (cut["lo"] <= mu) & (cut["hi"] >= mu)
    assert (~covers_raw | covers_cut).all()
    assert (covers_raw == covers_cut).all()
    assert (cut["lo"] >= 0).all() and (cut["lo"] >= raw["lo"]).all()
    assert (cut["hi"] == raw["hi"]).all()
    assert (raw["lo"] < 0).mean() > 0.5


# ---------------------------------------------------------------- a real ensemble
@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """`compare essay null --seeds 4` at 600 citizens × 40 days: rare events (false
    matches, misattributed penalties) are 0 on some seeds and not on others, so their
    t-intervals reach below 0."""
    out = tmp_path_factory.mktemp("bounds") / "c"
    return mp.compare(scenario(citizens=600, days=40), "null", seeds=4, out=out,
                      executor=LocalPool(2))


def _check(summary: pl.DataFrame) -> None:
    for r in summary.iter_rows(named=True):
        rng = range_of(r["metric"])
        if r["lo"] is not None and not math.isnan(r["lo"]):
            assert rng.low <= r["lo"] <= r["mean"] <= r["hi"] <= rng.high, r


def test_a_real_ensemble_has_no_interval_outside_its_metrics_range(compared):
    from metricpower.web.ensembles import LoadedEnsemble

    summary = compared.summary()
    raw = t_interval(compared.table(), ["arm", "metric"])
    _check(summary)
    joined = raw.join(summary, on=["arm", "metric"], suffix="_cut").with_columns(
        low=pl.col("metric").map_elements(lambda m: range_of(m).low, pl.Float64),
        high=pl.col("metric").map_elements(lambda m: range_of(m).high, pl.Float64))
    below = joined.filter(pl.col("lo") < pl.col("low"))
    assert below.height >= 10 and (below["lo_cut"] == below["low"]).all()
    inside = joined.filter(pl.col("lo") >= pl.col("low"))
    assert np.allclose(inside["lo_cut"], inside["lo"], rtol=1e-12, equal_nan=True)
    assert np.allclose(joined["hi_cut"].clip(upper_bound=1e300),
                       joined["hi"].clip(upper_bound=joined["high"]).clip(upper_bound=1e300),
                       rtol=1e-12, equal_nan=True)
    # the rare event a headline figure reports, cut at 0 on the policy's arm
    m = joined.filter((pl.col("arm") == "essay")
                      & (pl.col("metric") == "penalties.misattributed_per_100k"))
    assert m["lo"][0] < 0 and m["lo_cut"][0] == 0.0
    # effects are differences: at least one keeps a negative bound
    e = compared.effects().filter(pl.col("metric").str.starts_with("effects."))
    assert (e["lo"] < 0).any()
    # the dashboard reads the same folder and cuts the same way
    loaded = LoadedEnsemble("c", compared.out, compared.plan, compared.table())
    web = loaded.summary()
    _check(web)
    assert_frame_equal(web.sort(["arm", "metric"]), summary.sort(["arm", "metric"]),
                       check_exact=False, rel_tol=1e-12)


def test_the_dashboards_ensemble_comparison_cuts_each_side(compared):
    from metricpower.web.ensembles import LoadedEnsemble, compare

    loaded = LoadedEnsemble("c", compared.out, compared.plan, compared.table())
    rows = compare(loaded, 0, loaded, 1).rows
    assert rows["paired"].all()
    for side in ("a", "b"):
        _check(rows.select("metric", mean=f"mean_{side}", lo=f"lo_{side}", hi=f"hi_{side}"))
    m = rows.filter(pl.col("metric") == "penalties.misattributed_per_100k")
    assert m["lo_a"][0] == 0.0


def test_the_report_and_pages_say_how_intervals_are_made(compared):
    from metricpower.report.ensemble import interval
    from metricpower.web.ensembles import LoadedEnsemble
    from metricpower.web.pages import ensemble_page

    html = (compared.out / "report.html").read_text()
    assert esc(INTERVAL) in html
    row = compared.summary().filter((pl.col("arm") == "essay") & (
        pl.col("metric") == "penalties.misattributed_per_100k")).row(0, named=True)
    key = "penalties.misattributed_per_100k"
    assert interval(key, row["mean"], row["lo"], row["hi"]).split("[")[1].startswith("0,")
    assert interval(key, row["mean"], row["lo"], row["hi"]) in html
    # A share is written as a percentage, as the dashboard writes it.
    share = compared.summary().filter((pl.col("arm") == "essay") & (
        pl.col("metric") == "penalties.benign_context_share")).row(0, named=True)
    shown = interval("penalties.benign_context_share", share["mean"], share["lo"], share["hi"])
    assert shown.count("%") == 3 and shown in html, shown
    loaded = LoadedEnsemble("c", compared.out, compared.plan, compared.table())
    page = ensemble_page(loaded, loaded.summary(), compared.effects())
    assert esc(INTERVAL) in page
    shown = next(tr for tr in page.split("<tr>")
                 if esc(metric_label("penalties.misattributed_per_100k")) in tr)
    assert "[0 to " in shown and "[−" not in shown
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert INTERVAL in " ".join(readme.split())
