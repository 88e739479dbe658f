"""Running one group of members in a worker: the population built once, each member
simulated on it, its run directory written, its metrics flattened to rows.

This is the function every executor ships to its workers, so it must import cheaply and
its arguments and result must pickle: scenarios go in, small row lists come out.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from metricpower.ensembles.plan import Member


def numbers(d: dict, prefix: str = "") -> dict[str, float]:
    """Every number in nested metrics, under dotted keys (booleans as 0/1; NaN and None
    left out, so a mean is over the members that have a value)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(numbers(v, key))
        elif isinstance(v, bool | int | float) and math.isfinite(float(v)):
            out[key] = float(v)
    return out


def effect_numbers(effects: dict) -> dict[str, float]:
    """A comparison's effects as numbers: the A − B difference of each (its `a` and `b`
    are the two members' own metrics)."""
    out = {}
    for key, value in numbers(effects).items():
        if key.endswith(".difference"):
            out[key.removesuffix(".difference")] = value
        elif not key.endswith((".a", ".b")):
            out[key] = value
    return out


def run_group(out: str, members: list[Member], reports: bool,
              baseline_arm: int | None = None
              ) -> list[tuple[int, list[tuple[str, float]], dict[str, float]]]:
    """Simulate `members` (all on one population) and write each run directory under
    `out/members/`. Returns (member, [(metric, value), ...], seconds) for each, `seconds`
    saying where its time went (the population's build is charged to the first member).
    With `baseline_arm` (a paired comparison) the other arm's members also carry the
    comparison's effects against the baseline member, as metrics `effects.<name>`."""
    from metricpower.population import build_population
    from metricpower.runs import simulate

    clock = time.perf_counter()
    population = build_population(members[0].scenario)
    built = time.perf_counter() - clock
    results = []
    base_run = None
    ordered = sorted(members, key=lambda m: m.arm != baseline_arm)
    for m in ordered:
        t0 = time.perf_counter()
        run = simulate(m.scenario, population=population)
        t1 = time.perf_counter()
        # The member's folder is the ensemble's own: a killed run may have written it
        # without recording it in the manifest, and --resume writes it again.
        run.write(Path(out) / "members" / f"{m.member:05d}", report=reports, force=True)
        t2 = time.perf_counter()
        rows = numbers(run.metrics)
        if baseline_arm is not None:
            if m.arm == baseline_arm:
                base_run = run
            else:
                from metricpower.compare import compare_runs

                eff = compare_runs(run, base_run, "A", "B").effects
                rows |= {f"effects.{k}": v for k, v in effect_numbers(eff).items()}
        seconds = {"population": built, "simulate": t1 - t0, "write": t2 - t1,
                   "rows": time.perf_counter() - t2}
        built = 0.0
        results.append((m.member, sorted(rows.items()), seconds))
    return sorted(results)
