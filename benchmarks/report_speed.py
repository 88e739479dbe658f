"""How long the run report and the dashboard's pages take for runs of a given size.

    python benchmarks/report_speed.py [--citizens 100000] [--days 365] [--repeat 3]
                                      [--seeds 3] [--run RUN_DIR]

Simulates the essay preset and its `null` (or reads RUN_DIR), and two ensembles of
`--seeds` members of that size (essay and null), then times, best of `--repeat`:
- the report: `measure` (the metrics; `simulate` has already done it when `Run.write`
  writes the report), rendering (figures and HTML), and `write_report` with and without
  the measures at hand;
- the dashboard, served by uvicorn on a loopback port and asked over HTTP. Each page's
  first view is timed on a `metricpower serve` process just started (nothing read yet:
  the request reads the runs from disk), then again once cached: the runs list, a run's page and its
  charts, a group's charts, a citizen's history, the comparison with `null` and its full
  report, an ensemble's page and the comparison of the two ensembles.

Writes benchmarks/results/report_speed.json and .md, naming the machine and its load
average (a loaded machine makes every number larger).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import machine  # noqa: E402

from metricpower.compare import null_of  # noqa: E402
from metricpower.ensembles import LocalPool, ensemble  # noqa: E402
from metricpower.metrics import measure  # noqa: E402
from metricpower.report import render_report, write_report  # noqa: E402
from metricpower.runs import load_run, simulate  # noqa: E402
from metricpower.scenario import load_preset  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def fetch(url: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as r:
        assert r.status == 200, url
        r.read()


def first_and_cached(root: Path, path: str, repeat: int, before: str | None = None
                     ) -> tuple[float, float]:
    """`path` on a `metricpower serve` process just started (once it answers for a static
    file; after `before`, if given, e.g. the page that links to it), then best of `repeat`
    once cached. A process of its own: nothing it imports or reads lazily is warm."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("metricpower")
    proc = subprocess.Popen([str(exe), "serve", str(root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                fetch(base + "/static/dashboard.css")
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError("metricpower serve did not start") from None
                time.sleep(0.1)
        if before:
            fetch(base + before)
        first = once(lambda: fetch(base + path))
        return first, best(lambda: fetch(base + path), repeat)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--citizens", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3, help="members of each ensemble")
    ap.add_argument("--run", type=Path, help="an existing essay run directory to time")
    args = ap.parse_args()
    out: dict = {"machine": machine(), "load_average": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.run:
            run = load_run(args.run)
        else:
            sc = load_preset("essay", {"run": {"citizens": args.citizens, "days": args.days}})
            run = simulate(sc)
        sc = run.scenario
        out["run"] = {"citizens": sc.run.citizens, "days": sc.run.days,
                      "ensemble_seeds": args.seeds}
        run.write(root / "essay", report=False)
        simulate(null_of(sc)).write(root / "null", report=False)
        for name, scenario in (("ens-essay", sc), ("ens-null", null_of(sc))):
            ensemble(scenario, args.seeds, root / name, executor=LocalPool(1))
        # measure() keeps its tables on the run: a fresh read each time times it cold
        fresh = [load_run(root / "essay") for _ in range(args.repeat)]
        cold = iter(fresh)
        measure_s = best(lambda: measure(next(cold)), args.repeat)
        run = fresh[0]
        tables = measure(run)
        unmeasured = iter([load_run(root / "essay") for _ in range(args.repeat)])
        out["report_s"] = {
            "measure (cold)": measure_s,
            "render (figures and HTML)": best(lambda: render_report(run, tables),
                                              args.repeat),
            "write_report, measured already (as in Run.write after simulate)":
                best(lambda: write_report(run, root / "report.html"), args.repeat),
            "write_report, cold (measure + render + write)":
                best(lambda: write_report(next(unmeasured), root / "report.html"),
                     args.repeat),
        }
        group = sc.population.groups[-1].name
        worst = int(run.tables["citizens"]["score"].to_numpy().argmin())
        pages = {
            "runs list (with the ensembles)": ("/", None),
            "run page": ("/run/essay", None),
            "run charts (after the run page)": ("/api/run/essay/charts", "/run/essay"),
            "run charts, one group (after the run page)":
                (f"/api/run/essay/charts?who=group:{group}", "/run/essay"),
            f"citizen's history (citizen {worst}, the lowest score)":
                (f"/run/essay/citizen?id={worst}", None),
            "new run form": ("/new", None),
            "compare with null": ("/compare?a=essay&b=null", None),
            "full comparison report (a report, linked from the compare page)":
                ("/compare/report?a=essay&b=null", None),
            "ensemble page": ("/ensemble/ens-essay", None),
            "compare two ensembles":
                ("/compare/ensembles?a=ens-essay%230&b=ens-null%230", None),
        }
        out["dashboard_s"] = {}
        for label, (path, before) in pages.items():
            first, cached = first_and_cached(root, path, args.repeat, before)
            out["dashboard_s"][label] = {"first": first, "cached": cached}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_speed.json").write_text(json.dumps(out, indent=2))
    m = out["machine"]
    lines = [f"# Report and dashboard speed: {out['run']['citizens']:,} citizens × "
             f"{out['run']['days']} days",
             "", f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores, "
             f"Python {m.get('python')}; load average at the start "
             f"{', '.join(f'{x:.1f}' for x in out['load_average'])} "
             "(a shared, loaded machine makes every time larger). Ensembles: "
             f"{args.seeds} members each, of the same size.", "",
             "| report step | seconds (best of runs) |", "| --- | ---: |"]
    lines += [f"| {k} | {v:.3f} |" for k, v in out["report_s"].items()]
    lines += ["", "Dashboard pages over HTTP. First view: on a `metricpower serve` process just "
              "started, the request reads what it shows from disk. Cached: best of later "
              "requests.", "",
              "| page | first view (s) | cached (s) |", "| --- | ---: | ---: |"]
    lines += [f"| {k} | {v['first']:.3f} | {v['cached']:.3f} |"
              for k, v in out["dashboard_s"].items()]
    (RESULTS / "report_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
