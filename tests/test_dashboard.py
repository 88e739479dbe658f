"""`metricpower serve` in Chromium: start a run from the form, follow it, open it, compare
it with `null`, explain a citizen — with no request leaving the machine and no console
error — and the server's refusals (paths outside the runs folder, bad forms), each answered
with an error page while the server goes on serving."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import polars as pl
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.ledger.schema import CITIZENS
from metricpower.runs import load_run, simulate
from metricpower.scenario import ScenarioError, load_preset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-gpu"]
#: The run the form starts: small, so the test is quick; `null` is written alike.
SMALL = {"citizens": 600, "days": 25, "seed": 11}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`metricpower serve` on a free loopback port over a runs folder holding `null` and
    two small ensembles of 3 seeds (essay and its null, on the same populations)."""
    from metricpower.compare import null_of
    from metricpower.ensembles import LocalPool, ensemble

    runs = tmp_path_factory.mktemp("runs")
    simulate(load_preset("null", {"run": SMALL})).write(runs / "null")
    essay = load_preset("essay", {"run": {**SMALL, "citizens": 400, "days": 15}})
    for name, sc in (("ensembles/essay", essay), ("ensembles/null", null_of(essay))):
        ensemble(sc, 3, runs / name, executor=LocalPool(1), report=False)
    port = free_port()
    exe = Path(sys.executable).with_name("metricpower")
    log = (runs.parent / "serve.log").open("w")
    proc = subprocess.Popen([str(exe), "serve", str(runs), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/", timeout=2)
            break
        except OSError:
            assert proc.poll() is None, (runs.parent / "serve.log").read_text()
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.2)
    yield base, runs
    proc.terminate()
    proc.wait(10)
    log.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def post(url: str, form: dict) -> tuple[int, str, str]:
    """POST a form without following the redirect: (status, Location, body)."""
    data = urllib.parse.urlencode(form, doseq=True).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=30) as r:
            return r.status, r.headers.get("Location", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location", ""), e.read().decode()


def wait_job(base: str, location: str, limit: float = 300) -> dict:
    api = base + location.replace("/jobs/", "/api/jobs/")
    deadline = time.time() + limit
    while True:
        job = json.loads(get(api)[1])
        if job["state"] in ("done", "failed"):
            return job
        assert time.time() < deadline, job
        time.sleep(0.3)


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), \
        "the dashboard tests need Debian's chromium: apt-get install -y chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_dashboard_end_to_end_in_chromium(server, browser, tmp_path):
    base, runs = server
    host = urllib.parse.urlsplit(base).netloc
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    errors, requests, offsite = [], [], []

    def guard(route):
        # Any request to another host fails the test (and is never sent).
        url = route.request.url
        if urllib.parse.urlsplit(url).netloc != host and not url.startswith(("data:",
                                                                              "blob:")):
            offsite.append(url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", guard)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    shots = []

    def shot(name: str) -> None:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    # 1. the form: a bad value is refused with the CLI's own message, the values kept
    page.goto(base + "/new?preset=essay")
    page.fill("input[name=citizens]", "0")
    page.click("#start")
    message = page.locator("#form-error").inner_text()
    try:
        load_preset("essay", {"run": {"citizens": 0}})
    except ScenarioError as e:
        assert message == str(e)
    assert page.input_value("input[name=citizens]") == "0"
    # Chromium logs the refusal's status (422) as a console error; nothing else may be there
    assert len(errors) == 1 and "422" in errors[0], errors
    errors.clear()
    # 2. a small run with one rule changed and one response off, followed live
    for key, value in SMALL.items():
        page.fill(f"input[name={key}]", str(value))
    page.fill("input[name='rule:jaywalking']", "-20")
    page.uncheck("input[name=response][value=appeals]")
    shot("new-run")
    page.click("#start")
    page.wait_for_selector("#progress")
    page.wait_for_selector("#run-link", timeout=300_000)
    assert "day 25 of 25" in page.locator("#job-state").inner_text()
    shot("run-finished")
    name = page.locator("#run-link").inner_text().split(": ", 1)[1]
    made = load_run(runs / name)
    assert made.scenario.run.citizens == SMALL["citizens"]
    assert {r.name: r.points for r in made.scenario.rules}["jaywalking"] == -20
    assert not made.scenario.responses.appeals.enabled
    # 3. its page: every process charted by Plotly, with hover values
    page.click("#run-link")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    for chart in ("limits", "visibility", "categorisation", "scores", "intensification",
                  "authority"):
        assert page.locator(f"#chart-{chart} .main-svg").count() >= 1, chart
    # consequences are charted when any was applied, else the page says so in words
    applied = sum(made.tables["consequences"]["applied"].to_pylist())
    judged = page.locator("#chart-judgements")
    if applied:
        assert judged.locator(".main-svg").count() >= 1
    else:
        assert "Nothing of this kind" in judged.inner_text()
    page.locator("#chart-limits").scroll_into_view_if_needed()
    bars = page.locator("#chart-limits .bars path").all()
    widest = max(bars, key=lambda b: (b.bounding_box() or {"width": 0})["width"])
    box = widest.bounding_box()
    for dx in (8, 6):  # near the bar's end (on a log axis its start is off the plot)
        page.mouse.move(box["x"] + box["width"] - dx, box["y"] + box["height"] / 2)
    page.wait_for_selector("#chart-limits .hovertext", state="attached", timeout=10_000)
    assert "acts" in page.locator("#chart-limits .hovertext").first.text_content()
    # drag across the penalties chart: it zooms in on those days
    page.locator("#chart-visibility").scroll_into_view_if_needed()
    drag = page.locator("#chart-visibility .nsewdrag").first.bounding_box()
    y = drag["y"] + drag["height"] / 2
    page.mouse.move(drag["x"] + drag["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(drag["x"] + drag["width"] * 0.6, y, steps=5)
    page.mouse.up()
    zoomed = page.evaluate("document.getElementById('chart-visibility').layout.xaxis.range")
    assert 0 < zoomed[0] < zoomed[1] < SMALL["days"] - 1
    shot("run")
    # one group only: the citizen charts say whom they show
    page.select_option("#who", "group:minority_women")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    assert "group minority_women" in page.locator("#charts-status").inner_text()
    assert "minority_women" in page.locator("#chart-authority .gtitle").text_content()
    # 4. explain a citizen from the run page
    # the citizen who lost most: a history with entries in it
    scores = made.tables["citizens"]["score"].to_pylist()
    worst = min(range(len(scores)), key=scores.__getitem__)
    page.fill("#explain-form input[name=id]", str(worst))
    page.click("#explain-form button")
    page.wait_for_selector("#history")
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    history = page.locator("#history").inner_text()
    assert "hidden true conduct" in history
    # every score change is a row of the timeline, in the ledger's order, with the score
    # after it; the last one's score is the citizen's final score
    ledger = made.tables["ledger"].filter(pc.equal(made.tables["ledger"]["citizen"], worst))
    rows = page.locator("#timeline tbody tr")
    assert ledger.num_rows > 0 and rows.count() == ledger.num_rows
    assert f"{ledger.num_rows:,} score changes" in page.locator("#history-summary").inner_text()
    last = rows.nth(rows.count() - 1).locator("td").all_inner_texts()
    assert last[0] == str(ledger["day"][-1].as_py())
    assert last[4].replace(",", "") == str(scores[worst])
    # what the system did, labelled as the results schema declares the citizens columns
    done = page.locator("#consequences").inner_text()
    assert CITIZENS.column("sanctions").meaning in done
    # the score chart, drawn by Plotly, its markers answering a hover
    assert page.locator("#chart-score .main-svg").count() >= 1
    point = page.locator("#chart-score .scatterlayer .trace:nth-child(2) .point").first
    point.hover(force=True)
    page.wait_for_selector("#chart-score .hovertext", state="attached", timeout=10_000)
    assert "day" in page.locator("#chart-score .hovertext").first.text_content()
    shot("citizen")
    # 5. compare with null: every effect row in words, no blank cell, paired intervals
    page.goto(base + "/")
    assert page.locator(f"#runs a:text-is('{name}')").count() == 1
    assert page.locator("#runs a:text-is('null')").count() == 1
    page.select_option("#compare-form select[name=a]", name)
    page.select_option("#compare-form select[name=b]", "null")
    page.click("#compare-form button")
    page.wait_for_selector("#effects")
    cells = page.locator("#effects td").all_inner_texts()
    assert cells and all(c.strip() for c in cells)
    assert "sanctions applied" in cells
    assert page.locator("#intervals tbody tr").count() >= 3
    assert " to " in page.locator("#intervals tbody tr").first.inner_text()
    shot("compare")
    # 6. the two ensembles: listed, each with its page, compared with intervals
    page.goto(base + "/")
    shot("runs")
    listed = page.locator("#ensembles").inner_text()
    assert "ensembles/essay" in listed and "ensembles/null" in listed
    page.click("#ensembles a:text-is('ensembles/essay')")
    page.wait_for_selector("#ensemble-summary")
    shown = {r.locator("td").first.inner_text(): r.locator("td").nth(1).inner_text()
             for r in page.locator("#ensemble-summary tbody tr").all()}
    # penalties: the mean over the 3 members, with its interval
    members = pl.read_parquet(runs / "ensembles" / "essay" / "results.parquet")
    mean = members.filter(pl.col("metric") == "penalties.total")["value"].mean()
    assert shown["penalties"].split("[")[0].strip().replace(",", "") == f"{mean:.0f}"
    assert " to " in shown["penalties"]
    shot("ensemble")
    page.goto(base + "/")
    page.select_option("#compare-ensembles-form select[name=a]", "ensembles/essay#0")
    page.select_option("#compare-ensembles-form select[name=b]", "ensembles/null#0")
    page.click("#compare-ensembles-form button")
    page.wait_for_selector("#ensemble-effects")
    assert "paired by seed" in page.locator("p.meta").first.inner_text()
    cells = {r.locator("td").first.inner_text(): r.locator("td").all_inner_texts()
             for r in page.locator("#ensemble-effects tbody tr").all()}
    pen = cells["penalties"]
    assert pen[2].split()[0] == "0" and "every seed" in pen[2]  # null: none, on every seed
    assert " to " in pen[4]
    assert pen[5].startswith(("higher under A", "no clear difference"))
    shot("compare-ensembles")
    # 7. a path outside the runs folder: an error page, and the server goes on
    assert errors == []
    page.goto(base + "/files/..%2f..%2f..%2fetc%2fpasswd")
    assert page.locator("#error-message").count() == 1
    assert "root:" not in page.content()
    assert len(errors) == 1 and "404" in errors[0], errors
    errors.clear()
    page.goto(base + "/")
    assert page.locator("#runs").count() == 1
    context.close()
    assert offsite == []
    assert requests and all(urllib.parse.urlsplit(u).netloc == host
                            for u in requests if not u.startswith(("data:", "blob:")))
    assert errors == []
    for path in shots:
        assert path.stat().st_size > 10_000, path


def test_two_runs_started_at_once_do_not_mix(server):
    base, runs = server
    forms = [{"preset": "essay", **SMALL, "seed": seed} for seed in (21, 22)]
    results = [None, None]

    def start(i):
        results[i] = post(base + "/runs", forms[i])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    jobs = [wait_job(base, loc) for status, loc, _ in results]
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert jobs[0]["run"] != jobs[1]["run"]
    for job, form in zip(jobs, forms, strict=True):
        run = load_run(runs / job["run"])
        assert run.scenario.run.seed == form["seed"]
        assert run.tables["daily"].num_rows == SMALL["days"]
    # each equals the same run made alone: nothing leaked between the two
    alone = simulate(load_preset("essay", {"run": {**SMALL, "seed": 22}}))
    again = load_run(runs / jobs[1]["run"])
    assert again.tables["citizens"]["score"].equals(alone.tables["citizens"]["score"])
    assert not [p for p in runs.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("path", [
    "/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/..%2f..%2fetc%2fpasswd", "/run/..%2f..%2f..%2fetc", "/folder/%2fetc",
    "/files//etc/passwd", "/files/null/../../outside.txt", "/files/.hidden/x.html"])
def test_paths_outside_the_runs_folder_are_refused(server, path):
    base, runs = server
    (runs.parent / "outside.txt").write_text("secret")
    status, body = get(base + path)
    assert status in (400, 404)
    assert "secret" not in body and "root:" not in body
    assert "<h1>Error" in body
    assert get(base + "/")[0] == 200


def test_bad_requests_get_error_pages(server):
    base, _ = server
    for path, status, words in (
        ("/run/nothing-here", 404, "not in the runs folder"),
        ("/run/null/citizen?id=abc", 400, "expected a whole number"),
        ("/run/null/citizen?id=99999", 404, "not in this run"),
        ("/compare?a=null", 400, "two runs"),
        ("/new?preset=nope", 404, "no preset"),
        ("/jobs/nope", 404, "no such run"),
        ("/ensemble/null", 404, "not a finished ensemble"),
        ("/ensemble/..%2f..%2fetc", 404, "not in the runs folder"),
        ("/compare/ensembles?a=ensembles/essay%230", 400, "two ensembles"),
        ("/compare/ensembles?a=ensembles/essay&b=ensembles/null%230", 400, "FOLDER#ARM"),
        ("/compare/ensembles?a=ensembles/essay%237&b=ensembles/null%230", 404, "no arm 7"),
    ):
        got, body = get(base + path)
        assert got == status, path
        assert words in body, path
    status, _, body = post(base + "/runs", {"preset": "essay", "citizens": "ten"})
    assert status == 422 and "citizens: expected a whole number, found &#x27;ten&#x27;" in body
    status, _, body = post(base + "/runs", {"preset": "essay", "false_match_factor": "-1",
                                            "citizens": "100"})
    assert status == 422 and "false_match_rate" in body
    assert get(base + "/")[0] == 200


def test_names_are_escaped(server):
    base, runs = server
    evil = runs / "<script>alert(1)</script>"
    shutil.copytree(runs / "null", evil)
    status, body = get(base + "/")
    assert status == 200
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body
    shutil.rmtree(evil)


def test_serve_without_the_web_extra_names_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "starlette" else real(name, *a))
    res = CliRunner().invoke(app, ["serve", "runs"])
    assert res.exit_code == 2
    assert "metricpower[web]" in res.output and "starlette" in res.output


def test_serve_on_another_host_says_so(monkeypatch, tmp_path):
    import metricpower.web.app as web_app

    seen = {}
    monkeypatch.setattr(web_app, "serve", lambda *a, **k: seen.update(k))
    res = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0"])
    assert res.exit_code == 0, res.output
    assert "WARNING: serving on 0.0.0.0" in res.output
    assert seen["host"] == "0.0.0.0"
    res = CliRunner().invoke(app, ["serve", str(tmp_path)])
    assert "WARNING" not in res.output and seen["host"] == "127.0.0.1"


def test_ensembles_and_comparisons_are_listed_not_their_members(tmp_path):
    from metricpower.web.store import RunsFolder

    run = simulate(load_preset("null", {"run": {"citizens": 200, "days": 3, "seed": 1}}))
    run.write(tmp_path / "one", report=False)
    ens = tmp_path / "sweeps" / "jaywalking"
    run.write(ens / "members" / "00000", report=False)
    (ens / "plan.json").write_text(json.dumps(
        {"kind": "sweep", "arms": [{"scenario": {"name": "essay"}}], "seeds": [1, 2]}))
    (tmp_path / "cmp").mkdir()
    (tmp_path / "cmp" / "comparison.json").write_text("{}")
    found = {e.name: e.kind for e in RunsFolder(tmp_path).entries()}
    assert found == {"one": "run", "sweeps/jaywalking": "sweep", "cmp": "comparison"}
    # an unfinished sweep (no results yet) is listed and links to its folder
    from metricpower.web.pages import index

    page = index(str(tmp_path), RunsFolder(tmp_path).entries(), ["essay"], [])
    assert 'href="/folder/sweeps/jaywalking"' in page and "unfinished" in page


# ---------------------------------------------------------------- ensembles compared
def _members(rng, seeds, means: dict, sd: float = 1.0, shared=None):
    """`seed, metric, value` rows: each metric `m` drawn around means[m] (plus a per-seed
    part `shared[seed]` that two paired sides have in common)."""
    import polars as pl

    rows = [(s, m, mu + (shared[i] if shared is not None else 0) + rng.normal(0, sd))
            for i, s in enumerate(seeds) for m, mu in means.items()]
    return pl.DataFrame(rows, schema=["seed", "metric", "value"], orient="row")


@pytest.mark.parametrize("paired", [True, False])
def test_ensemble_difference_intervals_cover_and_detect(paired):
    """Power of the interval of A − B: over 600 simulated pairs of 10-seed ensembles it
    covers the true difference about 95% of the time, excludes 0 in at most 8% of pairs
    when nothing differs, and in at least 70% when a difference of one standard deviation
    of the per-seed differences (paired) or 1.5 of the members (independent) is planted."""
    import numpy as np

    from metricpower.ensembles.stats import between

    rng = np.random.default_rng(1)
    seeds = list(range(10))
    effect = 1.0 if paired else 1.5
    covered = found = false = 0
    for _ in range(600):
        shared = rng.normal(0, 5, len(seeds)) if paired else None
        # paired: per-seed differences have sd 1 (each side sd 1/√2 around the shared part)
        sd = 2 ** -0.5 if paired else 1.0
        a = _members(rng, seeds, {"planted": effect, "none": 0.0}, sd, shared)
        b = _members(rng, seeds if paired else [s + 100 for s in seeds],
                     {"planted": 0.0, "none": 0.0}, sd, shared)
        r = {row["metric"]: row for row in between(a, b, paired).iter_rows(named=True)}
        covered += r["planted"]["lo"] <= effect <= r["planted"]["hi"]
        found += r["planted"]["lo"] > 0
        false += r["none"]["lo"] > 0 or r["none"]["hi"] < 0
        assert r["planted"]["paired"] is paired
    assert 0.925 <= covered / 600 <= 0.975
    assert false / 600 <= 0.075
    assert found / 600 >= 0.7


def test_pairing_needs_shared_seeds_and_populations(tmp_path):
    """Two ensembles of the same population on the same seeds are paired; another number
    of citizens (another population) is not, and is compared as independent samples."""
    from metricpower.compare import null_of
    from metricpower.ensembles import LocalPool, ensemble
    from metricpower.web.ensembles import Ensembles, compare
    from metricpower.web.store import RunsFolder

    sc = load_preset("essay", {"run": {"citizens": 300, "days": 10}})
    ensemble(sc, 2, tmp_path / "essay", executor=LocalPool(1), report=False)
    ensemble(null_of(sc), 2, tmp_path / "null", executor=LocalPool(1), report=False)
    other = load_preset("null", {"run": {"citizens": 350, "days": 10}})
    ensemble(other, 2, tmp_path / "bigger", executor=LocalPool(1), report=False)
    sets = Ensembles(RunsFolder(tmp_path))
    same = compare(sets.get("essay"), 0, sets.get("null"), 0)
    assert same.paired
    pen = same.rows.filter(same.rows["metric"] == "penalties.total").row(0, named=True)
    table = sets.get("essay").table
    per_seed = table.filter(table["metric"] == "penalties.total")["value"].to_list()
    assert pen["difference"] == pytest.approx(sum(per_seed) / 2)  # null has none
    assert not compare(sets.get("essay"), 0, sets.get("bigger"), 0).paired


def test_two_arms_of_a_sweep_compared_over_http(tmp_path):
    """A sweep's page gives each arm's measures and the paired effects against its
    baseline arm; two of its arms compare paired by seed, and the page's difference is the
    mean over seeds of the members' own differences."""
    from metricpower.ensembles import LocalPool, sweep
    from metricpower.web.app import create_app

    sc = load_preset("essay", {"run": {"citizens": 300, "days": 12}})
    sweep(sc, {"rules.jaywalking.points": [-5, -60]}, 3, tmp_path / "sw",
          executor=LocalPool(1), report=False)
    base = _served(create_app(tmp_path))
    status, body = get(base + "/ensemble/sw")
    assert status == 200 and "points=-60" in body and 'id="arm-effects"' in body
    assert "Against the baseline arm (points=-5)" in body
    status, body = get(base + "/compare/ensembles?a=sw%231&b=sw%230")
    assert status == 200 and "paired by seed" in body
    table = pl.read_parquet(tmp_path / "sw" / "results.parquet").filter(
        pl.col("metric") == "penalties.total")
    per_seed = table.pivot(on="arm", index="seed", values="value")
    expected = (per_seed["points=-60"] - per_seed["points=-5"]).mean()
    row = body.split('<td class="text">penalties</td>', 1)[1].split("</tr>", 1)[0]
    shown = row.split("</td><td>")[2].split("<")[0]
    assert float(shown.replace("−", "-").replace(",", "").lstrip("+±")) == \
        pytest.approx(expected, abs=0.5)


def _served(application) -> str:
    """Serve `application` on a free loopback port in a thread; its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port,
                                           log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "the server did not start"
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}"


def test_full_comparison_report_from_the_compare_page(server):
    """The compare page links the full comparison report, drawn from the two run
    directories: every section, its figures, and the same effects as the page."""
    import html
    import re

    base, runs = server
    simulate(load_preset("essay", {"run": SMALL})).write(runs / "essay-full")
    status, page = get(base + "/compare?a=essay-full&b=null")
    assert status == 200
    link = html.unescape(re.search(r'href="(/compare/report\?[^"]+)"', page).group(1))
    status, report = get(base + link)
    assert status == 200
    from metricpower.report.comparison import COMPARISON_SECTIONS

    for sid in COMPARISON_SECTIONS:
        assert f'<section id="{sid}"' in report, sid
    for fid in ("fig-compare-tiers", "fig-compare-evidence", "fig-compare-auc"):
        assert f'id="{fid}"' in report, fid
    penalties = load_run(runs / "essay-full").metrics["penalties"]["total"]
    assert f"<td>{penalties:,}</td>" in page and f"<td>{penalties:,}</td>" in report


def test_a_run_changed_since_it_was_written_is_an_error_page(server):
    """The dashboard checks a run against its manifest when it first reads it: a table
    altered after the run was written (here a copy of `null` with its daily table
    cut short) gets a page naming the file, not numbers read from it."""
    base, runs = server
    broken = runs / "null-altered"
    shutil.copytree(runs / "null", broken)
    daily = broken / "daily.parquet"
    daily.write_bytes(daily.read_bytes()[:-10])
    status, body = get(base + "/run/null-altered")
    assert status == 422 and "daily.parquet" in body and "cannot be read" in body, body
    assert get(base + "/run/null")[0] == 200
    shutil.rmtree(broken)
