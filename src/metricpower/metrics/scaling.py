"""National scale by sampling: a run of N citizens stands for a population of P.

A count from the run is scaled by P / N. Its sampling error is that of drawing N
citizens from P: a count of citizens in a state (on a list, in a tier) is binomial,
sd = (P / N) · √(k (1 − k / N)); a count of events (denials, penalties) is treated as
Poisson, sd = (P / N) · √k. Scaled numbers are labelled as such wherever they appear.
"""

from __future__ import annotations

import math

import pyarrow as pa

from metricpower.ledger.schema import CONSEQUENCES, DAILY, SERVICES
from metricpower.scenario import Scenario

#: How a count's sampling error is worked out, by the kind of count.
ERRORS = {"citizens": "binomial", "events": "poisson"}


def scale_count(count: float, citizens: int, represents: int, kind: str) -> dict:
    """A count scaled to the population with its sampling error (one standard error)."""
    factor = represents / citizens
    if kind == "citizens":
        share = min(max(count / citizens, 0.0), 1.0)
        se = factor * math.sqrt(citizens * share * (1 - share))
    elif kind == "events":
        se = factor * math.sqrt(max(count, 0.0))
    else:
        raise ValueError(f"kind: expected one of {sorted(ERRORS)}, found {kind!r}")
    return {"count": count, "scaled": count * factor, "se": se, "error": ERRORS[kind]}


def scaled(scenario: Scenario, tables: dict[str, pa.Table]) -> dict | None:
    """The run's final list sizes, tier counts, consequences applied and service attempts,
    scaled to `run.represents` (None when the run stands for nobody but itself)."""
    represents = scenario.run.represents
    if represents is None:
        return None
    n = tables["citizens"].num_rows
    daily = tables["daily"]

    def last(family: str, name: str) -> int:
        return int(daily[DAILY[family, name]][-1].as_py())

    applied: dict[str, int] = {}
    for row in tables["consequences"].to_pylist():
        name = row[CONSEQUENCES["consequence"]]
        applied[name] = applied.get(name, 0) + row[CONSEQUENCES["applied"]]
    attempts: dict[str, int] = {}
    for row in tables["services"].to_pylist():
        name = row[SERVICES["service"]]
        attempts[name] = attempts.get(name, 0) + row[SERVICES["attempts"]]
    return {
        "represents": represents,
        "citizens": n,
        "factor": represents / n,
        "note": "scaled: count × represents / citizens; se: one standard error of sampling "
                "(binomial for citizens in a state, Poisson for events)",
        "list_sizes": {s.name: scale_count(last("list", s.name), n, represents, "citizens")
                       for s in scenario.lists},
        "tier_counts": {t.name: scale_count(last("tier", t.name), n, represents, "citizens")
                        for t in scenario.tiers},
        "consequences_applied": {k: scale_count(v, n, represents, "events")
                                 for k, v in applied.items()},
        "service_attempts": {k: scale_count(v, n, represents, "events")
                             for k, v in attempts.items()},
    }
