"""`make fuzz`: the long fuzzing campaign over generated scenario files.

Cases come from `fuzzcases.scenario_case(random.Random(seed))` for seeds 0, 1, …, so any
failure is replayed by its seed. Batches run in child processes: a case that kills its
process (a signal) is recorded and the campaign goes on with the next one; a case that
uses more than --timeout seconds of CPU (or six times that of wall-clock time) is
recorded as a hang. The figures (cases, clean
errors, valid runs, failures by kind, with seeds) are printed and written as JSON.

    python tests/fuzz_campaign.py --cases 10000 [--start 0] [--jobs 2] [--out fuzz.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Wall-clock limit of a case, in multiples of its CPU limit.
WALL_FACTOR = 6


def worker(start: int, count: int, timeout: int, report_every: int) -> None:
    """Run cases start … start+count-1, one line of JSON per case on stdout; a line
    `{"seed": s, "started": true}` before each, so that the parent knows which case a
    signal killed."""
    sys.path.insert(0, str(HERE))
    from fuzzcases import check_case, scenario_case

    def hang(signum, frame):
        raise TimeoutError("CPU" if signum == signal.SIGPROF else "wall-clock")

    signal.signal(signal.SIGPROF, hang)
    signal.signal(signal.SIGALRM, hang)
    for seed in range(start, start + count):
        print(json.dumps({"seed": seed, "started": True}), flush=True)
        kind, text = scenario_case(random.Random(seed))
        began, cpu = time.perf_counter(), time.process_time()
        # A hang is `timeout` seconds of CPU (on a loaded machine wall time says little),
        # or WALL_FACTOR times that of waiting (a read that blocks uses no CPU).
        signal.setitimer(signal.ITIMER_PROF, timeout)
        signal.alarm(timeout * WALL_FACTOR)
        try:
            with tempfile.TemporaryDirectory() as folder:
                outcome = check_case(kind, text, Path(folder),
                                     report=report_every > 0 and seed % report_every == 0)
        except TimeoutError as err:
            outcome = f"FAILURE: hang over {timeout} s ({err} time)"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.alarm(0)
        print(json.dumps({"seed": seed, "kind": kind, "outcome": outcome,
                          "seconds": round(time.perf_counter() - began, 3),
                          "cpu_seconds": round(time.process_time() - cpu, 3)}), flush=True)


def campaign(cases: int, start: int, jobs: int, batch: int, timeout: int,
             report_every: int, log: Path | None = None) -> dict:
    """Run the cases; each result is also appended to `log` (JSON lines) as it comes, so
    that an interrupted campaign keeps its figures."""
    results: dict[int, dict] = {}
    sink = log.open("a") if log else None
    pending = list(range(start, start + cases, batch))
    running: list[tuple[subprocess.Popen, int, int]] = []
    began = time.perf_counter()

    def launch(first: int, count: int) -> None:
        cmd = [sys.executable, __file__, "--worker", "--start", str(first), "--cases",
               str(count), "--timeout", str(timeout), "--report-every", str(report_every)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        running.append((proc, first, count))

    while pending or running:
        while pending and len(running) < jobs:
            first = pending.pop(0)
            launch(first, min(batch, start + cases - first))
        proc, first, count = running.pop(0)
        out, _ = proc.communicate()
        last_started = None
        for line in out.splitlines():
            record = json.loads(line)
            if record.get("started"):
                last_started = record["seed"]
            else:
                results[record["seed"]] = record
                if sink:
                    sink.write(line + "\n")
        if proc.returncode != 0 and last_started is not None and last_started not in results:
            sig = -proc.returncode if proc.returncode < 0 else None
            results[last_started] = {"seed": last_started, "kind": "?", "outcome":
                                     f"FAILURE: killed by signal {sig}" if sig else
                                     f"FAILURE: worker exit {proc.returncode}"}
            if sink:
                sink.write(json.dumps(results[last_started]) + "\n")
            rest = last_started + 1
            if rest < first + count:  # the rest of the batch, in a fresh worker
                launch(rest, first + count - rest)
        done = len(results)
        print(f"\r{done:,}/{cases:,} cases, {time.perf_counter() - began:,.0f} s", end="",
              file=sys.stderr, flush=True)
        if sink:
            sink.flush()
    print(file=sys.stderr)
    return results


def summarise(results: dict, seconds: float) -> dict:
    by_outcome = collections.Counter()
    by_kind = collections.Counter()
    failures = collections.defaultdict(list)
    located = collections.Counter()  # clean errors naming a line, a key, both
    for r in results.values():
        outcome = r["outcome"]
        key = "failure" if outcome.startswith("FAILURE") else outcome.split(":", 1)[0]
        if key == "clean error":
            has_line, has_key = ", line " in outcome, ", key " in outcome
            located["line and key" if has_line and has_key else "line only" if has_line
                    else "key only" if has_key else "file only"] += 1
        by_outcome[key] += 1
        by_kind[(r["kind"], key)] += 1
        if key == "failure":
            failures[outcome.splitlines()[0][:160]].append(r["seed"])
    slowest = sorted(results.values(), key=lambda r: -r.get("cpu_seconds", 0))[:5]
    return {"cases": len(results), "seconds": round(seconds, 1),
            "outcomes": dict(by_outcome),
            "clean errors naming": dict(located),
            "by_kind": {f"{k} / {o}": n for (k, o), n in sorted(by_kind.items())},
            "failures": {k: v[:20] for k, v in failures.items()},
            "slowest": [{"seed": r["seed"], "seconds": r.get("seconds"),
                         "cpu_seconds": r.get("cpu_seconds")} for r in slowest],
            "machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--timeout", type=int, default=20, help="seconds before a hang")
    parser.add_argument("--report-every", type=int, default=20,
                        help="write the HTML report for every N-th seed's run (0: never)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument("--log", type=Path, default=None,
                        help="append each case's result as a JSON line")
    parser.add_argument("--summarise", type=Path, default=None,
                        help="print the figures of an earlier campaign's --log and stop")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.start, args.cases, args.timeout, args.report_every)
        return
    if args.summarise:
        records = [json.loads(line) for line in args.summarise.read_text().splitlines()]
        print(json.dumps(summarise({r["seed"]: r for r in records},
                                   sum(r.get("seconds", 0) for r in records)), indent=2))
        return
    began = time.perf_counter()
    results = campaign(args.cases, args.start, args.jobs, args.batch, args.timeout,
                       args.report_every, args.log)
    figures = summarise(results, time.perf_counter() - began)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    sys.exit(1 if figures["outcomes"].get("failure") else 0)


if __name__ == "__main__":
    main()
