"""The dashboard's HTML pages. Every value from a run, a scenario or a request is escaped;
pages carry no inline script (the Content-Security-Policy forbids it), only the two
served scripts, which read what they need from data- attributes and the JSON API."""

from __future__ import annotations

import math
from urllib.parse import quote, urlencode

from metricpower.ensembles.stats import INTERVAL
from metricpower.ledger.schema import CITIZENS
from metricpower.report.html import esc
from metricpower.report.labels import (
    count,
    estimate,
    label,
    metric_label,
    on_list,
    share,
)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def url(*parts: str, **query) -> str:
    path = "/" + "/".join(quote(p, safe="/") for p in parts)
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(q) if q else "")


def layout(title: str, body: str, charts: bool = False, data: dict | None = None) -> str:
    attrs = "".join(f" data-{esc(k)}=\"{esc(v)}\"" for k, v in (data or {}).items())
    scripts = ("<script src=\"/static/plotly.min.js\"></script>" if charts else "") + \
        "<script src=\"/static/dashboard.js\"></script>"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{esc(title)} — metricpower</title>\n"
        "<link rel=\"icon\" href=\"data:,\">\n"
        "<link rel=\"stylesheet\" href=\"/static/dashboard.css\">\n"
        f"{scripts}\n</head>\n<body{attrs}>\n"
        "<header><a class=\"brand\" href=\"/\">metricpower</a>"
        "<nav><a href=\"/\">Runs</a><a href=\"/new\">New run</a></nav></header>\n"
        f"<main>\n{body}\n</main>\n</body>\n</html>\n")


def error_page(status: int, message: str) -> str:
    return layout(f"Error {status}", f"<h1>Error {status}</h1>"
                  f"<p class=\"error\" id=\"error-message\">{esc(message)}</p>"
                  "<p><a href=\"/\">Back to the runs</a></p>")


def _options(values, selected=None) -> str:
    return "".join(f"<option value=\"{esc(v)}\"{' selected' if v == selected else ''}>"
                   f"{esc(text)}</option>" for v, text in values)


def index(root: str, entries, presets, ensembles=()) -> str:
    """The runs folder: its runs (and saved comparisons), its ensembles and sweeps, and
    forms to compare two runs, compare two ensembles or sweep arms, and start a run.
    `ensembles`: the LoadedEnsemble of each finished ensemble or sweep."""
    runs = [e for e in entries if e.kind in ("run", "comparison")]
    sets = [e for e in entries if e.kind not in ("run", "comparison")]
    rows = []
    for e in runs:
        link = (url("run", e.name) if e.kind == "run"
                else url("files", e.name, "comparison.html"))
        size = (f"{count(e.citizens)} × {count(e.days)} days" if e.citizens else "")
        rows.append(f"<tr><td class=\"text\"><a href=\"{esc(link)}\">{esc(e.name)}</a></td>"
                    f"<td class=\"text\">{esc(e.kind)}</td>"
                    f"<td class=\"text\">{esc(e.scenario)}</td><td>{size}</td>"
                    f"<td>{esc(e.seed) if e.seed is not None else ''}</td></tr>")
    listing = ("<table class=\"runs\" id=\"runs\"><thead><tr><th class=\"text\">folder</th>"
               "<th class=\"text\">kind</th><th class=\"text\">scenario</th>"
               "<th>size</th><th>seed</th></tr></thead><tbody>" + "".join(rows) +
               "</tbody></table>") if rows else (
        "<p id=\"no-runs\">No runs here yet. Start one with <a href=\"/new\">New run</a>, or "
        "<code>metricpower run --out RUNS/NAME</code>.</p>")
    finished = {x.name: x for x in ensembles}
    set_rows = []
    for e in sets:
        ens = finished.get(e.name)
        arms = (", ".join(ens.arms) if ens is not None and ens.kind != "ensemble" else "")
        seeds = f"{len(ens.seeds)}" if ens is not None else "unfinished"
        link = url("ensemble", e.name) if ens is not None else url("folder", e.name)
        set_rows.append(
            f"<tr><td class=\"text\"><a href=\"{esc(link)}\">"
            f"{esc(e.name)}</a></td><td class=\"text\">{esc(e.kind)}</td>"
            f"<td class=\"text\">{esc(e.scenario)}</td><td class=\"text\">{esc(arms)}</td>"
            f"<td>{seeds}</td></tr>")
    set_listing = ("<table class=\"runs\" id=\"ensembles\"><thead><tr><th class=\"text\">"
                   "folder</th><th class=\"text\">kind</th><th class=\"text\">scenario</th>"
                   "<th class=\"text\">arms</th><th>seeds</th></tr></thead><tbody>"
                   + "".join(set_rows) + "</tbody></table>") if set_rows else (
        "<p id=\"no-ensembles\">No ensembles or sweeps here. <code>metricpower ensemble</code>, "
        "<code>metricpower sweep</code> and <code>metricpower compare --seeds</code> make "
        "them (with <code>--out</code> inside this folder).</p>")
    choices = [(e.name, e.name) for e in runs if e.kind == "run"]
    compare = ("<form class=\"inline\" id=\"compare-form\" action=\"/compare\" method=\"get\">"
               "<label>A (the policy) <select name=\"a\">" + _options(choices) + "</select>"
               "</label><label>B (the baseline) <select name=\"b\">" +
               _options(choices, choices[1][0] if len(choices) > 1 else None) +
               "</select></label><button type=\"submit\">Compare</button></form>"
               ) if len(choices) >= 2 else "<p>Two runs on the same population can be compared."
    sides = [(f"{x.name}#{i}", x.arm_name(i)) for x in ensembles for i in range(len(x.arms))]
    compare_sets = (
        "<form class=\"inline\" id=\"compare-ensembles-form\" action=\"/compare/ensembles\" "
        "method=\"get\"><label>A <select name=\"a\">" + _options(sides) + "</select></label>"
        "<label>B <select name=\"b\">" +
        _options(sides, sides[1][0] if len(sides) > 1 else None) +
        "</select></label><button type=\"submit\">Compare</button></form>"
    ) if len(sides) >= 2 else ("<p>Two finished ensembles (or two arms of a sweep) can be "
                               "compared, with 95% intervals.</p>")
    new = ("<form class=\"inline\" action=\"/new\" method=\"get\"><label>preset <select "
           "name=\"preset\">" + _options([(p, p) for p in presets]) + "</select></label>"
           "<button type=\"submit\">New run…</button></form>")
    return layout("Runs", f"<h1>Runs</h1><p class=\"meta\">in <code>{esc(root)}</code></p>"
                  f"{listing}<h2>Ensembles and sweeps</h2>{set_listing}"
                  f"<h2>Compare two runs</h2>{compare}"
                  f"<h2>Compare two ensembles or sweep arms</h2>{compare_sets}"
                  f"<h2>Start a run</h2>{new}")


def folder(name: str, files: list[str]) -> str:
    items = "".join(f"<li><a href=\"{esc(url('files', name, f))}\">{esc(f)}</a></li>"
                    for f in files)
    return layout(name, f"<h1>{esc(name)}</h1><ul>{items or '<li>nothing to show</li>'}</ul>")


def _kpis(items) -> str:
    return "<ul class=\"kpis\">" + "".join(
        f"<li><b>{v}</b>{esc(k)}</li>" for k, v in items) + "</ul>"


PANELS = (
    ("limits", "1. Creation of limits", "Which behaviours the policy scores, and how often "
     "citizens did each (log axis when counts span orders of magnitude)."),
    ("visibility", "2. Visible / invisible", "Penalties per day, and those resting on a "
     "benign reason or on someone else's act."),
    ("categorisation", "3. Categorisation", "Tiers over time (everyone), and the final score "
     "distribution of the citizens chosen above."),
    ("judgements", "4. Judgements and predictions", "Each consequence applied, as a running "
     "total."),
    ("intensification", "5. Intensification", "Income and how alike friends' scores grew."),
    ("authority", "6. Taking authority", "The score against the hidden true conduct it is "
     "meant to measure, for the citizens chosen above."),
)


def run_page(name: str, loaded, who: str | None) -> str:
    sc, m = loaded.scenario, loaded.metrics
    p = m.get("penalties", {})
    n = m.get("citizens", 0) or 0
    items = [
        ("citizens", count(m.get("citizens"))), ("days", count(m.get("days"))),
        ("penalties", count(p.get("total"))),
        ("misattributed penalties per 100,000 citizens",
         f"{p.get('misattributed_per_100k', 0):,.1f}"),
        ("sanctions applied", count(m.get("sanctions_total"))),
        ("rewards granted", count(m.get("rewards_total"))),
        ("mean score, start → end", f"{count(m.get('initial_score'))} → "
                                    f"{m.get('mean_score', math.nan):,.1f}"),
    ]
    for lst, size in (m.get("list_sizes") or {}).items():
        items.append((f"citizens {on_list(lst)}", f"{count(size)} "
                                                   f"({share(size / n if n else 0)})"))
    choices = [("", "all citizens")]
    for by in ("group", "region"):
        names = [x.name for x in (sc.population.groups if by == "group"
                                  else sc.population.regions)]
        choices += [(f"{by}:{x}", f"{label(by)}: {x}") for x in names]
    panels = "".join(
        f"<section class=\"panel\" id=\"{pid}\"><h2>{esc(title)}</h2>"
        f"<p class=\"gloss\">{esc(gloss)}</p>"
        f"<div class=\"chart\" id=\"chart-{pid}\" data-chart=\"{pid}\"></div>"
        + ("<div class=\"chart\" id=\"chart-scores\" data-chart=\"scores\"></div>"
           if pid == "categorisation" else "") + "</section>"
        for pid, title, gloss in PANELS)
    body = (
        f"<h1>{esc(name)}</h1>"
        f"<p class=\"meta\">scenario {esc(sc.name)} · {count(loaded.citizen_count)} citizens · "
        f"{count(sc.run.days)} days · seed {esc(sc.run.seed)} · "
        f"<a href=\"{esc(url('files', name, 'report.html'))}\">full report</a> · "
        f"<a href=\"{esc(url('files', name, 'scenario.toml'))}\">scenario</a></p>"
        + _kpis(items) +
        "<form class=\"inline\" id=\"who-form\" method=\"get\"><label>show citizens "
        f"<select name=\"who\" id=\"who\">{_options(choices, who or '')}</select></label>"
        "<button type=\"submit\">Show</button></form>"
        f"<form class=\"inline\" id=\"explain-form\" action=\"{esc(url('run', name, 'citizen'))}"
        "\" method=\"get\"><label>explain citizen <input name=\"id\" type=\"number\" min=\"0\" "
        f"max=\"{max(loaded.citizen_count - 1, 0)}\" required></label>"
        "<button type=\"submit\">Explain</button></form>"
        f"<p id=\"charts-status\" class=\"meta\">drawing charts…</p>{panels}")
    return layout(name, body, charts=True,
                  data={"charts": url("api", "run", name, "charts", who=who)})


#: What the system did to a citizen, as columns of the citizens table (their labels and
#: units come from its declaration in the results schema).
CONSEQUENCES = ("sanctions", "rewards", "days_labelled", "pets_confiscated", "flagged")


def _cell(col, x) -> str:
    if col.unit == "yes/no":
        return "<b class=\"bad\">yes</b>" if x else "no"
    if col.unit == "index":
        return f"{x:,.2f}"
    return count(x)


def citizen_page(name: str, citizen: int, row: dict, events, scenario, chart) -> str:
    """A citizen's history: who they are, what the system did to them, their score over
    the run, and every score change with the hidden truth beside it (`events` from
    `metricpower.explain.events`; None when the citizen is outside the ledger sample)."""
    import json

    from metricpower.explain import TRUTHS

    start = scenario.population.initial_score
    change = row["score"] - start
    items = [
        ("final score (start " + count(start) + ")",
         f"{count(row['score'])} <small>({estimate('score', [change], sign=True)[0]})"
         "</small>"),
        ("final tier", esc(row["tier"])),
        (CITIZENS.column("group").meaning, esc(row["group"])),
        (CITIZENS.column("region").meaning, esc(row["region"])),
        ("lives", "in a city" if row["urban"] else "in the countryside"),
        ("hidden true conduct (the system never sees it)", f"{row['conduct']:.2f}"),
        ("income index, start → end", f"{row['income']:.2f} → {row['income_final']:.2f}"),
    ]
    kpis = "<ul class=\"kpis\">" + "".join(f"<li><b>{v}</b>{esc(k)}</li>"
                                            for k, v in items) + "</ul>"
    cons = [(CITIZENS.column(c), row[c]) for c in CONSEQUENCES]
    for lst in scenario.lists:
        cons.append((CITIZENS.column(("on", lst.name)), row[CITIZENS["on", lst.name]]))
        cons.append((CITIZENS.column(("days_on", lst.name)),
                     row[CITIZENS["days_on", lst.name]]))
    names = [None] * len(CONSEQUENCES) + [x.name for x in scenario.lists for _ in (0, 1)]
    # a list's column says which list: "on the list at the end" → "on the blacklist …"
    cons_rows = "".join(
        f"<tr><td class=\"text\">"
        f"{esc(col.meaning.replace('the list', on_list(n)[3:]) if n else col.meaning)}"
        f"</td><td>{_cell(col, x)}</td></tr>" for (col, x), n in zip(cons, names, strict=True))
    consequences = ("<h2>What the system did to this citizen</h2>"
                    f"<table id=\"consequences\"><tbody>{cons_rows}</tbody></table>")
    if events is None:
        body = ("<p class=\"note\" id=\"not-kept\">This citizen is outside the ledger sample "
                "kept for this run: their score changes were counted in the aggregates only, "
                "so there is no timeline to show.</p>")
    else:
        counts = {k: sum(1 for e in events if e["truth"] == k and not e["appeal"])
                  for k in TRUTHS}
        wrong = counts["benign"] + counts["misattributed"]
        appeals = sum(1 for e in events if e["appeal"])
        summary = (f"{len(events):,} score changes: {counts['recorded']:,} for acts as "
                   f"recorded, {counts['derived']:,} derived from state, and {wrong:,} "
                   f"resting on evidence the system got wrong ({counts['benign']:,} benign, "
                   f"{counts['misattributed']:,} someone else's act)"
                   + (f"; {appeals:,} undone on appeal" if appeals else "") + ".")
        rows = []
        for e in events:
            kind = "appeal" if e["appeal"] else e["truth"]
            words = "appeal upheld" if e["appeal"] else TRUTHS[e["truth"]][0]
            note = (f" <span class=\"tag appeal\">reversed on appeal, day "
                    f"{e['reversed_on']}</span>" if e["reversed_on"] is not None else "")
            rows.append(
                f"<tr class=\"{kind}\"><td>{e['day']}</td>"
                f"<td class=\"text\">{esc(label(e['rule']))}</td>"
                f"<td class=\"text\">{esc(e['evidence'].replace('_', ' '))}</td>"
                f"<td class=\"{'neg' if e['points'] < 0 else 'pos'}\">{e['points']:+,d}</td>"
                f"<td>{count(e['score'])}</td><td class=\"text\">{esc(e['tier'])}</td>"
                f"<td class=\"text\">{esc(e['provenance'])}</td>"
                f"<td class=\"text\"><span class=\"tag {kind}\">{esc(words)}</span>{note}</td>"
                "</tr>")
        spec = esc(json.dumps(chart))
        body = (f"<p id=\"history-summary\">{esc(summary)}</p>"
                f"<div class=\"chart\" id=\"chart-score\" data-spec=\"{spec}\"></div>"
                "<h2>Every score change</h2>"
                "<table id=\"timeline\"><thead><tr><th>day</th><th class=\"text\">rule</th>"
                "<th class=\"text\">evidence</th><th>points</th><th>score after</th>"
                "<th class=\"text\">tier after</th><th class=\"text\">provenance</th>"
                "<th class=\"text\">hidden truth</th></tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table>")
    return layout(f"citizen {citizen}", (
        f"<h1>Citizen {citizen} in <a href=\"{esc(url('run', name))}\">{esc(name)}</a></h1>"
        "<p class=\"meta\">What the system recorded about this citizen, with the hidden "
        "truth beside it (the system never sees that column).</p>"
        f"<div id=\"history\">{kpis}{consequences}{body}</div>"), charts=events is not None)


def new_page(presets, preset: str, fields: dict, error: str = "", values=None) -> str:
    v = values or {}

    def val(key, default):
        return esc(v.get(key, default))

    rules = "".join(
        f"<label>{esc(r)} <input name=\"rule:{esc(r)}\" type=\"text\" inputmode=\"numeric\" "
        f"value=\"{val('rule:' + r, pts)}\"></label>" for r, pts in fields["rules"])
    switches = "".join(
        f"<label class=\"check\"><input type=\"checkbox\" name=\"response\" value=\"{esc(s)}\""
        f"{' checked' if on else ''}> {esc(s)}</label>" for s, on in fields["switches"])
    fm = ("<label>false-match factor (× every sensor's false-match rate) <input "
          f"name=\"false_match_factor\" type=\"text\" value=\"{val('false_match_factor', 1)}\">"
          "</label>") if fields["false_match"] else ""
    err = (f"<p class=\"error\" id=\"form-error\" role=\"alert\">{esc(error)}</p>"
           if error else "")
    body = (
        f"<h1>New run</h1>{err}"
        "<form class=\"inline\" method=\"get\" action=\"/new\"><label>preset <select "
        f"name=\"preset\">{_options([(p, p) for p in presets], preset)}</select></label>"
        "<button type=\"submit\">Load its defaults</button></form>"
        "<form id=\"run-form\" class=\"grid\" method=\"post\" action=\"/runs\">"
        f"<input type=\"hidden\" name=\"preset\" value=\"{esc(preset)}\">"
        "<input type=\"hidden\" name=\"switches\" value=\"1\">"
        "<fieldset><legend>Run</legend>"
        f"<label>citizens <input name=\"citizens\" type=\"text\" inputmode=\"numeric\" "
        f"value=\"{val('citizens', fields['citizens'])}\"></label>"
        f"<label>days <input name=\"days\" type=\"text\" inputmode=\"numeric\" "
        f"value=\"{val('days', fields['days'])}\"></label>"
        f"<label>seed <input name=\"seed\" type=\"text\" inputmode=\"numeric\" "
        f"value=\"{val('seed', fields['seed'])}\"></label></fieldset>"
        + (f"<fieldset><legend>Points per act (event rules)</legend>{rules}</fieldset>"
           if rules else "")
        + (f"<fieldset><legend>Sensors</legend>{fm}</fieldset>" if fm else "")
        + f"<fieldset><legend>Responses</legend>{switches}</fieldset>"
        "<button type=\"submit\" id=\"start\">Start the run</button></form>")
    return layout("New run", body)


def job_page(job) -> str:
    body = (f"<h1>Running {esc(job.scenario.name)}</h1>"
            f"<p class=\"meta\">{count(job.scenario.run.citizens)} citizens · "
            f"{count(job.scenario.run.days)} days · seed {esc(job.scenario.run.seed)} → "
            f"<code>{esc(job.name)}</code></p>"
            f"<progress id=\"progress\" max=\"{job.scenario.run.days}\" value=\"0\"></progress>"
            "<p id=\"job-state\" role=\"status\">starting…</p>"
            "<p id=\"job-result\"></p>")
    return layout(f"running {job.scenario.name}", body,
                  data={"job": url("api", "jobs", job.id), "run-url": url("run", job.name)})


def compare_page(a: str, b: str, rows, notes, intervals) -> str:
    body_rows = "".join(
        f"<tr><td class=\"text\">{esc(r['label'])}</td><td>{r['a']}</td><td>{r['b']}</td>"
        f"<td>{r['difference']}</td><td class=\"text\">{esc(r['words'])}</td></tr>"
        for r in rows)
    interval_rows = "".join(
        f"<tr><td class=\"text\">{esc(r['label'])}</td><td>{r['a']}</td><td>{r['b']}</td>"
        f"<td>{r['difference']}</td><td>{r['interval']}</td></tr>" for r in intervals)
    notes_html = "".join(f"<p class=\"note\">{esc(n)}</p>" for n in notes)
    body = (
        f"<h1>A: {esc(a)} vs B: {esc(b)}</h1>"
        "<p class=\"meta\">Same citizens, network and seed in both (common random numbers): "
        f"each difference is what {esc(a)}'s policy did against {esc(b)}. "
        f"<a href=\"{esc(url('compare', 'report', a=a, b=b))}\">full comparison report</a>"
        f"</p>{notes_html}"
        "<h2>What the policy caused</h2><table id=\"effects\"><thead><tr>"
        f"<th class=\"text\">effect</th><th>{esc(a)}</th><th>{esc(b)}</th>"
        "<th>difference (A − B)</th><th class=\"text\">in words</th></tr></thead>"
        f"<tbody>{body_rows}</tbody></table>"
        "<h2>Per citizen, with 95% intervals</h2><p class=\"meta\">The same citizens live in "
        "both runs, so each one's difference is paired; the interval is the mean difference "
        "± 1.96 standard errors over citizens (how precisely this population pins the "
        "average effect down, for this seed).</p>"
        "<table id=\"intervals\"><thead><tr><th class=\"text\">per citizen</th>"
        f"<th>{esc(a)}</th><th>{esc(b)}</th><th>difference</th><th>95% interval</th></tr>"
        f"</thead><tbody>{interval_rows}</tbody></table>")
    return layout(f"{a} vs {b}", body)


def _interval(metric: str, mean, lo, hi) -> str:
    m, a, b = estimate(metric, [mean, lo, hi])
    if a == "n/a" or b == "n/a":
        return f"{m} <span class=\"na\">(one seed: no interval)</span>"
    if lo == hi:
        return f"{m} <span class=\"ci\">(every seed)</span>"
    return f"{m} <span class=\"ci\">[{a} to {b}]</span>"


def _finite(*xs) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def _difference_words(metric: str, d, lo, hi, a: str = "A") -> str:
    if not _finite(d):
        return "n/a"
    if not _finite(lo, hi):
        return "too few seeds for an interval"
    shown = estimate(metric, [d, lo, hi], sign=True)[0]
    if d == lo == hi:
        return "the same on every seed" if d == 0 else f"{shown} on every seed"
    if lo > 0:
        return f"higher under {a} by {shown.lstrip('+')} (its 95% interval excludes 0)"
    if hi < 0:
        return f"lower under {a} by {shown.lstrip('−')} (its 95% interval excludes 0)"
    return "no clear difference: the 95% interval includes 0"


def _set_rows(rows) -> str:
    out = []
    for r in rows.iter_rows(named=True):
        m = r["metric"]
        d, lo, hi = estimate(m, [r["difference"], r["lo"], r["hi"]], sign=True)
        ci = (f"{lo} to {hi}" if _finite(r["lo"], r["hi"]) and r["lo"] != r["hi"]
              else d if _finite(r["lo"], r["hi"]) else "<span class=\"na\">n/a</span>")
        out.append(
            f"<tr><td class=\"text\">{esc(metric_label(m))}</td>"
            f"<td>{_interval(m, r['mean_a'], r['lo_a'], r['hi_a'])}</td>"
            f"<td>{_interval(m, r['mean_b'], r['lo_b'], r['hi_b'])}</td>"
            f"<td>{d}</td><td>{ci}</td><td class=\"text words\">"
            f"{esc(_difference_words(m, r['difference'], r['lo'], r['hi']))}</td></tr>")
    return "".join(out)


def _ci_diff(r: dict) -> str:
    if not _finite(r["lo"], r["hi"]):
        return "<span class=\"na\">n/a</span>"
    d, lo, hi = estimate(r["metric"], [r["mean"], r["lo"], r["hi"]], sign=True)
    return d if r["lo"] == r["hi"] else f"{lo} to {hi}"


def ensemble_compare_page(c, a: str, b: str) -> str:
    head = ("<thead><tr><th class=\"text\">measure</th><th>A: mean [95% interval]</th>"
            "<th>B: mean [95% interval]</th><th>A − B</th><th>95% interval of A − B</th>"
            "<th class=\"text\">in words</th></tr></thead>")
    how = (f"Both sides ran the same seeds on the same populations, so each seed gives one "
           f"paired difference (common random numbers); the interval of A − B is a "
           f"Student-t interval over the {c.rows['n'].max() or 0} seeds both have."
           if c.paired else
           "The two sides do not share seeds and populations, so they are compared as "
           "independent samples: the interval of A − B is Welch's (unequal variances).")
    moved = sum(1 for r in c.rows.iter_rows(named=True)
                if _finite(r["lo"], r["hi"]) and (r["lo"] > 0 or r["hi"] < 0))
    body = (
        f"<h1>A: {esc(c.a)} vs B: {esc(c.b)}</h1>"
        f"<p class=\"meta\">A: {c.seeds_a} seeds · B: {c.seeds_b} seeds · "
        f"{'paired by seed' if c.paired else 'independent samples'}. {esc(how)} Each "
        f"side's mean carries a {esc(INTERVAL)}.</p>"
        f"<p id=\"ensemble-summary\">Of the {c.rows.height:,} measures both sides have, "
        f"{moved:,} differ between A and B by more than their 95% interval allows "
        "(the interval of A − B excludes 0).</p>"
        "<h2>Headline measures</h2>"
        f"<table id=\"ensemble-effects\">{head}<tbody>{_set_rows(c.headline())}</tbody></table>"
        "<details><summary>Every measure both sides have</summary>"
        f"<table id=\"ensemble-all\">{head}<tbody>{_set_rows(c.rows)}</tbody></table></details>"
        f"<p class=\"meta\"><a href=\"{esc(url('ensemble', a.rpartition('#')[0]))}\">A's "
        f"folder</a> · <a href=\"{esc(url('ensemble', b.rpartition('#')[0]))}\">B's folder</a>"
        "</p>")
    return layout(f"{c.a} vs {c.b}", body)


def ensemble_page(ens, summary, effects) -> str:
    """One ensemble or sweep: its plan, each arm's headline measures with 95% intervals,
    and (a sweep or paired comparison) the effects against its baseline arm."""
    from metricpower.ensembles.results import EFFECTS, HEADLINE

    shown = [m for m in HEADLINE if m in set(summary["metric"])]
    arms = ens.arms if "arm" in summary.columns else [ens.arms[0] if ens.arms else ens.name]
    head = "".join(f"<th>{esc(a)}</th>" for a in arms)
    rows = []
    for m in shown:
        cells = []
        for a in arms:
            r = summary.filter(summary["metric"] == m)
            if "arm" in summary.columns:
                r = r.filter(r["arm"] == a)
            cells.append(f"<td>{_interval(m, r['mean'][0], r['lo'][0], r['hi'][0])}</td>"
                         if r.height else "<td><span class=\"na\">not measured</span></td>")
        rows.append(f"<tr><td class=\"text\">{esc(metric_label(m))}</td>{''.join(cells)}</tr>")
    eff = ""
    if effects is not None and effects.height:
        order = [*EFFECTS, *HEADLINE]
        shown_effects = sorted(
            (r for r in effects.iter_rows(named=True) if r["metric"] in order),
            key=lambda r: (r["arm"], order.index(r["metric"])))
        erows = "".join(
            f"<tr><td class=\"text\">{esc(r['arm'])}</td>"
            f"<td class=\"text\">{esc(metric_label(r['metric']))}</td>"
            f"<td>{estimate(r['metric'], [r['mean'], r['lo'], r['hi']], sign=True)[0]}</td>"
            f"<td>{_ci_diff(r)}</td><td class=\"text words\">"
            f"{esc(_difference_words(r['metric'], r['mean'], r['lo'], r['hi'], r['arm']))}"
            "</td></tr>" for r in shown_effects)
        base = ens.plan.get("baseline")
        against = ens.arms[base] if base is not None and base < len(ens.arms) else "baseline"
        eff = (f"<h2>Against the baseline arm ({esc(against)}), paired by seed</h2>"
               "<p class=\"meta\">Each arm minus the baseline arm on the same seed and "
               "population (common random numbers), averaged over seeds, with a 95% "
               "Student-t interval.</p><table id=\"arm-effects\">"
               "<thead><tr><th class=\"text\">arm</th><th class=\"text\">measure</th>"
               "<th>mean difference</th><th>95% interval</th><th class=\"text\">in words</th>"
               f"</tr></thead><tbody>{erows}</tbody></table>")
    report = ens.path / "report.html"
    links = (f"<a href=\"{esc(url('files', ens.name, 'report.html'))}\">full report</a> · "
             if report.is_file() else "")
    seeds = ens.seeds
    body = (
        f"<h1>{esc(ens.name)}</h1>"
        f"<p class=\"meta\">{esc(ens.kind)} · {len(ens.arms)} arm(s) × {len(seeds)} seed(s)"
        + (f" ({seeds[0]}–{seeds[-1]})" if seeds else "") + " · "
        f"{links}<a href=\"{esc(url('folder', ens.name))}\">files</a></p>"
        f"<p>Each number is a mean over seeds with its interval in brackets: a "
        f"{esc(INTERVAL)}.</p>"
        f"<table id=\"ensemble-summary\"><thead><tr><th class=\"text\">measure</th>{head}"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{eff}")
    return layout(ens.name, body)


__all__ = ["CSP", "PANELS", "citizen_page", "compare_page", "ensemble_compare_page",
           "ensemble_page", "error_page", "folder", "index", "job_page", "layout", "new_page",
           "run_page", "url"]
