"""Running one group of members in a worker: the population built once, each member
simulated on it, its run directory written, its metrics flattened to rows.

This is the function every executor ships to its workers, so it must import cheaply and
its arguments and result must pickle: scenarios go in, small row lists come out.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from metricpower.ensembles.plan import BATCH_CITIZENS, Member


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
              baseline_arm: int | None = None, batch: int = BATCH_CITIZENS
              ) -> list[tuple[int, list[tuple[str, float]], dict[str, float]]]:
    """Simulate `members` and write each run directory under `out/members/`. Returns
    (member, [(metric, value), ...], seconds) for each, `seconds` saying where its time
    went. Each population is built once (its build charged to the first member on it);
    members of one arm run side by side in one engine, up to `batch` citizens at once
    (0: each alone; `simulate_batch`: the same results as one by one; the engine's time is
    shared out equally). With `baseline_arm` (a paired comparison) the other arm's
    members also carry the comparison's effects against the baseline member on their
    seed, as metrics `effects.<name>`."""
    from metricpower.population import build_population, population_of
    from metricpower.runs import simulate_batch

    populations: dict[str, object] = {}
    built: dict[int, float] = {}
    for m in members:
        key = population_of(m.scenario)
        if key not in populations:
            clock = time.perf_counter()
            populations[key] = build_population(m.scenario)
            built[m.member] = time.perf_counter() - clock
    results = []
    base_runs = {}
    ordered = sorted(members, key=lambda m: (m.arm != baseline_arm, m.arm, m.member))
    for side_by_side in batches(ordered, batch):
        t0 = time.perf_counter()
        runs = simulate_batch([m.scenario for m in side_by_side],
                              [populations[population_of(m.scenario)] for m in side_by_side])
        share = (time.perf_counter() - t0) / len(side_by_side)
        for m, run in zip(side_by_side, runs, strict=True):
            t1 = time.perf_counter()
            # The member's folder is the ensemble's own: a killed run may have written it
            # without recording it in the manifest, and --resume writes it again.
            run.write(Path(out) / "members" / f"{m.member:05d}", report=reports, force=True)
            t2 = time.perf_counter()
            rows = numbers(run.metrics)
            if baseline_arm is not None:
                if m.arm == baseline_arm:
                    base_runs[m.seed] = run
                else:
                    from metricpower.compare import compare_runs

                    eff = compare_runs(run, base_runs[m.seed], "A", "B").effects
                    rows |= {f"effects.{k}": v for k, v in effect_numbers(eff).items()}
            seconds = {"population": built.get(m.member, 0.0), "simulate": share,
                       "write": t2 - t1, "rows": time.perf_counter() - t2}
            results.append((m.member, sorted(rows.items()), seconds))
    return sorted(results)


def batches(members: list[Member], limit: int = BATCH_CITIZENS) -> list[list[Member]]:
    """Consecutive members of one arm, up to `limit` citizens a batch (0: one each)."""
    out: list[list[Member]] = []
    for m in members:
        last = out[-1] if out else None
        if (last is not None and last[0].arm == m.arm
                and sum(x.scenario.run.citizens for x in last) + m.scenario.run.citizens
                <= limit):
            last.append(m)
        else:
            out.append([m])
    return out
