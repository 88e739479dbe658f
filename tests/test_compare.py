"""`compare`: two policies on one population with common random numbers."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.compare import NotComparable, check_comparable, compare, null_of
from metricpower.metrics import frame
from metricpower.runs import simulate
from metricpower.scenario import load_preset


@pytest.fixture(scope="module")
def essay_vs_null(essay_run, null_run):
    return compare(essay_run, null_run)


def sanction_counts(run) -> dict[str, int]:
    cons = frame(run.tables["consequences"]).filter(pl.col("sanction"))
    agg = cons.group_by("consequence").agg(pl.col("applied").sum())
    return dict(zip(agg["consequence"], agg["applied"], strict=True))


def test_null_sanctions_are_zero_and_the_difference_is_the_essay_count(
        essay_vs_null, essay_run):
    e = essay_vs_null.effects
    counts = sanction_counts(essay_run)
    assert counts and sum(counts.values()) > 0
    assert set(e["sanctions"]) == set(counts)
    for name, eff in e["sanctions"].items():
        assert eff["b"] == 0, name
        assert eff["a"] == counts[name], name
        assert eff["difference"] == counts[name], name
    total = essay_run.metrics["sanctions_total"]
    assert e["sanctions_total"] == {"a": total, "b": 0, "difference": total}
    for key, value in (("penalties", essay_run.metrics["penalties"]["total"]),
                       ("misattributed_penalties",
                        essay_run.metrics["penalties"]["misattributed"])):
        assert e[key]["b"] == 0 and e[key]["difference"] == value
    assert e["citizens_sanctioned"]["b"] == 0
    assert e["wrongful_sanctions"]["b"] == 0
    # every sanction count in the metric rows of the null run is zero too
    rows = essay_vs_null.rows
    applied = rows.filter(pl.col("metric").str.starts_with("applied."))
    sanctions = {c.name for c in essay_run.scenario.consequences if c.is_sanction}
    for r in applied.iter_rows(named=True):
        if r["metric"].split(".", 1)[1] in sanctions:
            assert r["b"] in (0, None) and r["difference"] == r["a"]


def test_common_random_numbers(essay_vs_null, essay_run, null_run):
    e = essay_vs_null.effects
    # deterrence only removes acts: the baseline did every act the policy run did, and more
    assert e["occurrences"]["b"] >= e["occurrences"]["a"]
    assert e["acts_chilled"] == e["occurrences"]["b"] - e["occurrences"]["a"]
    assert 0 <= e["lawful_acts_chilled"] <= e["acts_chilled"]
    assert e["score_gini"]["b"] == 0.0 and e["score_gini"]["difference"] > 0
    json.dumps(essay_vs_null.to_dict(), allow_nan=False)


def test_refuses_runs_that_do_not_share_population_and_seed(essay_run):
    other = simulate(load_preset("null", overrides={"run": {"citizens": 300, "days": 5,
                                                            "seed": 99}}))
    with pytest.raises(NotComparable, match="seed"):
        compare(essay_run, other)
    sc = essay_run.scenario
    changed = sc.model_copy(update={"network": sc.network.model_copy(
        update={"mean_degree": 3.0})})
    with pytest.raises(NotComparable, match="network"):
        check_comparable(sc, changed)


def test_null_of_keeps_the_world_and_drops_the_policy(essay_run):
    sc = essay_run.scenario
    null = null_of(sc)
    assert not null.rules and not null.lists and not null.consequences
    assert null.population == sc.population and null.network == sc.network
    assert null.run == sc.run and [b.name for b in null.behaviours] == [
        b.name for b in sc.behaviours]
    # what only the listed do cannot happen with no lists; everything else is unchanged
    for b, was in zip(null.behaviours, sc.behaviours, strict=True):
        assert b == (was.model_copy(update={"when": "False"})
                     if was.when and "on_list(" in was.when else was)
    check_comparable(sc, null)


def test_cli_compare_and_refusal(tmp_path):
    runner = CliRunner()
    size = ["--citizens", "400", "--days", "20"]
    res = runner.invoke(app, ["compare", "essay", "null", *size, "--out",
                              str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cmp" / "comparison.html").is_file()
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert all(v["b"] == 0 for v in data["effects"]["sanctions"].values())
    res = runner.invoke(app, ["compare", "--preset-a", "essay", "--preset-b", "null", *size,
                              "--out", str(tmp_path / "cmp2.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "cmp2.html").is_file() and (tmp_path / "cmp2.json").is_file()
    for seed, name in ((1, "a"), (2, "b")):
        assert runner.invoke(app, ["run", "--preset", "null", "--citizens", "300", "--days",
                                   "5", "--seed", str(seed), "--no-report", "--out",
                                   str(tmp_path / name)]).exit_code == 0
    res = runner.invoke(app, ["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                              str(tmp_path / "ab")])
    assert res.exit_code == 2
    assert "seed (1 vs 2)" in res.output and "common random numbers" in res.output
    assert not (tmp_path / "ab").exists()
    res = runner.invoke(app, ["compare", "essay", "no-such-thing"])
    assert res.exit_code == 2 and "not a run directory" in res.output


def test_comparison_from_stored_summaries_equals_one_measured_again(tmp_path):
    """A comparison reads each run's summary from metrics.json (computed once by
    `simulate`) and measures only chilling against the baseline; its rows and effects equal
    those of a comparison that measures both runs again from every table, after the runs
    went through their directories (JSON and Parquet)."""
    from metricpower.compare import compare_runs
    from metricpower.metrics import measure, summary
    from metricpower.runs import Run, load_run

    sc = load_preset("essay", {"run": {"citizens": 800, "days": 40, "seed": 5}})
    simulate(sc).write(tmp_path / "a", report=False)
    simulate(null_of(sc)).write(tmp_path / "b", report=False)
    a, b = load_run(tmp_path / "a"), load_run(tmp_path / "b")
    fast = compare_runs(a, b, "a", "b")
    # the same runs without their stored summaries: everything measured from the tables
    bare_a, bare_b = (Run(r.scenario, r.tables, {}) for r in (a, b))
    slow = compare_runs(bare_a, bare_b, "a", "b")
    assert fast.rows.equals(slow.rows, null_equal=True)
    assert fast.effects == slow.effects
    assert fast.summary_a == summary(bare_a, measure(bare_a, baseline=bare_b))
    # chilling is the counterfactual one: B's acts minus A's (a baseline with 1,000 more
    # acts of one behaviour on day 0 gives 1,000 more chilled)
    from metricpower.compare import summary_against

    col = "occurrences_jaywalking"
    daily = b.tables["daily"]
    more = daily.set_column(daily.column_names.index(col), col, pa.array(
        [v + (1000 if i == 0 else 0) for i, v in enumerate(daily[col].to_pylist())]))
    shifted = Run(b.scenario, {**b.tables, "daily": more}, b.metrics)
    chilled = fast.summary_a["intensification"]["chilled"]["jaywalking"]
    assert chilled == (sum(b.tables["daily"][col].to_pylist())
                       - sum(a.tables["daily"][col].to_pylist()))
    assert summary_against(a, shifted)["intensification"]["chilled"]["jaywalking"] == \
        chilled + 1000
