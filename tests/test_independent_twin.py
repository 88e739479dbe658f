"""The engine against an independent twin (benchmarks/twin.py): the model written a
second time, sharing no code with the engine, run on the essay preset with responses on.

Both sides run the same scenario on K = 6 seeds each (their own populations and draws),
and every outcome — by group (mean score, penalties, false-match penalties, sanctions,
share ever blacklisted) and overall (points by rule, acts by behaviour, attempts, each
consequence, list entries and exits, tiers, appeals) — is compared by
z = (mean twin − mean engine) / SE, SE from the spread between seeds. An outcome fails
at |z| > 6: with ~80 outcomes and Welch df ≈ 10, a correct engine fails one by chance
about 1% of the time.

The scenario is the essay preset made to show its mechanics at 2,000 citizens in 120
days: listings and payments frequent, cameras erring more often, the four audit groups
of equal size. Power: planting in the engine's input (1) a third off one rule's points,
(2) half again on one group's false-match factor, (3) a blacklist that cannot be left,
each fails the comparison on the outcome it touches (on 8 engine seeds: with 6, the
false-match plant reached |z| = 7.5 on one set of draws and 5.7 on another).

The twin follows issue 9's reading (deterrence from the penalty an act would really get;
false matches only for acts one could do); before the engine was fixed, the comparison
failed on exactly those outcomes (impossible charges at z = -64, game purchases at +45).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from metricpower.runs import simulate
from metricpower.scenario import load_preset
from metricpower.scenario.load import merge

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import twin as T  # noqa: E402

K, CITIZENS, DAYS, Z = 6, 2_000, 120, 6.0
#: Engine seeds for a planted discrepancy: each is far beyond sampling error, and the
#: engine's spread is no wider than the twin's.
K_PLANTED = 8
GROUPS = ("majority_men", "majority_women", "minority_men", "minority_women")
SHOWABLE = {
    "run": {"citizens": CITIZENS, "days": DAYS},
    "behaviours": [{"name": "civil_fraud", "rate": 0.0003},
                   {"name": "debt_payment", "rate": 0.005}],
    "sensors": [{"name": "camera", "false_match_rate": 0.0003}],
    "population": {"groups": [{"name": g, "share": 0.25} for g in GROUPS]},
}
#: Outcomes where today's engine departs from the model (issue 9): deterrence ignores
#: rule conditions, so game and frivolous purchases are chilled where no rule would
#: penalise them (defect 4); false matches ignore `requires`, charging people with dogs
#: they do not own and so fewer jaywalkings (defect 5). Empty this when engine/ is fixed.


def scenario(overrides: dict | None = None, seed: int = 1):
    sc = load_preset("essay", merge(merge(SHOWABLE, {"run": {"seed": seed}}), overrides or {}))
    return T.comparable(sc)


@pytest.fixture(scope="module")
def twin_outcomes():
    return [T.Twin(scenario(seed=100 + k), 100 + k).run().outcomes() for k in range(K)]


def engine_outcomes(overrides: dict | None = None, seeds: int = K):
    out = []
    for k in range(seeds):
        sc = scenario(overrides, seed=100 + k)
        out.append(T.engine_outcomes(sc, simulate(sc).tables))
    return out


@pytest.fixture(scope="module")
def engine_as_is():
    return engine_outcomes()


def table(rows) -> str:
    return "\n".join(f"{k:34s} twin {a:11.4f} engine {b:11.4f} z {z:8.2f}"
                     for k, a, b, z in rows[:15])


def test_twin_shares_no_model_code():
    tree = ast.parse((ROOT / "benchmarks" / "twin.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    ours = {m for m in modules if m and m.startswith("metricpower")}
    assert ours == {"metricpower.scenario.schema"}, ours


def test_engine_agrees_with_the_twin(twin_outcomes, engine_as_is):
    rows, failed = T.compare(twin_outcomes, engine_as_is, CITIZENS, Z)
    assert len(rows) > 70
    assert not failed, table(rows)


@pytest.mark.parametrize(("planted", "outcome"), [
    ({"rules": [{"name": "late_repayment", "points": -7}]}, "per_entry.late_repayment"),
    ({"sensors": [{"name": "camera", "false_match_by_group": {
        "majority_men": 1.0, "majority_women": 3.0, "minority_men": 10.0,
        "minority_women": 45.0}}]}, "minority_women.misattributed"),
    ({"lists": [{"name": "blacklist", "exit": "score > 100000"}]}, "left.blacklist"),
], ids=["a-third-off-late-repayment", "half-again-false-matches", "a-list-with-no-exit"])
def test_planted_discrepancies_fail_the_comparison(twin_outcomes, planted, outcome):
    rows, failed = T.compare(twin_outcomes, engine_outcomes(planted, K_PLANTED), CITIZENS, Z)
    assert outcome in failed, table(rows)
