"""The whole country on one GPU (issue 14): one script that, run once on a GPU machine,
gives every figure, into benchmarks/results/gpu.json and gpu.md (naming the machine).

    python benchmarks/gpu.py [--agree-citizens 1000000] [--agree-days 120] [--seeds 5]
                             [--sizes 100000000 1400000000] [--days 365] [--deadline-s 540]
                             [--skip-agreement] [--out benchmarks/results]

1. Agreement: the essay preset at --agree-citizens, the GPU backend against the CPU one,
   seeds 1..K on the CPU and K+1..2K on the GPU (independent: the check faces the whole
   sampling error, as a GPU with its own random streams would). For every headline
   metric by group (mean score, share at the bottom, sanctions, rewards, observed acts,
   rule-breaking acts, points lost, share on each list) and the points each rule moved
   per citizen, a Welch t-test across seeds; the check fails when any p is below
   1% / (number of tests) (Bonferroni: a family-wise false alarm of 1%). Its power, shown
   on the CPU (tests/test_gpu.py, or `--plant RULE`): at 12,000 citizens x 90 days and
   6 seeds a side, late repayment's points changed from -10 to -13 (30%, under the
   third the issue asks for) fail it, with p about 8e-7 against a threshold of 2e-4,
   while CPU against CPU passes (worst p about 0.003). At 10^6 citizens the spread
   across seeds is about nine times smaller, so the power there is larger still.
2. Scale: for each of --sizes, and the largest population that fits where the largest
   asked does not, building the population (timed apart), then the day loop on the GPU,
   with citizen-days/s, the peak device memory and the bytes per citizen by part
   (benchmarks/footprint.py). Before a size is built, what it needs on the device and on
   the host is worked out from the account of a CPU run (`needs`: the held bytes per
   citizen, a day's temporaries, the peak while building, a quarter more for what the
   account does not see); a size that would not fit is reported with those figures, not
   tried (a process killed for memory would lose every figure). A size that runs out of
   time reports the days it did; one that fails reports why.

The results are written after each part, so a run cut short keeps what it measured (an
agreement check that breaks is recorded, and the sizes still run); --deadline-s (default
540: one device call of 600 s) bounds the whole script.

On the lent GPU machine (Python 3.12, CuPy, NumPy, SciPy, Numba, PyArrow; no pydantic):
first, here, `sh benchmarks/gpu_wheels.sh` puts the missing wheels in .whl/; then one
device call, carrying ".whl", with the command

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:src PYTHONUNBUFFERED=1
    python3 benchmarks/gpu.py; cp benchmarks/results/gpu.json benchmarks/results/gpu.md $OUT/

(the import chain was checked that way on a Python 3.12 without the project installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import footprint
import numpy as np

from metricpower.engine import Engine
from metricpower.engine.backend import backend_named
from metricpower.population import make_citizens, make_network
from metricpower.scenario import load_preset

RESULTS = Path(__file__).parent / "results"
#: Family-wise false-alarm rate of the agreement check.
ALPHA = 0.01
#: What a size is taken to need beyond the account of a CPU run (allocator pools,
#: arrays the account does not see, the run's growth past the days measured).
MARGIN = 1.25


def essay(citizens: int, days: int, seed: int, plant: str | None = None):
    """The essay preset; `plant` multiplies that rule's points by 4/3 (rounded)."""
    overrides = {"run": {"citizens": citizens, "days": days, "seed": seed}}
    if plant is not None:
        points = next(r.points for r in load_preset("essay").rules if r.name == plant)
        overrides["rules"] = [{"name": plant, "points": round(points * 4 / 3)}]
    return load_preset("essay", overrides)


def headline_by_group(engine: Engine) -> dict[str, float]:
    """Each headline metric of a finished run (on the host), by group: `metric:group`."""
    sc, state = engine.scenario, engine.state
    group = engine.population.group
    per_citizen = {
        "mean_score": state.score.astype(np.float64),
        "bottom_share": (state.tier >= sc.bottom).astype(np.float64),
        "sanctions": state.sanctions.astype(np.float64),
        "rewards": state.rewards.astype(np.float64),
        "observed": state.observed.astype(np.float64),
        "penalised_acts": state.true_offences.astype(np.float64),
    } | {f"on_{name}": on.astype(np.float64) for name, on in state.on_list.items()}
    # Points from the ledger, over the citizens whose records it keeps (all up to
    # 250,000): lost to penalties by group, and moved by each rule.
    ledger, kept = engine.ledger.columns(), engine.ledger.kept
    points = ledger["points"].astype(np.float64)
    lost = np.zeros(engine.n)
    np.add.at(lost, ledger["citizen"], np.minimum(points, 0))
    per_citizen["points_lost"] = lost
    out = {}
    for g, spec in enumerate(sc.population.groups):
        members = group == g
        for name, values in per_citizen.items():
            where = members & kept if name == "points_lost" else members
            out[f"{name}:{spec.name}"] = float(values[where].mean())
    moved = np.bincount(ledger["rule"], weights=np.abs(points), minlength=len(sc.rules))
    for ri, rule in enumerate(sc.rules):
        out[f"points:{rule.name}"] = float(moved[ri] / kept.sum())
    return out


def run_once(scenario, backend_name: str) -> dict[str, float]:
    citizens = make_citizens(scenario)
    engine = Engine(scenario, citizens, make_network(scenario, citizens),
                    backend_named(backend_name))
    engine.run()
    engine.host()
    return headline_by_group(engine)


def welch_p(a: list[float], b: list[float]) -> float:
    """Two-sided p of Welch's t-test; 1 where both sides are the same constant, 0 where
    they are different constants."""
    from scipy import stats

    a, b = np.asarray(a), np.asarray(b)
    if a.var() == 0 and b.var() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def agreement(a: list[dict[str, float]], b: list[dict[str, float]],
              alpha: float = ALPHA) -> dict:
    """Whether runs `a` and `b` (one dict of metrics per seed) agree on every metric
    within sampling error across seeds, Bonferroni-corrected."""
    keys = sorted(a[0])
    rows = []
    for key in keys:
        x, y = [r[key] for r in a], [r[key] for r in b]
        rows.append({"metric": key, "a_mean": float(np.mean(x)), "b_mean": float(np.mean(y)),
                     "a_sd": float(np.std(x, ddof=1)), "b_sd": float(np.std(y, ddof=1)),
                     "p": welch_p(x, y)})
    threshold = alpha / len(rows)
    worst = min(rows, key=lambda r: r["p"])
    return {"agree": worst["p"] >= threshold, "tests": len(rows), "threshold": threshold,
            "seeds": len(a), "worst": worst, "rows": rows}


def agreement_runs(citizens: int, days: int, seeds: int, a: str, b: str,
                   plant: str | None = None) -> dict:
    """Side a on backend `a` with seeds 1..K, side b on backend `b` (planted when asked)
    with seeds K+1..2K: independent seeds, so the check faces the whole sampling error
    (population, network and draws), as a GPU with its own random streams would."""
    side_a = [run_once(essay(citizens, days, s), a) for s in range(1, seeds + 1)]
    side_b = [run_once(essay(citizens, days, s, plant), b)
              for s in range(seeds + 1, 2 * seeds + 1)]
    out = agreement(side_a, side_b)
    out.update(citizens=citizens, days=days, a=a, b=b, plant=plant)
    return out


def needs(citizens: int, cpu: dict) -> dict[str, float]:
    """Bytes a GPU run of `citizens` would need on the device and on the host, from a CPU
    run's account (`footprint.measure`): on the device, what it holds there
    (`footprint.PLACE`) and a day's temporaries; on the host, the more of what it holds
    there and the peak while the population and engine are built; times MARGIN."""
    held = cpu["on_gpu"]
    return {"device": citizens * (held["device"] + cpu["day_peak"]) * MARGIN,
            "host": citizens * max(held["host"], cpu["setup_peak"]) * MARGIN}


def fits(citizens: int, cpu: dict, have: dict[str, float | None]) -> str | None:
    """Why `citizens` would not fit (None: it would)."""
    need = needs(citizens, cpu)
    short = [f"{need[where] / 1e9:,.0f} GB on the {where}, which has {have[where] / 1e9:,.0f}"
             for where in ("device", "host") if have[where] and need[where] > have[where]]
    return f"not tried: would need about {' and '.join(short)}" if short else None


def largest_fitting(cpu: dict, have: dict[str, float | None], step: int = 10_000_000) -> int:
    """The largest multiple of `step` citizens that fits both memories."""
    per = needs(1, cpu)
    most = min(have[w] / per[w] for w in ("device", "host") if have[w])
    return int(most // step) * step


def device() -> dict:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    return {"name": name.decode() if isinstance(name, bytes) else name,
            "memory_bytes": int(props["totalGlobalMem"])}


def scale_run(citizens: int, days: int, seconds_left: float) -> dict:
    """Population build, then the day loop on the GPU until done or out of time."""
    import cupy

    out: dict = {"citizens": citizens, "days_asked": days}
    cupy.get_default_memory_pool().free_all_blocks()  # an earlier size's arrays
    started = time.perf_counter()
    try:
        sc = essay(citizens, days, 1)
        people = make_citizens(sc)
        network = make_network(sc, people)
        out["build_s"] = time.perf_counter() - started
        t0 = time.perf_counter()
        engine = Engine(sc, people, network, backend_named("gpu"))
        cupy.cuda.Device().synchronize()
        out["setup_s"] = time.perf_counter() - t0
        free, total = cupy.cuda.runtime.memGetInfo()
        peak = total - free
        t0 = time.perf_counter()
        done = 0
        for day in range(days):
            engine.step(day)
            cupy.cuda.Device().synchronize()
            free, total = cupy.cuda.runtime.memGetInfo()
            peak = max(peak, total - free)
            done = day + 1
            if time.perf_counter() - started > seconds_left:
                break
        seconds = time.perf_counter() - t0
        out["bytes_per_citizen"] = footprint.footprint(engine)
        out.update(days_done=done, seconds=seconds, peak_device_bytes=int(peak),
                   citizen_days_per_s=citizens * done / seconds,
                   year_s_extrapolated=seconds / done * 365)
    except Exception as e:  # a size that does not fit is a result too
        out["failed"] = f"{type(e).__name__}: {e}"
    return out


def markdown(result: dict) -> str:
    lines = [f"# GPU figures: {result['device'].get('name')} on {result['machine']}", ""]
    ag = result.get("agreement")
    if ag and "failed" in ag:
        lines += [f"Agreement check failed: {ag['failed']}", ""]
    elif ag:
        lines += [f"Agreement at {ag['citizens']:,} citizens x {ag['days']} days, "
                  f"{ag['seeds']} seeds, {ag['tests']} tests (metric by group), "
                  f"Bonferroni threshold {ag['threshold']:.2e}: "
                  f"{'AGREE' if ag['agree'] else 'DISAGREE'}; worst "
                  f"{ag['worst']['metric']} p = {ag['worst']['p']:.3g}", ""]
    cpu = result.get("footprint_cpu")
    if cpu:
        per = needs(1, cpu)
        lines += [f"Bytes per citizen (essay, CPU account at {cpu['citizens']:,}, "
                  "benchmarks/footprint.py): held "
                  f"{cpu['on_gpu']['device']:.0f} on the device and {cpu['on_gpu']['host']:.0f}"
                  f" on the host; taken to need {per['device']:.0f} and {per['host']:.0f} "
                  "with a day's temporaries, the build's peak and the margin.", ""]
    lines += ["| citizens | build s | days | s/day | citizen-days/s | peak GB | note |",
              "|---:|---:|---:|---:|---:|---:|---|"]
    for r in result.get("scale", []):
        if "skipped" in r:
            lines.append(f"| {r['citizens']:,} | | | | | | {r['skipped']} |")
        elif "failed" in r:
            lines.append(f"| {r['citizens']:,} | {r.get('build_s', float('nan')):.1f} | | | "
                         f"| | {r['failed']} |")
        else:
            lines.append(f"| {r['citizens']:,} | {r['build_s']:.1f} | {r['days_done']} | "
                         f"{r['seconds'] / r['days_done']:.3f} | "
                         f"{r['citizen_days_per_s']:.3g} | "
                         f"{r['peak_device_bytes'] / 1e9:.1f} | |")
    return "\n".join(lines) + "\n"


def save(result: dict, stem: str, folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (folder / f"{stem}.md").write_text(markdown(result))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agree-citizens", type=int, default=1_000_000)
    ap.add_argument("--agree-days", type=int, default=120)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000_000, 1_400_000_000])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--deadline-s", type=float, default=540.0)
    ap.add_argument("--skip-agreement", action="store_true")
    ap.add_argument("--plant", help="CPU against CPU with this rule's points times 4/3 "
                                    "(the check's power, without a GPU)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    result = {"machine": platform.node(), "processor": platform.processor(),
              "cpus": os.cpu_count(), "footprint_cpu": footprint.measure(200_000, 10)}
    stem = "gpu_plant" if args.plant else "gpu"
    if args.plant:
        result["device"] = {"name": "none (CPU against CPU)"}
        result["agreement"] = agreement_runs(args.agree_citizens, args.agree_days, args.seeds,
                                             "cpu", "cpu", args.plant)
        save(result, stem, args.out)
    else:
        from metricpower.memory import available_bytes

        result["device"] = device()
        have = {"device": result["device"]["memory_bytes"], "host": available_bytes()}
        if not args.skip_agreement:
            try:
                result["agreement"] = agreement_runs(args.agree_citizens, args.agree_days,
                                                     args.seeds, "cpu", "gpu")
            except Exception as e:  # the sizes still run: the one device call says all
                result["agreement"] = {"failed": f"{type(e).__name__}: {e}"}
        save(result, stem, args.out)
        cpu = result["footprint_cpu"]
        sizes = list(args.sizes)
        if sizes and fits(max(sizes), cpu, have):
            sizes.append(largest_fitting(cpu, have))
        result["scale"] = []
        for n in sorted(set(sizes)):
            left = args.deadline_s - (time.perf_counter() - started)
            reason = fits(n, cpu, have) or (None if left > 30 else "not tried: out of time")
            result["scale"].append({"citizens": n, "skipped": reason} if reason
                                   else scale_run(n, args.days, left))
            save(result, stem, args.out)
    print(markdown(result))
    ag = result.get("agreement")
    if ag and "failed" in ag:
        raise SystemExit(f"agreement check failed: {ag['failed']}")
    if ag:
        print(json.dumps({"agree": ag["agree"], "worst": ag["worst"]}, default=str))
        if not math.isfinite(ag["worst"]["p"]):
            raise SystemExit("agreement check gave no p-value")


if __name__ == "__main__":
    main()
