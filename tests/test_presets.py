"""The shipped presets: each validates and runs at a small size; the documented pilots
carry what DOMAIN-FACTS.md says they do, each rule with its provenance and source; the
court list's dated changes switch on at their dates; fitted values are in the preset."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from metricpower.calibrate import load_spec
from metricpower.runs import simulate
from metricpower.scenario import load_preset, preset_names, preset_text
from metricpower.scenario.load import _line_of

DOCUMENTED = ("court_blacklist", "rongcheng", "weihai", "sesame_like")


def test_documented_presets_ship():
    assert set(DOCUMENTED) <= set(preset_names())


@pytest.mark.parametrize("name", DOCUMENTED)
def test_preset_runs_small(name):
    sc = load_preset(name, {"run": {"citizens": 1500, "days": 60}})
    run = simulate(sc)
    assert run.daily.num_rows == 60
    assert run.citizens.num_rows == 1500


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_rule_says_where_it_comes_from(name):
    sc = load_preset(name)
    for item in [*sc.rules, *sc.lists, *sc.consequences, *sc.changes]:
        assert item.provenance in ("documented", "reported", "hypothetical")
        assert item.source.strip(), f"{name}: {item.name} has no source"


def test_rongcheng_points_table():
    """The deductions of Rongcheng's evaluation standard, Attachment 1 (DOMAIN-FACTS)."""
    table = {"late_repayment": -10, "contract_breach": -20, "private_lending_breach": -20,
             "late_utility_fees": -20, "debt_judgment": -30, "commercial_fraud": -30,
             "illegal_fundraising": -40, "contract_judgment": -50,
             "confirmed_utility_arrears": -50, "heating_tampering": -50, "utility_theft": -60,
             "utility_vandalism": -100}
    sc = load_preset("rongcheng")
    documented = {r.name: r.points for r in sc.rules if r.provenance == "documented"}
    assert documented == table
    assert {r.name: r.points for r in sc.rules if r.provenance == "reported"} == {
        "traffic_ticket": -5, "heroic_act": 30}
    assert sc.population.initial_score == 1000
    assert [t.name for t in sc.tiers] == ["AAA", "AA", "A", "B", "C", "D"]
    assert [t.min for t in sc.tiers[:-1]] == [1050, 1030, 960, 850, 600]


def test_weihai_volunteering_schedule():
    sc = load_preset("weihai")
    rule = next(r for r in sc.rules if r.name == "volunteering")
    uppers = [u for u, _ in rule.schedule]
    per_hour = [p for _, p in rule.schedule]
    assert uppers[:3] == [20, 80, 200]
    assert per_hour == pytest.approx([1.0, 0.5, 1 / 3, 0.25], rel=1e-6)
    assert [t.name for t in sc.tiers] == ["AAA", "AA", "A", "B", "C", "D"]
    perks = next(c for c in sc.consequences if c.name == "haibei_perks")
    assert perks.effect == "reward" and perks.provenance == "documented"


def test_sesame_scores_only_those_who_signed_up():
    sc = load_preset("sesame_like", {"run": {"citizens": 2000, "days": 90}})
    assert [t.min for t in sc.tiers[:-1]] == [700, 650, 600, 550]
    run = simulate(sc)
    citizens = run.polars("citizens")
    users = citizens["on_users"].to_numpy()
    assert 0.2 < users.mean() < 0.4  # 1 - exp(-0.0039 × 90) ≈ 0.30 signed up
    moved = citizens["score"].to_numpy() != sc.population.initial_score
    assert moved.sum() > 100 and not (moved & ~users).any()


def test_court_list_restrictions_and_dates():
    sc = load_preset("court_blacklist")
    assert sc.run.start == dt.date(2013, 10, 1)
    assert sc.date_of(sc.run.days - 1) == dt.date(2019, 7, 31)
    assert sc.run.represents == 1_410_000_000
    denied = {c.service for c in sc.consequences if c.effect == "deny"}
    assert {"flights", "high_speed_trains", "berths_and_cabins", "star_hotels_and_clubs",
            "property", "vehicles", "holidays", "private_schools", "premium_insurance",
            "civil_service_posts", "executive_posts", "subsidies"} == denied
    joint = ("civil_service_ban", "executive_ban", "subsidy_ban")
    before = sc.at(sc.day_of(dt.date(2015, 12, 31)))
    after = sc.at(sc.day_of(dt.date(2016, 1, 1)))
    for c in before.consequences:
        assert (c.when == "False") == (c.name in joint)
    assert all(c.when == "on_list('court_list')" for c in after.consequences
               if c.effect == "deny")


def test_court_list_deletes_on_payment():
    """With payment switched off, nobody listed for refusing to pay ever leaves; with it
    on, people leave, and the list is smaller by about those who left."""
    small = {"run": {"citizens": 3000, "days": 200},
             "sensors": [{"name": "court_list_feed", "detection": 1.0}],
             "behaviours": [{"name": "refuses_to_pay", "rate": 0.0005},
                            {"name": "obstructs_enforcement", "rate": 0.0}]}
    never = simulate(load_preset("court_blacklist", small | {"behaviours": [
        *small["behaviours"], {"name": "pays_debt", "rate": 0.0}]})).polars("daily")
    paying = simulate(load_preset("court_blacklist", small | {"behaviours": [
        *small["behaviours"], {"name": "pays_debt", "rate": 0.01}]})).polars("daily")
    assert never["left_court_list"].sum() == 0
    left = paying["left_court_list"].sum()
    assert left > 50
    # The same listings (common random numbers): the difference is who paid.
    assert np.array_equal(never["entered_court_list"].cum_sum()[-1:],
                          never["list_court_list"][-1:])
    assert never["list_court_list"][-1] - paying["list_court_list"][-1] == left - (
        paying["entered_court_list"].sum() - never["entered_court_list"].sum())


def test_fitted_values_are_in_the_preset():
    """`calibrate --save` writes each free parameter on its own line with a `# fitted`
    note, so `run --preset court_blacklist` uses the fitted values."""
    spec, _ = load_spec("court_blacklist")
    text = preset_text("court_blacklist")
    lines = text.splitlines()
    sc = load_preset("court_blacklist")
    data = sc.model_dump()
    for p in spec.parameters:
        field, name, key = p.key.split(".")
        i = next(i for i, e in enumerate(data[field]) if e["name"] == name)
        line = lines[_line_of(f"{field}[{i}].{key}", text) - 1]
        assert "# fitted (" in line, line
        assert p.low <= data[field][i][key] <= p.high
