"""Intensification and redress (issue 3): each response on against off, same seed."""

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_score

from metricpower.engine.stages.predict import RiskModel, fit_logistic
from metricpower.metrics.intensification import persistence_after_entry
from metricpower.runs import simulate
from metricpower.scenario import load_preset, load_scenario

OFF = {k: {"enabled": False}
       for k in ("deterrence", "association", "economy", "prediction", "appeals")}
HERE = Path(__file__).parent


def essay(n=3000, days=120, seed=1, **responses):
    """The essay preset with every response off except those given."""
    res = {k: dict(v) for k, v in OFF.items()} | {"labelling": {"refusal": 0.0}}
    for key, value in responses.items():
        res[key] = res.get(key, {}) | value
    return load_preset("essay", {"run": {"citizens": n, "days": days, "seed": seed},
                                 "responses": res})


def total(run, column):
    return pc.sum(run.tables["daily"][column]).as_py()


# ------------------------------------------------------------------ deterrence
@pytest.fixture(scope="module")
def deterrence_pair():
    """Pet confiscation is switched off in both runs: it is a consequence that would take
    different dogs on different days in the two, and the comparison is of deterrence."""
    no_confiscation = {"consequences": [{"name": "pet_confiscation", "when": "False"}]}

    def run(**responses):
        sc = essay(**responses)
        return simulate(load_preset("essay", {"run": sc.run.model_dump(),
                                              "responses": sc.responses.model_dump()}
                                    | no_confiscation))

    return run(), run(deterrence={"enabled": True})


def test_deterrence_lowers_penalised_acts_and_benign_ones_too(deterrence_pair):
    off, on = deterrence_pair
    sc = on.scenario
    # Behaviours every act of which costs points; a rule with a condition deters only
    # where the condition would hold for the act (test_engine_validity.py), and the
    # essay's frivolous-spending threshold is not reached in these 120 days.
    always = {r.behaviour for r in sc.rules
              if r.kind == "event" and r.points < 0 and r.when is None}
    sometimes = {r.behaviour for r in sc.rules if r.kind == "event" and r.points < 0} - always
    for b in sc.behaviours:
        col = f"occurrences_{b.name}"
        before = off.tables["daily"][col].to_numpy()
        after = on.tables["daily"][col].to_numpy()
        # Common random numbers: deterrence keeps a subset of the same draws, every day.
        assert (after <= before).all(), b.name
        # What fell away is exactly what the run counts as chilled.
        assert (before - after == on.tables["daily"][f"chilled_{b.name}"].to_numpy()).all()
        if b.name in always:
            if before.sum() >= 20:  # a handful of acts need show no fall
                assert after.sum() < before.sum(), b.name
        elif b.name not in sometimes:
            assert after.sum() == before.sum(), b.name
    # Lawful acts with a benign reason are chilled too: that is the chilling effect.
    assert total(on, "benign_occurrences") < total(off, "benign_occurrences")
    assert total(on, "benign_chilled") == (total(off, "benign_occurrences")
                                           - total(on, "benign_occurrences"))
    assert total(off, "chilled") == 0


# ------------------------------------------------------------------ association
def test_association_avoidance_raises_score_assortativity():
    kw = dict(n=3000, days=180)
    off = simulate(essay(**kw))
    on = simulate(essay(**kw, association={"enabled": True, "drop": 0.05, "form": 1.0,
                                           "avoid_tiers": ["B", "C", "D"]}))
    a_off = off.tables["daily"]["assortativity"].to_numpy()[-1]
    a_on = on.tables["daily"]["assortativity"].to_numpy()[-1]
    assert total(on, "ties_dropped") > 0
    # Low scorers lose their ties to high scorers and everyone rewires among the
    # well-scored: like now sits with like.
    assert a_on > a_off + 0.02, (a_on, a_off)
    ties = on.tables["ties"]
    assert ties.num_rows == total(on, "ties_dropped") + total(on, "ties_formed")


def test_without_association_rules_no_tie_is_dropped_for_them(tmp_path):
    kw = dict(n=3000, days=120, association={"enabled": True, "drop": 0.05,
                                             "avoid_tiers": ["B", "C", "D"],
                                             "public_lists": False})
    with_rules = simulate(essay(**kw))
    path = tmp_path / "no_association.toml"
    path.write_text('preset = "essay"\n'
                    'drop = { rules = ["low_scoring_friends", "blacklisted_friend"] }\n')
    sc = essay(**kw)
    without = simulate(load_scenario(path, {"run": sc.run.model_dump(),
                                            "responses": sc.responses.model_dump()}))
    assert not any(r.name == "low_scoring_friends" for r in without.scenario.rules)

    def reasons(run):
        return run.tables["ties"].filter(pc.equal(run.tables["ties"]["change"], "dropped")
                                         )["reason"].to_pylist()

    assert "association_rule" in reasons(with_rules)
    assert "association_rule" not in reasons(without)
    assert total(without, "ties_dropped") == 0


# ------------------------------------------------------------------ economy
def persistence(run) -> tuple[int, int]:
    pe = persistence_after_entry(run.tables["bottom"], run.scenario.run.days)
    return pe["stayed"][0], pe["checked"][0]


def test_income_feedback_traps_people_at_the_bottom():
    """Share still at the bottom 180 days after entering it, with and without feedback.

    Tolerance: each share is a binomial proportion over ~150 entries; we require the
    difference to exceed 4 standard errors of the difference."""
    path = HERE / "scenarios" / "poverty_trap.toml"
    off = simulate(load_scenario(path, {"responses": {"economy": {"enabled": False}}}))
    on = simulate(load_scenario(path))
    (s0, n0), (s1, n1) = persistence(off), persistence(on)
    assert n0 > 50 and n1 > 50
    p0, p1 = s0 / n0, s1 / n1
    se = np.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    assert p1 - p0 > 4 * se, (p0, p1, se)
    # The mechanism: the bottom is denied jobs, denials cost income.
    assert total(on, "mean_income") < total(off, "mean_income")


def test_charity_costs_income_and_rewards_raise_it():
    on = simulate(essay(economy={"enabled": True, "costly": ["charity"], "cost": 0.05,
                                 "recovery": 0.0, "sanction_loss": 0.0}))
    cit = on.tables["citizens"]
    moved = cit["income_final"].to_numpy() / cit["income"].to_numpy()
    assert (moved < 1).any()  # charity paid for


# ------------------------------------------------------------------ appeals
def reversals(run):
    ledger = run.tables["ledger"]
    return ledger.filter(pc.greater_equal(ledger["reverses"], 0))


def conserves(run) -> bool:
    ledger, cit = run.tables["ledger"], run.tables["citizens"]
    sums = np.bincount(ledger["citizen"].to_numpy(), weights=ledger["points"].to_numpy(),
                       minlength=cit.num_rows)
    return bool((run.scenario.population.initial_score + sums
                 == cit["score"].to_numpy()).all())


def test_appeals_with_no_capacity_reverse_nothing():
    run = simulate(essay(appeals={"enabled": True, "capacity_per_100k": 0,
                                  "probability": 1e9}))
    assert total(run, "appeals_filed") > 0
    assert total(run, "appeals_upheld") == 0
    assert reversals(run).num_rows == 0


def test_unlimited_appeals_reverse_every_misattributed_penalty():
    run = simulate(essay(appeals={
        "enabled": True, "capacity_per_100k": "unlimited", "probability": 1e9,
        "points_elasticity": 0.0, "income_elasticity": 0.0, "decision_days": 0,
        "success_misattributed": 1.0, "success_benign": 0.0, "success_true": 0.0}))
    ledger = run.tables["ledger"]
    original = ledger.filter(pc.and_(pc.less(ledger["points"], 0),
                                     pc.equal(ledger["reverses"], -1)))
    wrong = set(original.filter(original["misattributed"])["entry"].to_pylist())
    assert len(wrong) > 0
    back = reversals(run)
    assert set(back["reverses"].to_pylist()) == wrong
    # Each reversal gives back exactly the points taken, as a new entry.
    taken = dict(zip(original["entry"].to_pylist(), original["points"].to_pylist(),
                     strict=True))
    for rev, pts in zip(back["reverses"].to_pylist(), back["points"].to_pylist(), strict=True):
        assert pts == -taken[rev]
    assert conserves(run)


# ------------------------------------------------------------------ predictions
def test_fit_logistic_matches_scikit_learn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 3))
    y = (x @ [1.0, -2.0, 0.5] + rng.logistic(size=2000)) > 0.5
    ours = fit_logistic(x, y, l2=1.0)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000).fit(x, y)
    assert np.allclose(ours[1:], ref.coef_[0], atol=1e-5)
    assert np.isclose(ours[0], ref.intercept_[0], atol=1e-5)


def test_prediction_confusion_by_group_matches_scikit_learn():
    rng = np.random.default_rng(1)
    n = 500
    group = rng.integers(0, 2, n)
    bottom_then = rng.random(n) < 0.2
    flagged = (rng.random(n) < 0.3) & ~bottom_then
    at_bottom = bottom_then | (rng.random(n) < 0.1)
    model = RiskModel(horizon=10, threshold=0.5, rng=rng)
    model._pending.append((5, flagged, bottom_then))
    rows = model.judge(15, at_bottom, group, 2)
    # Judged: those not at the bottom when flagged; the truth: at the bottom now.
    truth = at_bottom
    for row in rows:
        m = (group == row["group"]) & ~bottom_then
        tn, fp, fn, tp = confusion_matrix(truth[m], flagged[m], labels=[False, True]).ravel()
        assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (tp, fp, fn, tn)
        precision = row["tp"] / (row["tp"] + row["fp"])
        assert abs(precision - precision_score(truth[m], flagged[m])) < 1e-12
        assert abs(row["fp"] / (row["fp"] + row["tn"]) - fp / (fp + tn)) < 1e-12


def test_predictions_run_and_are_judged_on_those_not_yet_at_the_bottom():
    # The bottom is tier B here: few citizens fall to C within 200 days.
    sc = essay(n=3000, days=200, prediction={"enabled": True, "every": 30, "horizon": 60,
                                             "threshold": 0.2})
    run = simulate(sc.model_copy(update={"bottom_tier": "B"}))
    pred = run.tables["predictions"]
    assert pred.num_rows > 0
    counts = {c: pc.sum(pred[c]).as_py() for c in ("tp", "fp", "fn", "tn")}
    # Every citizen not at the bottom (B or worse here) on a prediction day falls in
    # exactly one cell (test_engine_validity.py checks each cell against the bottom table).
    daily = run.tables["daily"]
    bottom = sum(daily[f"tier_{t}"].to_numpy() for t in ("B", "C", "D"))
    days = sorted(set(pred["day"].to_pylist()))
    assert sum(counts.values()) == sum(3000 - bottom[d] for d in days)
    assert total(run, "flagged") > 0


def test_appeal_office_is_first_in_first_out_and_waits():
    from metricpower.engine.stages.appeals import AppealOffice

    office = AppealOffice()
    for day, n in ((0, 3), (1, 2), (2, 4)):
        office.file(**{f: np.full(n, day) for f in AppealOffice.FIELDS} | {
            "citizen": np.arange(n) + 10 * day})
    assert office.waiting == 9
    # On day 2 with 2 days to wait only day 0's appeals are ripe, oldest first.
    got = office.take(day=2, capacity=5, decision_days=2)
    assert got["citizen"].tolist() == [0, 1, 2] and office.waiting == 6
    got = office.take(day=3, capacity=1, decision_days=2)
    assert got["citizen"].tolist() == [10] and office.waiting == 5
    got = office.take(day=9, capacity=100, decision_days=2)
    assert got["citizen"].tolist() == [11, 20, 21, 22, 23] and office.waiting == 0
    assert len(office.take(day=10, capacity=5, decision_days=0)["citizen"]) == 0
