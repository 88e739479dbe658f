"""The run page's charts as Plotly figure specifications (data and layout, plain JSON): the
browser draws them with the served plotly.min.js, so hover, zoom and legend toggling come
with them. Built from the daily table and the citizens table only, so a page of a
100,000-citizen run answers quickly; `who` narrows the citizen-level charts to one group
or region."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metricpower.report.labels import COLOURS, EVIDENCE, label, log_scale_needed

#: The citizens' columns the charts read (the rest are not read for them).
CHARTED = ("citizen", "group", "region", "conduct", "score")
#: Citizens drawn in the score-against-conduct scatter (a seeded sample beyond this).
SCATTER_MAX = 2_000


def _layout(title: str, xtitle: str, ytitle: str, **extra) -> dict:
    return {"title": {"text": title, "font": {"size": 15}}, "height": 340,
            "margin": {"l": 64, "r": 16, "t": 44, "b": 48},
            "xaxis": {"title": {"text": xtitle}}, "yaxis": {"title": {"text": ytitle}},
            "legend": {"orientation": "h", "y": -0.25}, "hovermode": "closest", **extra}


def _col(daily: pa.Table, name: str) -> list:
    return daily[name].to_pylist() if name in daily.column_names else []


def _axis_type(values) -> str:
    return "log" if log_scale_needed(values) else "linear"


def subset(citizens: pa.Table, who: str | None) -> tuple[pa.Table, str]:
    """Citizens of one group or region (`group:NAME` or `region:NAME`), and a label."""
    if not who or ":" not in who:
        return citizens, "all citizens"
    by, name = who.split(":", 1)
    if by not in ("group", "region"):
        return citizens, "all citizens"
    values = pc.cast(citizens[by], pa.string())
    return citizens.filter(pc.equal(values, name)), f"{label(by)} {name}"


def limits(run, daily: pa.Table) -> dict:
    sc = run.scenario
    penalised = {r.behaviour for r in sc.rules if r.kind == "event" and r.points < 0}
    rewarded = {r.behaviour for r in sc.rules if r.kind == "event" and r.points > 0}
    names, totals, colours = [], [], []
    for b in sc.behaviours:
        names.append(f"{b.name}{' (lawful)' if b.lawful else ''}")
        totals.append(sum(v or 0 for v in _col(daily, f"occurrences_{b.name}")))
        colours.append(COLOURS["penalty_lawful"] if b.name in penalised and b.lawful
                       else COLOURS["penalty"] if b.name in penalised
                       else COLOURS["reward"] if b.name in rewarded else COLOURS["none"])
    return {"data": [{"type": "bar", "orientation": "h", "x": totals, "y": names,
                      "marker": {"color": colours},
                      "hovertemplate": "%{y}: %{x:,} acts<extra></extra>"}],
            "layout": _layout("What citizens did, by behaviour", "acts in the run",
                              "", xaxis={"type": _axis_type(totals),
                                         "title": {"text": "acts in the run"}},
                              yaxis={"autorange": "reversed", "automargin": True})}


def visibility(daily: pa.Table) -> dict:
    days = _col(daily, "day")
    data = []
    for key, col in (("misattributed", "misattributed_penalties"),
                     ("benign", "benign_penalties")):
        if col in daily.column_names:
            data.append({"type": "scatter", "mode": "lines", "x": days, "y": _col(daily, col),
                         "name": EVIDENCE[key], "line": {"color": COLOURS[key]},
                         "hovertemplate": "day %{x}: %{y:,}<extra>%{fullData.name}</extra>"})
    if "penalties" in daily.column_names:
        data.insert(0, {"type": "scatter", "mode": "lines", "x": days,
                        "y": _col(daily, "penalties"), "name": "all penalties",
                        "line": {"color": COLOURS["true"]},
                        "hovertemplate": "day %{x}: %{y:,}<extra>all penalties</extra>"})
    values = [v for t in data for v in t["y"]]
    return {"data": data, "layout": _layout("Penalties per day, by the evidence they rest on",
                                            "day", "penalties per day",
                                            yaxis={"type": _axis_type(values),
                                                   "title": {"text": "penalties per day"}})}


def categorisation(run, daily: pa.Table, n: int) -> dict:
    """Each tier's share of citizens over time, on a log axis so that the small tiers at
    the top and the bottom stay visible beside the large middle one."""
    days = _col(daily, "day")
    tiers = [t.name for t in run.scenario.tiers]
    palette = COLOURS["tiers"](len(tiers))
    data = []
    for i, t in enumerate(tiers):
        share = [100 * (v or 0) / n for v in _col(daily, f"tier_{t}")]
        if any(share):
            data.append({"type": "scatter", "mode": "lines", "x": days,
                         "y": [v if v > 0 else None for v in share], "name": f"tier {t}",
                         "line": {"color": palette[i]},
                         "hovertemplate": "day %{x}: %{y:.3g}%<extra>%{fullData.name}"
                                          "</extra>"})
    return {"data": data, "layout": _layout("Share of citizens in each tier", "day",
                                            "% of citizens (log scale)",
                                            yaxis={"type": "log",
                                                   "title": {"text": "% of citizens (log)"}})}


def judgements(run, daily: pa.Table) -> dict:
    days = _col(daily, "day")
    data = []
    for c in run.scenario.consequences:
        col = f"applied_{c.name}"
        if col not in daily.column_names:
            continue
        running = np.cumsum([v or 0 for v in _col(daily, col)]).tolist()
        if running and running[-1] > 0:
            data.append({"type": "scatter", "mode": "lines", "x": days, "y": running,
                         "name": label(c.name),
                         "hovertemplate": "day %{x}: %{y:,} so far<extra>%{fullData.name}"
                                          "</extra>"})
    values = [v for t in data for v in t["y"]]
    return {"data": data,
            "layout": _layout("Consequences applied, running totals", "day", "applied so far",
                              yaxis={"type": _axis_type(values),
                                     "title": {"text": "applied so far"}})}


def intensification(daily: pa.Table) -> dict:
    days = _col(daily, "day")
    data = []
    if "mean_income" in daily.column_names:
        data.append({"type": "scatter", "mode": "lines", "x": days,
                     "y": _col(daily, "mean_income"), "name": "mean income index",
                     "hovertemplate": "day %{x}: %{y:.4f}<extra>mean income</extra>"})
    if "assortativity" in daily.column_names:
        data.append({"type": "scatter", "mode": "lines", "x": days,
                     "y": _col(daily, "assortativity"), "name": "score assortativity",
                     "yaxis": "y2", "connectgaps": True,
                     "hovertemplate": "day %{x}: %{y:.3f}<extra>assortativity</extra>"})
    return {"data": data, "layout": _layout(
        "Income and friends' likeness over time", "day", "mean income index",
        margin={"l": 64, "r": 72, "t": 44, "b": 48},  # room for the right axis' title
        yaxis2={"title": {"text": "score assortativity"}, "overlaying": "y", "side": "right"})}


def score_histogram(citizens: pa.Table, who: str) -> dict:
    scores = citizens["score"].to_numpy()
    counts = np.unique(scores, return_counts=True) if len(scores) else ([], [])
    return {"data": [{"type": "bar", "x": np.asarray(counts[0]).tolist(),
                      "y": np.asarray(counts[1]).tolist(), "name": who,
                      "marker": {"color": COLOURS["true"]},
                      "hovertemplate": "score %{x}: %{y:,} citizens<extra></extra>"}],
            "layout": _layout(f"Final scores: {who}", "final score", "citizens",
                              yaxis={"type": "log", "title": {"text": "citizens (log)"}},
                              bargap=0)}


def authority(citizens: pa.Table, who: str, seed: int) -> dict:
    n = citizens.num_rows
    idx = np.arange(n)
    if n > SCATTER_MAX:
        idx = np.sort(np.random.default_rng(seed).choice(n, SCATTER_MAX, replace=False))
    sample = citizens.take(pa.array(idx))
    groups = pc.cast(sample["group"], pa.string()).to_pylist()
    conduct = sample["conduct"].to_numpy()
    score = sample["score"].to_numpy()
    ids = sample["citizen"].to_pylist()
    data = []
    for i, g in enumerate(dict.fromkeys(groups)):
        mask = np.array([x == g for x in groups])
        data.append({"type": "scatter", "mode": "markers", "name": g,
                     "x": conduct[mask].round(4).tolist(), "y": score[mask].tolist(),
                     "customdata": [c for c, m in zip(ids, mask, strict=True) if m],
                     "marker": {"size": 5, "opacity": 0.6,
                                "color": COLOURS["palette"][i % len(COLOURS["palette"])]},
                     "hovertemplate": "citizen %{customdata}<br>conduct %{x:.2f}, score %{y}"
                                      "<extra>%{fullData.name}</extra>"})
    shown = f"{len(idx):,} of {n:,}" if n > len(idx) else f"all {n:,}"
    return {"data": data, "layout": _layout(
        f"Final score against hidden true conduct ({who}: {shown})",
        "hidden true conduct (1 = never breaks a rule)", "final score")}


#: How each kind of score change is marked on a citizen's chart (explain.TRUTHS' kinds,
#: and upheld appeals).
MARKS = {"recorded": ("act as recorded", COLOURS["true"]),
         "benign": ("act with a benign reason", COLOURS["benign"]),
         "misattributed": ("someone else's act (false match)", COLOURS["misattributed"]),
         "derived": ("derived from state (no act)", COLOURS["derived"]),
         "appeal": ("appeal upheld", COLOURS["reward"])}


def citizen_score(scenario, events: list[dict]) -> dict:
    """One citizen's score over the run: a step line through every change, each change
    marked by the hidden truth behind it, and the tiers' bands behind the line."""
    start = scenario.population.initial_score
    days = scenario.run.days
    x = [0] + [e["day"] for e in events] + [days - 1]
    y = [start] + [e["score"] for e in events] + [events[-1]["score"] if events else start]
    data = [{"type": "scatter", "mode": "lines", "x": x, "y": y, "name": "score",
             "line": {"shape": "hv", "color": "#333333"}, "hoverinfo": "skip",
             "showlegend": False}]
    for kind, (name, colour) in MARKS.items():
        mine = [e for e in events if (("appeal" if e["appeal"] else e["truth"]) == kind)]
        if mine:
            data.append({"type": "scatter", "mode": "markers", "name": name,
                         "x": [e["day"] for e in mine], "y": [e["score"] for e in mine],
                         "customdata": [[e["rule"], f"{e['points']:+d}",
                                         e["evidence"].replace("_", " ")]
                                        for e in mine],
                         "marker": {"color": colour, "size": 8,
                                    "line": {"color": "white", "width": 1}},
                         "hovertemplate": "day %{x}: %{customdata[0]} %{customdata[1]} → "
                                          "%{y}<br>%{customdata[2]}<extra>%{fullData.name}"
                                          "</extra>"})
    lo, hi = min(y), max(y)
    pad = max(10, (hi - lo) * 0.15)
    shapes, notes = [], []
    palette = COLOURS["tiers"](len(scenario.tiers))
    for colour, t in zip(palette, scenario.tiers, strict=True):
        bottom = t.min if t.min is not None else lo - pad
        top = t.max if t.max is not None else hi + pad
        if top < lo - pad or bottom > hi + pad:
            continue
        shapes.append({"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y",
                       "y0": max(bottom, lo - pad), "y1": min(top, hi + pad),
                       "fillcolor": colour, "opacity": 0.12, "line": {"width": 0},
                       "layer": "below"})
        notes.append({"xref": "paper", "x": 1.0, "xanchor": "left", "yref": "y",
                      "y": (max(bottom, lo - pad) + min(top, hi + pad)) / 2,
                      "text": f"tier {t.name}", "showarrow": False, "font": {"size": 11}})
    return {"data": data, "layout": _layout(
        "Score over the run, each change marked by the truth behind it", "day", "score",
        shapes=shapes, annotations=notes, margin={"l": 64, "r": 80, "t": 44, "b": 48},
        xaxis={"title": {"text": "day"}, "range": [0, days - 1]},
        yaxis={"title": {"text": "score"}, "range": [lo - pad, hi + pad]})}


def run_charts(loaded, who: str | None = None) -> dict:
    """Every chart of the run page, keyed by process."""
    run = loaded.run()
    daily = loaded.tables["daily"]
    citizens = loaded.citizens(CHARTED)
    chosen, who_label = subset(citizens, who)
    return {
        "limits": limits(run, daily),
        "visibility": visibility(daily),
        "categorisation": categorisation(run, daily, citizens.num_rows),
        "scores": score_histogram(chosen, who_label),
        "judgements": judgements(run, daily),
        "intensification": intensification(daily),
        "authority": authority(chosen, who_label, run.scenario.run.seed),
        "who": who_label,
        "shown": chosen.num_rows,
    }


__all__ = ["MARKS", "SCATTER_MAX", "citizen_score", "run_charts", "subset"]
