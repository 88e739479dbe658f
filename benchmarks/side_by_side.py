"""Two versions of the engine timed side by side in one run: the same scenario on the
same machine, runs alternating so that load from elsewhere falls on both alike.

    python benchmarks/side_by_side.py OLD_SRC NEW_SRC [--citizens N] [--days D] [--pairs K]

OLD_SRC and NEW_SRC are `src` folders (e.g. of `git worktree add /tmp/old <commit>`).
Each timing is `Engine.run()` alone, in a fresh process; the result (medians and their
ratio) is written to benchmarks/results/side_by_side.json with the machine's name.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, time
from metricpower.engine import Engine
from metricpower.population import make_citizens, make_network
from metricpower.scenario import load_preset
sc = load_preset("essay", {"run": {"citizens": int(sys.argv[1]), "days": int(sys.argv[2])}})
citizens = make_citizens(sc)
engine = Engine(sc, citizens, make_network(sc, citizens))
t = time.perf_counter()
engine.run()
print(json.dumps({"seconds": time.perf_counter() - t,
                  "mean_score": float(engine.state.score.mean())}))
"""


def time_once(src: str, citizens: int, days: int) -> dict:
    env = os.environ | {"PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", CHILD, str(citizens), str(days)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--citizens", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    times = {"old": [], "new": []}
    scores = {}
    time_once(args.new, 1000, 5)  # compile and cache the kernels before timing
    for k in range(args.pairs):
        # Alternate which goes first, so neither always follows the other.
        for side in (("old", "new") if k % 2 == 0 else ("new", "old")):
            result = time_once(getattr(args, side), args.citizens, args.days)
            times[side].append(result["seconds"])
            scores[side] = result["mean_score"]
            print(side, f"{result['seconds']:.2f} s", flush=True)
    median = {side: statistics.median(t) for side, t in times.items()}
    out = {"machine": platform.node(), "processor": platform.processor(),
           "cpus": os.cpu_count(), "citizens": args.citizens, "days": args.days,
           "old": args.old, "new": args.new, "seconds": times, "median": median,
           "ratio_new_over_old": median["new"] / median["old"],
           "same_mean_score": scores["old"] == scores["new"]}
    path = Path(__file__).parent / "results" / "side_by_side.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("median", "ratio_new_over_old", "same_mean_score")}))


if __name__ == "__main__":
    main()
