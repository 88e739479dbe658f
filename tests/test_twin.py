"""The engine and its Mesa twin (benchmarks/mesa_twin.py) agree within sampling error.

The twin is the same model written the idiomatic agent-based way, with its own random
numbers, so the two can only agree in distribution. For each scenario we draw K
populations (seeds); on each population the twin runs once and the engine R times with
different dynamic seeds (same citizens and network, different `run.seed`). For every
outcome (final mean score, tier shares, sanctions, penalties, list shares, occurrences,
attempts, each rule's score changes, ...; all per citizen) the test statistic is

    d = mean over populations k of (twin_k - mean_r engine_k,r)

Under the hypothesis that both implement the same model, twin_k and engine_k,r are draws
from the same distribution given population k, so

    Var(d) = (s² + s²/R) / K,

where s² is the variance of the outcome between runs on one population. This s² includes
everything that correlates citizens within a run (friends' scores, lists), which a
per-citizen standard error would miss. We estimate it, pooled over populations, from the
engine's replicates (K·(R-1) degrees of freedom: the engine is cheap, the twin is not)
and from the spread of the K differences twin_k - mean_r engine_k,r about their mean
(each has variance s²·(1 + 1/R); K-1 more degrees of freedom; a constant bias in the twin
does not inflate it): K·(R-1) + K-1 = 19 in all. An outcome has a resolution of one
citizen (1/N per run), so SE is floored at 1/(N·√K).

The bound: z = d/SE is a t statistic with 19 degrees of freedom. The headline outcomes
(final mean score, tier and list shares, sanctions, penalties; about 10 per scenario) must
have |z| ≤ 4: P(|t₁₉| > 4) ≈ 8·10⁻⁴ each. Every other outcome (each rule's score changes,
each behaviour's occurrences, each service's attempts, each consequence, time listed; about
60 per scenario, many of them correlated) must have |z| ≤ 5, a Bonferroni-style widening:
P(|t₁₉| > 5) ≈ 8·10⁻⁵ each. A correct twin so fails by chance in at most about 2% of draws
of the seeds. Planted bugs in the twin that this table catches (at these sizes): ignoring
benign shares, sensor detection, caps (stress), list minimum stays, false-match group
multipliers (stress), or drawing at most one act a day instead of Poisson counts. The
failure message prints the table; `python tests/test_twin.py` prints it too.

The twin does not model responses, so both run with responses off.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mesa")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from mesa_twin import summary_of_run  # noqa: E402

Z = 4.0          # headline outcomes
Z_BREADTH = 5.0  # everything else
HEADLINE = ("mean_score", "tier_", "list_", "sanctions", "penalties")
K = 4  # populations (seeds), one twin run each
R = 5  # engine runs per population

#: The essay preset over four months: the headline outcomes (court listings at five
#: times the documented inflow, so that sanctions happen among 1,000 citizens).
ESSAY = {"overrides": {"behaviours": [{"name": "civil_fraud", "rate": 0.00003}]},
         "citizens": 1000, "days": 120}
#: The essay with faster clocks and more of everything, so that two months reach what
#: the essay takes years to: restoration, leaving the blacklist (and re-entering it),
#: reaching the redlist and its rewards, schedules and caps that bind, tier D, pet
#: confiscation and false matches.
STRESS = {
    "overrides": {
        "behaviours": [{"name": "crime", "rate": 0.003}, {"name": "civil_fraud", "rate": 0.002},
                       {"name": "dog_off_leash", "rate": 0.1},
                       {"name": "volunteering", "rate": 0.1}, {"name": "charity", "rate": 0.1}],
        "sensors": [{"name": "camera", "false_match_rate": 0.002}],
        "rules": [{"name": "restoration", "clean_days": 20, "every": 10},
                  {"name": "low_scoring_friends", "every": 10},
                  {"name": "blacklisted_friend", "every": 15},
                  {"name": "blacklist_status", "every": 10}],
        # A list entered on a low tier or any offence, left at 850 points: it drives
        # scores down to tier D.
        "lists": [{"name": "blacklist", "min_days": 20, "exit": "score >= 850",
                   "enter": "tier == 'D' or count('civil_fraud', 365) > 0 "
                            "or count('crime', 365) > 0"}],
    },
    "citizens": 500,
    "days": 60,
}
SCENARIOS = {"essay": ESSAY, "stress": STRESS}


def run_all() -> dict:
    """Every run of every scenario, spread over the CPUs (the twin's slow runs first),
    keyed ("twin" | "engine", scenario name, population seed, dynamics seed). Workers are
    spawned, not forked: the parent may already run threads (Numba kernels)."""
    keys = [("twin", name, k, 10_000 + k) for name in SCENARIOS for k in range(1, K + 1)]
    keys += [("engine", name, k, 100 * k + r) for name in SCENARIOS
             for k in range(1, K + 1) for r in range(R)]
    tasks = [(system, "essay", SCENARIOS[name]["overrides"], SCENARIOS[name]["citizens"],
              SCENARIOS[name]["days"], pop_seed, seed)
             for system, name, pop_seed, seed in keys]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = max(1, min(cpus or 1, 8))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(keys, pool.map(summary_of_run, tasks), strict=True))


@pytest.fixture(scope="module")
def runs() -> dict:
    return run_all()


def compare(runs: dict, name: str) -> list[dict]:
    """Per outcome: engine and twin means, the difference, its SE and z (see module doc)."""
    n = SCENARIOS[name]["citizens"]
    twin = [runs[("twin", name, k, 10_000 + k)] for k in range(1, K + 1)]
    engine = [[runs[("engine", name, k, 100 * k + r)] for r in range(R)]
              for k in range(1, K + 1)]
    rows = []
    for key in twin[0]:
        t = np.array([run[key] for run in twin])                   # (K,)
        e = np.array([[run[key] for run in pop] for pop in engine])  # (K, R)
        diffs = t - e.mean(axis=1)
        d = float(diffs.mean())
        within = ((e - e.mean(axis=1, keepdims=True)) ** 2).sum()
        between = ((diffs - d) ** 2).sum() / (1 + 1 / R)
        s2 = float((within + between) / (K * (R - 1) + K - 1))
        se = max(np.sqrt(s2 * (1 + 1 / R) / K), 1 / (n * np.sqrt(K)))
        rows.append({"outcome": key, "engine": float(e.mean()), "twin": float(t.mean()),
                     "diff": d, "se": float(se), "z": d / se})
    return rows


def bound(outcome: str) -> float:
    return Z if outcome.startswith(HEADLINE) else Z_BREADTH


def table(rows: list[dict]) -> str:
    lines = [f"{'outcome':34s} {'engine':>12s} {'twin':>12s} {'diff':>10s} {'SE':>9s} {'z':>6s}"]
    lines += [f"{r['outcome']:34s} {r['engine']:12.5g} {r['twin']:12.5g} {r['diff']:10.3g} "
              f"{r['se']:9.2g} {r['z']:6.2f}" for r in rows]
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_twin_agrees_with_engine(runs, name):
    rows = compare(runs, name)
    bad = [r["outcome"] for r in rows if abs(r["z"]) > bound(r["outcome"])]
    assert not bad, (f"{name}: twin and engine differ beyond {Z} SE (headline) or "
                     f"{Z_BREADTH} SE (others) in {bad}\n{table(rows)}")
    # The headline outcomes are in the table, and the scenario actually exercises them.
    keys = {r["outcome"]: r for r in rows}
    for key in ("mean_score", "sanctions", "penalties", "tier_A", "tier_B"):
        assert key in keys
    assert keys["penalties"]["engine"] > 0.5 and keys["sanctions"]["engine"] > 0.005
    if name == "stress":
        for key in ("entries_restoration", "left_blacklist", "list_redlist", "rewards",
                    "applied_pet_confiscation", "misattributed_penalties", "tier_D"):
            assert keys[key]["engine"] > 0, key


def test_benchmark_quick(tmp_path):
    """`benchmarks/run.py --quick` runs the engine and the twin and writes its table."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    md = (tmp_path / "quick.md").read_text()
    data = json.loads((tmp_path / "quick.json").read_text())
    assert "citizen-days/s" in md and "Mesa twin" in md
    systems = {row["system"] for row in data["runs"]}
    assert {"engine", "twin"} <= systems
    assert all(row["status"] == "ok" for row in data["runs"]), data["runs"]
    assert data["machine"]["cores"] >= 1 and data["bandwidth"]["copy_gb_s"] > 0


if __name__ == "__main__":  # print the agreement tables
    results = run_all()
    for name in SCENARIOS:
        print(f"\n{name}: N={SCENARIOS[name]['citizens']}, days={SCENARIOS[name]['days']}, "
              f"K={K} populations x (1 twin, {R} engine runs)")
        print(table(compare(results, name)))
