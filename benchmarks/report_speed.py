"""How long the run report and the dashboard's pages take for a run of a given size.

    python benchmarks/report_speed.py [--citizens 100000] [--days 365] [--repeat 3]
                                      [--run RUN_DIR]

Simulates the essay preset (or reads RUN_DIR), then times, best of `--repeat`:
- the report: `measure` (the metrics; `simulate` has already done it when `Run.write`
  writes the report), rendering (figures and HTML), and `write_report` with and without
  the measures at hand;
- the dashboard, served by uvicorn on a loopback port and asked over HTTP: the runs list,
  a run's page and its charts (the first request reads the run; later ones find it
  cached), a group's charts, a citizen's history, and the comparison with `null` (first
  and cached).

Writes benchmarks/results/report_speed.json and .md, naming the machine and its load
average (a loaded machine makes every number larger).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from run import machine  # noqa: E402

from metricpower.compare import null_of  # noqa: E402
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


def serve(root: Path):
    import uvicorn

    from metricpower.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def fetch(url: str) -> None:
    with urllib.request.urlopen(url, timeout=120) as r:
        assert r.status == 200, url
        r.read()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--citizens", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeat", type=int, default=3)
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
        out["run"] = {"citizens": sc.run.citizens, "days": sc.run.days}
        run.write(root / "essay", report=False)
        simulate(null_of(sc)).write(root / "null", report=False)
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
        server, base = serve(root)
        try:
            pages = {}
            pages["runs list"] = best(lambda: fetch(base + "/"), args.repeat)
            pages["run page, first"] = once(lambda: fetch(base + "/run/essay"))
            pages["run page"] = best(lambda: fetch(base + "/run/essay"), args.repeat)
            pages["run charts"] = best(lambda: fetch(base + "/api/run/essay/charts"),
                                       args.repeat)
            group = sc.population.groups[-1].name
            pages["run charts, one group"] = best(
                lambda: fetch(f"{base}/api/run/essay/charts?who=group:{group}"), args.repeat)
            pages["citizen"] = best(lambda: fetch(base + "/run/essay/citizen?id=17"),
                                    args.repeat)
            pages["new run form"] = best(lambda: fetch(base + "/new"), args.repeat)
            pages["compare with null, first"] = once(
                lambda: fetch(base + "/compare?a=essay&b=null"))
            pages["compare with null"] = best(lambda: fetch(base + "/compare?a=essay&b=null"),
                                              args.repeat)
            out["dashboard_s"] = pages
        finally:
            server.should_exit = True
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_speed.json").write_text(json.dumps(out, indent=2))
    m = out["machine"]
    lines = [f"# Report and dashboard speed: {out['run']['citizens']:,} citizens × "
             f"{out['run']['days']} days",
             "", f"Machine: {m.get('cpu')}, {m.get('usable_cores')} usable cores, "
             f"Python {m.get('python')}; load average at the start "
             f"{', '.join(f'{x:.1f}' for x in out['load_average'])} "
             "(a shared, loaded machine makes every time larger).", "",
             "| step | seconds (best of runs) |", "| --- | ---: |"]
    lines += [f"| report: {k} | {v:.3f} |" for k, v in out["report_s"].items()]
    lines += [f"| dashboard: {k} | {v:.3f} |" for k, v in out["dashboard_s"].items()]
    (RESULTS / "report_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
