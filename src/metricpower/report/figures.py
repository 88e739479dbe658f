"""The report's figures, as SVG charts (see `svg.py`): the report embeds them as data:
URIs, so it opens offline, and `Run.plot` shows the same ones in a notebook. A figure with
nothing to show returns None, and the report says so in words instead of drawing empty
axes. Counts that span orders of magnitude get a log axis."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from metricpower.report import svg
from metricpower.report.labels import COLOURS, EVIDENCE, PALETTE, log_scale_needed, tier_colours

EVIDENCE_COLOURS = {k: COLOURS[k] for k in EVIDENCE}
EVIDENCE_LABELS = EVIDENCE
#: Days in the moving mean of daily series (centred, so the last day is no outlier).
WINDOW = 7


def _some(values: pl.Series) -> bool:
    """Any value other than zero or null."""
    return bool((values.fill_null(0) != 0).any())


def _named(names, lawful) -> list[str]:
    return [f"{b}{' (lawful)' if lw else ''}" for b, lw in zip(names, lawful, strict=True)]


# ---------------------------------------------------------------- 1 limits
def policy_points(policy: pl.DataFrame) -> svg.SVG | None:
    pts = policy["points"].to_list()
    if not any(pts):
        return None
    colours = [COLOURS["penalty_lawful"] if p < 0 else COLOURS["reward"] if p > 0
               else COLOURS["none"] for p in pts]
    return svg.hbars(_named(policy["behaviour"], policy["lawful"]),
                     [("points", pts, colours)],
                     "points per observed act (sum of event rules; grey: not scored)",
                     signed=True)


def occurrences(by_behaviour: pl.DataFrame) -> svg.SVG | None:
    df = by_behaviour
    occ = df["occurrences"].to_list()
    if not any(occ):
        return None
    colour = [COLOURS["penalty_lawful"] if p and lw else COLOURS["penalty"] if p
              else COLOURS["reward"] if r else COLOURS["none"]
              for p, lw, r in zip(df["penalised"], df["lawful"], df["regulated"], strict=True)]
    src = df["source"][0] if df.height else "measured"
    return svg.hbars(_named(df["behaviour"], df["lawful"]),
                     [("all acts", occ, colour),
                      ("with a benign hidden context", df["benign_occurrences"].to_list(),
                       "#333333")],
                     f"acts over the run ({src}; log scale)" if log_scale_needed(occ)
                     else f"acts over the run ({src})", log=log_scale_needed(occ))


# ---------------------------------------------------------------- 2 visibility
def moving_mean(y: np.ndarray, w: int = WINDOW) -> np.ndarray:
    """Centred moving mean; at either end the window is cut and divided by the days it
    holds, so the first and last days are means like any other (no edge spike)."""
    if len(y) == 0:
        return y.astype(float)
    c = np.cumsum(np.r_[0.0, y.astype(float)])
    i = np.arange(len(y))
    lo = np.maximum(0, i - w // 2)
    hi = np.minimum(len(y), i + w // 2 + 1)
    return (c[hi] - c[lo]) / (hi - lo)


def penalty_evidence(over_time: pl.DataFrame, days: int) -> svg.SVG | None:
    if over_time.height == 0:
        return None
    x = list(range(days))
    series = []
    for ev in ("true", "benign", "misattributed", "derived"):
        part = over_time.filter(pl.col("evidence") == ev)
        y = np.zeros(days)
        d = part["day"].to_numpy()
        ok = (d >= 0) & (d < days)
        y[d[ok]] = part["penalties"].to_numpy()[ok]
        series.append((EVIDENCE_LABELS[ev], moving_mean(y).tolist(), EVIDENCE_COLOURS[ev]))
    return svg.lines(x, series, "day", f"penalties per day ({WINDOW}-day centred mean)",
                     stacked=True)


def misattribution_by_group(mis: pl.DataFrame, benign: pl.DataFrame) -> svg.SVG | None:
    g = mis.filter(pl.col("by") == "group")
    b = benign.filter(pl.col("by") == "group")
    if not _some(g["per_100k"]) and not _some(b["share"]):
        return None
    left = svg.vbars(g["who"].to_list(), [("", g["per_100k"].fill_null(0).to_list(),
                                           PALETTE[3])],
                     "per 100,000 citizens", "Misattributed penalties", labels=True,
                     fmt=lambda v: f"{v:,.1f}", height=280)
    right = svg.vbars(b["who"].to_list(), [("", (b["share"].fill_null(0) * 100).to_list(),
                                            EVIDENCE_COLOURS["benign"])],
                      "% of penalties", "Penalties with a benign hidden context",
                      labels=True, fmt=lambda v: f"{v:.1f}%", height=280)
    return svg.stack(left, right)


# ---------------------------------------------------------------- 3 categorisation
def tier_shares(over_time: pl.DataFrame, tiers: list[str]) -> svg.SVG | None:
    if over_time.height == 0:
        return None
    days = sorted(set(over_time["day"].to_list()))
    colours = tier_colours(len(tiers))
    ys = [(over_time.filter(pl.col("tier") == t).sort("day")["share"].fill_null(0)
           * 100).to_list() for t in tiers]
    area = svg.lines(days, [(f"tier {t}", y, c) for t, y, c in
                            zip(tiers, ys, colours, strict=True)], "day", "% of citizens",
                     "Composition", stacked=True, bounds=(0, 100))
    kept = [(f"tier {t}", [v if v > 0 else None for v in y], c)
            for t, y, c in zip(tiers, ys, colours, strict=True) if any(v > 0 for v in y)]
    each = svg.lines(days, kept, "day", "% of citizens (log scale)",
                     "Each tier (log scale: small tiers stay visible)", log=True)
    return svg.stack(area, each)


def score_distribution(citizens: pl.DataFrame, tier_floors: list[int],
                       initial: int) -> svg.SVG | None:
    s = citizens["score"].to_numpy()
    if len(s) == 0:
        return None
    lo, hi = float(s.min()), float(s.max())
    if lo == hi:
        return None
    bins = np.linspace(lo, hi + 1, 60)
    mids = ((bins[:-1] + bins[1:]) / 2).round(1).tolist()
    counts, _ = np.histogram(s, bins=bins)
    series = [("everyone", [c or None for c in counts.tolist()], "#999999")]
    groups = citizens["group"].to_numpy()
    for i, grp in enumerate(sorted(set(groups.tolist()), key=str)):
        counts, _ = np.histogram(s[groups == grp], bins=bins)
        series.append((str(grp), [c or None for c in counts.tolist()],
                       PALETTE[i % len(PALETTE)]))
    return svg.lines(mids, series, f"final score (everyone started at {initial:,})",
                     "citizens (log scale)", log=True, step=True)


def list_sizes(over_time: pl.DataFrame) -> svg.SVG | None:
    if over_time.height == 0 or not _some(over_time["size"]):
        return None
    days = sorted(set(over_time["day"].to_list()))
    series = []
    for i, ((name,), part) in enumerate(sorted(over_time.group_by("list"),
                                               key=lambda kv: str(kv[0][0]))):
        size = dict(zip(part["day"], part["size"], strict=True))
        series.append((name, [size.get(d) for d in days], PALETTE[i % len(PALETTE)]))
    values = [v for _, ys, _ in series for v in ys]
    log = log_scale_needed(values)
    return svg.lines(days, [(n, [v if (v or 0) > 0 or not log else None for v in ys], c)
                            for n, ys, c in series], "day",
                     "citizens on the list" + (" (log scale)" if log else ""), log=log)


# ---------------------------------------------------------------- 4 judgements
def sanctions_by_group(rates: pl.DataFrame, groups: list[str]) -> svg.SVG | None:
    per_group = rates.filter(pl.col("group") != "all")
    charts = []
    for per, unit, title in (("attempt", "per 1,000 attempts", "On a service"),
                             ("citizen", "per 1,000 citizens", "On the citizen")):
        part = per_group.filter(pl.col("per") == per)
        cons = list(dict.fromkeys(part["consequence"].to_list()))
        if not cons:
            continue
        sanction = dict(zip(part["consequence"], part["sanction"], strict=True))
        rate = {(c, g): (v or 0.0) * 1000 for c, g, v in
                zip(part["consequence"], part["group"], part["rate"], strict=True)}
        values = [rate.get((c, g), 0.0) for c in cons for g in groups]
        if not any(values):
            continue
        log = log_scale_needed(values)
        charts.append(svg.vbars(
            [c.replace("_", " ") + ("" if sanction[c] else " (reward)") for c in cons],
            [(g, [rate.get((c, g), 0.0) for c in cons], PALETTE[i % len(PALETTE)])
             for i, g in enumerate(groups)], unit + (" (log scale)" if log else ""),
            title, log=log))
    return svg.stack(*charts) if charts else None


def wrongful(wr: pl.DataFrame) -> svg.SVG | None:
    g = wr.filter(pl.col("by").is_in(["all", "group"]))
    if int(g["sanctioned"].sum()) == 0:
        return None
    n = g["citizens"].to_numpy().astype(float)
    per = np.where(n > 0, 100_000 / np.maximum(n, 1), 0)
    wrong = (g["wrongful"].to_numpy() * per).tolist()
    right = ((g["sanctioned"].to_numpy() - g["wrongful"].to_numpy()) * per).tolist()
    return svg.vbars(g["who"].to_list(),
                     [("sanctioned on true evidence, worse half of conduct", right,
                       "#8c8c8c"),
                      ("wrongfully: better half of conduct, or mostly benign or "
                       "misattributed evidence", wrong, "#c44e52")],
                     "sanctioned citizens per 100,000", stacked=True)


def predictions(pe: pl.DataFrame) -> svg.SVG | None:
    g = pe.filter(pl.col("group") != "all")
    if g.height == 0:
        return None
    who = g["group"].to_list()
    fpr = svg.vbars(who, [("", (g["false_positive_rate"].fill_null(0) * 100).to_list(),
                           PALETTE[3])], "% of those who did not fall",
                    "False positives: innocent citizens flagged", labels=True,
                    fmt=lambda v: f"{v:.2g}%", height=260)
    prec = svg.vbars(who, [("", (g["precision"].fill_null(0) * 100).to_list(), PALETTE[0])],
                     "% of flagged", "Precision: flagged citizens who did fall", labels=True,
                     fmt=lambda v: f"{v:.2g}%", height=260)
    return svg.stack(fpr, prec)


# ---------------------------------------------------------------- 5 intensification
def mobility(mob: pl.DataFrame, tiers: list[str]) -> svg.SVG | None:
    horizons = sorted(set(mob["horizon"].to_list()))
    if not horizons:
        return None
    k = len(tiers)
    panels = []
    for h in horizons:
        mat: list[list[float | None]] = [[None] * k for _ in range(k)]
        for r in mob.filter(pl.col("horizon") == h).iter_rows(named=True):
            if r["share"] is not None:
                mat[tiers.index(r["from_tier"])][tiers.index(r["to_tier"])] = r["share"]
        panels.append((f"after {h} days", mat))
    return svg.heatmaps(panels, tiers, "tier later", "tier before")


def assortativity(over_time: pl.DataFrame) -> svg.SVG | None:
    if over_time.height == 0:
        return None
    return svg.lines(over_time["day"].to_list(),
                     [("", over_time["assortativity"].to_list(), PALETTE[4])], "day",
                     "score assortativity", markers=True, hline=0.0,
                     fmt=lambda v: f"{v:.2f}")


def ties(over_time: pl.DataFrame) -> svg.SVG | None:
    if over_time.height == 0 or not (_some(over_time["dropped_total"])
                                     or _some(over_time["formed_total"])):
        return None
    return svg.lines(over_time["day"].to_list(),
                     [("friendships dropped", over_time["dropped_total"].to_list(), PALETTE[3]),
                      ("friendships formed", over_time["formed_total"].to_list(), PALETTE[2])],
                     "day", "running total")


def chilling(ch: pl.DataFrame) -> svg.SVG | None:
    chilled = ch["chilled"].fill_null(0).to_list()
    if not any(chilled):
        return None
    log = log_scale_needed(chilled)
    return svg.hbars(_named(ch["behaviour"], ch["lawful"]),
                     [("acts not done", chilled, "#bbbbbb"),
                      ("of which broke no law", ch["lawful_chilled"].fill_null(0).to_list(),
                       PALETTE[1])],
                     f"acts chilled over the run ({ch['source'][0]})"
                     + (" (log scale)" if log else ""), log=log)


def income_by_tier(ib: pl.DataFrame) -> svg.SVG | None:
    df = ib.filter(pl.col("citizens") > 0)
    if df.height == 0:
        return None
    return svg.vbars([f"{t} (n={n:,})" for t, n in zip(df["tier"], df["citizens"], strict=True)],
                     [("at the start", df["income_start"].to_list(), "#bbbbbb"),
                      ("at the end", df["income_end"].to_list(), PALETTE[0])],
                     "mean income index", fmt=lambda v: f"{v:.2f}")


# ---------------------------------------------------------------- 6 authority
def score_vs_conduct(citizens: pl.DataFrame, seed: int = 0,
                     sample: int = 1500) -> svg.SVG | None:
    n = citizens.height
    allc, alls = citizens["conduct"].to_numpy(), citizens["score"].to_numpy()
    if n == 0 or alls.min() == alls.max():
        return None
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    edges = np.quantile(allc, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(edges, allc, side="right") - 1, 0, 9)
    means = [float(alls[which == i].mean()) if (which == i).any() else None
             for i in range(10)]
    mids = [float(edges[i] + edges[i + 1]) / 2 for i in range(10)]
    jitter = rng.uniform(-1.5, 1.5, len(idx))
    return svg.scatter(allc[idx].round(4).tolist(), (alls[idx] + jitter).round(1).tolist(),
                       PALETTE[0], "hidden true conduct (1 = never breaks a rule; the system "
                                   "never sees it)", "final score",
                       line=(mids, means, PALETTE[3], "mean score by conduct decile"),
                       legend=[(f"citizens ({len(idx):,} of {n:,}, jittered)", PALETTE[0]),
                               ("mean score by conduct decile", PALETTE[3])])


def authority(gated: pl.DataFrame | None, knowledge: pl.DataFrame) -> svg.SVG | None:
    charts = []
    if gated is not None and gated.height:
        g = gated.filter(pl.col("group") == "all").row(0, named=True)
        vals = [(g["gated_share"] or 0) * 100, (g["changed_share"] or 0) * 100]
        charts.append(svg.vbars(["consulted the score", "outcome changed by the score"],
                                [("", vals, PALETTE[4])], "% of life decisions",
                                "How much the score decides", labels=True,
                                fmt=lambda v: f"{v:.1f}%", bounds=(0, 100), height=260))
    k = knowledge.filter(pl.col("by").is_in(["all", "group"]) & pl.col("auc").is_not_null())
    if k.height:
        charts.append(svg.vbars(k["who"].to_list(), [("", k["auc"].to_list(), PALETTE[0])],
                                "ROC AUC (dashed: 0.5, a coin toss)",
                                "How much the score knows about true conduct", ref=0.5,
                                bounds=(0, 1), labels=True, fmt=lambda v: f"{v:.2f}",
                                height=260))
    return svg.stack(*charts) if charts else None


# ---------------------------------------------------------------- disparate impact
def impact_ratios(di: pl.DataFrame, by: str = "group") -> svg.SVG | None:
    part = di.filter((pl.col("by") == by) & pl.col("impact_ratio").is_not_null())
    if part.height == 0:
        return None
    order = (part.group_by("rate").agg(low=pl.col("impact_ratio").min(),
                                       adverse=pl.col("adverse").first())
             .sort(["low", "rate"], descending=[False, False]))
    rows = order["rate"].to_list()
    ypos = {r: i for i, r in enumerate(rows)}
    whos = sorted(set(part["who"].to_list()))
    points = []
    for k, who in enumerate(whos):
        w = dict(zip(part.filter(pl.col("who") == who)["rate"],
                     part.filter(pl.col("who") == who)["impact_ratio"], strict=True))
        points.append((who, [w.get(r) for r in rows], PALETTE[k % len(PALETTE)]))
    fl = part.filter(pl.col("flagged"))
    flagged = [(ypos[r], v) for r, v in zip(fl["rate"], fl["impact_ratio"], strict=True)]
    labels = [r.replace("_", " ") + ("" if a else " (reward)")
              for r, a in zip(rows, order["adverse"], strict=True)]
    return svg.dots(labels, points, flagged, f"impact ratio by {by} (1 = parity; dashed: "
                                             "four fifths)", 0.8)


# ---------------------------------------------------------------- comparison
def compare_bars(labels: list[str], a: list[float], b: list[float], name_a: str,
                 name_b: str, ylabel: str) -> svg.SVG | None:
    values = [v for v in [*a, *b] if v is not None and not (isinstance(v, float)
                                                            and math.isnan(v))]
    if not any(values):
        return None
    log = log_scale_needed(values)
    clean = [[None if v is None or (isinstance(v, float) and math.isnan(v)) else v
              for v in vs] for vs in (a, b)]
    return svg.vbars([x.replace("_", " ") for x in labels],
                     [(name_a, clean[0], PALETTE[3]), (name_b, clean[1], "#8c8c8c")],
                     ylabel + (" (log scale)" if log else ""), log=log)


def compare_tiers(a: pl.DataFrame, b: pl.DataFrame, tiers: list[str], name_a: str,
                  name_b: str) -> svg.SVG | None:
    charts = [tier_shares_area(df, tiers, name) for df, name in ((a, name_a), (b, name_b))]
    charts = [c for c in charts if c is not None]
    return svg.stack(*charts) if charts else None


def tier_shares_area(df: pl.DataFrame, tiers: list[str], title: str) -> svg.SVG | None:
    if df.height == 0:
        return None
    days = sorted(set(df["day"].to_list()))
    ys = [(df.filter(pl.col("tier") == t).sort("day")["share"].fill_null(0) * 100).to_list()
          for t in tiers]
    return svg.lines(days, [(f"tier {t}", y, c) for t, y, c in
                            zip(tiers, ys, tier_colours(len(tiers)), strict=True)],
                     "day", "% of citizens", title, stacked=True, bounds=(0, 100),
                     height=260)


def compare_scores(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> svg.SVG | None:
    lo = float(min(a.min(), b.min()))
    hi = float(max(a.max(), b.max()))
    if lo == hi:
        return None
    bins = np.linspace(lo, hi + 1, 60)
    mids = ((bins[:-1] + bins[1:]) / 2).round(1).tolist()
    ca, _ = np.histogram(a, bins=bins)
    cb, _ = np.histogram(b, bins=bins)
    return svg.lines(mids, [(name_b, [c or None for c in cb.tolist()], "#8c8c8c"),
                            (name_a, [c or None for c in ca.tolist()], PALETTE[3])],
                     "final score", "citizens (log scale)", log=True, step=True)
