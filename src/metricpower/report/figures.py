"""The report's plots: Matplotlib figures (no pyplot, no global state) rendered to PNG and
embedded as data: URIs, so the report opens offline."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import polars as pl
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.text import Text

EVIDENCE_COLOURS = {"true": "#4c72b0", "benign": "#dd8452", "misattributed": "#c44e52",
                    "derived": "#8172b3"}
EVIDENCE_LABELS = {"true": "true act", "benign": "benign hidden context",
                   "misattributed": "misattributed (false match)",
                   "derived": "derived from state or friends (no act)"}
LAYOUT = "constrained"
PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd"]


def tier_colours(n: int) -> list:
    """Best tier green to worst tier red."""
    cmap = LinearSegmentedColormap.from_list("tiers", ["#1a9850", "#fee08b", "#d73027"])
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


def new(width: float = 7.5, height: float = 3.6, ncols: int = 1):
    fig = Figure(figsize=(width, height), layout=LAYOUT)
    axes = fig.subplots(1, ncols)
    return fig, axes


def png(fig: Figure) -> str:
    """The figure as a base64 PNG data URI. Names from the scenario are drawn as they
    are written: a `$` in a behaviour's name is not TeX."""
    for text in fig.findobj(Text):
        text.set_parse_math(False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def empty_note(ax, text: str = "nothing to show in this run") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)


# ---------------------------------------------------------------- 1 limits
def policy_points(policy: pl.DataFrame) -> str:
    fig, ax = new(7.5, 0.35 * max(policy.height, 4) + 1.2)
    names = [f"{b}{' (lawful)' if lw else ''}" for b, lw in
             zip(policy["behaviour"], policy["lawful"], strict=True)]
    pts = policy["points"].to_numpy()
    colours = ["#c44e52" if p < 0 else "#55a868" if p > 0 else "#bbbbbb" for p in pts]
    y = np.arange(len(names))[::-1]
    ax.barh(y, pts, color=colours)
    ax.set_yticks(y, names)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("points per observed act (sum of event rules; grey: not regulated)")
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def occurrences(by_behaviour: pl.DataFrame) -> str:
    fig, ax = new(7.5, 0.35 * max(by_behaviour.height, 4) + 1.2)
    df = by_behaviour
    y = np.arange(df.height)[::-1]
    occ = df["occurrences"].to_numpy()
    benign = df["benign_occurrences"].to_numpy()
    colour = ["#c44e52" if p and lw else "#dd8452" if p else "#55a868" if r else "#bbbbbb"
              for p, lw, r in zip(df["penalised"], df["lawful"], df["regulated"], strict=True)]
    ax.barh(y, occ, color=colour)
    ax.barh(y, benign, color="none", edgecolor="black", hatch="///", lw=0.5,
            label="with a benign hidden context")
    ax.set_yticks(y, [f"{b}{' (lawful)' if lw else ''}" for b, lw in
                      zip(df["behaviour"], df["lawful"], strict=True)])
    src = df["source"][0] if df.height else "measured"
    ax.set_xlabel(f"occurrences over the run ({src})")
    ax.legend(loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


# ---------------------------------------------------------------- 2 visibility
def penalty_evidence(over_time: pl.DataFrame, days: int) -> str:
    fig, ax = new()
    if over_time.height == 0:
        empty_note(ax, "no penalties in this run")
        return png(fig)
    x = np.arange(days)
    stacks, labels, colours = [], [], []
    for ev in ("true", "benign", "misattributed", "derived"):
        part = over_time.filter(pl.col("evidence") == ev)
        y = np.zeros(days)
        d = part["day"].to_numpy()
        ok = (d >= 0) & (d < days)
        y[d[ok]] = part["penalties"].to_numpy()[ok]
        stacks.append(_smooth(y))
        labels.append(EVIDENCE_LABELS[ev])
        colours.append(EVIDENCE_COLOURS[ev])
    ax.stackplot(x, stacks, labels=labels, colors=colours, alpha=0.9)
    ax.set_xlabel("day")
    ax.set_ylabel("penalties per day (7-day mean)")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


def _smooth(y: np.ndarray, w: int = 7) -> np.ndarray:
    if len(y) < w:
        return y
    c = np.cumsum(np.r_[0.0, y])
    out = np.empty_like(y, dtype=float)
    for i in range(len(y)):
        lo = max(0, i - w + 1)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def misattribution_by_group(mis: pl.DataFrame, benign: pl.DataFrame) -> str:
    fig, (a1, a2) = new(9, 3.4, 2)
    # Lists, not Series: an empty frame (no ledger kept) must draw empty bars.
    g = mis.filter(pl.col("by") == "group")
    a1.bar(g["who"].to_list(), g["per_100k"].fill_null(0).to_list(), color=PALETTE[3])
    a1.set_title("misattributed penalties per 100,000", fontsize=10)
    a1.tick_params(axis="x", rotation=30, labelsize=8)
    _style(a1)
    b = benign.filter(pl.col("by") == "group")
    a2.bar(b["who"].to_list(), (b["share"].fill_null(0) * 100).to_list(),
           color=EVIDENCE_COLOURS["benign"])
    a2.set_title("% of penalties with a benign hidden context", fontsize=10)
    a2.tick_params(axis="x", rotation=30, labelsize=8)
    _style(a2)
    return png(fig)


# ---------------------------------------------------------------- 3 categorisation
def tier_shares(over_time: pl.DataFrame, tiers: list[str]) -> str:
    fig, (a1, a2) = new(10, 3.6, 2)
    days = sorted(set(over_time["day"].to_list()))
    colours = tier_colours(len(tiers))
    ys = [over_time.filter(pl.col("tier") == t).sort("day")["share"].fill_null(0).to_numpy()
          * 100 for t in tiers]
    a1.stackplot(days, ys, labels=tiers, colors=colours)
    a1.set_ylim(0, 100)
    a1.set_xlabel("day")
    a1.set_ylabel("% of citizens")
    a1.set_title("composition", fontsize=10)
    a1.spines[["top", "right"]].set_visible(False)
    for t, y, c in zip(tiers, ys, colours, strict=True):
        if (y > 0).any():
            a2.plot(days, np.where(y > 0, y, np.nan), color=c, lw=1.6, label=t)
    a2.set_yscale("log")
    a2.set_xlabel("day")
    a2.set_title("each tier (log scale)", fontsize=10)
    a2.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False,
              title="tier")
    _style(a2)
    return png(fig)


def score_distribution(citizens: pl.DataFrame, tier_floors: list[int],
                       initial: int) -> str:
    fig, ax = new()
    s = citizens["score"].to_numpy()
    lo, hi = float(s.min()), float(s.max())
    if lo == hi:
        lo, hi = lo - 10, hi + 10
    bins = np.linspace(lo, hi + 1, 60)
    counts, _ = np.histogram(s, bins=bins)
    ax.stairs(counts, bins, fill=True, color="#bbbbbb", label="everyone")
    groups = citizens["group"].to_numpy()
    for i, grp in enumerate(sorted(set(groups.tolist()), key=str)):
        counts, _ = np.histogram(s[groups == grp], bins=bins)
        ax.stairs(counts, bins, lw=1.3, color=PALETTE[i % len(PALETTE)], label=str(grp))
    ax.set_yscale("log")
    for f in tier_floors:
        if lo <= f <= hi:
            ax.axvline(f, color="black", lw=0.6, ls=":")
    ax.axvline(initial, color="black", lw=0.8, ls="--")
    ax.set_xlabel(f"final score (dashed: initial {initial}; dotted: tier floors)")
    ax.set_ylabel("citizens (log scale)")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


def list_sizes(over_time: pl.DataFrame) -> str:
    fig, ax = new(7.5, 3.0)
    if over_time.height == 0:
        empty_note(ax, "this policy keeps no lists")
        return png(fig)
    for i, ((name,), part) in enumerate(sorted(over_time.group_by("list"),
                                               key=lambda kv: str(kv[0][0]))):
        part = part.sort("day")
        ax.plot(part["day"], part["size"], label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xlabel("day")
    ax.set_ylabel("citizens on the list")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


# ---------------------------------------------------------------- 4 judgements
def sanctions_by_group(rates: pl.DataFrame, groups: list[str]) -> str:
    fig, (a1, a2) = new(10, 3.8, 2)
    per_group = rates.filter(pl.col("group") != "all")
    for ax, per, unit in ((a1, "attempt", "per 1,000 attempts"),
                          (a2, "citizen", "per 1,000 citizens")):
        part = per_group.filter(pl.col("per") == per)
        cons = list(dict.fromkeys(part["consequence"].to_list()))
        if not cons:
            empty_note(ax, f"no consequences counted {unit}")
            continue
        sanction = dict(zip(part["consequence"], part["sanction"], strict=True))
        rate = {(c, g): (v or 0.0) * 1000 for c, g, v in
                zip(part["consequence"], part["group"], part["rate"], strict=True)}
        width = 0.8 / max(len(groups), 1)
        x = np.arange(len(cons))
        for gi, g in enumerate(groups):
            ax.bar(x + gi * width - 0.4 + width / 2, [rate.get((c, g), 0.0) for c in cons],
                   width, label=g, color=PALETTE[gi % len(PALETTE)])
        ax.set_xticks(x, [c + ("" if sanction[c] else " (reward)") for c in cons],
                      rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(unit)
        _style(ax)
        ax.legend(fontsize=7, frameon=False)
    a1.set_title("on a service: rate per attempt", fontsize=10)
    a2.set_title("on the citizen", fontsize=10)
    return png(fig)


def wrongful(wr: pl.DataFrame) -> str:
    fig, ax = new(7.5, 3.4)
    g = wr.filter(pl.col("by").is_in(["all", "group"]))
    if int(g["sanctioned"].sum()) == 0:
        empty_note(ax, "nobody was sanctioned")
        return png(fig)
    who = g["who"].to_list()
    x = np.arange(len(who))
    n = g["citizens"].to_numpy().astype(float)
    per = np.where(n > 0, 100_000 / np.maximum(n, 1), 0)
    wrong = g["wrongful"].to_numpy() * per
    right = (g["sanctioned"].to_numpy() - g["wrongful"].to_numpy()) * per
    ax.bar(x, right, color="#8c8c8c", label="sanctioned, worse half of conduct, "
                                            "true evidence")
    ax.bar(x, wrong, bottom=right, color="#c44e52",
           label="wrongful: better half of conduct, or mostly benign / misattributed")
    ax.set_xticks(x, who, rotation=20, fontsize=8)
    ax.set_ylabel("sanctioned citizens per 100,000")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22),
              ncols=1)
    _style(ax)
    return png(fig)


def predictions(pe: pl.DataFrame) -> str:
    fig, (a1, a2) = new(9.5, 3.2, 2)
    g = pe.filter(pl.col("group") != "all")
    x = np.arange(g.height)
    for ax, col, title, colour in (
            (a1, "false_positive_rate", "false-positive rate: innocent citizens flagged (%)",
             PALETTE[3]),
            (a2, "precision", "precision: flagged who did fall (%)", PALETTE[0])):
        vals = g[col].fill_null(0).to_numpy() * 100
        ax.bar(x, vals, color=colour)
        for k, v in enumerate(vals):
            ax.text(k, v, f"{v:.2g}%", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, g["group"].to_list(), rotation=20, fontsize=8)
        ax.set_title(title, fontsize=10)
        _style(ax)
    return png(fig)


# ---------------------------------------------------------------- 5 intensification
def mobility(mob: pl.DataFrame, tiers: list[str]) -> str:
    horizons = sorted(set(mob["horizon"].to_list()))
    fig, axes = new(3.6 * len(horizons) + 0.8, 3.6, len(horizons))
    axes = np.atleast_1d(axes)
    k = len(tiers)
    for ax, h in zip(axes, horizons, strict=True):
        part = mob.filter(pl.col("horizon") == h)
        mat = np.full((k, k), np.nan)
        for r in part.iter_rows(named=True):
            if r["share"] is not None:
                mat[tiers.index(r["from_tier"]), tiers.index(r["to_tier"])] = r["share"]
        ax.imshow(np.nan_to_num(mat, nan=0.0), cmap="Blues", vmin=0, vmax=1)
        for i in range(k):
            for j in range(k):
                if not math.isnan(mat[i, j]) and mat[i, j] > 0:
                    ax.text(j, i, f"{mat[i, j]:.0%}" if mat[i, j] >= 0.01 else "<1%",
                            ha="center", va="center", fontsize=7,
                            color="white" if mat[i, j] > 0.6 else "black")
        ax.set_xticks(range(k), tiers, fontsize=8)
        ax.set_yticks(range(k), tiers, fontsize=8)
        ax.set_xlabel(f"tier {h} days later")
        ax.set_ylabel("tier before")
        ax.set_title(f"{h}-day mobility", fontsize=10)
    return png(fig)


def assortativity(over_time: pl.DataFrame) -> str:
    fig, ax = new(7.5, 3.0)
    ax.plot(over_time["day"], over_time["assortativity"], marker="o", color=PALETTE[4])
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlabel("day")
    ax.set_ylabel("score assortativity")
    _style(ax)
    return png(fig)


def ties(over_time: pl.DataFrame) -> str:
    fig, ax = new(7.5, 3.0)
    ax.plot(over_time["day"], over_time["dropped_total"], label="ties dropped",
            color=PALETTE[3])
    ax.plot(over_time["day"], over_time["formed_total"], label="ties formed",
            color=PALETTE[2])
    ax.set_xlabel("day")
    ax.set_ylabel("ties, running total")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


def chilling(ch: pl.DataFrame) -> str:
    fig, ax = new(7.5, 0.35 * max(ch.height, 4) + 1.2)
    y = np.arange(ch.height)[::-1]
    chilled = ch["chilled"].fill_null(0).to_numpy()
    lawful = ch["lawful_chilled"].fill_null(0).to_numpy()
    ax.barh(y, chilled, color="#bbbbbb", label="acts not done")
    ax.barh(y, lawful, color=PALETTE[1], label="of which broke no law")
    ax.set_yticks(y, [f"{b}{' (lawful)' if lw else ''}" for b, lw in
                      zip(ch["behaviour"], ch["lawful"], strict=True)])
    ax.set_xlabel(f"acts chilled over the run ({ch['source'][0]})")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


def income_by_tier(ib: pl.DataFrame) -> str:
    fig, ax = new(7.5, 3.2)
    df = ib.filter(pl.col("citizens") > 0)
    x = np.arange(df.height)
    ax.bar(x - 0.2, df["income_start"], 0.4, label="at the start", color="#bbbbbb")
    ax.bar(x + 0.2, df["income_end"], 0.4, label="at the end", color=PALETTE[0])
    ax.set_xticks(x, [f"{t}\n(n={n:,})" for t, n in
                      zip(df["tier"], df["citizens"], strict=True)], fontsize=8)
    ax.set_ylabel("mean income index")
    ax.set_xlabel("final tier")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


# ---------------------------------------------------------------- 6 authority
def score_vs_conduct(citizens: pl.DataFrame, seed: int = 0) -> str:
    fig, ax = new(7.5, 3.8)
    n = citizens.height
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=min(n, 4000), replace=False) if n > 4000 else np.arange(n)
    conduct = citizens["conduct"].to_numpy()[idx]
    score = citizens["score"].to_numpy()[idx]
    ax.scatter(conduct, score + rng.uniform(-1.5, 1.5, len(idx)), s=4, alpha=0.35,
               color=PALETTE[0], label="citizens (sample, jittered)")
    allc, alls = citizens["conduct"].to_numpy(), citizens["score"].to_numpy()
    edges = np.quantile(allc, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(edges, allc, side="right") - 1, 0, 9)
    means = [alls[which == i].mean() if (which == i).any() else np.nan for i in range(10)]
    mids = [(edges[i] + edges[i + 1]) / 2 for i in range(10)]
    ax.plot(mids, means, color=PALETTE[3], marker="o", label="mean score by conduct decile")
    ax.set_xlabel("hidden true conduct (1 = never breaks a rule; the system never sees it)")
    ax.set_ylabel("final score")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


def authority(gated: pl.DataFrame | None, knowledge: pl.DataFrame) -> str:
    fig, (a1, a2) = new(9.5, 3.4, 2)
    if gated is not None and gated.height:
        g = gated.filter(pl.col("group") == "all").row(0, named=True)
        vals = [(g["gated_share"] or 0) * 100, (g["changed_share"] or 0) * 100]
        a1.bar(["consulted\nthe score", "outcome changed\nby the score"], vals,
               color=[PALETTE[4], PALETTE[3]])
        for i, v in enumerate(vals):
            a1.text(i, v, f"{v:.1f}%", ha="center", va="bottom", fontsize=8)
        a1.set_ylim(0, 105)
        a1.set_ylabel("% of life decisions")
    else:
        empty_note(a1, "no services in this scenario")
    a1.set_title("how much the score decides", fontsize=10)
    _style(a1)
    k = knowledge.filter(pl.col("by").is_in(["all", "group"]))
    x = np.arange(k.height)
    a2.bar(x, k["auc"].fill_null(0.5), color=PALETTE[0])
    a2.axhline(0.5, color="black", ls="--", lw=0.8)
    a2.set_ylim(0, 1)
    a2.set_xticks(x, k["who"].to_list(), rotation=20, fontsize=8)
    a2.set_ylabel("ROC AUC (0.5 = coin toss)")
    a2.set_title("how much the score knows about true conduct", fontsize=10)
    _style(a2)
    return png(fig)


# ---------------------------------------------------------------- disparate impact
def impact_ratios(di: pl.DataFrame, by: str = "group") -> str:
    part = di.filter((pl.col("by") == by) & pl.col("impact_ratio").is_not_null())
    order = (part.group_by("rate").agg(low=pl.col("impact_ratio").min(),
                                       adverse=pl.col("adverse").first())
             .sort(["low", "rate"], descending=[True, False]))
    fig, ax = new(7.5, 0.3 * max(order.height, 4) + 1.4)
    if order.height == 0:
        empty_note(ax)
        return png(fig)
    ypos = {r: i for i, r in enumerate(order["rate"])}
    whos = sorted(set(part["who"].to_list()))
    for k, who in enumerate(whos):
        w = part.filter(pl.col("who") == who)
        ax.scatter(w["impact_ratio"], [ypos[r] + (k - (len(whos) - 1) / 2) * 0.08
                                       for r in w["rate"]],
                   s=22, color=PALETTE[k % len(PALETTE)], label=who, zorder=3)
    fl = part.filter(pl.col("flagged"))
    ax.scatter(fl["impact_ratio"], [ypos[r] for r in fl["rate"]], s=110, facecolors="none",
               edgecolors="#b00020", lw=1.4, zorder=4, label="flagged")
    ax.set_yticks(range(order.height), [r + ("" if a else " (reward)") for r, a in
                                        zip(order["rate"], order["adverse"], strict=True)],
                  fontsize=8)
    ax.axvline(0.8, color="black", ls="--", lw=0.8)
    ax.set_xlim(-0.03, 1.05)
    ax.set_xlabel(f"impact ratio by {by} (1 = parity)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig)


# ---------------------------------------------------------------- comparison
def compare_bars(labels: list[str], a: list[float], b: list[float], name_a: str,
                 name_b: str, ylabel: str) -> str:
    fig, ax = new(8, 3.6)
    x = np.arange(len(labels))
    ax.bar(x - 0.2, a, 0.4, label=name_a, color=PALETTE[3])
    ax.bar(x + 0.2, b, 0.4, label=name_b, color="#8c8c8c")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)


def compare_tiers(a: pl.DataFrame, b: pl.DataFrame, tiers: list[str], name_a: str,
                  name_b: str) -> str:
    fig, axes = new(10, 3.4, 2)
    for ax, df, name in ((axes[0], a, name_a), (axes[1], b, name_b)):
        days = sorted(set(df["day"].to_list()))
        ys = [df.filter(pl.col("tier") == t).sort("day")["share"].fill_null(0).to_numpy()
              * 100 for t in tiers]
        ax.stackplot(days, ys, labels=tiers, colors=tier_colours(len(tiers)))
        ax.set_ylim(0, 100)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("day")
    axes[0].set_ylabel("% of citizens")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    return png(fig)


def compare_scores(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> str:
    fig, ax = new()
    lo = float(min(a.min(), b.min()))
    hi = float(max(a.max(), b.max()))
    if lo == hi:
        lo, hi = lo - 10, hi + 10
    bins = np.linspace(lo, hi + 1, 60)
    ax.hist(b, bins=bins, color="#bbbbbb", label=name_b)
    ax.hist(a, bins=bins, histtype="step", lw=1.5, color=PALETTE[3], label=name_a)
    ax.set_yscale("log")
    ax.set_xlabel("final score")
    ax.set_ylabel("citizens (log scale)")
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return png(fig)
