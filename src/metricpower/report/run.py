"""The run report: one self-contained HTML file per run, a section per process of metric
power, each with plots and a plain-language summary written from the numbers."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from metricpower.ledger.schema import DAILY
from metricpower.metrics import PERSISTENCE_DAYS, measure, summary
from metricpower.metrics.common import frame
from metricpower.report import figures as F
from metricpower.report.html import esc, figure, kpis, num, page, pct, section, table
from metricpower.report.labels import rate_label

#: Section ids in report order (the processes, then disparate impact).
SECTIONS = ("overview", "limits", "visibility", "categorisation", "judgements",
            "intensification", "authority", "disparate_impact")

GLOSS = {
    "limits": "The policy defines the ideal citizen: which behaviours count, and for how "
              "many points. Much of what it regulates is lawful.",
    "visibility": "Sensors see counts, not reasons: a benign act looks like an offence, and "
                  "a camera's false match charges someone who did nothing.",
    "categorisation": "Scores sort people into tiers and lists, and the categories become "
                      "who they are to the state.",
    "judgements": "Consequences follow the category: services are denied or granted, and a "
                  "risk model can act before the fact.",
    "intensification": "People respond — they stop doing lawful things, drop low-scored "
                       "friends, lose income under sanctions — and the system feeds on it.",
    "authority": "Every decision that consults the score hands it authority; how much does "
                 "the score actually know?",
    "disparate_impact": "Every sanction and reward rate compared across groups and regions; "
                        "a ratio below four fifths (0.8) is the classic test of adverse "
                        "impact.",
}

#: Every figure the report can show, by section. A figure with nothing to show (the
#: `null` policy charges nobody) is replaced by a sentence saying why.
FIGURES = {
    "limits": ["fig-policy", "fig-occurrences"],
    "visibility": ["fig-penalty-evidence", "fig-misattribution"],
    "categorisation": ["fig-tier-shares", "fig-score-distribution", "fig-list-sizes"],
    "judgements": ["fig-sanctions", "fig-wrongful", "fig-predictions"],
    "intensification": ["fig-mobility", "fig-assortativity", "fig-ties", "fig-chilling",
                        "fig-income-tier"],
    "authority": ["fig-score-conduct", "fig-authority"],
    "disparate_impact": ["fig-impact-group", "fig-impact-region"],
}


def _figure_makers(run, m: dict) -> dict:
    """Each figure id and how to draw it from the run and its measures."""
    sc = run.scenario
    tiers = [t.name for t in sc.tiers]
    groups = [g.name for g in sc.population.groups]

    def citizens():
        return frame(run.tables["citizens"])

    def opt(key, fn):
        v = m.get(key)
        return fn(v) if v is not None and v.height else None

    return {
        "fig-policy": lambda: F.policy_points(m["policy"]),
        "fig-occurrences": lambda: F.occurrences(m["occurrences_by_behaviour"]),
        "fig-penalty-evidence": lambda: F.penalty_evidence(m["penalties_over_time"],
                                                           sc.run.days),
        "fig-misattribution": lambda: F.misattribution_by_group(m["misattributed_per_100k"],
                                                                m["benign_penalty_share"]),
        "fig-tier-shares": lambda: F.tier_shares(m["tier_shares_over_time"], tiers),
        "fig-score-distribution": lambda: F.score_distribution(
            citizens(), sc.tier_floors, sc.population.initial_score),
        "fig-list-sizes": lambda: F.list_sizes(m["list_sizes_over_time"]),
        "fig-sanctions": lambda: opt("consequence_rates",
                                     lambda v: F.sanctions_by_group(v, groups)),
        "fig-wrongful": lambda: F.wrongful(m["wrongful_sanctions"]),
        "fig-predictions": lambda: opt("prediction_errors", F.predictions),
        "fig-mobility": lambda: opt("mobility", lambda v: F.mobility(v, tiers)),
        "fig-assortativity": lambda: opt("assortativity_over_time", F.assortativity),
        "fig-ties": lambda: opt("ties_over_time", F.ties),
        "fig-chilling": lambda: opt("chilling", F.chilling),
        "fig-income-tier": lambda: F.income_by_tier(m["income_by_tier"]),
        "fig-score-conduct": lambda: F.score_vs_conduct(citizens(), sc.run.seed),
        "fig-authority": lambda: F.authority(m.get("decisions_gated"), m["score_knowledge"]),
        "fig-impact-group": lambda: F.impact_ratios(m["disparate_impact"], "group"),
        "fig-impact-region": lambda: F.impact_ratios(m["disparate_impact"], "region"),
    }


def plot(run, name: str, tables: dict[str, pl.DataFrame] | None = None):
    """One of the report's figures (an SVG, shown as it is in a notebook), by its id with
    or without the ``fig-`` prefix; None when the run has nothing to draw in it. Pass
    `tables` (from `measure(run)`) to draw several without measuring again."""
    fid = name if name.startswith("fig-") else f"fig-{name}"
    known = [f for figs in FIGURES.values() for f in figs]
    if fid not in known:
        raise KeyError(f"no figure {name!r}; the report's figures: {', '.join(known)}")
    m = tables if tables is not None else measure(run)
    return _figure_makers(run, m)[fid]()


def write_report(run, path, tables: dict[str, pl.DataFrame] | None = None) -> Path:
    """Write `run`'s report as one self-contained HTML file at `path`."""
    path = Path(path)
    path.write_text(render_report(run, tables), encoding="utf-8")
    return path


def _worst(d: dict) -> tuple[str, float] | None:
    items = [(k, v) for k, v in d.items() if v is not None]
    return max(items, key=lambda kv: kv[1]) if items else None


def _best(d: dict) -> tuple[str, float] | None:
    items = [(k, v) for k, v in d.items() if v is not None]
    return min(items, key=lambda kv: kv[1]) if items else None


def render_report(run, tables: dict[str, pl.DataFrame] | None = None) -> str:
    """The report of `run` as an HTML string."""
    sc = run.scenario
    m = tables if tables is not None else measure(run)
    s = summary(run, m)
    n, days = run.tables["citizens"].num_rows, sc.run.days
    draw = _figure_makers(run, m)
    parts = [_overview(run, s), _limits(m, s, draw), _visibility(m, s, draw),
             _categorisation(m, s, [t.name for t in sc.tiers], draw), _judgements(m, s, draw),
             _intensification(m, s, draw), _authority(m, s, draw), _disparate(m, s, draw)]
    if "scaled" in run.metrics:
        parts.append(_scaled(run.metrics["scaled"]))
    nav = contents(parts[1:])
    header = (f"<h1>metricpower report: {esc(sc.name)}</h1>"
              f"<p class=\"meta\">{n:,} citizens · {days:,} days · seed {sc.run.seed}</p>"
              f"<p>{esc(sc.description.strip().splitlines()[0] if sc.description else '')}"
              f"</p>{nav}")
    footer = ("Generated by metricpower. Every number is computed from this run's tables; "
              "definitions of each metric are in docs/metrics.md. Hidden truth (conduct, "
              "benign context, misattribution) is known to the simulation, never to the "
              "system it simulates.")
    return page(f"metricpower — {sc.name}", header, "\n".join(parts), footer)


def contents(sections: list[str]) -> str:
    """The table of contents, read from the sections' own ids and headings (so it says
    exactly what they say, numbers included)."""
    import re

    found = [re.search(r'<section id="([^"]+)"[^>]*>\s*<h2>(.*?)</h2>', s) for s in sections]
    return "<nav><ul class=\"toc\">" + "".join(
        f"<li><a href=\"#{m.group(1)}\">{m.group(2)}</a></li>" for m in found if m) + \
        "</ul></nav>"


# ---------------------------------------------------------------- sections
def _scaled(sc: dict) -> str:
    """Counts scaled to the population the run stands for, each with its sampling error."""
    rows = []
    for part, label in (("list_sizes", "on list at the end"), ("tier_counts", "in tier at the end"),
                        ("consequences_applied", "consequence applied"),
                        ("service_attempts", "service attempts")):
        for name, v in sc[part].items():
            rows.append({"count": f"{label}: {name}", "in the run": v["count"],
                         "scaled": round(v["scaled"]), "± se": round(v["se"]),
                         "sampling error": v["error"]})
    text = [f"This run of {num(sc['citizens'])} citizens stands for a population of "
            f"{num(sc['represents'])}: every number in this section is <b>scaled</b> "
            f"(× {num(sc['factor'])}); no other number in this report is. The error is one "
            "standard error of sampling: binomial for citizens in a state, Poisson for "
            "events. It leaves out every error of the model itself."]
    return section("scaled", "Scaled to the population",
                   "The run's counts as national figures, with their sampling error.",
                   text, [table(pl.DataFrame(rows), "scaled counts", open_=True)])


def _times(f: dict) -> str:
    v, r = f.get("value"), f.get("reference")
    if v is None or r is None:
        return ""
    if r == 0:
        return "the least-affected group had none"
    return f"{v / r:.1f}× the least-affected group's rate"


def _label(total: str) -> str:
    """The label of a run total: the meaning its daily column is declared with."""
    return DAILY.column(total).meaning


def _overview(run, s: dict) -> str:
    t = s["totals"]
    v, j, a = s["visibility"], s["judgements"], s["authority"]
    items = [
        (_label("occurrences"), num(t["occurrences"])),
        (_label("penalties"), num(t["penalties"])),
        ("penalties with a benign hidden context", pct(v["benign_penalty_share"])),
        ("misattributed penalties per 100,000", num(v["misattributed_per_100k"], 1)),
        ("sanctions applied", num(j.get("sanctions_total", 0))),
        ("citizens sanctioned at least once", num(j["citizens_sanctioned"])),
        ("of them wrongfully", pct(j["wrongful_share"])),
        ("life decisions whose outcome the score changed", pct(a.get("changed_share"), 2)),
        ("score vs true conduct: ROC AUC", num(a["auc"], 3)),
    ]
    text = [_headline_sentence(s)]
    return section("overview", "At a glance", "What this run's system did, in numbers.",
                   text, [kpis(items)])


def _headline_sentence(s: dict) -> str:
    j, a, lim = s["judgements"], s["authority"], s["limits"]
    parts = [f"The policy regulates {lim['regulated']} of {lim['behaviours']} behaviours."]
    if j.get("sanctions_total"):
        parts.append(f"It applied {num(j['sanctions_total'])} sanctions to "
                     f"{num(j['citizens_sanctioned'])} citizens, "
                     f"{pct(j['wrongful_share'])} of whom were sanctioned wrongfully.")
    else:
        parts.append("It applied no sanctions.")
    if a.get("auc") is not None:
        parts.append(f"Picking one better-behaved and one worse-behaved citizen at random, "
                     f"the score ranks them correctly {pct(a['auc'], 0)} of the time "
                     "(50% would be a coin toss).")
    return " ".join(parts)


def _limits(m, s, draw) -> str:
    lim = s["limits"]
    acts = ("of the acts citizens are expected to have done"
            if lim["occurrences_source"] == "expected" else "of everything citizens did")
    text = [
        f"The policy scores {lim['regulated']} of the {lim['behaviours']} behaviours in the "
        f"catalogue: it penalises {lim['penalised']} and rewards {lim['rewarded']}. "
        f"{lim['lawful_penalised']} of the penalised behaviours break no law — only this "
        "policy makes them offences.",
        f"The rules scored {pct(lim['acts_scored_share'], 2)} {acts} "
        f"(seen or not), and penalised {pct(lim['lawful_acts_penalised_share'], 2)} of "
        "their lawful acts.",
    ]
    if lim.get("lawful_share_of_penalised_events") is not None:
        text.append(f"Of the acts actually penalised, "
                    f"{pct(lim['lawful_share_of_penalised_events'])} were lawful.")
    parts = [
        figure("fig-policy", draw["fig-policy"](),
               "Points each behaviour earns per observed act (red: penalty, green: reward).",
               "This policy scores no behaviour: there is nothing to draw."),
        figure("fig-occurrences", draw["fig-occurrences"](),
               "How often each behaviour happened (hatched: with a benign reason no sensor "
               "can see). Red: lawful and penalised; orange: unlawful and penalised; green: "
               "rewarded; grey: not regulated.", "Citizens did nothing in this run."),
        table(m["policy"].select("behaviour", "lawful", "public", "rules", "points",
                                 "benign_share"), "Table: the policy, behaviour by behaviour"),
        table(m["lawful_penalised_share"], "Table: lawful share of penalised acts, by group "
                                           "and region"),
    ]
    return section("limits", "1. Creation of limits", GLOSS["limits"], text, parts)


def _visibility(m, s, draw) -> str:
    v = s["visibility"]
    text = [f"Sensors saw {pct(v['detection_rate'])} of all acts. Of "
            f"{num(v['penalties'])} penalties, {pct(v['benign_penalty_share'])} fell on acts "
            "with a benign reason the sensor could not see, and "
            f"{num(v['misattributed_penalties'])} were charged to someone for another "
            f"person's act — {num(v['misattributed_per_100k'], 1)} per 100,000 citizens."]
    worst = _worst(v["misattributed_per_100k_by_group"])
    best = _best(v["misattributed_per_100k_by_group"])
    if worst and best and worst[1] > 0:
        # Numbers only: the ratio between groups is stated once, in the disparate impact
        # section, for the share of citizens charged (not the count of charges).
        text.append(f"Misattributed penalties fall hardest on {esc(worst[0])}: "
                    f"{num(worst[1], 1)} per 100,000 citizens, against {num(best[1], 1)} "
                    f"for {esc(best[0])}.")
    parts = [
        figure("fig-penalty-evidence", draw["fig-penalty-evidence"](),
               "Penalties per day by what they rest on: a true act, an act with a benign "
               "hidden context, another person's act (false match), or the citizen's state "
               "and friends.", "No penalties in this run: the policy charged nobody."),
        figure("fig-misattribution", draw["fig-misattribution"](),
               "Misattributed penalties per 100,000 citizens and benign-context share of "
               "penalties, by group.", "No penalties in this run, so none misattributed "
                                       "and none on a benign act."),
        table(m["benign_penalty_share"], "Table: penalties by evidence, by group and region"),
        table(m["misattributed_per_100k"], "Table: misattributed penalties per 100,000"),
        table(m["detection_rate"], "Table: detection rate"),
    ]
    return section("visibility", "2. Visible / invisible", GLOSS["visibility"], text, parts)


def _categorisation(m, s, tiers, draw) -> str:
    c = s["categorisation"]
    shares = c["tier_shares"]
    top = max(shares.items(), key=lambda kv: kv[1] or 0)
    below = [t for t in tiers[tiers.index(top[0]) + 1:]] if top[0] in tiers else []
    below_share = sum(shares.get(t) or 0 for t in below)
    text = [f"At the end, {pct(top[1])} of citizens were in tier {esc(top[0])}; "
            f"{pct(below_share)} were below it. The score Gini is "
            f"{num(c['score_gini'], 4)} (0 = everyone equal)."]
    lists = c["list_sizes_final"]
    if lists:
        text.append("Lists at the end: " + "; ".join(
            f"{esc(k)} {num(v)} (peak {num(c['list_sizes_peak'][k])}, "
            f"{pct(c['ever_listed_share'].get(k), 2)} of citizens ever listed)"
            for k, v in lists.items()) + ".")
        text.append("Over the run: " + "; ".join(
            f"{num(c['list_entries'].get(k))} entered {esc(k)} and "
            f"{num(c['list_exits'].get(k))} left it" for k in lists) + ".")
    parts = [
        figure("fig-tier-shares", draw["fig-tier-shares"](),
               "Share of citizens in each tier, day by day.",
               "No tier counts were recorded in this run."),
        figure("fig-score-distribution", draw["fig-score-distribution"](),
               "Final scores, everyone and by group (log scale).",
               "Every citizen ended with the score they started with: nothing to draw."),
        figure("fig-list-sizes", draw["fig-list-sizes"](),
               "Citizens on each list, day by day.",
               "Nobody was on a list in this run (or the policy keeps none)."),
        table(m["score_gini"], "Table: score inequality by group and region"),
        table(m["tier_shares"].filter(pl.col("in_tier") > 0),
              "Table: final tier shares by group and region"),
        table(m["list_shares"], "Table: list membership by group and region"),
    ]
    return section("categorisation", "3. Categorisation", GLOSS["categorisation"], text,
                   parts)


def _judgements(m, s, draw) -> str:
    j = s["judgements"]
    text = []
    if "denials" in j:
        text.append(f"The score denied {num(j['denials'])} attempts to use a service, "
                    f"throttled {num(j['throttles'])} and granted {num(j['grants'])} rewards.")
    text.append(f"{num(j['citizens_sanctioned'])} citizens "
                f"({pct(j['sanctioned_share'], 2)}) were sanctioned at least once. "
                f"{num(j['wrongful_sanctions'])} of them ({pct(j['wrongful_share'])}) were "
                "sanctioned wrongfully: their hidden conduct was in the better half of the "
                f"population ({num(j['wrongful_better_half'])}), or at least half of their "
                f"penalty points rested on benign or misattributed evidence "
                f"({num(j['wrongful_mostly_tainted'])}).")
    if "predictions" in j and "all" in j["predictions"]:
        p = j["predictions"]["all"]
        text.append(f"The risk model's precision was {pct(p['precision'])}, against a base "
                    f"rate of {pct(p.get('base_rate'))} (what flags drawn at random would "
                    "score), and it flagged "
                    f"{pct(p['false_positive_rate'], 2)} of those who did not fall to the "
                    "bottom.")
    pe = m.get("prediction_errors")
    parts = [
        figure("fig-sanctions", draw["fig-sanctions"](),
               "Each consequence by group: on services per 1,000 attempts, on citizens per "
               "1,000 citizens.", "No consequence was applied in this run."),
        figure("fig-wrongful", draw["fig-wrongful"](),
               "Sanctioned citizens per 100,000, and how many of them wrongfully.",
               "Nobody was sanctioned in this run."),
        figure("fig-predictions", draw["fig-predictions"](),
               "Risk model errors by group, judged against hidden truth.",
               "No prediction results in this run: predictions are off, or none has been "
               "judged against the truth yet (a prediction is judged after its horizon)."),
        table(m.get("service_decisions"), "Table: decisions by service and group"),
        table(m.get("consequence_rates"), "Table: every consequence by group"),
        table(m["wrongful_sanctions"], "Table: wrongful sanctions by group and region"),
        table(pe, "Table: prediction errors by group"),
    ]
    return section("judgements", "4. Judgements and predictions", GLOSS["judgements"], text,
                   parts)


def _intensification(m, s, draw) -> str:
    i = s["intensification"]
    text = []
    if "chilled" in i:
        total = sum(v or 0 for v in i["chilled"].values())
        text.append(f"Citizens did {num(total)} fewer acts than they would have without the "
                    f"system; {num(i['lawful_chilled'])} of those broke no law — the chilling "
                    "of ordinary life.")
    if "assortativity" in i:
        a = i["assortativity"]
        text.append(f"Friends' scores grew more alike: assortativity went from "
                    f"{num(a['first'], 3)} to {num(a['last'], 3)}.")
    if "ties_dropped" in i:
        text.append(f"{num(i['ties_dropped'])} friendships were dropped and "
                    f"{num(i['ties_formed'])} formed.")
    after = i.get("still_at_bottom_after_entry")
    if after and after.get("checked"):
        bottom = ", ".join(map(esc, i["bottom_tiers"]))
        text.append(f"Of those who fell to the bottom ({bottom}), "
                    f"{pct(after['share'])} were still there {PERSISTENCE_DAYS} days later.")
    elif "persistence_at_bottom" in i:
        vals = {h: v for h, v in i["persistence_at_bottom"].items() if v is not None}
        if vals:
            text.append("Persistence at the bottom: " + ", ".join(
                f"{pct(v)} still there after {h} days" for h, v in vals.items()) + ".")
    gap = i["income_gap"]
    if gap.get("ratio_end") is not None:
        text.append(f"The best tier ({esc(gap['top'])}) earns "
                    f"{num(gap['ratio_end'], 2)}× the worst ({esc(gap['bottom'])}) on average "
                    f"at the end (it was {num(gap['ratio_start'], 2)}× at the start; tiers of "
                    "at least 10 citizens).")
    if not text:
        text.append("No responses were recorded in this run.")
    ch = m.get("chilling")
    parts = [
        figure("fig-mobility", draw["fig-mobility"](),
               "Tier mobility: where the citizens of each tier were later (row shares).",
               "No tier snapshots in this run."),
        figure("fig-assortativity", draw["fig-assortativity"](),
               "Network score assortativity over time (0: friends' scores unrelated; 1: "
               "identical).",
               "Assortativity was not recorded in this run."),
        figure("fig-ties", draw["fig-ties"](),
               "Friendships dropped and formed, running totals.",
               "No friendship was dropped or formed in this run (or tie changes were not "
               "recorded)."),
        figure("fig-chilling", draw["fig-chilling"](),
               "Acts not done because of the system, by behaviour.",
               "No act was held back because of the system in this run (chilling needs "
               "deterrence counts, or a counterfactual run: metricpower compare)."),
        figure("fig-income-tier", draw["fig-income-tier"](),
               "Mean income index by final tier, at the start and the end.",
               "No tier holds a citizen."),
        table(m.get("persistence"), "Table: persistence at the bottom"),
        table(m.get("persistence_after_entry"), "Table: still at the bottom after entering"),
        table(ch, "Table: chilling per behaviour"),
        table(m.get("tie_changes"), "Table: tie changes by reason"),
        table(m["income_by_tier"], "Table: income by tier"),
    ]
    return section("intensification", "5. Intensification", GLOSS["intensification"], text,
                   parts)


def _authority(m, s, draw) -> str:
    a = s["authority"]
    text = []
    if a.get("changed_share") is not None:
        text.append(f"Of {num(a['decisions'])} life decisions — trips, jobs, school places, "
                    f"loans, utilities — the score changed the outcome of "
                    f"{pct(a['changed_share'], 2)} ({num(a['changed'])}).")
    if a.get("auc") is not None:
        text.append(f"Yet the score knows little: its rank correlation with hidden true "
                    f"conduct is {num(a['spearman'], 3)}, and its ROC AUC for telling the "
                    f"better half from the worse half is {num(a['auc'], 3)} "
                    "(0.5 = a coin toss, 1 = perfect).")
    else:
        text.append("Every citizen has the same score, so it says nothing about their "
                    "conduct.")
    parts = [
        figure("fig-score-conduct", draw["fig-score-conduct"](),
               "Final score against hidden true conduct.",
               "Every citizen has the same score: it cannot be drawn against conduct."),
        figure("fig-authority", draw["fig-authority"](),
               "Share of decisions the score decides, against how much it knows (ROC AUC "
               "by group).", "No decision consulted the score and every score is equal: "
                             "the score decides nothing and knows nothing here."),
        table(m.get("decisions_gated"), "Table: decisions gated by the score"),
        table(m["score_knowledge"], "Table: score vs true conduct"),
    ]
    return section("authority", "6. Taking authority", GLOSS["authority"], text, parts)


def _disparate(m, s, draw) -> str:
    d = s["disparate_impact"]
    flagged, chance = d["flagged"], d["below_four_fifths_not_significant"]
    adverse = {r["rate"]: r["adverse"] for r in m["disparate_impact"].iter_rows(named=True)}

    def told(f: dict) -> str:
        return (f"{esc(rate_label(f['rate']))} for {esc(f['who'])} "
                f"(ratio {num(f['impact_ratio'], 2)}, "
                f"{1 - d['level']:.0%} interval {num(f['ci_low'], 2)}–{num(f['ci_high'], 2)}"
                f"{'; ' + _times(f) if adverse.get(f['rate'], True) and _times(f) else ''})")

    if flagged:
        bad = [f for f in flagged if adverse.get(f["rate"], True)]
        good = [f for f in flagged if not adverse.get(f["rate"], True)]
        text = [f"{len(flagged)} group or region rates differ from the reference group's "
                f"by more than chance explains (significant at {d['level']:g} after Holm's "
                f"correction over every pair of groups; {d['rates_checked']} rates checked)."]
        if bad:
            text.append("Sanctions and penalties: " + "; ".join(told(f) for f in bad[:5]) + ".")
        if good:
            text.append("Rewards: " + "; ".join(told(f) for f in good[:5]) + ".")
    else:
        text = [f"No rate differs between groups by more than chance explains "
                f"({d['rates_checked']} rates checked at {d['level']:g}, Holm-corrected)."]
    if chance:
        text.append(f"{len(chance)} more fall below four fifths but are not significant — "
                    "too few events to tell from chance: " + "; ".join(
                        told(f) for f in chance[:5]) + ".")
    di = m["disparate_impact"]
    parts = [
        figure("fig-impact-group", draw["fig-impact-group"](),
               "Impact ratio of every rate for every group (dashed: four fifths; circled: "
               "flagged — significant after Holm's correction).",
               "No rate could be compared across groups: nothing happened to anyone."),
        figure("fig-impact-region", draw["fig-impact-region"](),
               "Impact ratio of every citizen-level rate for every region.",
               "No rate could be compared across regions: nothing happened to anyone."),
        table(di.filter(pl.col("flagged")).select(
            "rate", "adverse", "by", "who", "numerator", "denominator", "value", "reference",
            "impact_ratio", "ci_low", "ci_high", "p_adjusted", "below_four_fifths"),
            "Table: significant disparities", open_=True),
        table(di.filter(pl.col("below_four_fifths") & ~pl.col("flagged")).select(
            "rate", "adverse", "by", "who", "numerator", "denominator", "value", "reference",
            "impact_ratio", "ci_low", "ci_high", "p_adjusted"),
            "Table: below four fifths, not significant"),
        # The disparity's own flag, not the citizens' column of the same name.
        table(di.rename({"flagged": "significant"}), "Table: every rate by group and region"),
    ]
    return section("disparate_impact", "Disparate impact", GLOSS["disparate_impact"], text,
                   parts)
