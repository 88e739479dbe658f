"""The calibration report: observed against simulated with intervals, per-date relative
error, fitted values with their spread. One self-contained HTML file (inline CSS, images
as data: URIs, no scripts)."""

from __future__ import annotations

import base64
import io

import numpy as np
import polars as pl

from metricpower.metrics.ranges import NONNEGATIVE as COUNT
from metricpower.report.html import esc, figure, kpis, num, page, pct, section, table


def _plot(cal, quantity: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sim, spec = cal.simulated, cal.spec
    sc = sim.scenario
    kind = spec.quantities[quantity].kind
    days = list(range(sc.run.days))
    dates = [sc.date_of(d) for d in days]
    mean = sim.mean(quantity)
    se = [sim.se(quantity, kind, d) for d in dates]
    fig, ax = plt.subplots(figsize=(7.5, 3.4), dpi=100)
    ax.plot(dates, mean, color="#8b1e2d", lw=1.5, label="simulated (mean of replicates)")
    half = 1.96 * pl.Series(se).to_numpy()
    # A count's interval stops at 0, as in the table.
    ax.fill_between(dates, np.maximum(mean - half, COUNT.low), mean + half,
                    color="#8b1e2d", alpha=0.2, label="95% sampling interval")
    for fitted, marker, label in ((True, "o", "observed, fitted"),
                                  (False, "D", "observed, held out")):
        pts = [t for t in cal.targets if t.quantity == quantity and
               (t.date <= spec.fit_until and quantity in spec.objective) == fitted]
        if pts:
            ax.scatter([t.date for t in pts], [t.value for t in pts], marker=marker,
                       facecolors="#222" if fitted else "white", edgecolors="#222", zorder=3,
                       label=label)
    ax.axvline(spec.fit_until, color="#666", ls="--", lw=1)
    ax.set_title(quantity.replace("_", " ") + " (scaled to the population)")
    ax.ticklabel_format(axis="y", style="plain")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1e6:g}M"))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def render(cal) -> str:
    spec, sc = cal.spec, cal.simulated.scenario
    rows = cal.table()
    held = [r for r in rows if not r["fitted"]]
    worst = max((abs(r["error"]) for r in held if r["quantity"] != "paid_up"), default=None)
    items = [("free parameters", str(len(spec.parameters))),
             ("finished trials", num(cal.trials)),
             ("replicate seeds per trial", num(cal.settings["replicates"])),
             ("citizens per run (scaled)", num(cal.settings["citizens"])),
             ("wall time of this call", f"{cal.seconds / 60:.1f} min"),
             ("best objective (mean z²)", num(cal.best_loss, 2))]
    intro = [f"Preset <b>{esc(spec.preset)}</b>, fitted on the dates up to "
             f"{spec.fit_until} ({', '.join(map(esc, spec.objective))}); later dates are held "
             f"out. Each run of {num(cal.settings['citizens'])} citizens stands for "
             f"{num(sc.run.represents)} people: every simulated number here is <b>scaled</b> "
             f"(× {cal.simulated.factor:,.0f}). Intervals are 95% sampling intervals of the "
             "replicates' mean (binomial for people on the list, Poisson for counts of "
             "events); they leave out the error of the model and of its parameters."]
    if worst is not None:
        intro.append(f"Largest held-out relative error (list and travel figures): "
                     f"{pct(worst)}.")
    params = pl.DataFrame([{"parameter": p.key, "fitted": cal.best[p.key],
                            "best quarter low": cal.spread[p.key][0],
                            "best quarter high": cal.spread[p.key][1],
                            "range searched": f"{p.low:g} to {p.high:g}"
                                              + (" (log)" if p.log else "")}
                           for p in spec.parameters])
    fitted = section("fitted", "Fitted values",
                     "The best trial's values, and the range of each over the best quarter "
                     "of trials (their spread).", [],
                     [table(params, "fitted parameters", open_=True)])
    shown = pl.DataFrame([{k: r[k] for k in ("date", "quantity", "fitted", "observed",
                                             "simulated", "low", "high")}
                          | {"relative error": f"{100 * r['error']:+.1f}%",
                             "source": r["source"]} for r in rows])
    figs = [figure(f"fit-{q}", _plot(cal, q),
                   f"{q.replace('_', ' ')}: observed (dots: fitted, diamonds: held out) and "
                   "simulated, scaled; dashed line: end of the fitted dates")
            for q in spec.quantities]
    compare = section("observed", "Observed against simulated",
                      "Every target figure, fitted or held out, with the per-date relative "
                      "error.", [], figs + [table(shown, "every target", open_=True)])
    steps = cal.increments()
    rates = pl.DataFrame([{"quantity": r["quantity"].replace("_", " "), "from": r["from"],
                           "to": r["to"], "held out": r["held_out"],
                           "observed per day": r["observed_per_day"],
                           "simulated per day": r["simulated_per_day"],
                           "simulated ÷ observed": f"{r['ratio']:.2f}"} for r in steps])
    between = section("between", "Between published dates",
                      "What each fitted quantity added per day between consecutive published "
                      "figures (the first period from the run's start), observed against "
                      "simulated. A held-out miss whose ratio moves away from 1 period after "
                      "period is a rate the fitted dates set and later years did not keep: "
                      "a constant parameter fitted to the earlier years cannot follow it.", [],
                      [table(rates, "per-day increments", open_=True)]) if steps else ""
    head = (f"<h1>Calibration: {esc(spec.preset)}</h1>"
            f"<p class=\"meta\">{num(cal.trials)} trials · {num(cal.settings['replicates'])} "
            f"replicate seeds from {cal.settings['seed']} · {num(cal.settings['citizens'])} "
            "citizens</p>" + "".join(f"<p>{p}</p>" for p in intro) + kpis(items))
    foot = ("Generated by metricpower calibrate. Targets: the calibration table of "
            "DOMAIN-FACTS.md, shipped as a CSV with the package; each row names its source.")
    return page(f"metricpower calibration — {spec.preset}", head, fitted + compare + between,
                foot)
