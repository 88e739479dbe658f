"""HTML building blocks: the page shell (inline CSS, no scripts, nothing fetched), sections,
figures and tables."""

from __future__ import annotations

import html
import math

import polars as pl

from metricpower.report.labels import is_index, is_share, label, share

CSS = """
:root { --ink: #222; --muted: #666; --line: #ddd; --accent: #8b1e2d; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       margin: 0; line-height: 1.5; background: #fafafa; }
header, main, footer { max-width: 1040px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { margin: 0 0 4px; font-size: 1.7em; }
h2 { border-bottom: 2px solid var(--accent); padding-bottom: 4px; margin-top: 0; }
.meta { color: var(--muted); margin: 0 0 12px; }
nav ul.toc { columns: 2; padding-left: 1.2em; list-style: none; }
section { background: white; border: 1px solid var(--line); border-radius: 6px;
          padding: 18px 22px; margin: 18px 0; }
.gloss { color: var(--muted); font-style: italic; margin-top: -6px; }
.summary { background: #f4f1ec; border-left: 4px solid var(--accent); padding: 8px 14px; }
.summary p { margin: 6px 0; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 0.9em; }
.missing { color: var(--muted); border: 1px dashed var(--line); padding: 8px 12px; }
table { border-collapse: collapse; font-size: 0.85em; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 8px; text-align: right;
         white-space: nowrap; }
td.text, th.text { white-space: normal; }
td.na { color: var(--muted); }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px;
        padding: 0; list-style: none; }
.kpis li { border: 1px solid var(--line); border-radius: 4px; padding: 8px 10px; }
.kpis b { display: block; font-size: 1.3em; }
.flag { color: #b00020; font-weight: bold; }
footer { color: var(--muted); font-size: 0.85em; padding-bottom: 30px; }
"""


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def pct(x, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}%"


def num(x, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if digits == 0:
        return f"{round(x):,}"
    return f"{x:,.{digits}f}"


def page(title: str, header: str, body: str, footer: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        # Nothing may be fetched: inline styles and data: images only.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "img-src data:; style-src 'unsafe-inline'\">\n"
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header>{header}</header>\n<main>\n{body}\n</main>\n<footer>{footer}</footer>\n"
        "</body>\n</html>\n")


def section(sid: str, title: str, gloss: str, summary: list[str], parts: list[str]) -> str:
    paras = "".join(f"<p>{p}</p>" for p in summary)
    return (f"<section id=\"{esc(sid)}\" class=\"process\">\n<h2>{esc(title)}</h2>\n"
            f"<p class=\"gloss\">{esc(gloss)}</p>\n"
            f"<div class=\"summary\">{paras}</div>\n" + "\n".join(parts) + "\n</section>")


def figure(fid: str, chart, caption: str, missing: str = "") -> str:
    """A figure (an SVG chart, or a data: URI already made); when `chart` is None, a note
    saying in words why there is nothing to draw."""
    if chart is None:
        return (f"<p class=\"missing\" id=\"{esc(fid)}-missing\" data-figure=\"{esc(fid)}\">"
                f"{esc(missing or 'Not recorded in this run.')}</p>")
    src = chart if isinstance(chart, str) else chart.uri
    return (f"<figure id=\"{esc(fid)}\"><img src=\"{src}\" alt=\"{esc(caption)}\">"
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _cell(column: str, value) -> tuple[str, str]:
    """A table cell written for its column: shares as percentages, rates per 100,000 with
    one decimal, counts as integers with separators, other numbers to 3 significant
    digits; an absent value says so."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a", "na"
    if isinstance(value, bool):
        return ("yes" if value else "no"), "text"
    if isinstance(value, int):
        return f"{value:,}", ""
    if isinstance(value, float):
        if is_share(column):
            return share(value), ""
        if "per_100k" in column or "per_1000" in column:
            return f"{value:,.1f}", ""
        if value.is_integer() and not is_index(column):
            return f"{int(value):,}", ""
        if abs(value) >= 1000:
            return f"{value:,.0f}", ""
        return f"{value:,.3g}" if abs(value) >= 0.001 or value == 0 else f"{value:.2g}", ""
    return esc(value), "text"


def table(df: pl.DataFrame | None, caption: str, max_rows: int = 60,
          open_: bool = False) -> str:
    """A table folded in a <details> element, columns named for readers."""
    if df is None or df.height == 0:
        return ""
    head = "".join(f"<th class=\"{'text' if df.schema[c] == pl.String else ''}\">"
                   f"{esc(label(c))}</th>" for c in df.columns)
    rows = []
    for r in df.head(max_rows).iter_rows():
        cells = []
        for c, v in zip(df.columns, r, strict=True):
            text, cls = _cell(c, v)
            cells.append(f"<td class=\"{cls}\">{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (f"<p class=\"meta\">first {max_rows} of {df.height:,} rows</p>"
            if df.height > max_rows else "")
    return (f"<details{' open' if open_ else ''}><summary>{esc(caption)}</summary>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"{more}</details>")


def kpis(items: list[tuple[str, str]]) -> str:
    return "<ul class=\"kpis\">" + "".join(
        f"<li><b>{v}</b>{k}</li>" for k, v in items) + "</ul>"
