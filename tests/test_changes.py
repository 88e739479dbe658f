"""Dated changes (a parameter, rule or consequence that changes on a calendar date) and
national scale by sampling.

A change is checked like every other key: one message naming the file, the key inside
the change and its line. Its effect starts on its date and not a day before: two runs
that differ only by a change share every row before it (common random numbers).
"""

from __future__ import annotations

import datetime as dt
import math
import pickle

import numpy as np
import pyarrow.compute as pc
import pytest

from metricpower.checkpoints import dumps
from metricpower.engine import Engine
from metricpower.engine.stages.appeals import Appeals
from metricpower.engine.stages.categorise import Categorise
from metricpower.engine.stages.consequences import Consequences
from metricpower.engine.stages.predict import Predict
from metricpower.metrics import scale_count
from metricpower.population import make_citizens, make_network
from metricpower.report import render_report
from metricpower.runs import _tables, simulate
from metricpower.scenario import ScenarioError, load_scenario

#: The court list preset, small and fast, with listings and flights frequent enough that
#: every day sees some; its own dated changes dropped so each test writes its own.
BASE = """\
preset = "court_blacklist"
drop = {{changes = ["courts_feed_the_list", "joint_punishment"]}}

[run]
citizens = 2000
days = 100
start = 2020-01-01
seed = 5

[[behaviours]]
name = "refuses_to_pay"
rate = 0.002

[[services]]
name = "flights"
demand = 0.05

[[consequences]]
name = "flight_ban"
when = "False"
{changes}"""

SWITCH_ON = """
[[changes]]
name = "flight_ban_starts"
date = 2020-02-20
provenance = "documented"
consequences = [
    {{ name = "flight_ban", when = "on_list('court_list')" }},{extra}
]
"""


def scenario(tmp_path, changes: str = "", name: str = "s.toml"):
    path = tmp_path / name
    path.write_text(BASE.format(changes=changes))
    return load_scenario(path)


def error(tmp_path, changes: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        scenario(tmp_path, changes)
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_segments_and_dates(tmp_path):
    sc = scenario(tmp_path, SWITCH_ON.format(extra=""))
    (d0, first), (d1, second) = sc.segments()
    assert (d0, d1) == (0, 50)  # 2020-02-20 is day 50 of a run from 2020-01-01
    assert first.consequences[0].when == "False"
    assert second.consequences[0].when == "on_list('court_list')"
    assert sc.at(49) is first and sc.at(50) is second and sc.at(99) is second
    assert sc.day_of(dt.date(2020, 2, 20)) == 50 and sc.date_of(50) == dt.date(2020, 2, 20)
    # Without changes the scenario is its own single segment.
    plain = scenario(tmp_path)
    assert plain.segments() == [(0, plain)]


def test_switching_a_consequence_on_changes_the_days_from_its_date_only(tmp_path):
    never = simulate(scenario(tmp_path)).polars("daily")
    switched = simulate(scenario(tmp_path, SWITCH_ON.format(extra=""), "b.toml")).polars("daily")
    before, after = switched.filter(switched["day"] < 50), switched.filter(switched["day"] >= 50)
    # Identical days before the date, every column.
    assert before.equals(never.filter(never["day"] < 50))
    assert before["applied_flight_ban"].sum() == 0
    assert after["applied_flight_ban"].sum() > 20
    assert (never["applied_flight_ban"] == 0).all()
    # Attempts do not depend on the policy: the same draws on every day.
    assert switched["attempts_flights"].equals(never["attempts_flights"])


def test_a_rate_change_moves_occurrences_from_its_date(tmp_path):
    change = """
[[changes]]
name = "more_refusals"
date = 2020-03-01
behaviours = [{ name = "refuses_to_pay", rate = 0.006 }]
"""
    base = simulate(scenario(tmp_path)).polars("daily")
    more = simulate(scenario(tmp_path, change, "b.toml")).polars("daily")
    day = 60
    col = "occurrences_refuses_to_pay"
    assert more[col][:day].equals(base[col][:day])
    # Three times the rate: about three times the acts (2,000 × 0.006 × 40 days ≈ 480).
    ratio = more[col][day:].sum() / base[col][day:].sum()
    assert 2.5 < ratio < 3.5


def test_change_before_start_is_in_force_from_day_zero(tmp_path):
    early = SWITCH_ON.format(extra="").replace("2020-02-20", "2019-06-01")
    sc = scenario(tmp_path, early)
    assert [d for d, _ in sc.segments()] == [0]
    assert sc.at(0).consequences[0].when == "on_list('court_list')"


@pytest.mark.parametrize(("changes", "key", "needle", "words"), [
    (SWITCH_ON.format(extra="\n    { name = \"moon_ban\", when = \"True\" },"),
     "changes[0].consequences[1].name", "moon_ban", "moon_ban"),
    (SWITCH_ON.format(extra="").replace("on_list('court_list')", "on_list('court')"),
     "changes[0].consequences[0].when", "{ name = \"flight_ban\"", "court"),
    ("\n[[changes]]\nname = \"c\"\ndate = 2020-02-01\n"
     "behaviours = [\n    { name = \"pays_debt\", rate = -1 },\n]\n",
     "changes[0].behaviours[0].rate", "{ name = \"pays_debt\"", "greater than or equal"),
    ("\n[[changes]]\nname = \"c\"\ndate = 2020-02-01\npopulation = { pet_owner = 0.5 }\n",
     "changes[0].population", "population = ", "may set only"),
    ("\n[[changes]]\nname = \"c\"\ndate = 2020-02-30\n",
     "changes[0].date", "date = 2020-02-30", ""),
])
def test_bad_changes_name_the_key_and_line(tmp_path, changes, key, needle, words):
    if "2020-02-30" in changes:  # not a date at all: the TOML parser says so, with line
        err = error(tmp_path, changes)
        assert err.line == line_of(BASE.format(changes=changes), needle)
        return
    err = error(tmp_path, changes)
    assert err.key == key, err
    assert err.line == line_of(BASE.format(changes=changes), needle), err
    assert words in err.message


def test_changes_need_a_start_date(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(BASE.format(changes=SWITCH_ON.format(extra="")))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, {"run": {"start": None}})
    assert info.value.key == "changes" and "run.start" in info.value.message


@pytest.mark.parametrize(("setting", "key"), [
    ("appeals = { enabled = true }", "appeals.enabled"),
    ("prediction = { horizon = 30 }", "prediction.horizon"),
    ("labelling = { services = ['flights'] }", "labelling.services"),
])
def test_changes_may_not_move_what_the_run_keeps(tmp_path, setting, key):
    err = error(tmp_path, "\n[[changes]]\nname = \"c\"\ndate = 2020-02-01\n"
                          f"responses = {{ {setting} }}\n")
    assert err.key == f"changes[0].responses.{key}", err


# ---------------------------------------------------------------- the engine hook
#: The essay's system with every stage and response on (appeals, risk model, association,
#: economy, labelling, deterrence), small, its risk model refit often enough and its
#: bottom wide enough that it flags within the run; {changes} on day 45.
#: Seed 4: one on which, by the change's day (45), someone is listed, consequences have
#: struck and appeals wait, and the list is not empty at the end, so that the stages have
#: something to carry over the change (at 3,000 citizens some seeds have no listing yet).
ESSAY = """\
preset = "essay"
bottom_tier = "B"

[run]
citizens = 3000
days = 100
start = 2020-01-01
seed = 4

[responses.prediction]
every = 10
horizon = 20
threshold = 0.02
{changes}"""


def essay(tmp_path, changes: str = "", name: str = "e.toml"):
    path = tmp_path / name
    path.write_text(ESSAY.format(changes=changes))
    return load_scenario(path)


#: A change that names an entry and sets nothing: the engine rebuilds every stage on
#: its day all the same.
NOTHING = """
[[changes]]
name = "nothing"
date = 2020-02-15
rules = [{ name = "jaywalking" }]
"""


def test_a_change_of_nothing_leaves_every_table_as_it_was(tmp_path):
    """Rebuilding the stages at a change keeps everything the run has done: every table
    is the same as without the change, to the last cell."""
    sc = essay(tmp_path, NOTHING, "b.toml")
    assert [d for d, _ in sc.segments()] == [0, 45]
    plain, rebuilt = simulate(essay(tmp_path)), simulate(sc)
    assert plain.daily["list_blacklist"][-1].as_py() > 0
    assert int(pc.sum(plain.daily["appeals_upheld"]).as_py()) > 0
    for name, table in plain.tables.items():
        assert rebuilt.tables[name].equals(table), name


@pytest.mark.parametrize(("stage", "column"), [
    (Categorise, "list_blacklist"),
    (Appeals, "appeals_waiting"),
    (Consequences, None),
    (Predict, "flagged"),
])
def test_a_stage_that_forgets_what_it_keeps_is_caught(tmp_path, monkeypatch, stage, column):
    """Power of the test above: a stage that carried nothing over the change (its list
    sizes, appeal queue, totals or risk model started again) changes the tables."""
    monkeypatch.setattr(stage, "carries", ())
    plain, rebuilt = simulate(essay(tmp_path)), simulate(essay(tmp_path, NOTHING, "b.toml"))
    if column is None:  # the totals by consequence and group
        assert not rebuilt.tables["consequences"].equals(plain.tables["consequences"])
    else:
        assert rebuilt.daily[column].to_pylist() != plain.daily[column].to_pylist()


def test_a_condition_set_by_a_change_counts_what_was_seen_before_it(tmp_path):
    """A list entered on a count of the last 20 days, set on day 45: its first day lists
    everyone seen in the 20 days before (the sensors' record), not only those seen that
    day, so it takes in several times the next day's entries."""
    change = """
[[changes]]
name = "jaywalkers_listed"
date = 2020-02-15
lists = [{ name = "redlist", enter = "count('jaywalking', 20) > 0" }]
"""
    daily = simulate(essay(tmp_path, change)).polars("daily")
    entered = daily["entered_redlist"]
    seen = daily["observed"]
    assert entered[45] > 5 * max(entered[46], 1), entered[40:50].to_list()
    assert seen[45] > 0


# ---------------------------------------------------------------- scaling
def test_scale_count_by_hand():
    listed = scale_count(100, 10_000, 1_000_000, "citizens")
    assert listed["scaled"] == 10_000 and listed["error"] == "binomial"
    assert listed["se"] == pytest.approx(100 * math.sqrt(100 * 0.99))
    events = scale_count(100, 10_000, 1_000_000, "events")
    assert events["se"] == pytest.approx(1_000) and events["error"] == "poisson"


@pytest.mark.parametrize("kind", ["citizens", "events"])
def test_sampling_error_covers_the_population_value(kind):
    """95% intervals from one sample of N out of P cover the population's count about
    95% of the time. Power: with the standard error halved, coverage falls to about 68%,
    far outside the accepted 92-98% band (2,000 draws: coverage sd ≈ 0.5%)."""
    rng = np.random.default_rng(11)
    n, big, share = 5_000, 1_000_000_000, 0.01
    truth = share * big
    k = rng.binomial(n, share, 2_000) if kind == "citizens" else rng.poisson(n * share, 2_000)
    for shrink, (low, high) in ((1.0, (0.92, 0.98)), (0.5, (0.60, 0.76))):
        cover = np.mean([abs(s["scaled"] - truth) <= 1.96 * shrink * s["se"]
                         for s in (scale_count(int(c), n, big, kind) for c in k)])
        assert low <= cover <= high, (shrink, cover)


def test_run_reports_scaled_counts(tmp_path):
    sc = scenario(tmp_path, SWITCH_ON.format(extra=""))
    run = simulate(sc)
    scaled = run.metrics["scaled"]
    factor = 1_410_000_000 / 2000
    assert scaled["factor"] == pytest.approx(factor)
    listed = run.daily["list_court_list"][-1].as_py()
    assert listed > 0
    assert scaled["list_sizes"]["court_list"]["scaled"] == pytest.approx(listed * factor)
    blocked = int(pc.sum(run.daily["applied_flight_ban"]).as_py())
    assert scaled["consequences_applied"]["flight_ban"]["scaled"] == pytest.approx(
        blocked * factor)
    assert scaled["consequences_applied"]["flight_ban"]["se"] == pytest.approx(
        factor * math.sqrt(blocked))
    # The report's section says so, with the scaled list size as it shows numbers.
    html = render_report(run)
    section = html[html.index('<section id="scaled"'):]
    assert "stands for a population of 1,410,000,000" in section
    assert f"{round(listed * factor):,}" in section
    # Without `represents`, nothing is scaled.
    alone = simulate(load_scenario(tmp_path / "s.toml", {"run": {"represents": None}}))
    assert "scaled" not in alone.metrics
    assert 'id="scaled"' not in render_report(alone)


def test_a_run_resumed_after_a_change_goes_on_under_it(tmp_path):
    """A checkpoint taken after a change's day is resumed under the changed parameters:
    the resumed run writes the uninterrupted run's tables (without taking the change up
    again it would go on at the old rate)."""
    change = """
[[changes]]
name = "more_jaywalking"
date = 2020-02-15
behaviours = [{ name = "jaywalking", rate = 0.02 }]
"""
    sc = essay(tmp_path, change)
    whole = simulate(sc)
    citizens = make_citizens(sc)
    engine = Engine(sc, citizens, make_network(sc, citizens))
    for day in range(61):
        engine.step(day)
    saved = pickle.loads(dumps(engine.checkpoint(60)))
    citizens = make_citizens(sc)
    resumed = Engine(sc, citizens, make_network(sc, citizens))
    resumed.run(start=resumed.resume(saved))
    assert {b.name: b.rate for b in resumed.scenario.behaviours}["jaywalking"] == 0.02
    for name, table in _tables(resumed.member(0)).items():
        assert table.equals(whole.tables[name]), name
