"""What people's responses cost: the essay preset with responses on and off, side by side.

    python benchmarks/responses.py                  # 100,000 citizens, 365 days, 3 repeats
    python benchmarks/responses.py --citizens 20000 --days 60 --repeats 1

Both variants run in the same process, alternating (on, off, on, off, …) so that drift in
the machine's speed hits both alike; each variant's time is the median over repeats of
the simulation proper (population building is shared and not timed). The "on" variant is
the default run's engine work (essay, 100,000 citizens, 365 days). Writes
`<out>/responses.md` and `<out>/responses.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402  (the benchmark's machine description)

RESPONSES = ("deterrence", "association", "economy", "prediction", "appeals")


def scenarios(citizens: int, days: int, seed: int):
    from metricpower.scenario import load_preset

    size = {"run": {"citizens": citizens, "days": days, "seed": seed}}
    on = load_preset("essay", size)
    off = load_preset("essay", size | {
        "responses": {k: {"enabled": False} for k in RESPONSES} | {"labelling": {"refusal": 0}}})
    return on, off


def timed_run(scenario, citizens, network) -> float:
    from metricpower.engine import Engine
    from metricpower.population import Network

    # The engine may change the network in place (association avoidance): give it a copy.
    fresh = Network(indptr=network.indptr, indices=network.indices.copy())
    engine = Engine(scenario, citizens, fresh)
    start = time.perf_counter()
    engine.run()
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--citizens", type=int, default=100_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)

    from metricpower.population import make_citizens, make_network

    on, off = scenarios(args.citizens, args.days, args.seed)
    citizens = make_citizens(on)
    network = make_network(on, citizens)
    timed_run(on, citizens, network)  # warm-up: compiled kernels, imports, caches
    times = {"on": [], "off": []}
    for _ in range(args.repeats):
        for name, sc in (("on", on), ("off", off)):
            times[name].append(timed_run(sc, citizens, network))
            print(f"responses {name}: {times[name][-1]:.2f} s", flush=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    citizen_days = args.citizens * args.days
    report = {
        "machine": machine(),
        "citizens": args.citizens, "days": args.days, "repeats": args.repeats,
        "seconds": times, "median_seconds": median,
        "citizen_days_per_second": {k: citizen_days / v for k, v in median.items()},
        "slowdown": median["on"] / median["off"],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "responses.json").write_text(json.dumps(report, indent=2))
    m = report["machine"]
    lines = [
        "# Responses on vs off (essay preset)",
        "",
        f"{args.citizens:,} citizens × {args.days} days, median of {args.repeats} "
        f"alternating runs each; machine: {m['cpu']}, {m['usable_cores']} cores, "
        f"{m['memory_gib']:.0f} GiB, commit {m['commit']}.",
        "",
        "| responses | median s | citizen-days/s |",
        "|---|---:|---:|",
    ]
    for k in ("on", "off"):
        lines.append(f"| {k} | {median[k]:.2f} | "
                     f"{report['citizen_days_per_second'][k]:,.0f} |")
    lines += ["", f"Slowdown with responses: **{report['slowdown']:.2f}×** (target ≤ 1.5×)."]
    (args.out / "responses.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
