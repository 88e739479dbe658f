"""The HTML report opens offline in headless Chromium, with every section and plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import require_browser
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


def check_run_report(browser, path: Path) -> None:
    page, errors, requests = open_page(browser, path)
    try:
        check_offline(errors, requests)
        for sid in SECTIONS:
            assert page.locator(f"section#{sid}").count() == 1, sid
            assert page.locator(f"section#{sid} .summary p").count() >= 1, sid
        shown = 0
        for sid, figs in FIGURES.items():
            for fid, required in figs:
                img = page.locator(f"section#{sid} figure#{fid} img")
                missing = page.locator(f"section#{sid} #{fid}-missing")
                if required:
                    assert img.count() == 1, fid
                else:
                    assert img.count() + missing.count() == 1, fid
                shown += img.count()
        assert page.locator("img").count() == shown
        # every image decoded (a broken data: URI has no natural size)
        sizes = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert len(sizes) == shown and min(sizes) > 0
    finally:
        page.close()


def test_essay_report_opens_offline_with_every_section_and_plot(browser, essay_run,
                                                                 tmp_path):
    path = write_report(essay_run, tmp_path / "report.html")
    check_run_report(browser, path)
    text = path.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    # this run records the intensification quantities: their plots are there
    for fid in ("fig-mobility", "fig-assortativity", "fig-chilling"):
        assert f'id="{fid}"' in text, fid


def test_null_report_opens_too(browser, null_run, tmp_path):
    check_run_report(browser, write_report(null_run, tmp_path / "report.html"))


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
