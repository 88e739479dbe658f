"""The headline numbers every run writes to metrics.json."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metricpower.ledger.schema import CITIZENS, CONSEQUENCES, DAILY, LEDGER, SERVICES
from metricpower.scenario import Scenario


def gini(values) -> float:
    """Gini coefficient of non-negative values (0 = all equal)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def _share(counts: dict[str, int]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in counts.items()}


def headline(scenario: Scenario, tables: dict[str, pa.Table]) -> dict:
    citizens, daily = tables["citizens"], tables["daily"]
    n = citizens.num_rows
    score = citizens[CITIZENS["score"]].to_numpy()
    tiers = [t.name for t in scenario.tiers]
    tier_counts = {t: int(daily[DAILY["tier", t]][-1].as_py()) for t in tiers}

    def total(col: str) -> int:
        return int(pc.sum(daily[DAILY[col]]).as_py() or 0) if DAILY.has(daily, col) else 0

    cons = tables["consequences"].to_pylist()
    by_consequence: dict[str, dict] = {}
    for row in cons:
        entry = by_consequence.setdefault(row[CONSEQUENCES["consequence"]], {
            k: row[CONSEQUENCES[k]] for k in ("effect", "service", "sanction", "provenance")}
            | {"applied": 0, "by_group": {}})
        entry["applied"] += row[CONSEQUENCES["applied"]]
        entry["by_group"][row[CONSEQUENCES["group"]]] = row[CONSEQUENCES["applied"]]
    attempts: dict[str, int] = {}
    for row in tables["services"].to_pylist():
        service = row[SERVICES["service"]]
        attempts[service] = attempts.get(service, 0) + row[SERVICES["attempts"]]
    penalties = total("penalties")
    benign, misattributed = total("benign_penalties"), total("misattributed_penalties")
    ledger = tables["ledger"]
    out = {
        "scenario": scenario.name,
        "citizens": n,
        "days": scenario.run.days,
        "seed": scenario.run.seed,
        "mean_score": float(score.mean()),
        "initial_score": scenario.population.initial_score,
        "score_gini": gini(np.maximum(score, 0)),
        "tier_counts": tier_counts,
        "tier_shares": _share(tier_counts),
        "list_sizes": {s.name: int(daily[DAILY["list", s.name]][-1].as_py())
                       for s in scenario.lists},
        "occurrences": total("occurrences"),
        "observed": total("observed"),
        "false_matches": total("false_matches"),
        "penalties": {
            "total": penalties,
            "benign_context": benign,
            "misattributed": misattributed,
            "true": penalties - benign - misattributed,
            "benign_context_share": benign / penalties if penalties else 0.0,
            "misattributed_per_100k": misattributed / n * 1e5,
        },
        "reward_events": total("reward_events"),
        "sanctions_total": sum(c["applied"] for c in by_consequence.values() if c["sanction"]),
        "rewards_total": sum(c["applied"] for c in by_consequence.values() if not c["sanction"]),
        "consequences": by_consequence,
        "service_attempts": attempts,
        "ledger": {"entries": ledger.num_rows,
                   "citizens_kept": int(pc.sum(citizens[CITIZENS["in_ledger"]]).as_py())},
    }
    if DAILY.has(daily, "appeals_filed"):
        upheld = total("appeals_upheld")
        out["appeals"] = {
            "filed": total("appeals_filed"), "decided": total("appeals_decided"),
            "upheld": upheld, "upheld_misattributed": total("appeals_upheld_misattributed"),
            "upheld_benign": total("appeals_upheld_benign"),
            "mean_days_to_redress": total("redress_days") / upheld if upheld else None,
            "waiting_at_end": int(daily[DAILY["appeals_waiting"]][-1].as_py()),
        }
    out["repair_by_income"] = repair_by_income(citizens, ledger)
    return out


def repair_by_income(citizens: pa.Table, ledger: pa.Table) -> dict[str, float]:
    """Points regained (restoration, volunteering, charity; not appeals) per penalised
    citizen, by quartile of starting income: where paying helps, the rich climb back
    faster. Over the citizens whose ledger is kept."""
    n = citizens.num_rows
    citizen = ledger[LEDGER["citizen"]].to_numpy()
    points = ledger[LEDGER["points"]].to_numpy()
    original = ledger[LEDGER["reverses"]].to_numpy() < 0
    gained = np.bincount(citizen[(points > 0) & original], points[(points > 0) & original],
                         minlength=n)
    penalised = np.bincount(citizen[points < 0], minlength=n) > 0
    income = citizens[CITIZENS["income"]].to_numpy()
    edges = np.quantile(income, [0.25, 0.5, 0.75])
    quartile = np.searchsorted(edges, income)
    return {f"q{q + 1}": float(gained[penalised & (quartile == q)].mean())
            if (penalised & (quartile == q)).any() else 0.0 for q in range(4)}
