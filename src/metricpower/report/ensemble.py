"""The ensemble, sweep and paired-comparison report: one self-contained HTML file (inline
CSS, PNGs as data: URIs, no scripts) with every number beside its 95% interval."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from metricpower.ensembles.results import EFFECTS
from metricpower.ensembles.stats import INTERVAL as MEANS
from metricpower.report.html import esc, figure, page, section, table
from metricpower.report.labels import PALETTE, estimate, metric_label

# Interval plots stay in Matplotlib (the run report's figures are SVG written directly,
# see svg.py); drawn at twice the screen's density so that their labels read sharply.
LAYOUT = "constrained"


def png(fig: Figure) -> str:
    """The figure as a base64 PNG data URI (names drawn as written, not as TeX)."""
    import base64
    import io

    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=192)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)

INTERVAL = (f"Intervals: {MEANS}. Effects are paired differences from the baseline arm on "
            "the same seeds and populations.")


def interval(metric: str, mean, lo, hi) -> str:
    """A mean and its interval written as the dashboard writes them (`labels.estimate`:
    shares as percentages, to the precision the interval supports)."""
    m, a, b = estimate(metric, [mean, lo, hi])
    return f"{m} [{a}, {b}]"


def _span(metric: str, x) -> str:
    """How far a mean moves: in the metric's unit, a share's in percentage points."""
    return estimate(metric, [x], sign=True)[0].lstrip("+±")


def _grid(n: int, width: float = 9.0, height: float = 2.6, sharey: bool = False):
    cols = min(n, 3)
    rows = max(1, math.ceil(n / cols))
    fig = Figure(figsize=(width, height * rows), layout=LAYOUT)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=sharey)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def metric_figure(results, metrics: list[str]) -> Figure:
    """Each metric with its interval: over the sweep's first numeric parameter (a line per
    setting of the others, the band its interval), or by arm."""
    s = results.summary()
    fig, axes = _grid(max(len(metrics), 1))
    numeric = [p for p in results.params if s.schema[p].is_numeric()]
    x = numeric[0] if numeric else None
    for ax, metric in zip(axes, metrics, strict=False):
        m = s.filter(pl.col("metric") == metric)
        _style(ax)
        ax.set_title(metric_label(metric), fontsize=9)
        if x is not None:
            others = [p for p in results.params if p != x]
            groups = m.partition_by(others, maintain_order=True) if others else [m]
            for i, g in enumerate(groups[:len(PALETTE)]):
                g = g.sort(x)
                colour = PALETTE[i]
                label = ", ".join(f"{p.split('.')[-1]}={g[p][0]}" for p in others) or None
                ax.plot(g[x], g["mean"], marker="o", color=colour, label=label)
                ax.fill_between(g[x].to_numpy(), g["lo"].to_numpy(), g["hi"].to_numpy(),
                                color=colour, alpha=0.2)
            ax.set_xlabel(x, fontsize=8)
            if others and ax is axes[0]:
                ax.legend(fontsize=6)
        else:
            labels = m["arm"].to_list() if "arm" in m.columns else [results.arms[0]]
            y = np.arange(m.height)
            mean = m["mean"].to_numpy()
            err = np.vstack([mean - m["lo"].to_numpy(), m["hi"].to_numpy() - mean])
            ax.errorbar(mean, y, xerr=np.nan_to_num(err), fmt="o", color=PALETTE[0],
                        capsize=3)
            ax.set_yticks(y, labels, fontsize=8)
    return fig


def forest(effects: pl.DataFrame, metrics: list[str], baseline: str) -> Figure:
    """Each arm's paired effect against the baseline with its 95% interval: one panel per
    metric, arms down the side (named in the first column of panels)."""
    arms = list(dict.fromkeys(effects["arm"].to_list())) if effects.height else []
    fig, axes = _grid(max(len(metrics), 1), width=10.0, height=0.9 + 0.28 * len(arms),
                      sharey=True)
    cols = min(max(len(metrics), 1), 3)
    for i, (ax, metric) in enumerate(zip(axes, metrics, strict=False)):
        e = effects.filter(pl.col("metric") == metric)
        _style(ax)
        ax.set_title(metric_label(metric), fontsize=8)
        y = np.array([arms.index(a) for a in e["arm"].to_list()])
        mean = e["mean"].to_numpy()
        err = np.vstack([mean - e["lo"].to_numpy(), e["hi"].to_numpy() - mean])
        ax.errorbar(mean, y, xerr=np.nan_to_num(err), fmt="s", color=PALETTE[3], capsize=3)
        ax.axvline(0, color="#888888", lw=1, ls="--")
        ax.set_yticks(range(len(arms)), arms if i % cols == 0 else [], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"difference from {baseline}", fontsize=9)
    return fig


def write_ensemble_report(results, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(results), encoding="utf-8")
    tmp.replace(path)
    return path


def render(results) -> str:
    plan = results.plan
    seeds = plan["seeds"]
    headline = results.headline()
    summary = results.summary()
    name = plan["arms"][0]["scenario"]["name"]
    title = {"ensemble": f"Ensemble of {name}", "sweep": f"Sweep of {name}",
             "compare": f"{results.arms[0]} against {results.arms[-1]}"}[results.kind]
    header = (f"<h1>{esc(title)}</h1>"
              f"<p class=\"meta\">{len(results.arms)} arm(s) × {len(seeds)} seed(s) "
              f"({seeds[0]}–{seeds[-1]}). {esc(INTERVAL)}</p>")
    parts = []
    effects = results.effects()
    if results.kind == "compare":
        parts.append(_effects_section(results, effects))
    parts.append(_metrics_section(results, summary, headline))
    if results.baseline is not None and results.kind != "compare":
        metrics = [m for m in headline if not m.startswith("effects.")]
        parts.append(section(
            "forest", f"Effects against the baseline arm ({results.baseline})",
            "Each arm minus the baseline on the same seed and population (common random "
            "numbers), averaged over seeds.",
            [f"Baseline: <b>{esc(results.baseline)}</b>. {esc(INTERVAL)}"],
            [figure("forest-plot", png(forest(effects, metrics, results.baseline)),
                    "Forest plot: paired effects with 95% intervals"),
             table(effects, "every effect, with its interval", max_rows=400)]))
    sens = results.sensitivity()
    if sens.height:
        top = sens.group_by("metric", maintain_order=True).first()
        lines = [f"<b>{esc(metric_label(r['metric']))}</b> moves most with "
                 f"<b>{esc(r['parameter'])}</b> (its mean spans "
                 f"{_span(r['metric'], r['range'])} across that parameter's values)."
                 for r in top.iter_rows(named=True)]
        parts.append(section("sensitivity", "Which parameters move the headline numbers",
                             "The range of each headline metric's mean across each "
                             "parameter's values (other parameters averaged over).",
                             lines, [table(sens, "every metric and parameter", open_=True)]))
    footer = (f"metricpower ensemble report · folder {esc(results.out)} · the tidy table is "
              "results.parquet (member, seed, [arm, parameters], metric, value)")
    return page(title, header, "\n".join(parts), footer)


def _metrics_section(results, summary: pl.DataFrame, headline: list[str]) -> str:
    headline = [m for m in headline if not m.startswith("effects.")]
    head = summary.filter(pl.col("metric").is_in(headline)).with_columns(
        shown=pl.struct("metric", "mean", "lo", "hi").map_elements(
            lambda r: interval(r["metric"], r["mean"], r["lo"], r["hi"]),
            return_dtype=pl.String))
    lines = [f"Every number is a mean over {len(results.plan['seeds'])} seeds (fewer where a "
             "metric is undefined on some), with its 95% interval in brackets."]
    head = head.with_columns(pl.col("metric").replace_strict(
        {m: metric_label(m) for m in headline}, default=pl.col("metric")))
    by_arm = head.pivot(on="metric", index="arm" if "arm" in head.columns else None,
                        values="shown") if "arm" in head.columns else \
        head.select("metric", pl.col("shown").alias("mean [95% interval]"))
    fig = metric_figure(results, headline)
    return section("metrics", "Metrics with their 95% intervals",
                   "Mean over seeds; the band or bar is its 95% interval.", lines,
                   [table(by_arm, "headline metrics", open_=True),
                    figure("metrics-plot", png(fig), "Headline metrics with 95% intervals"),
                    table(summary.select(
                        pl.col("metric").map_elements(metric_label, return_dtype=pl.String)
                        .alias("measure"), pl.all()),
                        "every metric: n, mean, sd, 95% interval", max_rows=2000)])


def _effects_section(results, effects: pl.DataFrame) -> str:
    own = effects.filter(pl.col("metric").str.starts_with("effects."))
    lines = [f"<b>{esc(metric_label(r['metric']))}</b>: "
             f"{interval(r['metric'], r['mean'], r['lo'], r['hi'])} (n = {r['n']} seeds)"
             for r in own.filter(pl.col("metric").is_in(EFFECTS)).iter_rows(named=True)]
    metrics = [m for m in EFFECTS if m in set(own["metric"])]
    return section("effects", f"What {results.arms[0]} caused against {results.arms[1]}",
                   "Each effect is a paired difference (A − B on the same seed and "
                   "population), with its 95% t-interval over seeds.", lines,
                   [figure("effects-plot", png(forest(own, metrics, results.arms[1])),
                           "Effects with 95% intervals"),
                    table(effects, "every effect and metric difference, with its interval",
                          max_rows=2000)])
