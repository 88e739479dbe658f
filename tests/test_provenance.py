"""The essay preset against its sources: provenance labels, the court list as the court
list, `--only documented`, and the null baseline's economy."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import responses_off, run_preset, scenario
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.compare import check_comparable, null_of
from metricpower.runs import simulate
from metricpower.scenario import load_preset, load_scenario
from metricpower.scenario.load import merge
from metricpower.scenario.only import lists_read, only
from metricpower.scenario.schema import PROVENANCE, Responses


@pytest.fixture(scope="module")
def essay():
    return load_preset("essay")


def named(items):
    return {x.name: x for x in items}


def test_labels_say_what_the_sources_say(essay):
    rules, cons = named(essay.rules), named(essay.consequences)
    # Values and mechanics that no source gives are not "documented".
    for name in ("dog_off_leash", "crime", "charity"):
        assert rules[name].provenance == "partly", name
    assert rules["restoration"].provenance == "hypothetical"
    for name in ("fast_travel", "school_ban"):
        assert cons[name].provenance == "partly", name
    # Every documented item names its source.
    for item in [*essay.rules, *essay.lists, *essay.consequences]:
        assert item.provenance in PROVENANCE
        assert item.source, item.name
    for name in Responses.model_fields:
        spec = getattr(essay.responses, name)
        assert spec.provenance in PROVENANCE and spec.source, name


def test_bans_reach_what_the_court_list_bans(essay):
    cons, services = named(essay.consequences), named(essay.services)
    # The train ban blocks G-class and first-class tickets, a service of their own.
    assert cons["train_ban"].service == "high_speed_trains"
    assert {"trains", "high_speed_trains"} <= set(services)
    assert not [c for c in essay.consequences
                if c.service == "trains" and c.provenance == "documented"]
    # The job ban follows the list only: no source bans a low tier from jobs.
    assert cons["job_ban"].when == "on_list('blacklist')"


def test_civil_fraud_rate_is_the_documented_inflow(essay):
    """2.457M newly listed in 2024 of ~1.41B: 0.17% a year. The preset's observed rate
    before deterrence is within a factor 1.5 of it; the stock (~1%) would be 6 times."""
    b = named(essay.behaviours)["civil_fraud"]
    court = named(essay.sensors)["court_records"]
    per_year = b.rate * 365 * court.detection * court.coverage.urban
    assert 0.0017 / 1.5 < per_year < 0.0017 * 1.5


def test_school_priority_is_reachable():
    """The reward was on AAA, which nobody reaches in 800 days; now it is granted. At
    20,000 citizens a year grants it about five times (at 5,000, about once: some seeds
    grant it to nobody)."""
    run = run_preset("essay", merge(responses_off(), {}), citizens=20_000, days=365)
    applied = pc.sum(pc.filter(run.tables["consequences"], pc.equal(
        run.tables["consequences"]["consequence"], "school_priority"))["applied"]).as_py()
    assert applied > 0


# ---------------------------------------------------------------- the court list
def test_blacklist_reads_only_its_grounds(essay):
    spec = named(essay.lists)["blacklist"]
    assert spec.min_days == 0
    assert "score" not in spec.exit and "tier" not in spec.enter
    windows = essay.windows()
    assert ("civil_fraud", 1) in windows and ("debt_payment", 1) in windows
    assert ("civil_fraud", 730) in windows  # expiry two years after the listing ground


LISTINGS = {"behaviours": [{"name": "civil_fraud", "rate": 0.0002}]}


def listed(run):
    c = run.tables["citizens"]
    on = c["on_blacklist"].to_numpy()
    ever = on | (c["days_on_blacklist"].to_numpy() > 0)
    return on, ever, c["income"].to_numpy()


def test_the_court_list_can_be_left_and_payers_leave_first():
    """Deletion on payment, a behaviour whose rate rises with income: in a year, people
    leave the list, and those who left are richer than those still on it."""
    run = run_preset("essay", merge(responses_off(), LISTINGS), citizens=4_000, days=365)
    daily = run.tables["daily"]
    entered, left = (pc.sum(daily[c]).as_py() for c in ("entered_blacklist",
                                                         "left_blacklist"))
    assert entered > 100 and left > 20, (entered, left)
    on, ever, income = listed(run)
    gone = ever & ~on
    assert 0.9 * left <= gone.sum() <= left  # some left and were listed again
    assert income[gone].mean() > 1.2 * income[on].mean()


def test_unpaid_listings_expire_after_the_term():
    """Nobody pays: listings end only by expiry, `term` days after the listing ground."""
    term = 60
    spec = {"lists": [{"name": "blacklist",
                       "exit": f"count('debt_payment', 1) > 0 or count('civil_fraud', {term}) "
                               "== 0"}],
            "behaviours": [{"name": "debt_payment", "rate": 0.0}]}
    run = run_preset("essay", merge(merge(responses_off(), LISTINGS), spec),
                     citizens=3_000, days=200)
    daily = run.tables["daily"]
    entered = np.cumsum(daily["entered_blacklist"].to_numpy())
    left = np.cumsum(daily["left_blacklist"].to_numpy())
    assert left[-1] > 20
    assert (left[:term] == 0).all()
    assert (left[term:] <= entered[:-term]).all()


# ---------------------------------------------------------------- --only documented
def test_only_documented_keeps_documented_mechanics_and_says_what_it_dropped(essay):
    doc, dropped = only(essay, "documented")
    for item in [*doc.rules, *doc.lists, *doc.consequences]:
        assert item.provenance == "documented", item.name
    for name in Responses.model_fields:
        spec = getattr(doc.responses, name)
        assert not getattr(spec, "enabled", False) and not getattr(spec, "refusal", 0)
    kept = {x.name for x in [*doc.rules, *doc.lists, *doc.consequences]}
    for item in [*essay.rules, *essay.lists, *essay.consequences]:
        said = any(d.startswith(f"{f}.{item.name}:") for d in dropped
                   for f in ("rules", "lists", "consequences"))
        assert (item.name in kept) != said, item.name
    assert "rules.restoration: hypothetical" in dropped
    assert "responses.deterrence: hypothetical" in dropped
    assert {"flight_ban", "train_ban", "late_repayment", "blacklist"} <= kept
    check_comparable(essay, doc)
    # `partly` keeps the partly documented too, `hypothetical` everything
    partly, _ = only(essay, "partly")
    assert "dog_off_leash" in named(partly.rules) and "dog_off_leash" not in named(doc.rules)
    everything, none = only(essay, "hypothetical")
    assert none == [] and everything.rules == essay.rules


def test_only_drops_what_reads_a_dropped_list(essay, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('preset = "essay"\n[[lists]]\nname = "redlist"\n'
                    'provenance = "hypothetical"\n')
    sc = load_scenario(path)
    reads = lists_read(sc)
    readers = {w for w, lists in reads.items() if "redlist" in lists}
    assert readers  # fast_travel and cheap_credit read it
    doc, dropped = only(sc, "documented")
    assert "lists.redlist: hypothetical" in dropped
    assert "consequences.cheap_credit: reads the dropped list redlist" in dropped
    assert "cheap_credit" not in named(doc.consequences)
    with pytest.raises(ValueError, match="unknown provenance"):
        only(sc, "rumoured")


def test_documented_part_runs_on_the_same_draws_and_does_less():
    full = scenario("essay", responses_off())
    doc, _ = only(full, "documented")
    a, b = simulate(full), simulate(doc)
    # Same acts (responses off: occurrences depend on the seed only) ...
    assert pc.sum(a.tables["daily"]["occurrences"]).as_py() == pc.sum(
        b.tables["daily"]["occurrences"]).as_py()
    # ... fewer of them scored: the partly documented, reported and hypothetical rules
    # (jaywalking, dogs, games, friends) add penalties.
    assert a.metrics["penalties"]["total"] > 2 * b.metrics["penalties"]["total"] > 0


def test_cli_run_and_compare_only(tmp_path):
    runner = CliRunner()
    size = ["--citizens", "400", "--days", "20"]
    res = runner.invoke(app, ["run", "--preset", "essay", "--only", "documented", *size,
                              "--no-report", "--out", str(tmp_path / "doc")])
    assert res.exit_code == 0, res.output
    assert "dropped" in res.output and "rules.restoration: hypothetical" in res.output
    written = load_scenario(tmp_path / "doc" / "scenario.toml")
    assert {r.provenance for r in written.rules} == {"documented"}
    res = runner.invoke(app, ["compare", "essay", str(tmp_path / "doc"), "--out",
                              str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", "--only", "rumoured", *size, "--out",
                              str(tmp_path / "x")])
    assert res.exit_code == 2 and "--only" in res.output and not (tmp_path / "x").exists()


# ---------------------------------------------------------------- the null baseline
def test_null_keeps_the_populations_economy(essay):
    null = null_of(essay)
    assert null.responses.economy == essay.responses.economy
    assert not null.responses.deterrence.enabled and not null.responses.appeals.enabled
    run = simulate(null_of(scenario("essay")))
    # Charity still costs money: mean income moves though no policy does anything.
    daily = run.tables["daily"]["mean_income"].to_numpy()
    assert daily[-1] < daily[0]
    assert load_preset("null").responses.economy.enabled


def test_explain_shows_a_list_left(tmp_path):
    run = run_preset("essay", merge(responses_off(), LISTINGS), citizens=4_000, days=365)
    on, ever, _ = listed(run)
    citizen = int(np.flatnonzero(ever & ~on)[0])
    run.write(tmp_path / "run", report=False)
    res = CliRunner().invoke(app, ["explain", str(tmp_path / "run"), str(citizen)],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    days = run.tables["citizens"]["days_on_blacklist"][citizen].as_py()
    assert "lists left" in res.output and f"blacklist ({days} days listed)" in res.output


def test_headline_shares_are_findings():
    """The share of life under a rule and the share of decisions that consulted the score
    were 1.0 by construction; what is reported now depends on what happened. At 10,000
    citizens a decision the score changed happens in 90 days (at 3,000, not on every
    seed)."""
    from metricpower.metrics import summary

    s = summary(run_preset("essay", citizens=10_000))
    lim, auth = s["limits"], s["authority"]
    assert "occurrence_share_under_rule" not in lim and "gated_share" not in auth
    assert 0 < lim["acts_scored_share"] < 0.5
    assert 0 < lim["lawful_acts_penalised_share"] < lim["acts_scored_share"]
    assert 0 < auth["changed_share"] < 0.01 and auth["changed"] > 0
