"""The HTML report opens offline in headless Chromium, with every section and plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_browser, run_preset
from typer.testing import CliRunner

from metricpower.cli import app
from metricpower.compare import compare
from metricpower.report import FIGURES, SECTIONS, write_report
from metricpower.report.comparison import COMPARISON_SECTIONS, write_comparison_report

ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    chromium = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=ARGS)
        yield b
        b.close()


def open_page(browser, path: Path):
    """Load `path`; return the page, its console errors and every request made."""
    page = browser.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, errors, requests


def check_offline(errors: list[str], requests: list[str]) -> None:
    assert errors == []
    assert requests, "the page itself should be the one request"
    assert all(u.startswith(("file:", "data:")) for u in requests), requests


def check_run_report(browser, path: Path) -> tuple[list[str], list[str]]:
    """Check the report's sections and figures; return the figures drawn and those
    replaced by a sentence."""
    page, errors, requests = open_page(browser, path)
    try:
        check_offline(errors, requests)
        for sid in SECTIONS:
            assert page.locator(f"section#{sid}").count() == 1, sid
            assert page.locator(f"section#{sid} .summary p").count() >= 1, sid
        drawn, told = [], []
        for sid, figs in FIGURES.items():
            for fid in figs:
                img = page.locator(f"section#{sid} figure#{fid} img")
                missing = page.locator(f"section#{sid} #{fid}-missing")
                assert img.count() + missing.count() == 1, fid
                if img.count():
                    drawn.append(fid)
                else:
                    assert len(missing.inner_text()) > 20, fid
                    told.append(fid)
        assert page.locator("img").count() == len(drawn)
        # every image decoded (a broken data: URI has no natural size)
        sizes = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert len(sizes) == len(drawn) and (not sizes or min(sizes) > 0)
        # the table of contents names each numbered section exactly as its heading
        toc = page.locator("nav a").all_inner_texts()
        heads = [page.locator(f"section#{sid} h2").inner_text() for sid in SECTIONS[1:]]
        assert toc == heads
        return drawn, told
    finally:
        page.close()


def test_essay_report_opens_offline_with_every_section_and_plot(browser, tmp_path):
    # At 10,000 citizens the 90 days change ties (at 3,000, not on every seed).
    essay_run = run_preset("essay", citizens=10_000)
    path = write_report(essay_run, tmp_path / "report.html")
    drawn, told = check_run_report(browser, path)
    # the essay's policy acts: every figure has something to show, but the risk model's
    # errors, judged only after its 90-day horizon, which this 90-day run does not pass
    assert told == ["fig-predictions"]
    assert len(drawn) == sum(len(f) for f in FIGURES.values()) - 1
    text = path.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    # this run records the intensification quantities: their plots are there
    for fid in ("fig-mobility", "fig-assortativity", "fig-chilling"):
        assert f'id="{fid}"' in text, fid


def test_null_report_says_in_words_what_it_cannot_draw(browser, null_run, tmp_path):
    drawn, told = check_run_report(browser, write_report(null_run, tmp_path / "report.html"))
    # no policy: no penalties, sanctions, lists or score differences to draw
    for fid in ("fig-policy", "fig-penalty-evidence", "fig-misattribution", "fig-sanctions",
                "fig-wrongful", "fig-list-sizes", "fig-score-distribution",
                "fig-score-conduct"):
        assert fid in told, fid
    # what the null run does record is still drawn
    assert "fig-occurrences" in drawn and "fig-tier-shares" in drawn


def test_comparison_report_opens_offline(browser, essay_run, null_run, tmp_path):
    path = write_comparison_report(compare(essay_run, null_run), tmp_path / "c.html")
    page, errors, requests = open_page(browser, path)
    try:
        check_offline(errors, requests)
        for sid in COMPARISON_SECTIONS:
            assert page.locator(f"section#{sid}").count() == 1, sid
        for fid in ("fig-compare-sanctions", "fig-compare-chilling", "fig-compare-tiers",
                    "fig-compare-scores", "fig-compare-evidence", "fig-compare-auc"):
            assert page.locator(f"figure#{fid} img").count() == 1, fid
        sizes = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert sizes and min(sizes) > 0
    finally:
        page.close()


def test_report_command_writes_report_html(essay_run, tmp_path):
    run_dir = essay_run.write(tmp_path / "run", report=False)
    assert not (run_dir / "report.html").exists()
    res = CliRunner().invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert (run_dir / "report.html").stat().st_size > 10_000
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert res.exit_code == 2


def test_comparison_report_says_what_changed_in_words(essay_run, null_run, tmp_path):
    import re

    text = write_comparison_report(compare(essay_run, null_run), tmp_path / "c.html") \
        .read_text()
    # every process section says in words which measures changed and by how much
    for sid in COMPARISON_SECTIONS[2:]:
        body = text.split(f'<section id="{sid}"', 1)[1].split("</section>", 1)[0]
        summary = body.split('<div class="summary">', 1)[1].split("</div>", 1)[0]
        if sid == "disparate_impact":
            assert "Under A," in summary and "Under B," in summary, sid
        else:
            assert "measures differ" in summary, sid
            assert "Largest changes:" in summary, sid
    # readers' row labels, never raw keys; no blank cell; no number in e-notation
    assert "tier_shares.AA" not in text and "auc_by_group." not in text
    assert "share of citizens in tier: AA" in text
    assert not re.search(r"<td[^>]*></td>", text)
    assert not re.search(r"\d\.\d+e-\d", text)
    # a single worst ratio (which may rest on two events) is not compared row by row
    assert "worst" not in text.split('<section id="disparate_impact"', 1)[1]
    assert "95% interval" in text and " to " in text


def test_terminal_summary_says_of_what(essay_run):
    from rich.console import Console

    from metricpower.cli import summary_table

    console = Console(record=True, width=120)
    console.print(summary_table(essay_run))
    out = console.export_text()
    assert "/ 100k" not in out
    assert "misattributed per 100,000 citizens" in out


def test_run_plot_draws_the_report_figures(essay_run, tmp_path):
    svg = essay_run.plot("penalty-evidence")
    assert svg._repr_svg_().startswith("<svg") and "penalties per day" in svg.text
    assert essay_run.plot("fig-tier-shares").text.count("<svg") == 3  # two panels stacked
    with pytest.raises(KeyError, match="fig-policy"):
        essay_run.plot("nothing-like-this")


def test_moving_mean_has_no_edge_spike():
    import numpy as np

    from metricpower.report.figures import moving_mean

    flat = moving_mean(np.full(30, 10.0))
    assert np.allclose(flat, 10.0)  # a trailing sum over a cut window would dip or spike
    # a spike on day 20 spreads over days 17-23 only, at a seventh of its size
    y = np.zeros(40)
    y[20] = 70.0
    m = moving_mean(y)
    assert np.allclose(m[17:24], 10.0) and m[16] == 0 and m[24] == 0
    # the last day is the mean of the days its cut window holds
    z = np.r_[np.zeros(30), 8.0]
    assert moving_mean(z)[-1] == 2.0


def test_numbers_are_written_for_their_size():
    from metricpower.report.labels import difference, label, value

    assert value("penalties", 1360.0) == "1,360"           # a count: no decimals
    assert value("detection_rate", 0.000669) == "0.067%"    # a small share: a percentage
    assert value("misattributed_per_100k", 1360.04) == "1,360.0"
    assert value("score_gini", 0.00508) == "0.005"
    assert value("sanctions_total", None) == "n/a"
    assert difference("tier_shares.AA", -0.0123) == "−1.23 points"
    assert label("auc_by_group.majority_men") == "score vs conduct ROC AUC, group majority men"


def test_paired_interval_finds_a_planted_effect_and_no_phantom_one():
    """Power: 5,000 paired citizens with noise of sd 1 give a standard error of 0.014, so a
    planted effect of 0.1 (7 standard errors) must exclude zero; with no effect planted,
    the interval holds zero (seeded; 95% intervals miss 1 time in 20 by design)."""
    from types import SimpleNamespace

    import numpy as np
    import pyarrow as pa

    from metricpower.report.comparison import paired

    rng = np.random.default_rng(5)
    base = rng.normal(1000, 20, 5000)

    def side(score):
        return SimpleNamespace(tables={"citizens": pa.table({"score": score})})

    def bounds(effect):
        row = paired(SimpleNamespace(a=side(base + effect + rng.normal(0, 1, 5000)),
                                     b=side(base)))[0]
        lo, hi = (float(x.replace("−", "-")) for x in row["interval"].split(" to "))
        return lo, hi

    lo, hi = bounds(0.1)
    assert 0 < lo < 0.1 < hi
    lo, hi = bounds(0.0)
    assert lo < 0 < hi


def test_column_labels_are_read_from_the_results_schema(monkeypatch):
    """One declaration: a run table's column is labelled with the meaning the results
    schema declares for it, LABELS repeats none of those meanings, and a changed
    declaration changes the label (of the report, the comparison and the dashboard)."""
    from dataclasses import replace

    from metricpower.ledger.schema import CITIZENS, DAILY
    from metricpower.report import labels

    for table in labels.COLUMN_TABLES:
        for col in table.fixed():
            assert labels.LABELS.get(col.name) != col.meaning, col.name
            if col.name not in labels.LABELS and labels.column(col.name) is col:
                assert labels.label(col.name) == col.meaning, col.name
    assert labels.label("benign_penalties") == DAILY.column("benign_penalties").meaning
    col, part = DAILY._fixed["benign_penalties"]
    monkeypatch.setitem(DAILY._fixed, "benign_penalties",
                        (replace(col, meaning="penalties on innocent acts"), part))
    assert labels.label("benign_penalties") == "penalties on innocent acts"
    # units: an index column is written as an index, a count column as a count
    assert labels.value("mean_income", 1.0) == "1.000"
    assert labels.value("sanctions", 3.0) == "3"
    assert CITIZENS.column("sanctions").unit == "events"


def test_small_differences_are_not_written_as_zero():
    """A non-zero change of an index too small for 4 decimals is written with two
    significant digits (never "+0.0000", never e-notation), in the comparison's words too."""
    from metricpower.report.comparison import effect_row
    from metricpower.report.labels import difference, estimate

    assert difference("income_gini", 3.2e-5) == "+0.000032"
    assert difference("income_gini", -0.0123) == "−0.0123"
    row = effect_row("income_gini", {"a": 0.29503, "b": 0.295, "difference": 3.2e-5})
    assert row["words"] == "higher under A by 0.000032"
    # an interval is written to the precision its width supports, however narrow
    assert estimate("income_final", [0.99797, 0.99796, 0.99798]) == \
        ["0.997970", "0.997960", "0.997980"]


def test_run_report_layout_faults_stay_fixed(essay_run, tmp_path):
    """The run report's table of contents says exactly what the section headings say
    (numbers included), number cells never wrap mid-number, acts spanning orders of
    magnitude are drawn on a log axis, and each disparity is given one ratio."""
    import base64
    import re
    from collections import Counter

    from metricpower.metrics import measure
    from metricpower.report.labels import log_scale_needed

    text = write_report(essay_run, tmp_path / "report.html").read_text()
    toc = re.findall(r'<li><a href="#([^"]+)">(.*?)</a></li>', text.split("</nav>", 1)[0])
    heads = re.findall(r'<section id="([^"]+)"[^>]*>\s*<h2>(.*?)</h2>', text)
    assert toc and toc == heads[1:]  # every section after the overview ("At a glance")
    assert re.search(r"th, td \{[^}]*white-space: nowrap", text)
    occ = measure(essay_run)["occurrences_by_behaviour"]["occurrences"].to_list()
    fig = text.split('id="fig-occurrences"', 1)[1].split("</figure>", 1)[0]
    svg = base64.b64decode(re.search(r"base64,([^\"]+)", fig).group(1)).decode()
    assert log_scale_needed(occ) and "log scale" in svg  # from 1 act to thousands
    # one "N× the least-affected group's rate" per rate and group
    said = re.findall(r"([\w ']+) for (\w+) \(ratio [\d.]+, 95% interval [^;]+; ([\d.]+)×", text)
    assert said and not [k for k, n in Counter((r, w) for r, w, _ in said).items() if n > 1]
    # The disparity table's own flag is not named as the citizens' column `flagged`.
    every = text.split("Table: every rate by group and region", 1)[1].split("</thead>", 1)[0]
    assert "significant after Holm" in every and "risk model" not in every


def test_ensemble_report_names_metrics_for_readers(tmp_path):
    """The ensemble report's headline table, its sensitivity lines and its full table name
    each metric as readers do (the raw key stays beside it only in the full table)."""
    import re

    from metricpower.ensembles import LocalPool, sweep
    from metricpower.report.labels import metric_label
    from metricpower.scenario import load_preset

    sc = load_preset("essay", {"run": {"citizens": 300, "days": 10}})
    res = sweep(sc, {"rules.jaywalking.points": [-5, -40]}, 2, tmp_path / "s",
                executor=LocalPool(1))
    text = (res.out / "report.html").read_text()
    headline = text.split('id="metrics"', 1)[1].split("</table>", 1)[0]
    assert metric_label("penalties.misattributed_per_100k") in headline
    assert "penalties.misattributed_per_100k" not in headline
    moved = re.findall(r"<b>([^<]+)</b> moves most with", text)
    assert moved and all("." not in m and "_" not in m for m in moved), moved
