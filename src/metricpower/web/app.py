"""The dashboard's routes (Starlette). Pages answer from runs read once and cached; every
path given by a request is resolved inside the runs folder or refused; any error becomes
an error page and the server goes on serving."""

from __future__ import annotations

import threading
from pathlib import Path

import plotly
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from metricpower.compare import NotComparable, compare_runs
from metricpower.ensembles.results import Results
from metricpower.explain import events
from metricpower.metrics.visibility import PENALTY_EVIDENCE
from metricpower.report.comparison import (
    EFFECTS,
    PAIRED,
    effect_row,
    paired,
    render_comparison,
)
from metricpower.report.labels import label
from metricpower.runs import OutputError
from metricpower.scenario import ScenarioError, preset_names
from metricpower.web import pages
from metricpower.web.charts import citizen_score, run_charts
from metricpower.web.ensembles import Ensembles, NotAnEnsemble
from metricpower.web.jobs import FormError, Jobs, form_fields, scenario_from_form
from metricpower.web.store import VIEWABLE, Refused, RunsFolder

STATIC = Path(__file__).parent / "static"
#: Plotly's own minified bundle, shipped in the `plotly` package (web extra).
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_headers())


def _headers() -> dict:
    return {"Content-Security-Policy": pages.CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


#: The citizens' columns a comparison reads: to check that both runs hold the same
#: citizens (conduct), for its effects and for its paired per-citizen intervals.
COMPARED = tuple(dict.fromkeys(("conduct", "score", "sanctions", "income", "income_final",
                                *PAIRED)))


def create_app(runs_dir: str | Path) -> Starlette:
    folder = RunsFolder(runs_dir)
    folder.root.mkdir(parents=True, exist_ok=True)
    jobs = Jobs(folder.root)
    sets = Ensembles(folder)
    comparisons: dict = {}
    compare_lock = threading.Lock()

    def loaded(name: str):
        try:
            return folder.run(name)
        except Refused as e:
            raise HTTPException(404, str(e)) from None
        except (ScenarioError, OutputError, OSError) as e:
            raise HTTPException(422, f"this run cannot be read: {e}") from None

    def finished_sets(entries) -> list:
        out = []
        for e in entries:
            if e.kind in ("run", "comparison"):
                continue
            try:
                out.append(sets.get(e.name))
            except (NotAnEnsemble, Refused):
                continue  # unfinished: listed, not offered for comparison
        return out

    async def home(request: Request):
        entries = folder.entries()
        return _html(pages.index(str(folder.root), entries, preset_names(),
                                 finished_sets(entries)))

    def ensemble_of(name: str):
        try:
            return sets.get(name)
        except Refused as e:
            raise HTTPException(404, str(e)) from None
        except NotAnEnsemble as e:
            raise HTTPException(404, str(e)) from None

    async def ensemble_page(request: Request):
        ens = ensemble_of(request.path_params["name"])
        effects = Results(ens.path).effects() if ens.kind != "ensemble" else None
        return _html(pages.ensemble_page(ens, ens.summary(), effects))

    async def compare_ensembles(request: Request):
        from metricpower.web.ensembles import choice, compare

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise HTTPException(400, "compare needs two ensembles or sweep arms: "
                                     "?a=FOLDER#ARM&b=FOLDER#ARM")
        try:
            (na, ia), (nb, ib) = choice(a), choice(b)
        except ValueError as e:
            raise HTTPException(400, str(e)) from None
        ea, eb = ensemble_of(na), ensemble_of(nb)
        for ens, i in ((ea, ia), (eb, ib)):
            if not 0 <= i < len(ens.arms):
                raise HTTPException(404, f"{ens.name!r} has no arm {i} (arms 0 to "
                                         f"{len(ens.arms) - 1})")
        return _html(pages.ensemble_compare_page(compare(ea, ia, eb, ib), a, b))

    async def run_page(request: Request):
        name = request.path_params["name"]
        who = request.query_params.get("who") or None
        return _html(pages.run_page(name, loaded(request.path_params["name"]), who))

    async def charts(request: Request):
        data = run_charts(loaded(request.path_params["name"]),
                          request.query_params.get("who") or None)
        return JSONResponse(data, headers=_headers())

    async def citizen(request: Request):
        name = request.path_params["name"]
        run = loaded(name)
        raw = request.query_params.get("id", "")
        try:
            cid = int(raw)
        except ValueError:
            raise HTTPException(400, f"citizen: expected a whole number, found {raw!r}") \
                from None
        n = run.citizen_count
        if not 0 <= cid < n:
            raise HTTPException(404, f"citizen {cid} is not in this run (ids 0 to {n - 1})")
        row = run.citizen(cid)
        evs = events(run.scenario, run.ledger_of(cid).to_pylist()) if row["in_ledger"] \
            else None
        chart = citizen_score(run.scenario, evs) if evs is not None else None
        return _html(pages.citizen_page(name, cid, row, evs, run.scenario, chart))

    async def new(request: Request):
        preset = request.query_params.get("preset", "essay")
        if preset not in preset_names():
            raise HTTPException(404, f"no preset {preset!r} (presets: "
                                     f"{', '.join(preset_names())})")
        return _html(pages.new_page(preset_names(), preset, form_fields(preset)))

    async def start(request: Request):
        form = await request.form()
        preset = str(form.get("preset", "essay"))
        if preset not in preset_names():
            raise HTTPException(400, f"no preset {preset!r}")
        try:
            scenario = scenario_from_form(form)
        except (ScenarioError, FormError) as e:
            values = {k: str(v) for k, v in form.items()}
            return _html(pages.new_page(preset_names(), preset, form_fields(preset),
                                        error=str(e), values=values), status=422)
        job = jobs.start(scenario)
        return RedirectResponse(pages.url("jobs", job.id), status_code=303)

    async def job_page(request: Request):
        job = jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, "no such run in progress")
        return _html(pages.job_page(job))

    async def job_api(request: Request):
        job = jobs.get(request.path_params["job"])
        if job is None:
            raise HTTPException(404, "no such run in progress")
        return JSONResponse(job.as_dict(), headers=_headers())

    def comparison(request: Request, full: bool = False):
        """The comparison of ?a= and ?b=, made from the runs as the dashboard keeps them:
        the effects and the stored summaries need no ledger; the full report's (`full`)
        figures read its evidence columns."""
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise HTTPException(400, "compare needs two runs: ?a=RUN&b=RUN")
        try:
            pa_, pb_ = folder.inside(a), folder.inside(b)
            key = (full, *((p, (p / "metrics.json").stat().st_mtime_ns) for p in (pa_, pb_)))
        except (Refused, OSError) as e:
            raise HTTPException(404, str(e)) from None
        with compare_lock:
            if key not in comparisons:
                try:
                    # The full report's figures also read the ledger's evidence columns.
                    ledger = PENALTY_EVIDENCE if full else ()
                    ra, rb = (loaded(x).run(COMPARED, ledger) for x in (a, b))
                    made = compare_runs(ra, rb, a, b)
                except NotComparable as e:
                    raise HTTPException(422, str(e)) from None
                except (ScenarioError, OutputError, OSError) as e:
                    raise HTTPException(422, f"cannot read the runs: {e}") from None
                # a few kept: a full comparison holds two whole runs
                while len(comparisons) >= 4:
                    comparisons.pop(next(iter(comparisons)))
                comparisons[key] = made
            return comparisons[key]

    async def compare_page(request: Request):
        c = comparison(request)
        rows = [effect_row(k, c.effects[k]) for k in EFFECTS if k in c.effects]
        rows += [effect_row(n, eff, f"sanction: {label(n)}")
                 for n, eff in c.effects.get("sanctions", {}).items()]
        return _html(pages.compare_page(c.name_a, c.name_b, rows, c.notes,
                                        paired(c)))

    async def compare_report(request: Request):
        return HTMLResponse(render_comparison(comparison(request, full=True)))

    async def files(request: Request):
        try:
            path = folder.inside(request.path_params["path"])
        except Refused as e:
            raise HTTPException(404, str(e)) from None
        if not path.is_file() or path.suffix not in VIEWABLE:
            raise HTTPException(404, "only reports, figures, JSON and scenario files of "
                                     "the runs folder are served")
        return FileResponse(path, media_type=VIEWABLE[path.suffix])

    async def folder_page(request: Request):
        name = request.path_params["name"]
        try:
            path = folder.inside(name)
        except Refused as e:
            raise HTTPException(404, str(e)) from None
        if not path.is_dir():
            raise HTTPException(404, f"{name!r} is not a folder")
        shown = sorted(p.name for p in path.iterdir() if p.is_file()
                       and p.suffix in VIEWABLE and not p.name.startswith("."))
        return _html(pages.folder(name, shown))

    async def plotly_js(request: Request):
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})

    async def on_http_error(request: Request, exc: HTTPException):
        return _html(pages.error_page(exc.status_code, exc.detail), exc.status_code)

    async def on_error(request: Request, exc: Exception):
        return _html(pages.error_page(500, f"{type(exc).__name__}: {exc}"), 500)

    routes = [
        Route("/", home),
        Route("/new", new),
        Route("/runs", start, methods=["POST"]),
        Route("/jobs/{job}", job_page),
        Route("/api/jobs/{job}", job_api),
        Route("/compare", compare_page),
        Route("/compare/report", compare_report),
        Route("/compare/ensembles", compare_ensembles),
        Route("/ensemble/{name:path}", ensemble_page),
        Route("/api/run/{name:path}/charts", charts),
        Route("/run/{name:path}/citizen", citizen),
        Route("/run/{name:path}", run_page),
        Route("/folder/{name:path}", folder_page),
        Route("/files/{path:path}", files),
        Route("/static/plotly.min.js", plotly_js),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: on_http_error,
                                                        Exception: on_error})


def serve(runs_dir: str | Path, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "warning") -> None:
    import uvicorn

    uvicorn.run(create_app(runs_dir), host=host, port=port, log_level=log_level)


__all__ = ["PLOTLY_JS", "create_app", "serve"]
