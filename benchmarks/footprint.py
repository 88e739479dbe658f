"""Where an engine's memory goes: every array it holds, counted once, by part.

    python benchmarks/footprint.py [--citizens 1000000] [--days 30]

writes benchmarks/results/footprint.json and .md: the essay preset's bytes per citizen by
part, where each part would live if the engine ran on a GPU (`PLACE`), the peak of a
day's temporaries above what is held, and, against tracemalloc, that the account misses
nothing. `benchmarks/run.py` (the state a day streams) and
`benchmarks/gpu.py` (what fits on a device) read the same account.
"""

from __future__ import annotations

import argparse
import json
import platform
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"

#: The parts, in the order they claim an array that several reach (the rest is "other"),
#: and where each is held when the engine runs on a GPU: the samplers draw and the ledger
#: keeps its records on the host; the traits are copied to the device from the citizens
#: as built, which the engine keeps ("population": on a CPU run the same arrays as the
#: traits); the network stays on the host and the backend holds a copy of its arrays on
#: the device (counted in "other" on a GPU run). The risk model keeps the features of a
#: sample of at most 20,000 citizens on each refit day.
PLACE = {"traits": "both", "state": "device", "windows": "device", "network": "both",
         "samplers": "host", "risk model": "device", "ledger": "host", "population": "host",
         "other": "device"}


def roots(engine) -> dict[str, list]:
    """The objects each part starts from; whatever else the engine reaches is "other"."""
    demand = getattr(engine.consequences, "demand", [])
    return {
        "traits": [engine.citizens],
        "state": [engine.state],
        "windows": [engine.windows],
        "network": [engine.network],
        "samplers": [engine.observer.sampler,
                     [f[-1] for f in engine.observer.false_match], demand],
        "risk model": [getattr(engine, "predict", None)],
        "ledger": [engine.ledger],
        "population": [engine.population],
        "other": [engine],
    }


def arrays(engine) -> Iterator[tuple[str, object]]:
    """(part, array) for every array the engine holds, each buffer once: NumPy's on the
    host, and the backend's (anything else with `nbytes`), walking attributes, lists and
    dicts of the program's own objects (not back into the engine)."""
    seen_objects: set[int] = set()
    seen_buffers: set[int] = set()
    for part, starts in roots(engine).items():
        stack = list(starts)
        while stack:
            obj = stack.pop()
            if id(obj) in seen_objects:
                continue
            seen_objects.add(id(obj))
            if hasattr(obj, "nbytes") and hasattr(obj, "shape"):
                base = obj
                while getattr(base, "base", None) is not None and hasattr(base.base, "nbytes"):
                    base = base.base
                if id(base) not in seen_buffers:
                    seen_buffers.add(id(base))
                    yield part, base
                continue
            if isinstance(obj, dict):
                stack.extend(obj.values())
            elif isinstance(obj, list | tuple):
                stack.extend(obj)
            elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("metricpower"):
                stack.extend(v for k, v in vars(obj).items()
                             if k != "engine" and v is not engine)


def footprint(engine) -> dict[str, dict[str, float]]:
    """Bytes per citizen by part, as held now: {part: {"host": B, "device": B}} (NumPy's
    arrays are the host's, any other backend's the device's)."""
    total = {part: {"host": 0.0, "device": 0.0} for part in PLACE}
    for part, array in arrays(engine):
        total[part]["host" if isinstance(array, np.ndarray) else "device"] += array.nbytes
    return {part: {k: v / engine.n for k, v in t.items()} for part, t in total.items()}


def total_of(account: dict[str, dict[str, float]]) -> float:
    return sum(p["host"] + p["device"] for p in account.values())


def on_gpu(account: dict[str, dict[str, float]]) -> dict[str, float]:
    """Bytes per citizen a GPU run would hold on the device and on the host, from a CPU
    run's account (`PLACE`)."""
    size = {part: p["host"] + p["device"] for part, p in account.items()}
    return {where: sum(b for part, b in size.items() if PLACE[part] in (where, "both"))
            for where in ("device", "host")}


def measure(citizens: int, days: int, seed: int = 1, preset: str = "essay") -> dict:
    """A preset at `citizens`: the account after `days` days, and tracemalloc's view of
    the same (held; the peak while the population and the engine are built; a day's peak
    above what is held; the whole run's peak)."""
    from metricpower.engine import Engine
    from metricpower.population import make_citizens, make_network
    from metricpower.scenario import load_preset

    def scenario(n):
        return load_preset(preset, {"run": {"citizens": n, "days": days, "seed": seed}})

    small = scenario(1000)  # imports and compiled kernels, outside the measurement
    people = make_citizens(small)
    Engine(small, people, make_network(small, people)).run()
    sc = scenario(citizens)
    tracemalloc.start()
    try:
        people = make_citizens(sc)
        network = make_network(sc, people)
        engine = Engine(sc, people, network)
        _, setup_peak = tracemalloc.get_traced_memory()
        for day in range(days - 1):
            engine.step(day)
        before, run_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        engine.step(days - 1)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    account = footprint(engine)
    return {"citizens": citizens, "days": days, "account": account,
            "total": total_of(account), "on_gpu": on_gpu(account),
            "traced": after / citizens, "setup_peak": setup_peak / citizens,
            "day_peak": (peak - before) / citizens, "peak": max(run_peak, peak) / citizens,
            "samplers": len(engine.observer.sampler) + len(engine.observer.false_match)
            + len(engine.consequences.demand)}


def markdown(r: dict) -> str:
    lines = [f"# Memory per citizen: essay preset, {r['citizens']:,} citizens, "
             f"after {r['days']} days", "",
             f"Machine: {platform.node()}. Counted by walking the engine's arrays "
             "(benchmarks/footprint.py); tracemalloc saw "
             f"{r['traced']:.0f} B/citizen held against the account's {r['total']:.0f}.", "",
             "| part | B/citizen | on a GPU run |", "|---|--:|---|"]
    for part, p in r["account"].items():
        lines.append(f"| {part} | {p['host'] + p['device']:.1f} | {PLACE[part]} |")
    gpu = r["on_gpu"]
    lines += [f"| **total** | **{r['total']:.1f}** | device {gpu['device']:.0f}, "
              f"host {gpu['host']:.0f} |", "",
              f"Building the population and the engine peaks at {r['setup_peak']:.0f} "
              "B/citizen; a day's "
              f"temporaries at {r['day_peak']:.0f} B/citizen above what is held. "
              f"{r['samplers']} samplers (behaviours, services, camera errors) hold an "
              "int32 place per citizen each where rates differ; rates are worked out for "
              "the day's candidates."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--citizens", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    r = measure(args.citizens, args.days)
    r["machine"] = platform.node()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "footprint.json").write_text(json.dumps(r, indent=2) + "\n")
    (RESULTS / "footprint.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
