"""The benchmark: the engine and its Mesa twin side by side, in one run.

    python benchmarks/run.py            # engine at 1e4..1e7 citizens, twin at 1e4 and 1e5
    python benchmarks/run.py --quick    # small sizes only: checks that the script works
    make bench ARGS="--sizes 1e4,1e5 --days 30"

Every measurement runs in a fresh subprocess (so its peak memory is its own) and is
reported as citizen-days per second of the simulation proper; building the population
(citizens and network) and setting the model up are timed separately. The engine runs the
scenario as given (the `essay` preset, responses and all), and, at the twin's sizes, also
the twin's model (responses off) for a like-for-like ratio. The twin runs fewer days
(it is slow); citizen-days per second is the unit, so the rates compare fairly. A run that
exceeds `--timeout` is recorded as timed out (and larger sizes of that system are
skipped), not raised.

Also measured: the machine's memory bandwidth (a NumPy streaming copy and add over arrays
much larger than the caches, one thread like the engine) and a model of the bytes the
engine moves per citizen-day, from which the bandwidth bound on citizen-days per second
follows (see `bytes_model`).

Writes `<out>/bench.md` and `<out>/bench.json` (`quick.*` with --quick).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ------------------------------------------------------------------ one measurement
def measure(spec: dict) -> dict:
    """Runs in a fresh process: build the population, set up, run; report times and
    peak memory."""
    import numpy as np

    from metricpower.population import make_citizens, make_network
    from metricpower.scenario import load_preset

    sys.path.insert(0, str(HERE))
    from mesa_twin import SocialCreditModel, without_responses

    n, days = spec["citizens"], spec["days"]
    scenario = load_preset(spec["preset"], overrides={"run": {"citizens": n, "days": days,
                                                              "seed": spec["seed"]}})
    if not spec["responses"]:
        scenario = without_responses(scenario)
    t0 = time.perf_counter()
    citizens = make_citizens(scenario)
    network = make_network(scenario, citizens)
    t1 = time.perf_counter()
    out = {"build_s": t1 - t0}
    if spec["system"] == "engine":
        from metricpower.engine import Engine

        engine = Engine(scenario, citizens, network)
        t2 = time.perf_counter()
        engine.run()
        t3 = time.perf_counter()
        out["bytes"] = bytes_model(engine, scenario)
        out["mean_score"] = float(engine.state.score.mean())
    else:
        model = SocialCreditModel(scenario, citizens, network)
        t2 = time.perf_counter()
        model.run(days)
        t3 = time.perf_counter()
        out["mean_score"] = float(np.mean([a.score for a in model.agents]))
    out.update(setup_s=t2 - t1, run_s=t3 - t2, peak_rss_mib=peak_rss_mib())
    return out


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM belongs to the process image, unlike
    ru_maxrss, which Linux carries over from the parent across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def bytes_model(engine, scenario) -> dict:
    """A model of the memory traffic of one engine day, per citizen.

    `state`: every array the engine holds with one entry per citizen (its state, event
    window counts, citizen traits, per-citizen rates; found by the walk of
    benchmarks/footprint.py), counted once: a day that touches each of them once streams
    this much. `network`: friend conditions gather over every tie (a 4-byte index and an 8-byte
    value read, per tie), as often per day as such conditions are evaluated (periodic
    rules every `every` days; lists and consequences daily). Temporaries made while
    evaluating conditions are not counted, so this is a lower bound on the real traffic
    and the bandwidth bound it gives is an upper bound on speed.
    """
    from footprint import arrays

    n = engine.n
    # The risk model's samples are read on refit days, not daily.
    total = sum(a.nbytes for part, a in arrays(engine) if part not in ("network", "risk model")
                and len(a.shape) >= 1 and a.shape[0] in (n, n + 1))
    network = engine.network
    ties = len(network.indices) / n
    evaluations = 0.0
    for where, cond in engine.compiled.items():
        if any(f.startswith("friends_") for f in cond.functions):
            if where.startswith("rules["):
                rule = scenario.rules[int(where[6:where.index("]")])]
                evaluations += 1.0 if rule.kind == "event" else 1.0 / rule.every
            else:
                evaluations += 1.0
    state = total / n
    net = evaluations * ties * 12.0
    return {"state_bytes_per_citizen": state, "ties_per_citizen": ties,
            "friend_gathers_per_day": evaluations,
            "network_bytes_per_citizen_day": net,
            "bytes_per_citizen_day": state + net}


# ------------------------------------------------------------------ the machine
def machine() -> dict:
    import numpy as np

    info = {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["memory_gib"] = psutil.virtual_memory().total / 2**30
    except ImportError:
        info["memory_gib"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        import mesa

        info["mesa"] = mesa.__version__
    except ImportError:
        info["mesa"] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        info["commit"] = commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def bandwidth(mib: int, repeats: int = 5) -> dict:
    """Single-thread streaming bandwidth: copy (b = a: 2 arrays' bytes moved) and add
    (c = a + b: 3 arrays' bytes), best of `repeats`, over float64 arrays of `mib` MiB."""
    import numpy as np

    n = mib * 2**20 // 8
    a = np.random.default_rng(0).random(n)
    b, c = np.empty_like(a), np.empty_like(a)
    np.copyto(b, a)
    np.copyto(c, a)

    def best(f):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            f()
            times.append(time.perf_counter() - t)
        return min(times)

    copy = 2 * a.nbytes / best(lambda: np.copyto(b, a)) / 1e9
    add = 3 * a.nbytes / best(lambda: np.add(a, b, out=c)) / 1e9
    return {"array_mib": mib, "copy_gb_s": copy, "add_gb_s": add, "bound_gb_s": max(copy, add)}


# ------------------------------------------------------------------ driver
def run_one(spec: dict, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"status": "timed out"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        killed = " (killed: out of memory?)" if proc.returncode in (-9, 137) else ""
        return {"status": f"failed, exit {proc.returncode}{killed}: {tail[:200]}"}
    return {"status": "ok", **json.loads(proc.stdout.strip().splitlines()[-1])}


def sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=sizes, default=None,
                   help="engine sizes, citizens (default 1e4,1e5,1e6,1e7)")
    p.add_argument("--days", type=int, default=None, help="engine days (default 365)")
    p.add_argument("--twin-sizes", type=sizes, default=None,
                   help="Mesa twin sizes (default 1e4,1e5)")
    p.add_argument("--twin-days", type=int, default=None, help="twin days (default 10)")
    p.add_argument("--preset", default="essay")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3,
                   help="runs per measurement when cheap; the median is reported")
    p.add_argument("--cheap", type=float, default=20.0,
                   help="repeat a measurement only if one run took less than this (s)")
    p.add_argument("--timeout", type=float, default=1800.0,
                   help="seconds per measurement before it is recorded as timed out")
    p.add_argument("--bandwidth-mib", type=int, default=None,
                   help="array size for the bandwidth test (default 512; 64 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes only (engine 1e4 x 10 days, twin 1e3 x 5 days)")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return 0

    q = args.quick
    engine_sizes = args.sizes or ([10_000] if q else [10**4, 10**5, 10**6, 10**7])
    twin_sizes = args.twin_sizes or ([1_000] if q else [10**4, 10**5])
    days = args.days or (10 if q else 365)
    twin_days = args.twin_days or (5 if q else 10)
    repeats = 1 if q else args.repeats
    mib = args.bandwidth_mib or (64 if q else 512)
    name = "quick" if q else "bench"

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    info = machine()
    log(f"machine: {info['cpu']}, {info['usable_cores']} cores, "
        f"{info['memory_gib']:.1f} GiB")
    bw = bandwidth(mib)
    log(f"bandwidth: copy {bw['copy_gb_s']:.1f} GB/s, add {bw['add_gb_s']:.1f} GB/s")

    plan = [("twin", "twin model", False, n, twin_days) for n in twin_sizes]
    plan += [("engine", "twin model", False, n, days) for n in twin_sizes]
    plan += [("engine", "preset", True, n, days) for n in engine_sizes]
    runs, failed = [], set()
    started = time.perf_counter()
    for system, model, responses, n, d in plan:
        spec = {"system": system, "preset": args.preset, "responses": responses,
                "citizens": n, "days": d, "seed": args.seed}
        row = {"system": system, "model": model, "responses": responses, "citizens": n,
               "days": d}
        if (system, model) in failed:
            row["status"] = "skipped (a smaller size did not finish)"
            runs.append(row)
            log(f"{system:6s} {model:10s} {n:>10,d}: {row['status']}")
            continue
        results = [run_one(spec, args.timeout)]
        while (results[-1]["status"] == "ok" and len(results) < repeats
               and results[0]["run_s"] + results[0]["build_s"] + results[0]["setup_s"]
               < args.cheap):
            results.append(run_one(spec, args.timeout))
        good = [r for r in results if r["status"] == "ok"]
        if not good:
            row["status"] = results[-1]["status"]
            failed.add((system, model))
        else:
            row["status"] = "ok"
            row["repeats"] = len(good)
            for key in ("build_s", "setup_s", "run_s", "peak_rss_mib"):
                row[key] = statistics.median(r[key] for r in good)
            row["run_s_all"] = [r["run_s"] for r in good]
            row["citizen_days_per_s"] = n * d / row["run_s"]
            row["mean_score"] = good[0]["mean_score"]
            if "bytes" in good[0]:
                row["bytes"] = good[0]["bytes"]
        runs.append(row)
        log(f"{system:6s} {model:10s} {n:>10,d} x {d} days: {row['status']}"
            + (f", {row['citizen_days_per_s']:.3g} citizen-days/s, "
               f"peak {row['peak_rss_mib']:.0f} MiB" if row["status"] == "ok" else ""))

    twin_rate = {r["citizens"]: r["citizen_days_per_s"] for r in runs
                 if r["system"] == "twin" and r["status"] == "ok"}
    for r in runs:
        if r["system"] == "engine" and r["status"] == "ok" and r["citizens"] in twin_rate:
            r["vs_twin"] = r["citizen_days_per_s"] / twin_rate[r["citizens"]]
        if r.get("bytes"):
            b = r["bytes"]["bytes_per_citizen_day"]
            r["bytes"]["bound_citizen_days_per_s"] = bw["bound_gb_s"] * 1e9 / b
            r["bytes"]["achieved_gb_s"] = r["citizen_days_per_s"] * b / 1e9
            r["bytes"]["share_of_bound"] = r["citizen_days_per_s"] / (bw["bound_gb_s"] * 1e9 / b)

    report = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info, "bandwidth": bw,
        "settings": {"preset": args.preset, "seed": args.seed, "days": days,
                     "twin_days": twin_days, "repeats": repeats, "timeout_s": args.timeout,
                     "quick": q},
        "runs": runs, "wall_s": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    (args.out / f"{name}.md").write_text(md)
    print(md)
    return 0


def markdown(report: dict) -> str:
    m, bw, s = report["machine"], report["bandwidth"], report["settings"]
    lines = [
        f"# Benchmark: engine vs Mesa twin ({s['preset']} preset)",
        "",
        f"{report['when']}, commit {m.get('commit')}. Machine: {m['cpu']}, "
        f"{m['usable_cores']} usable cores ({m['cores']} logical), "
        f"{m['memory_gib']:.1f} GiB memory; Python {m['python']}, NumPy {m['numpy']}, "
        f"Mesa {m.get('mesa')}.",
        "",
        "| System | Model | Citizens | Days | Build (s) | Setup (s) | Run (s) "
        "| Citizen-days/s | × Mesa twin | Peak memory (MiB) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["runs"]:
        model = (f"{s['preset']}" if r["model"] == "preset"
                 else f"{s['preset']}, responses off")
        system = "Mesa twin" if r["system"] == "twin" else "engine"
        if r["status"] != "ok":
            lines.append(f"| {system} | {model} | {r['citizens']:,} | {r['days']} "
                         f"| {r['status']} | | | | | |")
            continue
        ratio = f"{r['vs_twin']:,.0f}×" if "vs_twin" in r else ""
        reps = f" (median of {r['repeats']})" if r["repeats"] > 1 else ""
        lines.append(
            f"| {system} | {model} | {r['citizens']:,} | {r['days']} | {r['build_s']:.2f} "
            f"| {r['setup_s']:.2f} | {r['run_s']:.2f}{reps} | {r['citizen_days_per_s']:.3g} "
            f"| {ratio} | {r['peak_rss_mib']:,.0f} |")
    lines += [
        "",
        "Citizen-days/s counts the simulation proper (`Engine.run()`, `model.run()`); building "
        "the population (citizens and network) and setting the model up are timed apart. "
        f"The Mesa twin runs {s['twin_days']} days (it is slow) and the engine "
        f"{s['days']}: citizen-days per second is the unit, so the rates compare fairly. "
        "The twin does not model responses, so the engine also runs its model (responses "
        "off) at the twin's sizes; × Mesa twin divides by the twin's rate at the same size. "
        "Peak memory is the peak resident memory of the run's own process (VmHWM), "
        "interpreter, imports and population included.",
        "",
        "## Memory bandwidth and bytes per citizen-day",
        "",
        f"Streaming bandwidth, one thread, float64 arrays of {bw['array_mib']} MiB: copy "
        f"{bw['copy_gb_s']:.1f} GB/s, add {bw['add_gb_s']:.1f} GB/s; bound used: "
        f"{bw['bound_gb_s']:.1f} GB/s.",
        "",
        "| Engine run | Citizens | State (B/citizen) | Network (B/citizen-day) "
        "| Model (B/citizen-day) | Bandwidth bound (citizen-days/s) | Achieved "
        "| Share of bound |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in report["runs"]:
        if r["status"] != "ok" or "bytes" not in r:
            continue
        b = r["bytes"]
        model = s["preset"] if r["model"] == "preset" else f"{s['preset']}, responses off"
        lines.append(
            f"| {model} | {r['citizens']:,} | {b['state_bytes_per_citizen']:.0f} "
            f"| {b['network_bytes_per_citizen_day']:.1f} | {b['bytes_per_citizen_day']:.0f} "
            f"| {b['bound_citizen_days_per_s']:.3g} | {r['citizen_days_per_s']:.3g} "
            f"({b['achieved_gb_s']:.2f} GB/s) | {b['share_of_bound']:.1%} |")
    lines += [
        "",
        "Bytes model: every array the engine keeps with one entry per citizen (state, "
        "event-window counts, traits, per-citizen rates and chances), streamed once a day, "
        "plus 12 bytes per tie (index and value) for each evaluation of a friend condition "
        "(periodic rules every `every` days). Temporaries made while evaluating conditions "
        "are not counted, so the model is a lower bound on traffic, the bound an upper bound "
        "on speed, and the share of it a lower bound on how much of the machine's bandwidth "
        "the engine uses. Small populations fit in cache and are not bandwidth-bound.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
