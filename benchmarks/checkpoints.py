"""What checkpoints cost: one run without them, one with the automatic default, one every
30 days, each on the same scenario (default: the essay preset, 100,000 citizens, 365
days), timed as a whole (population, days and tables; no writing of the run folder).

    python benchmarks/checkpoints.py                      # 100,000 x 365
    python benchmarks/checkpoints.py --citizens 2000 --days 60   # checks the script

Writes `benchmarks/results/checkpoints.md` and `.json`, naming the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from metricpower.checkpoints import CHECKPOINT, Checkpoints
from metricpower.runs import simulate
from metricpower.scenario import load_preset

RESULTS = Path(__file__).resolve().parent / "results"


def timed(scenario, every: int | None | str, folder: Path) -> dict:
    """One run: wall seconds, and for checkpointed runs how many, their seconds, size."""
    costs: list[float] = []
    checkpoints = None
    if every != "none":
        checkpoints = Checkpoints.begin(scenario, folder / f"every-{every}", False, every)
        save = checkpoints.save

        def measured(engine, day):
            t0 = time.perf_counter()
            save(engine, day)
            costs.append(time.perf_counter() - t0)

        checkpoints.save = measured
    t0 = time.perf_counter()
    simulate(scenario, checkpoints=checkpoints)
    row = {"every": every, "seconds": time.perf_counter() - t0}
    if checkpoints is not None:
        row.update(checkpoints=len(costs), checkpoint_seconds=sum(costs),
                   last_checkpoint_mb=(checkpoints.folder / CHECKPOINT).stat().st_size / 1e6)
        checkpoints.finish()
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="essay")
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    sc = load_preset(args.preset, overrides={"run": {"citizens": args.citizens,
                                                     "days": args.days}})
    # Warm up (compiled kernels, imports), so the first timed run pays no more than the rest.
    simulate(load_preset(args.preset, overrides={"run": {"citizens": 1000, "days": 5}}))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [timed(sc, every, Path(tmp)) for every in ("none", None, 30)]
    base = rows[0]["seconds"]
    for row in rows[1:]:
        row["share_of_run"] = row["checkpoint_seconds"] / row["seconds"]
        row["overhead_vs_none"] = row["seconds"] / base - 1
    machine = {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
               "cores": os.cpu_count(), "load_1min": os.getloadavg()[0]}
    report = {"scenario": args.preset, "citizens": args.citizens, "days": args.days,
              "machine": machine, "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkpoints.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Checkpoint cost: {args.preset}, {args.citizens:,} citizens x {args.days} days",
             "", f"Machine: {machine} (load is the 1-minute load average at the end).", "",
             "| checkpoints | run s | written | their s | share of run | last size MB |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        label = {"none": "none", None: "automatic (2% budget)"}.get(row["every"],
                                                                    f"every {row['every']} days")
        lines.append(f"| {label} | {row['seconds']:.1f} | {row.get('checkpoints', 0)} | "
                     f"{row.get('checkpoint_seconds', 0):.2f} | "
                     f"{row.get('share_of_run', 0):.1%} | "
                     f"{row.get('last_checkpoint_mb', 0):.1f} |")
    (RESULTS / "checkpoints.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
