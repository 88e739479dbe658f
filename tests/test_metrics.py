"""Metrics: each on small hand-made tables with known answers, and the numeric ones against
independent implementations (networkx, scikit-learn, SciPy, direct formulas) to 1e-9."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import networkx as nx
import numpy as np
import polars as pl
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from metricpower import metrics as M
from metricpower.metrics.common import citizen_evidence
from metricpower.population import Network

TOL = 1e-9


# ---------------------------------------------------------------- hand-made tables
def citizens_table() -> pl.DataFrame:
    """Eight citizens, two groups (a, b), two regions (n, s)."""
    return pl.DataFrame({
        "citizen": list(range(8)),
        "group": ["a", "a", "a", "a", "b", "b", "b", "b"],
        "region": ["n", "n", "s", "s", "n", "n", "s", "s"],
        "conduct": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2],   # median 0.55
        "score": [1000, 990, 1000, 950, 900, 1000, 850, 800],
        "tier": ["A", "A", "A", "B", "B", "A", "C", "C"],
        "income": [1.0, 1.0, 2.0, 1.0, 0.5, 1.0, 0.5, 0.5],
        "income_final": [1.0, 1.0, 2.0, 0.8, 0.5, 1.0, 0.4, 0.3],
        "sanctions": [0, 0, 1, 0, 2, 0, 3, 1],
        "rewards": [1, 0, 0, 0, 0, 0, 0, 0],
        "on_blacklist": [False, False, False, False, True, False, True, True],
        "days_on_blacklist": [0, 0, 5, 0, 10, 0, 20, 3],
        "pet_owner": [True, False, False, False, True, False, False, False],
        "has_child": [False, True, False, False, False, False, False, False],
        "in_ledger": [True] * 8,
    })


def ledger_table() -> pl.DataFrame:
    """Penalties: citizen 2 (better half) has one benign -30; citizen 4 one true -10 and
    one misattributed -20; citizen 6 two true -50 and a derived -5; citizen 7 a benign -10
    and a true -10; citizen 0 a reward +5; citizen 4's misattributed one is reversed."""
    rows = [
        # entry, day, citizen, rule, behaviour, points, benign, misattributed, reverses
        (0, 0, 2, "fraud", "fraud", -30, True, False, None),
        (1, 0, 4, "late", "late", -10, False, False, None),
        (2, 1, 4, "jay", "jay", -20, False, True, None),
        (3, 1, 6, "fraud", "fraud", -50, False, False, None),
        (4, 2, 6, "fraud", "fraud", -50, False, False, None),
        (5, 2, 6, "friends", None, -5, False, False, None),
        (6, 2, 7, "late", "late", -10, True, False, None),
        (7, 3, 7, "jay", "jay", -10, False, False, None),
        (8, 3, 0, "volunteer", "volunteer", 5, False, False, None),
        (9, 4, 4, "jay", "jay", 20, False, True, 2),
    ]
    cols = ["entry", "day", "citizen", "rule", "behaviour", "points", "benign",
            "misattributed", "reverses"]
    return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows],
                        schema={"entry": pl.Int64, "day": pl.Int64, "citizen": pl.Int64,
                                "rule": pl.String, "behaviour": pl.String, "points": pl.Int32,
                                "benign": pl.Boolean, "misattributed": pl.Boolean,
                                "reverses": pl.Int64})


def evidence() -> pl.DataFrame:
    return citizen_evidence(citizens_table(), ledger_table(), lawful={"late"})


def row(df: pl.DataFrame, by: str = "all", who: str = "all") -> dict:
    return df.filter((pl.col("by") == by) & (pl.col("who") == who)).row(0, named=True)


def fake_scenario():
    b = SimpleNamespace
    behaviours = [
        b(name="fraud", lawful=False, public=False, benign_share=0.1, rate=0.001,
          requires=None),
        b(name="late", lawful=True, public=False, benign_share=0.3, rate=0.01, requires=None),
        b(name="jay", lawful=False, public=True, benign_share=0.2, rate=0.02, requires=None),
        b(name="dog", lawful=False, public=True, benign_share=0.5, rate=0.1,
          requires="pet_owner"),
        b(name="volunteer", lawful=True, public=False, benign_share=0.0, rate=0.01,
          requires=None),
    ]
    rules = [b(name="fraud", kind="event", behaviour="fraud", points=-30),
             b(name="late", kind="event", behaviour="late", points=-10),
             b(name="late_again", kind="event", behaviour="late", points=-5),
             b(name="jay", kind="event", behaviour="jay", points=-5),
             b(name="volunteer", kind="event", behaviour="volunteer", points=5),
             b(name="friends", kind="periodic", behaviour=None, points=-5)]
    return SimpleNamespace(behaviours=behaviours, rules=rules)


# ---------------------------------------------------------------- independent checks
def test_gini_known_values_and_formula():
    assert M.gini([5, 5, 5]) == 0.0
    assert M.gini([0, 0, 1]) == pytest.approx(2 / 3, abs=TOL)
    assert M.gini([]) == 0.0
    rng = np.random.default_rng(0)
    x = rng.lognormal(size=500)
    mad = np.abs(x[:, None] - x[None, :]).mean()
    assert M.gini(x) == pytest.approx(mad / (2 * x.mean()), abs=TOL)


def to_csr(g: nx.Graph, n: int):
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = []
    for i in range(n):
        nb = sorted(g.neighbors(i))
        indices.extend(nb)
        indptr[i + 1] = indptr[i] + len(nb)
    return indptr, np.array(indices, dtype=np.int32)


def assortativity(indptr, indices, values) -> float:
    """The engine's measure (Network.assortativity), on hand-made CSR arrays."""
    return Network(indptr=np.asarray(indptr, np.int64),
                   indices=np.asarray(indices, np.int32)).assortativity(values)


def test_assortativity_known_values():
    # two separate ties: equal ends → +1; opposite ends → -1
    indptr, indices = np.array([0, 1, 2, 3, 4]), np.array([1, 0, 3, 2])
    assert assortativity(indptr, indices, [1, 1, 2, 2]) == pytest.approx(1.0, abs=TOL)
    assert assortativity(indptr, indices, [1, 2, 1, 2]) == pytest.approx(-1.0, abs=TOL)
    assert math.isnan(assortativity(indptr, indices, [3, 3, 3, 3]))
    assert math.isnan(assortativity(np.zeros(4, np.int64), np.zeros(0, np.int32), [1, 2, 3]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_assortativity_matches_networkx(seed):
    rng = np.random.default_rng(seed)
    n = 300
    g = nx.gnm_random_graph(n, 900, seed=seed)
    g.add_nodes_from(range(n))  # isolated nodes stay in
    values = rng.integers(800, 1100, size=n)
    nx.set_node_attributes(g, {i: int(values[i]) for i in range(n)}, "score")
    indptr, indices = to_csr(g, n)
    ours = assortativity(indptr, indices, values)
    theirs = nx.numeric_assortativity_coefficient(g, "score")
    assert ours == pytest.approx(theirs, abs=TOL)
    # and Pearson over the directed tie list
    src = np.repeat(np.arange(n), np.diff(indptr))
    direct = np.corrcoef(values[src], values[indices])[0, 1]
    assert ours == pytest.approx(direct, abs=TOL)


def test_roc_auc_and_spearman_match_sklearn_and_scipy():
    rng = np.random.default_rng(4)
    conduct = rng.random(1000)
    score = np.round(1000 + 40 * (conduct - 0.5) + rng.normal(0, 30, 1000))  # ties
    labels = conduct > np.median(conduct)
    assert M.roc_auc(labels, score) == pytest.approx(roc_auc_score(labels, score), abs=TOL)
    assert M.spearman(score, conduct) == pytest.approx(spearmanr(score, conduct)[0], abs=TOL)
    assert math.isnan(M.spearman(np.ones(10), np.arange(10)))
    assert M.roc_auc(labels, np.ones(1000)) == pytest.approx(0.5)
    assert math.isnan(M.roc_auc(np.ones(5, bool), np.arange(5)))


def test_average_ranks_are_scipys_exactly_and_nans_rank_last_in_order():
    rng = np.random.default_rng(5)
    for x in (np.round(rng.normal(900, 40, 5000)), rng.random(5000), np.zeros(7),
              np.array([0.0, -0.0, 1.0, -0.0])):
        assert np.array_equal(M.average_ranks(x), rankdata(x))  # ties averaged, bit for bit
    got = M.average_ranks([3.0, np.nan, 1.0, np.nan, 3.0])
    assert got.tolist() == [2.5, 4.0, 1.0, 5.0, 2.5]
    x = np.round(rng.normal(900, 40, 5000))
    x[::10] = np.nan  # 500 NaNs: ranked after the rest, in their order
    assert np.array_equal(M.average_ranks(x)[::10], np.arange(4501, 5001))


def test_group_rates_match_direct_formulas():
    rng = np.random.default_rng(5)
    n = 2000
    groups, regions = np.array(["g0", "g1", "g2"]), np.array(["r0", "r1"])
    citizens = pl.DataFrame({
        "citizen": np.arange(n), "group": groups[rng.integers(0, 3, n)],
        "region": regions[rng.integers(0, 2, n)],
        "sanctions": rng.poisson(0.3, n), "rewards": rng.poisson(0.1, n),
        "tier": np.array(["A", "B", "D"])[rng.integers(0, 3, n)],
        "on_blacklist": rng.random(n) < 0.1, "conduct": rng.random(n),
        "score": rng.integers(500, 1100, n), "in_ledger": np.ones(n, bool)})
    cons = pl.DataFrame({"consequence": ["ban"] * 3 + ["perk"] * 3 + ["shame"] * 3,
                         "effect": ["deny"] * 3 + ["reward"] * 3 + ["publish"] * 3,
                         "service": ["trains"] * 6 + [None] * 3,
                         "sanction": [True] * 3 + [False] * 3 + [True] * 3,
                         "provenance": ["documented"] * 9, "group": list(groups) * 3,
                         "applied": rng.integers(0, 50, 9)})
    svc = pl.DataFrame({"service": ["trains"] * 3, "group": list(groups),
                        "attempts": rng.integers(100, 500, 3)})
    ev = citizen_evidence(citizens, None)
    rates = M.group_rates(citizens, ev, cons, svc, by="group", bottom=["D"],
                          lists={"blacklist": True})
    g = citizens["group"].to_numpy()
    for k, name in enumerate(groups):
        sel = g == name
        want = {
            "sanctioned": (citizens["sanctions"].to_numpy()[sel] > 0).mean(),
            "rewarded": (citizens["rewards"].to_numpy()[sel] > 0).mean(),
            "bottom_tier": (citizens["tier"].to_numpy()[sel] == "D").mean(),
            "on_blacklist": citizens["on_blacklist"].to_numpy()[sel].mean(),
            "ban": cons["applied"][k] / svc["attempts"][k],
            "perk": cons["applied"][3 + k] / svc["attempts"][k],
            "shame": cons["applied"][6 + k] / sel.sum(),
        }
        for rate, value in want.items():
            got = rates.filter((pl.col("rate") == rate) & (pl.col("who") == name))["value"][0]
            assert got == pytest.approx(value, abs=TOL), (rate, name)
    by_region = M.group_rates(citizens, ev, by="region")
    r = citizens["region"].to_numpy()
    got = by_region.filter((pl.col("rate") == "sanctioned") & (pl.col("who") == "r1"))
    assert got["value"][0] == pytest.approx((citizens["sanctions"].to_numpy()[r == "r1"] > 0)
                                            .mean(), abs=TOL)


# ---------------------------------------------------------------- 1 creation of limits
def test_policy_and_limits():
    policy = M.policy_table(fake_scenario())
    late = policy.filter(pl.col("behaviour") == "late").row(0, named=True)
    assert late["points"] == -15 and late["penalised"] and late["lawful"]
    assert not policy.filter(pl.col("behaviour") == "dog")["regulated"][0]
    reg = M.behaviours_regulated(policy).row(0, named=True)
    assert reg == {"behaviours": 5, "regulated": 4, "penalised": 3, "rewarded": 1,
                   "lawful_penalised": 1}
    daily = pl.DataFrame({"day": [0, 1], "occurrences_fraud": [1, 1],
                          "occurrences_late": [10, 10], "occurrences_jay": [5, 3],
                          "occurrences_dog": [20, 20], "occurrences_volunteer": [5, 5]})
    occ = M.occurrences_by_behaviour(daily, policy)
    # Acts scored: event entries on real acts. Citizen 1's false match, citizen 0's
    # reversal and a periodic penalty are not acts; the reversed penalty still counts.
    ledger = pl.DataFrame({
        "citizen": [0, 0, 1, 1, 2, 2, 3, 0],
        "behaviour": ["late", "late", "late", "jay", "jay", "volunteer", None, "late"],
        "points": [-10, -10, -10, -5, -5, 5, -5, 10],
        "misattributed": [False, False, True, False, False, False, False, False],
        "reverses": [-1, -1, -1, -1, -1, -1, -1, 0]})
    reached = M.acts_scored(occ, ledger, None).row(0, named=True)
    assert reached["occurrences"] == 80 and reached["acts_scored"] == 5
    assert reached["share"] == pytest.approx(5 / 80) and reached["source"] == "measured"
    # lawful occurrences: late (20) and volunteer (10); two lawful acts penalised
    assert reached["lawful_penalised_share"] == pytest.approx(2 / 30)
    # a ledger kept for half the citizens is scaled up
    half = pl.DataFrame({"in_ledger": [True, False, True, False]})
    assert M.acts_scored(occ, ledger, half).row(0, named=True)["acts_scored"] == 10
    # without per-behaviour counts: expected from rate × days × eligible citizens
    exp = M.occurrences_by_behaviour(daily.select("day"), policy, citizens_table(), days=10)
    dog = exp.filter(pl.col("behaviour") == "dog").row(0, named=True)
    assert dog["occurrences"] == pytest.approx(0.1 * 10 * 2) and dog["source"] == "expected"
    assert dog["benign_occurrences"] == pytest.approx(0.5 * 2)


def test_lawful_penalised_share():
    lp = M.lawful_penalised_share(evidence())
    # event penalties: 2:1, 4:2, 6:2, 7:2 → 7; lawful (late): 4 and 7 → 2
    assert row(lp)["penalised_events"] == 7 and row(lp)["lawful"] == 2
    assert row(lp)["share"] == pytest.approx(2 / 7)
    assert row(lp, "group", "a")["share"] == pytest.approx(0.0)
    assert row(lp, "region", "s")["share"] == pytest.approx(1 / 5)


# ---------------------------------------------------------------- 2 visible / invisible
def test_citizen_evidence_counts_reversal_apart():
    ev = evidence().sort("citizen")
    c4 = ev.filter(pl.col("citizen") == 4).row(0, named=True)
    assert (c4["penalties"], c4["true"], c4["misattributed"], c4["reversed"]) == (2, 1, 1, 1)
    assert c4["penalty_points"] == 30 and c4["tainted_points"] == 20
    c6 = ev.filter(pl.col("citizen") == 6).row(0, named=True)
    assert (c6["penalties"], c6["derived"], c6["penalty_points"]) == (3, 1, 105)
    assert ev.filter(pl.col("citizen") == 1)["penalties"][0] == 0


def test_benign_share_and_misattribution():
    ev = evidence()
    b = M.benign_penalty_share(ev)
    assert row(b)["penalties"] == 8 and row(b)["benign"] == 2
    assert row(b)["share"] == pytest.approx(2 / 8)
    assert row(b)["misattributed_share"] == pytest.approx(1 / 8)
    assert row(b)["derived_share"] == pytest.approx(1 / 8)
    assert row(b)["true_share"] == pytest.approx(4 / 8)
    assert row(b, "group", "a")["share"] == pytest.approx(1.0)
    mis = M.misattributed_per_100k(ev)
    assert row(mis)["per_100k"] == pytest.approx(1 / 8 * 1e5)
    assert row(mis, "group", "b")["per_100k"] == pytest.approx(1 / 4 * 1e5)
    assert row(mis, "group", "a")["per_100k"] == 0
    assert row(mis, "region", "n")["citizens_hit"] == 1


def test_detection_rate():
    daily = pl.DataFrame({"day": [0, 1], "occurrences": [10, 30], "observed": [5, 15]})
    assert row(M.detection_rate(daily))["rate"] == pytest.approx(0.5)
    cit = citizens_table().with_columns(occurrences=pl.Series([4, 0, 0, 0, 6, 0, 0, 0]),
                                        observed=pl.Series([1, 0, 0, 0, 6, 0, 0, 0]))
    d = M.detection_rate(daily, cit)
    assert row(d, "group", "a")["rate"] == pytest.approx(0.25)
    assert row(d, "group", "b")["rate"] == pytest.approx(1.0)
    assert row(d, "region", "s")["rate"] is None  # no occurrences there


def test_penalties_over_time():
    p = M.penalties_over_time(ledger_table())
    day2 = {r["evidence"]: r["penalties"] for r in
            p.filter(pl.col("day") == 2).iter_rows(named=True)}
    assert day2 == {"true": 1, "derived": 1, "benign": 1}
    assert int(p["penalties"].sum()) == 8  # the reward and the reversal are not penalties


# ---------------------------------------------------------------- 3 categorisation
def test_tier_shares_gini_and_lists():
    daily = pl.DataFrame({"day": [0, 1], "tier_A": [3, 1], "tier_B": [1, 3],
                          "list_blacklist": [0, 2], "entered_blacklist": [0, 2],
                          "left_blacklist": [0, 0]})
    ts = M.tier_shares_over_time(daily, ["A", "B"])
    assert ts.filter((pl.col("day") == 1) & (pl.col("tier") == "B"))["share"][0] == 0.75
    assert ts["tier"].to_list()[:2] == ["A", "B"]
    ls = M.list_sizes_over_time(daily, ["blacklist"])
    assert ls["size"].to_list() == [0, 2] and ls["entered"].to_list() == [0, 2]
    c = citizens_table()
    final = M.tier_shares(c, ["A", "B", "C"])
    assert row(final.filter(pl.col("tier") == "C"))["share"] == pytest.approx(2 / 8)
    assert row(final.filter(pl.col("tier") == "A"), "group", "a")["share"] == 0.75
    g = M.score_gini(c)
    assert row(g)["gini"] == pytest.approx(M.gini(c["score"].to_numpy()), abs=TOL)
    assert row(g, "group", "a")["gini"] == pytest.approx(M.gini([1000, 990, 1000, 950]))
    assert row(g, "region", "s")["mean_score"] == pytest.approx(900)
    sh = M.list_shares(c, ["blacklist"])
    assert row(sh)["share"] == pytest.approx(3 / 8)
    assert row(sh)["ever_share"] == pytest.approx(4 / 8)  # citizen 2 was listed and left


# ---------------------------------------------------------------- 4 judgements
def consequences_and_services():
    cons = pl.DataFrame({
        "consequence": ["ban", "ban", "perk", "perk", "shame", "shame"],
        "effect": ["deny", "deny", "reward", "reward", "publish", "publish"],
        "service": ["trains", "trains", "trains", "trains", None, None],
        "sanction": [True, True, False, False, True, True],
        "provenance": ["documented"] * 6, "group": ["a", "b"] * 3,
        "applied": [1, 4, 3, 0, 0, 2]})
    svc = pl.DataFrame({"service": ["trains", "trains", "internet", "internet"],
                        "group": ["a", "b", "a", "b"], "attempts": [10, 20, 30, 40],
                        "refused_by_others": [0, 1, 0, 0]})
    return cons, svc


def test_consequence_rates_and_decisions():
    cons, svc = consequences_and_services()
    r = M.consequence_rates(cons, svc, citizens_table())

    def get(c, g):
        return r.filter((pl.col("consequence") == c) & (pl.col("group") == g)).row(
            0, named=True)
    assert get("ban", "b")["rate"] == pytest.approx(4 / 20) and get("ban", "b")["per"] == "attempt"
    assert get("ban", "all")["rate"] == pytest.approx(5 / 30)
    shame = get("shame", "b")
    assert shame["rate"] == pytest.approx(2 / 4) and shame["per"] == "citizen"
    assert get("shame", "all")["rate"] == pytest.approx(2 / 8)
    d = M.service_decisions(cons, svc)
    trains = d.filter((pl.col("service") == "trains") & (pl.col("group") == "all")).row(
        0, named=True)
    assert (trains["attempts"], trains["denied"], trains["granted"],
            trains["refused_by_others"]) == (30, 5, 3, 1)
    assert trains["denial_rate"] == pytest.approx(5 / 30)
    gated = M.decisions_gated(cons, svc)
    allg = gated.filter(pl.col("group") == "all").row(0, named=True)
    assert allg["decisions"] == 100 and allg["gated"] == 30
    assert allg["gated_share"] == pytest.approx(0.3)  # the design: which services are gated
    assert allg["changed_share"] == pytest.approx(8 / 100)
    assert gated.filter(pl.col("group") == "b")["changed"][0] == 4


def test_sanctioned_and_wrongful():
    s = M.sanctioned_citizens(citizens_table())
    assert row(s)["sanctioned"] == 4 and row(s)["sanctioned_share"] == 0.5
    assert row(s, "group", "b")["sanctions_per_citizen"] == pytest.approx(6 / 4)
    w = M.wrongful_sanctions(evidence())
    # sanctioned: 2 (better half, benign -30: wrongful), 4 (tainted 20 of 30: wrongful),
    # 6 (true evidence, worse half: rightful), 7 (benign 10 of 20: half → wrongful)
    r = row(w)
    assert (r["sanctioned"], r["better_half"], r["mostly_tainted"], r["wrongful"]) == (4, 1, 3, 3)
    assert r["any_tainted"] == 3 and r["share"] == pytest.approx(3 / 4)
    assert row(w, "group", "b")["wrongful"] == 2
    assert row(w, "region", "n")["wrongful"] == 1


def test_prediction_errors():
    pred = pl.DataFrame({"day": [30, 30, 60, 60], "group": ["a", "b", "a", "b"],
                         "tp": [2, 1, 2, 0], "fp": [1, 3, 0, 1], "fn": [1, 0, 1, 1],
                         "tn": [10, 5, 10, 5]})
    pe = M.prediction_errors(pred)
    a = pe.filter(pl.col("group") == "a").row(0, named=True)
    assert a["precision"] == pytest.approx(4 / 5) and a["recall"] == pytest.approx(4 / 6)
    assert a["false_positive_rate"] == pytest.approx(1 / 21)
    assert a["base_rate"] == pytest.approx(6 / 27)  # (tp + fn) of all judged
    b = pe.filter(pl.col("group") == "b").row(0, named=True)
    assert b["false_positive_rate"] == pytest.approx(4 / 14)
    assert pe.filter(pl.col("group") == "all")["tp"][0] == 5
    assert M.prediction_errors(pred.head(0)) is None


# ---------------------------------------------------------------- 5 intensification
def tiers_snapshots() -> pl.DataFrame:
    return pl.DataFrame({
        "citizen": list(range(8)),
        "day_0": ["A"] * 8,
        "day_30": ["A", "A", "A", "B", "B", "A", "C", "C"],
        "day_90": ["A", "A", "A", "A", "C", "A", "C", "B"],
        "day_120": ["A", "A", "A", "A", "C", "A", "C", "C"],
    })


def test_snapshot_pairs_and_mobility():
    assert M.snapshot_days(tiers_snapshots()) == [0, 30, 90, 120]
    assert M.snapshot_pairs([0, 30, 90, 180, 364], 365) == [(0, 364)]
    assert M.snapshot_pairs([0, 30, 90, 120], 30) == [(0, 30), (90, 120)]
    mob = M.mobility(tiers_snapshots(), ["A", "B", "C"], horizons=(30, 90))

    def share(h, a, b):
        return mob.filter((pl.col("horizon") == h) & (pl.col("from_tier") == a)
                          & (pl.col("to_tier") == b))["share"][0]
    # 30 days: (0→30): 8 from A: 4 A, 2 B, 2 C; (90→120): A→A 5, C→C 2, B→C 1
    assert share(30, "A", "A") == pytest.approx(9 / 13)
    assert share(30, "A", "C") == pytest.approx(2 / 13)
    assert share(30, "B", "C") == pytest.approx(1.0)
    # 90 days: (0→90) and (30→120)
    assert share(90, "B", "A") == pytest.approx(1 / 2)
    assert share(90, "C", "C") == pytest.approx(1.0)
    # integer codes work the same
    codes = tiers_snapshots().with_columns(
        [pl.col(c).replace_strict({"A": 0, "B": 1, "C": 2}, return_dtype=pl.Int8)
         for c in ("day_0", "day_30", "day_90", "day_120")])
    assert M.mobility(codes, ["A", "B", "C"], (30, 90)).equals(mob)
    assert M.mobility(None, ["A"]) is None


def test_persistence_at_the_bottom():
    per = M.persistence(tiers_snapshots(), ["A", "B", "C"], citizens_table(), bottom=["C"],
                        horizons=(30, 90))
    r30 = per.filter((pl.col("horizon") == 30) & (pl.col("by") == "all")).row(0, named=True)
    assert (r30["at_bottom"], r30["stayed"]) == (2, 2)  # only 90→120 starts at C
    r90 = per.filter((pl.col("horizon") == 90) & (pl.col("by") == "all")).row(0, named=True)
    assert (r90["at_bottom"], r90["stayed"]) == (2, 2)  # 30→120: citizens 6, 7
    per_bc = M.persistence(tiers_snapshots(), ["A", "B", "C"], bottom=["B", "C"],
                           horizons=(60,))
    r = per_bc.row(0, named=True)  # 30→90: B,B,C,C → A,C,C,B: 3 of 4 stay
    assert (r["at_bottom"], r["stayed"], r["share"]) == (4, 3, 0.75)
    # Citizen 1 enters on day 0 and stays; 2 enters on day 0, leaves on 5 and is back on
    # 9; 3 enters on day 2 and leaves on 12, the day of its 10-day check; 4 enters on day 1
    # and leaves on day 4; 5 enters on day 15, too late to be checked in a 20-day run.
    moves = pl.DataFrame({
        "day": [0, 0, 1, 2, 4, 5, 9, 12, 15], "citizen": [1, 2, 4, 3, 4, 2, 2, 3, 5],
        "change": ["entered", "entered", "entered", "entered", "left", "left", "entered",
                   "left", "entered"]})
    pe = M.persistence_after_entry(moves, days=20, after=10).row(0, named=True)
    assert (pe["entered"], pe["checked"], pe["stayed"]) == (6, 5, 3)  # 2's re-entry too
    assert pe["share"] == pytest.approx(3 / 5)


def test_network_and_income_series():
    daily = pl.DataFrame({"day": [0, 1, 2], "assortativity": [0.1, float("nan"), 0.3],
                          "ties_dropped": [2, 0, 1], "ties_formed": [1, 1, 0],
                          "mean_income": [1.0, 0.99, 0.98]})
    a = M.assortativity_over_time(daily)
    assert a["day"].to_list() == [0, 2]
    t = M.ties_over_time(daily)
    assert t["dropped_total"].to_list() == [2, 2, 3]
    assert M.income_over_time(daily)["mean_income"][-1] == pytest.approx(0.98)
    assert M.assortativity_over_time(daily.select("day")) is None
    assert M.ties_over_time(daily.select("day")) is None
    ties = pl.DataFrame({"change": ["dropped", "dropped", "formed"],
                         "reason": ["public_list", "association_rule", "public_list"]})
    tc = M.tie_changes(ties)
    assert tc.filter(pl.col("change") == "dropped")["ties"].sum() == 2


def test_chilling_in_run_and_counterfactual():
    policy = M.policy_table(fake_scenario())
    daily = pl.DataFrame({"day": [0], "occurrences_late": [8], "chilled_late": [2],
                          "occurrences_jay": [10], "chilled_jay": [10],
                          "benign_chilled_jay": [3]})
    ch = M.chilling(daily, policy)
    late = ch.filter(pl.col("behaviour") == "late").row(0, named=True)
    assert late["chilled"] == 2 and late["lawful_chilled"] == 2
    assert late["without_policy"] == 10 and late["share"] == pytest.approx(0.2)
    jay = ch.filter(pl.col("behaviour") == "jay").row(0, named=True)
    assert jay["lawful_chilled"] == 3 and jay["source"] == "deterred"
    base = pl.DataFrame({"day": [0], "occurrences_late": [10], "occurrences_jay": [20],
                         "benign_occurrences_jay": [4]})
    pol = pl.DataFrame({"day": [0], "occurrences_late": [8], "occurrences_jay": [10],
                        "benign_occurrences_jay": [2]})
    cf = M.chilling(pol, policy, base)
    jay = cf.filter(pl.col("behaviour") == "jay").row(0, named=True)
    assert (jay["chilled"], jay["chilled_benign"], jay["lawful_chilled"]) == (10, 2, 2)
    assert cf.filter(pl.col("behaviour") == "late")["lawful_chilled"][0] == 2
    assert M.chilling(pl.DataFrame({"day": [0]}), policy) is None


def test_income_by_tier_and_gap():
    ib = M.income_by_tier(citizens_table(), ["AA", "A", "B", "C"])
    assert ib["tier"].to_list() == ["AA", "A", "B", "C"] and ib["citizens"][0] == 0
    a = ib.filter(pl.col("tier") == "A").row(0, named=True)
    assert a["income_start"] == pytest.approx(5 / 4) and a["income_end"] == pytest.approx(5 / 4)
    c = ib.filter(pl.col("tier") == "C").row(0, named=True)
    assert c["income_end"] == pytest.approx(0.35) and c["change"] == pytest.approx(-0.15)
    gap = M.income_gap(ib)
    assert gap["top"] == "A" and gap["bottom"] == "C"
    assert gap["ratio_end"] == pytest.approx(1.25 / 0.35)


# ---------------------------------------------------------------- 6 taking authority
def test_score_knowledge():
    c = citizens_table()
    k = M.score_knowledge(c)
    labels = c["conduct"].to_numpy() > 0.55
    assert row(k)["auc"] == pytest.approx(roc_auc_score(labels, c["score"].to_numpy()))
    assert row(k)["spearman"] == pytest.approx(
        spearmanr(c["score"].to_numpy(), c["conduct"].to_numpy())[0], abs=TOL)
    # group a is all in the better half: AUC undefined there
    assert row(k, "group", "a")["auc"] is None or math.isnan(row(k, "group", "a")["auc"])


# ---------------------------------------------------------------- disparate impact
def test_disparate_impact_four_fifths():
    rates = pl.DataFrame({
        "rate": ["ban"] * 3 + ["perk"] * 2 + ["rare"] * 2,
        "adverse": [True] * 3 + [False] * 2 + [True] * 2,
        "by": ["group"] * 7, "who": ["a", "b", "c", "a", "b", "a", "b"],
        "numerator": [100, 200, 120, 500, 350, 0, 2], "denominator": [10000] * 7,
        "value": [0.01, 0.02, 0.012, 0.05, 0.035, 0.0, 0.0002]})
    di = M.disparate_impact(rates)

    def get(rate, who):
        return di.filter((pl.col("rate") == rate) & (pl.col("who") == who)).row(0, named=True)
    assert get("ban", "a")["impact_ratio"] == pytest.approx(1.0)
    assert get("ban", "b")["impact_ratio"] == pytest.approx(0.5) and get("ban", "b")["flagged"]
    c = get("ban", "c")
    assert c["impact_ratio"] == pytest.approx(1 / 1.2) and not c["below_four_fifths"]
    assert get("perk", "b")["impact_ratio"] == pytest.approx(0.7) and get("perk", "b")["flagged"]
    assert not get("perk", "a")["flagged"]
    rare = get("rare", "b")  # below four fifths, but on two events only: not significant
    assert rare["impact_ratio"] == 0.0 and rare["below_four_fifths"] and not rare["flagged"]
    assert get("rare", "a")["impact_ratio"] == 1.0


# ---------------------------------------------------------------- a whole run
def test_measure_and_summary_on_a_run(essay_run):
    m = M.measure(essay_run)
    for pid, (_, names) in M.PROCESSES.items():
        assert any(n in m for n in names), pid
    for name in ("policy", "tier_shares_over_time", "score_gini", "consequence_rates",
                 "wrongful_sanctions", "score_knowledge", "disparate_impact",
                 "income_by_tier", "benign_penalty_share"):
        assert isinstance(m[name], pl.DataFrame) and m[name].height > 0, name
    s = M.summary(essay_run, m)
    json.dumps(s, allow_nan=False)
    head = essay_run.metrics
    # ledger metrics agree with the engine's totals when everyone's ledger is kept
    assert s["visibility"]["penalties"] == head["penalties"]["total"]
    assert s["visibility"]["misattributed_penalties"] == head["penalties"]["misattributed"]
    assert s["judgements"]["sanctions_total"] == head["sanctions_total"]
    assert s["categorisation"]["score_gini"] == pytest.approx(head["score_gini"], abs=TOL)
    assert set(s) >= {"limits", "visibility", "categorisation", "judgements",
                      "intensification", "authority", "disparate_impact"}
    # list entries and exits are reported, and add up to the final size
    cat = s["categorisation"]
    for name, size in cat["list_sizes_final"].items():
        assert cat["list_entries"][name] - cat["list_exits"][name] == size


def test_summary_of_the_null_policy(null_run):
    s = M.summary(null_run)
    json.dumps(s, allow_nan=False)
    assert s["judgements"]["sanctions_total"] == 0
    assert s["visibility"]["penalties"] == 0
    assert s["authority"]["auc"] == pytest.approx(0.5)
    assert s["authority"]["spearman"] is None
    assert s["disparate_impact"]["flagged"] == []


def test_repair_by_income_on_a_hand_made_ledger():
    import pyarrow as pa

    from metricpower.metrics.headline import repair_by_income

    citizens = pa.table({"income": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    ledger = pa.table({
        "citizen": [0, 0, 1, 3, 3, 6, 6, 7, 7],
        "points": [-10, 5, -10, -10, 3, -10, 8, -10, 10],
        # citizen 7's +10 undoes its penalty on appeal: not repair
        "reverses": [-1, -1, -1, -1, -1, -1, -1, -1, 8],
    })
    got = repair_by_income(citizens, ledger)
    # quartiles of income: citizens {0, 1}, {2, 3}, {4, 5}, {6, 7}; penalised among them:
    # 0 (+5) and 1 (0) | 3 (+3) | nobody | 6 (+8) and 7 (0: its +10 is a reversal)
    assert got == {"q1": 2.5, "q2": 3.0, "q3": 0.0, "q4": 4.0}


def test_metrics_json_reports_appeals_and_repair(essay_run):
    m = essay_run.metrics
    appeals = m["appeals"]
    assert appeals["filed"] >= appeals["decided"] >= appeals["upheld"]
    assert appeals["filed"] > 0
    assert appeals["upheld_misattributed"] + appeals["upheld_benign"] <= appeals["upheld"]
    ledger = essay_run.tables["ledger"]
    assert appeals["upheld"] == int((ledger["reverses"].to_numpy() >= 0).sum())
    assert set(m["repair_by_income"]) == {"q1", "q2", "q3", "q4"}
