"""The day step, end to end: each test would fail if its feature broke.

All runs are the `essay` or `null` preset on 3,000 citizens for 90 days, seed 7 (see
conftest.py): ~1 s each. The presets as shipped have people's responses on (deterrence,
appeals, …); the tests that compare two policies event for event switch them off
(`responses_off()`), since with deterrence a harsher penalty changes what people do.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow.compute as pc
import pytest
from conftest import (
    CITIZENS,
    SEED,
    responses_off,
    run_preset,
    same_table,
    scenario,
    small,
)

from metricpower.ledger import Ledger
from metricpower.runs import TABLES, simulate
from metricpower.scenario import load_scenario
from metricpower.scenario.load import merge


def ledger_sums(run) -> np.ndarray:
    """Sum of ledger points per citizen (0 for citizens with no entries)."""
    ledger = run.tables["ledger"]
    return np.bincount(ledger["citizen"].to_numpy(), weights=ledger["points"].to_numpy(),
                       minlength=run.tables["citizens"].num_rows).astype(np.int64)


def entries(run, column: str, value: str) -> int:
    ledger = run.tables["ledger"]
    return int(pc.sum(pc.equal(ledger[column].cast("string"), value)).as_py() or 0)


def daily_total(run, column: str) -> int:
    return int(pc.sum(run.tables["daily"][column]).as_py() or 0)


# ---------------------------------------------------------------- ledger


def test_ledger_conservation_for_every_citizen(essay_run):
    citizens = essay_run.tables["citizens"]
    initial = essay_run.scenario.population.initial_score
    score = citizens["score"].to_numpy().astype(np.int64)
    assert citizens["in_ledger"].to_numpy().all()  # 3,000 citizens: everyone is kept
    assert essay_run.tables["ledger"].num_rows > 1_000  # a real test: ~5,000 entries
    assert (score != initial).sum() > CITIZENS // 4
    np.testing.assert_array_equal(initial + ledger_sums(essay_run), score)  # exactly


def test_ledger_keeps_every_kept_record_in_order_across_growth_and_a_checkpoint():
    kept = np.arange(50) % 3 != 0  # a sample: a third of the citizens not kept
    ledger = Ledger(kept, ["r0", "r1"], ["b0"], ["s0"])
    rng = np.random.default_rng(8)
    want = []
    for day in range(400):  # ~3,900 kept records: the columns grow four times
        citizen = rng.integers(0, 50, int(rng.integers(0, 30)))
        points = rng.integers(-50, 50, len(citizen))
        benign = rng.random(len(citizen)) < 0.3
        entry = ledger.append(day, citizen, day % 2, points, behaviour=0, benign=benign)
        want += [(e, day, c, day % 2, 0, -1, p, b, False, -1) for e, c, p, b in
                 zip(entry, citizen, points, benign, strict=True) if kept[c]]
        if day == 200:  # a checkpoint and a resume half way
            ledger = pickle.loads(pickle.dumps(ledger))
            assert len(ledger._columns[0]) == len(ledger)  # no room to grow is saved
    cols = ledger.columns()
    assert len(ledger) == len(want) > 3_500
    for i, name in enumerate(cols):
        assert cols[name].tolist() == [w[i] for w in want], name


def test_ledger_conservation_with_a_sample():
    share = 0.3
    run = run_preset("essay", {"run": {"ledger_sample": share}})
    citizens = run.tables["citizens"]
    kept = citizens["in_ledger"].to_numpy()
    # Binomial(3000, 0.3): sd 25 citizens; 5 sd is 125 citizens, ~0.042 of the share.
    assert abs(kept.mean() - share) < 5 * np.sqrt(share * (1 - share) / CITIZENS)
    ledger_citizens = np.unique(run.tables["ledger"]["citizen"].to_numpy())
    assert kept[ledger_citizens].all()  # nobody outside the sample has entries
    score = citizens["score"].to_numpy().astype(np.int64)
    initial = run.scenario.population.initial_score
    sums = ledger_sums(run)
    np.testing.assert_array_equal(initial + sums[kept], score[kept])
    # Aggregates still cover everyone: citizens outside the sample were scored too.
    assert (score[~kept] != initial).sum() > 0.25 * (~kept).sum()
    # ... and the sample does not change the run itself.
    full = run_preset("essay")
    np.testing.assert_array_equal(score, full.tables["citizens"]["score"].to_numpy())


# ---------------------------------------------------------------- reproducibility


def test_same_scenario_and_seed_give_identical_tables():
    sc = scenario("essay")
    first, second = simulate(sc), simulate(sc)
    assert set(first.tables) == set(TABLES)
    for name in TABLES:
        assert same_table(first.tables[name], second.tables[name]), name
    assert json.dumps(first.metrics, sort_keys=True) == json.dumps(second.metrics,
                                                                   sort_keys=True)


def test_different_seed_gives_different_tables(essay_run):
    other = run_preset("essay", seed=SEED + 1)
    for name in ("daily", "citizens", "ledger"):
        assert not same_table(essay_run.tables[name], other.tables[name]), name
    # Different at every level, not only in one column.
    assert not np.array_equal(essay_run.tables["citizens"]["conduct"].to_numpy(),
                              other.tables["citizens"]["conduct"].to_numpy())
    assert not np.array_equal(essay_run.tables["daily"]["occurrences"].to_numpy(),
                              other.tables["daily"]["occurrences"].to_numpy())


# ---------------------------------------------------------------- the null policy


def test_null_preset_changes_nothing(null_run):
    citizens = null_run.tables["citizens"]
    assert null_run.tables["ledger"].num_rows == 0
    assert (citizens["score"].to_numpy() == null_run.scenario.population.initial_score).all()
    assert int(pc.sum(citizens["sanctions"]).as_py()) == 0
    assert int(pc.sum(citizens["rewards"]).as_py()) == 0
    assert not citizens["pets_confiscated"].to_numpy().any()
    assert null_run.metrics["sanctions_total"] == 0 and null_run.metrics["rewards_total"] == 0
    assert daily_total(null_run, "penalties") == 0
    assert daily_total(null_run, "reward_events") == 0
    # The world still happens: citizens act, sensors see, and they use services.
    assert daily_total(null_run, "occurrences") > 10_000
    assert daily_total(null_run, "observed") > 1_000
    assert int(pc.sum(null_run.tables["services"]["attempts"]).as_py()) > 10_000
    # Nobody responds to a policy that is not there; the economy is how people live,
    # not a response: only those who gave to charity (a cost) have less income.
    responses = null_run.scenario.responses
    assert not any(getattr(responses, k).enabled
                   for k in ("deterrence", "association", "prediction", "appeals"))
    assert responses.economy.enabled
    assert (citizens["income_final"].to_numpy() <= citizens["income"].to_numpy() * 1.0001).all()
    # Acts fall away only where income drives the rate (charity's cost), none elsewhere.
    for b in null_run.scenario.behaviours:
        if "income" not in b.drivers:
            assert daily_total(null_run, f"chilled_{b.name}") == 0, b.name


def test_essay_preset_does_change_things(essay_run):
    """The counterpart of the null test, so the null test cannot pass vacuously."""
    assert essay_run.metrics["sanctions_total"] > 0
    assert daily_total(essay_run, "penalties") > 0
    assert daily_total(essay_run, "reward_events") > 0


# ---------------------------------------------------------------- policy changes


def test_raising_one_penalty_lowers_the_mean_score():
    """Responses off: with deterrence on, a harsher penalty also deters jaywalking, and
    the net effect on the mean is the essay's question, not a property to test."""
    base = run_preset("essay", responses_off())
    harsh = run_preset("essay", merge(responses_off(),
                                      {"rules": [{"name": "jaywalking", "points": -50}]}))
    assert {r.name: r.points for r in harsh.scenario.rules}["jaywalking"] == -50
    base_score = base.tables["citizens"]["score"].to_numpy().astype(np.int64)
    harsh_score = harsh.tables["citizens"]["score"].to_numpy().astype(np.int64)
    n_jaywalking = entries(base, "rule", "jaywalking")
    assert n_jaywalking > 300  # ~950 with this seed
    # Same seed, responses off: the same jaywalking penalties, each 45 points harsher.
    # Every other rule can only take more from lower scores (friends' scores, the
    # blacklist), and restoration cannot start within 90 days (it needs 180 clean days),
    # so the total falls by at least 45 points per jaywalking penalty.
    assert entries(harsh, "rule", "jaywalking") == n_jaywalking
    assert harsh_score.sum() <= base_score.sum() - 45 * n_jaywalking
    assert harsh_score.mean() < base_score.mean()


def association_rules(sc) -> list[str]:
    """Rules that judge a citizen by their friends."""
    return [r.name for r in sc.rules if r.when and "friends_" in r.when]


def test_removing_association_rules_removes_their_penalties(essay_run, tmp_path):
    names = association_rules(essay_run.scenario)
    assert names  # the essay preset has them: friends' scores and blacklisted friends
    assert sum(entries(essay_run, "rule", n) for n in names) > 0
    path = tmp_path / "no-association.toml"  # as a user would write it
    quoted = ", ".join(f'"{n}"' for n in names)
    path.write_text(f'preset = "essay"\ndrop = {{ rules = [{quoted}] }}\n')
    dropped = simulate(load_scenario(path, overrides=small()))
    assert not set(names) & {r.name for r in dropped.scenario.rules}
    assert sum(entries(dropped, "rule", n) for n in names) == 0
    assert dropped.tables["ledger"].num_rows > 0  # the other rules still score


# ---------------------------------------------------------------- sensors


def test_no_false_matches_no_misattributed_penalties(essay_run):
    off = run_preset("essay", {"sensors": [{"name": "camera", "false_match_rate": 0.0}]})
    assert not off.tables["ledger"]["misattributed"].to_numpy().any()
    assert daily_total(off, "false_matches") == 0
    assert daily_total(off, "misattributed_penalties") == 0
    assert off.metrics["penalties"]["misattributed"] == 0
    # With the preset's rate (2e-5 per citizen-day at full coverage, times group
    # multipliers averaging 3.8 and coverage ~0.5): ~10 expected over 270,000
    # citizen-days; this seed gives 12.
    on = essay_run.tables["ledger"]
    misattributed = on.filter(pc.and_(on["misattributed"], pc.less(on["points"], 0)))
    assert misattributed.num_rows > 0
    assert misattributed.num_rows == daily_total(essay_run, "misattributed_penalties")
    assert set(misattributed["sensor"].cast("string").to_pylist()) == {"camera"}
    # The same true events are seen either way (false matches come from their own stream).
    assert (off.tables["daily"]["observed"].to_pylist()
            == essay_run.tables["daily"]["observed"].to_pylist())


@pytest.mark.parametrize("sensor", ["camera", "purchase_records"])
def test_sensor_with_zero_coverage_sees_nothing(essay_run, sensor):
    assert entries(essay_run, "sensor", sensor) > 50  # it sees plenty when on (80-600)
    blind = run_preset("essay", {"sensors": [{"name": sensor,
                                              "coverage": {"urban": 0.0, "rural": 0.0}}]})
    assert entries(blind, "sensor", sensor) == 0
    assert blind.tables["ledger"].num_rows > 0  # other sensors still report


# ---------------------------------------------------------------- rules, tiers, lists


def test_caps_are_respected(essay_run):
    capped = {r.name: r.cap for r in essay_run.scenario.rules if r.cap}
    assert capped  # volunteering and charity, 50 points each
    tight = 4
    name = "volunteering"
    assert name in capped
    # Without a tight cap, some citizens earn more than `tight` from the rule ...
    per_citizen = _per_citizen(essay_run, name)
    assert np.abs(per_citizen).max() > tight
    # ... with it, nobody does, and many reach it exactly.
    run = run_preset("essay", {"rules": [{"name": name, "cap": tight}]})
    per_citizen = _per_citizen(run, name)
    assert np.abs(per_citizen).max() == tight
    assert (np.abs(per_citizen) == tight).sum() > 10
    for rule, cap in capped.items():
        assert np.abs(_per_citizen(essay_run, rule)).max() <= cap, rule


def _per_citizen(run, rule: str) -> np.ndarray:
    ledger = run.tables["ledger"]
    mine = ledger.filter(pc.equal(ledger["rule"].cast("string"), rule))
    return np.bincount(mine["citizen"].to_numpy(), weights=mine["points"].to_numpy(),
                       minlength=run.tables["citizens"].num_rows)


def test_tiers_match_score_bands(essay_run):
    sc = essay_run.scenario
    citizens = essay_run.tables["citizens"]
    score = citizens["score"].to_numpy()
    tier = np.array(citizens["tier"].cast("string").to_pylist())
    assert len(set(tier)) >= 2  # the scores spread over more than one band
    for t in sc.tiers:
        mine = score[tier == t.name]
        lo = -np.inf if t.min is None else t.min
        hi = np.inf if t.max is None else t.max
        assert ((mine >= lo) & (mine <= hi)).all(), t.name
        in_band = (score >= lo) & (score <= hi)
        assert (tier[in_band] == t.name).all(), t.name
        # The daily aggregates agree with the final table.
        assert essay_run.tables["daily"][f"tier_{t.name}"][-1].as_py() == len(mine)


#: A list that keeps people on it: entered on a low tier or an offence, left only at a
#: score of 850 after `min_days` (the essay preset's old blacklist), with offences often
#: enough that listings happen in a small run.
STICKY_LIST = {
    "lists": [{"name": "blacklist", "min_days": 730, "exit": "score >= 850",
               "enter": "tier == 'D' or count('civil_fraud', 365) > 0 "
                        "or count('crime', 365) > 0"}],
    "behaviours": [{"name": "civil_fraud", "rate": 0.00003}]}


def test_blacklist_min_days_keeps_people_listed():
    run = run_preset("essay", STICKY_LIST)
    citizens = run.tables["citizens"]
    on = citizens["on_blacklist"].to_numpy()
    score = citizens["score"].to_numpy()
    assert daily_total(run, "entered_blacklist") > 5
    assert daily_total(run, "left_blacklist") == 0
    # Listed citizens whose exit condition already holds: only min_days keeps them.
    assert (on & (score >= 850)).sum() > 0


def test_list_exit_after_min_days():
    min_days = 10
    run = run_preset("essay", merge(STICKY_LIST, {"lists": [{"name": "blacklist",
                                                              "min_days": min_days}]}))
    daily = run.tables["daily"]
    entered = np.cumsum(daily["entered_blacklist"].to_numpy())
    left = np.cumsum(daily["left_blacklist"].to_numpy())
    assert left[-1] > 0  # people do leave now (their score is >= 850)
    # Whoever leaves on day t entered on day t - min_days or before, so by any day the
    # number who have left is at most the number who had entered min_days earlier.
    assert (left[min_days:] <= entered[:-min_days]).all()
    assert (left[:min_days] == 0).all()


def test_restoration_only_after_a_clean_spell():
    """Restoration goes to citizens with no penalty in the last `clean_days` days: not to
    one penalised that very day. (Short spells so that it happens within 120 days.)"""
    clean_days = 20
    run = run_preset("essay", merge(responses_off(), {"rules": [
        {"name": "restoration", "clean_days": clean_days, "every": 10}]}),
        citizens=2_000, days=120)
    rule = {r.name: r for r in run.scenario.rules}["restoration"]
    ledger = run.tables["ledger"]
    day = ledger["day"].to_numpy().astype(np.int64)
    citizen = ledger["citizen"].to_numpy()
    points = ledger["points"].to_numpy()
    restored = np.array(ledger["rule"].cast("string").to_pylist()) == "restoration"
    assert restored.sum() > 100  # ~2,300 with this seed
    assert ((points[restored] > 0) & (points[restored] <= rule.points)).all()
    # Each restoration's citizen's last penalty on or before that day (keys sort by
    # citizen, then day; days < 1,000) must be at least `clean_days` days before it.
    key = citizen.astype(np.int64) * 1_000 + day
    penalties = np.unique(key[points < 0])
    at = key[restored]
    last = np.searchsorted(penalties, at, side="right") - 1
    found = np.where(last >= 0, penalties[np.maximum(last, 0)], -1)
    earliest_clean = citizen[restored] * 1_000 + np.maximum(day[restored] - clean_days + 1, 0)
    bad = found >= earliest_clean
    assert not bad.any(), (
        f"{bad.sum()} restorations within {clean_days} days of a penalty, e.g. citizen "
        f"{citizen[restored][bad][0]} on day {day[restored][bad][0]} (penalised day "
        f"{found[bad][0] % 1_000})")


# ---------------------------------------------------------------- common random numbers


def test_policies_share_random_numbers():
    """Different policies, same acts. (Pet confiscation is off: a policy that takes dogs
    away does change how many dogs are walked off the lead.)"""
    keep_pets = merge(responses_off(),
                      {"consequences": [{"name": "pet_confiscation", "when": "False"}]})
    essay_run = run_preset("essay", keep_pets)
    null_run = run_preset("null", responses_off())
    harsh = run_preset("essay", merge(keep_pets,
                                      {"rules": [{"name": "jaywalking", "points": -50}]}))
    for run in (essay_run, null_run, harsh):
        r = run.scenario.responses
        assert not any(getattr(r, f).enabled for f in type(r).model_fields
                       if hasattr(getattr(r, f), "enabled"))
    for column in ("occurrences", "benign_occurrences", "observed"):
        expected = essay_run.tables["daily"][column].to_pylist()
        assert null_run.tables["daily"][column].to_pylist() == expected, column
        assert harsh.tables["daily"][column].to_pylist() == expected, column
    # Same citizens, same service demand, whatever the policy.
    assert null_run.tables["citizens"]["conduct"].equals(essay_run.tables["citizens"]["conduct"])
    assert null_run.tables["services"]["attempts"].equals(
        essay_run.tables["services"]["attempts"])
    # ... while the policies do differ in what they did.
    assert not harsh.tables["citizens"]["score"].equals(essay_run.tables["citizens"]["score"])


def test_running_counts_agree_with_the_final_tables(essay_run):
    """The daily row keeps counts up to date as scores and lists change; on the last day
    they must equal what the final citizen table says, and days spent on a list must
    add up to the daily list sizes."""
    daily, cit = essay_run.tables["daily"], essay_run.tables["citizens"]
    last = daily.slice(daily.num_rows - 1).to_pylist()[0]
    tiers = [t.name for t in essay_run.scenario.tiers]
    final_tiers = cit["tier"].to_pylist()
    for t in tiers:
        assert last[f"tier_{t}"] == final_tiers.count(t), t
    for row in daily.to_pylist():
        assert sum(row[f"tier_{t}"] for t in tiers) == cit.num_rows
    assert last["mean_score"] == pytest.approx(np.mean(cit["score"].to_numpy()), abs=1e-9)
    for spec in essay_run.scenario.lists:
        assert last[f"list_{spec.name}"] == pc.sum(cit[f"on_{spec.name}"]).as_py()
        assert (pc.sum(cit[f"days_on_{spec.name}"]).as_py()
                == pc.sum(daily[f"list_{spec.name}"]).as_py())
    labelled = cit["days_labelled"].to_numpy()
    assert labelled.max() <= essay_run.scenario.run.days
    # Everyone labelled for a day had a labelling start (one citizen can have several).
    starts = pc.sum(daily["applied_public_labelling"]).as_py()
    assert 0 < (labelled > 0).sum() <= starts


def test_large_runs_keep_the_ledger_for_a_seeded_sample(monkeypatch):
    """Above LEDGER_SAMPLE_MAX citizens the ledger keeps about that many by default;
    the invariant holds on them, and the aggregates still count everyone."""
    from metricpower.engine import core

    monkeypatch.setattr(core, "LEDGER_SAMPLE_MAX", 500)
    run = simulate(scenario("essay", citizens=2000, days=60))
    kept = run.tables["citizens"]["in_ledger"].to_numpy()
    # Bernoulli(1/4) over 2000 citizens: sd = sqrt(2000 · 0.25 · 0.75) ≈ 19.4; 5 sd.
    assert abs(kept.sum() - 500) < 100
    assert set(run.tables["ledger"]["citizen"].to_numpy()) <= set(np.flatnonzero(kept))
    sums = ledger_sums(run)
    initial = run.scenario.population.initial_score
    assert (initial + sums[kept] == run.tables["citizens"]["score"].to_numpy()[kept]).all()
    assert daily_total(run, "penalties") > (run.tables["ledger"]["points"].to_numpy() < 0).sum()


def test_confiscated_pets_are_walked_by_nobody():
    """After confiscation, no dog of that citizen runs off the lead (or gets them
    penalised for it): only false matches can still charge them."""
    sc = scenario("essay", {"consequences": [
        {"name": "pet_confiscation", "when": "count('dog_off_leash', 365) >= 1"}]},
        citizens=2000, days=90)
    run = simulate(sc)
    cit, ledger = run.tables["citizens"], run.tables["ledger"]
    taken = set(np.flatnonzero(cit["pets_confiscated"].to_numpy()))
    assert len(taken) > 20
    # The day each citizen lost their pet: the day of their first dog penalty.
    dog = ledger.filter(pc.and_(pc.equal(ledger["rule"], "dog_off_leash"),
                                pc.invert(ledger["misattributed"]))).to_pylist()
    first: dict[int, int] = {}
    later = 0
    for e in dog:
        if e["citizen"] in first and e["day"] > first[e["citizen"]]:
            later += e["citizen"] in taken
        first.setdefault(e["citizen"], e["day"])
    assert later == 0


def test_a_new_effect_is_one_registered_class(monkeypatch):
    """A new consequence kind is a class registered under its name plus its line in
    schema.EFFECTS (the README's example: a fine of 5% of income); the loop picks it up.
    Responses are off, so only the fine moves income: each citizen's income falls by
    exactly 0.95 per fine, and the fines counted add up to those falls."""
    from metricpower.engine.effects import EFFECTS, Effect, register
    from metricpower.scenario import schema

    monkeypatch.setitem(schema.EFFECTS, "fine",
                        schema.EffectKind(on_service=False, sanction=True))
    monkeypatch.setitem(EFFECTS, "fine", None)  # undone after the test

    @register
    class Fine(Effect):
        name = "fine"

        def strike(self, day, today):
            xp, income = self.engine.xp, self.engine.state.income
            hit = xp.nonzero(self.holds(day))[0]
            self.engine.backend.set_at(income, hit, income[hit] * 0.95)
            return hit

    sc = scenario("essay", merge(responses_off(), STICKY_LIST))  # enough listings to fine
    sc.consequences.append(schema.Consequence(name="fines", effect="fine",
                                              when="on_list('blacklist')"))
    run = simulate(sc)
    cit = run.tables["citizens"]
    fines = np.log(cit["income_final"].to_numpy() / cit["income"].to_numpy()) / np.log(0.95)
    assert np.allclose(fines, np.round(fines), atol=1e-3)
    cons = run.tables["consequences"].filter(pc.equal(run.tables["consequences"]["consequence"],
                                                      "fines"))
    applied = pc.sum(cons["applied"]).as_py()
    assert applied > 50
    assert applied == int(np.round(fines).sum())
    assert pc.sum(run.tables["daily"]["applied_fines"]).as_py() == applied


# ---------------------------------------------------------------- draws
def _rate_errors(sampler, rate: np.ndarray, days: int) -> tuple[list[float], float]:
    """Draw `days` days from `sampler` and compare each citizen's accepted candidates with
    `days · rate`: z of the total in each eighth of the citizens by rate, and the
    per-citizen chi-square over its degrees of freedom (1 for Poisson counts)."""
    from metricpower.engine.observe import Samplers
    from metricpower.streams import Streams

    streams, counts, one = Streams(11), np.zeros(len(rate)), Samplers([sampler], [0])
    for day in range(days):
        cand, p, u, _ = one.draw([streams.rng("test", day)], 0)
        np.add.at(counts, cand[u[0, :] < p], 1)
    assert counts[rate == 0].sum() == 0
    live = np.flatnonzero(rate > 0)
    expected = days * rate.astype(np.float64)
    z = [float((counts[part].sum() - expected[part].sum()) / np.sqrt(expected[part].sum()))
         for part in np.array_split(live[np.argsort(rate[live])], 8)]
    chi2 = ((counts[live] - expected[live]) ** 2 / expected[live]).sum() / len(live)
    return z, float(chi2)


def test_sampler_draws_each_citizen_at_its_rate():
    """The thinned Poisson draw (bands, one uniform per candidate for band and citizen)
    gives each citizen its own rate: totals by eighth of the rates within 4.5 standard
    errors, per-citizen counts Poisson-dispersed. Power: a sampler drawing the eighth
    with the highest rates 5% too rarely fails (z about -16)."""
    from metricpower.engine.backend import backend
    from metricpower.engine.observe import Sampler

    rng = np.random.default_rng(3)
    rate = (np.minimum(rng.lognormal(-5, 1.5, 3000), 0.2) * (rng.random(3000) > 0.1))
    rate = rate.astype(np.float32)
    for headroom in (1.0, 2.0):
        z, chi2 = _rate_errors(Sampler(rate, backend(), headroom), rate, 3000)
        assert max(map(abs, z)) < 4.5, z
        assert abs(chi2 - 1) < 0.15, chi2  # sd of the mean of 2,700 χ²₁/1: about 0.03
    planted = rate.copy()
    top = rate >= np.quantile(rate[rate > 0], 7 / 8)
    planted[top] *= np.float32(0.95)
    z, _ = _rate_errors(Sampler(planted, backend()), rate, 3000)
    assert z[-1] < -4.5, z
    # Everyone alike: one band, no list of members.
    flat = np.full(500, 0.01, np.float32)
    z, chi2 = _rate_errors(Sampler(flat, backend()), flat, 3000)
    assert max(map(abs, z)) < 4.5 and abs(chi2 - 1) < 0.3, (z, chi2)


def test_rates_below_the_last_band_still_act():
    """A citizen whose rate is below the last band's floor (2^-23.5 of the top rate) is
    drawn in the last band at its own rate, not dropped: a million citizens at 2e-8 a day
    beside one at 1 act about 60 times in 3,000 days (dropped, never)."""
    from metricpower.engine.backend import NumbaBackend, NumpyBackend, bands_numpy
    from metricpower.engine.observe import Sampler, Samplers
    from metricpower.streams import Streams

    rate = np.full(1_000_001, 2e-8, np.float32)
    rate[0] = 1.0
    last = Sampler.BANDS - 1
    for bk in (NumpyBackend(), NumbaBackend()):
        band, _ = bk.bands(rate[:10], 1.0, Sampler.BANDS)
        assert band[0] == 0 and (band[1:] == last).all(), band
    assert bands_numpy(np.zeros(3, np.float32), 1.0, Sampler.BANDS)[0].tolist() == [48] * 3
    sampler, streams, acts = Samplers([Sampler(rate, NumpyBackend())], [0]), Streams(5), 0
    for day in range(3000):
        cand, p, u, _ = sampler.draw([streams.rng("test", day)], 0)
        acts += int(((cand > 0) & (u[0, :] < p)).sum())
    expected = 3000 * 1_000_000 * 2e-8
    assert abs(acts - expected) < 4.5 * np.sqrt(expected), acts


def test_streams_are_keyed_by_seed_purpose_and_day():
    """The same (seed, purpose, day) gives the same numbers; changing any one of them gives
    others; a stream of no day is the PCG64 it always was (populations stay as built)."""
    from metricpower.streams import Streams

    a, b = Streams(7), Streams(7)
    first = a.rng("occur:jaywalking", 3).random(4)
    assert np.array_equal(b.rng("occur:jaywalking", 3).random(4), first)
    for other in (Streams(8).rng("occur:jaywalking", 3), a.rng("occur:littering", 3),
                  a.rng("occur:jaywalking", 4), a.rng("occur:jaywalking", 0)):
        assert not np.isin(other.random(4), first).any()
    seq = np.random.SeedSequence([7, 3024723976, 0])  # CRC-32 of "population"
    assert np.array_equal(a.rng("population").random(3),
                          np.random.Generator(np.random.PCG64(seq)).random(3))
