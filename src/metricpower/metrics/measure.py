"""Every metric of a run as tables (`measure`), and the JSON summary (`summary`)."""

from __future__ import annotations

import polars as pl

from metricpower.ledger.schema import CITIZENS, DAILY
from metricpower.metrics import (
    authority,
    categorisation,
    disparate,
    intensification,
    judgements,
    limits,
    visibility,
)
from metricpower.metrics.common import citizen_evidence, clean, daily_total, frame

#: The essay's six processes (plus disparate impact, which audits them all) and the tables
#: that measure each, in report order.
PROCESSES = {
    "limits": ("Creation of limits", [
        "policy", "behaviours_regulated", "occurrences_by_behaviour",
        "acts_scored", "lawful_penalised_share"]),
    "visibility": ("Visible / invisible", [
        "detection_rate", "benign_penalty_share", "misattributed_per_100k",
        "penalties_over_time"]),
    "categorisation": ("Categorisation", [
        "tier_shares_over_time", "tier_shares", "score_gini", "list_sizes_over_time",
        "list_shares"]),
    "judgements": ("Judgements and predictions", [
        "consequence_rates", "service_decisions", "sanctioned_citizens", "wrongful_sanctions",
        "prediction_errors"]),
    "intensification": ("Intensification", [
        "mobility", "persistence", "persistence_after_entry", "assortativity_over_time",
        "ties_over_time", "tie_changes", "chilling", "income_by_tier", "income_over_time"]),
    "authority": ("Taking authority", ["decisions_gated", "score_knowledge"]),
    "disparate_impact": ("Disparate impact", ["group_rates", "disparate_impact"]),
}


def bottom_tiers(scenario) -> list[str]:
    """The tiers that count as "the bottom": the scenario's `bottom_tier` and worse, or
    the worst tier."""
    names = [t.name for t in scenario.tiers]
    start = getattr(scenario, "bottom", len(names) - 1)
    return names[start:] if isinstance(start, int) else names[-1:]


def _tables(run) -> dict[str, pl.DataFrame | None]:
    return {name: frame(t) for name, t in run.tables.items()}


def measure(run, baseline=None) -> dict[str, pl.DataFrame]:
    """Every metric of `run` as a Polars table, keyed by metric name (see PROCESSES for
    which process each belongs to). Metrics whose inputs the run did not record (tier
    snapshots, assortativity, predictions, …) are left out. With `baseline` (a run of the
    same population and seed), chilling is measured against it. The tables are computed
    once per run object and kept on it (runs are not modified after they finish)."""
    cache = getattr(run, "__dict__", None)
    if baseline is None and cache is not None and "_metric_tables" in cache:
        return dict(cache["_metric_tables"])
    out = _measure(run, baseline)
    if baseline is None and cache is not None:
        cache["_metric_tables"] = out
    return dict(out)


def _measure(run, baseline) -> dict[str, pl.DataFrame]:
    sc = run.scenario
    t = _tables(run)
    daily, citizens, ledger = t["daily"], t["citizens"], t.get("ledger")
    cons, svc = t.get("consequences"), t.get("services")
    tiers = [x.name for x in sc.tiers]
    bottom = bottom_tiers(sc)
    lists = [x.name for x in sc.lists]
    policy = limits.policy_table(sc)
    lawful = {b.name for b in sc.behaviours if b.lawful}
    evidence = citizen_evidence(citizens, ledger, lawful)
    median = float(citizens[CITIZENS["conduct"]].median())
    out: dict[str, pl.DataFrame | None] = {}

    # 1 creation of limits
    out["policy"] = policy
    out["behaviours_regulated"] = limits.behaviours_regulated(policy)
    occ = limits.occurrences_by_behaviour(daily, policy, citizens, sc.run.days)
    out["occurrences_by_behaviour"] = occ
    out["acts_scored"] = limits.acts_scored(occ, ledger, citizens)
    out["lawful_penalised_share"] = limits.lawful_penalised_share(evidence)
    # 2 visible / invisible
    out["detection_rate"] = visibility.detection_rate(daily, citizens)
    out["benign_penalty_share"] = visibility.benign_penalty_share(evidence)
    out["misattributed_per_100k"] = visibility.misattributed_per_100k(evidence)
    out["penalties_over_time"] = visibility.penalties_over_time(ledger)
    # 3 categorisation
    out["tier_shares_over_time"] = categorisation.tier_shares_over_time(daily, tiers)
    out["tier_shares"] = categorisation.tier_shares(citizens, tiers)
    out["score_gini"] = categorisation.score_gini(citizens)
    out["list_sizes_over_time"] = categorisation.list_sizes_over_time(daily, lists)
    out["list_shares"] = categorisation.list_shares(citizens, lists)
    # 4 judgements and predictions
    if cons is not None and svc is not None:
        out["consequence_rates"] = judgements.consequence_rates(cons, svc, citizens)
        out["service_decisions"] = judgements.service_decisions(cons, svc)
    out["sanctioned_citizens"] = judgements.sanctioned_citizens(citizens)
    out["wrongful_sanctions"] = judgements.wrongful_sanctions(evidence, median)
    out["prediction_errors"] = judgements.prediction_errors(t.get("predictions"))
    # 5 intensification
    snapshots = t.get("tiers")
    out["mobility"] = intensification.mobility(snapshots, tiers)
    out["persistence"] = intensification.persistence(snapshots, tiers, citizens, bottom)
    out["persistence_after_entry"] = intensification.persistence_after_entry(
        t.get("bottom"), sc.run.days)
    out["assortativity_over_time"] = intensification.assortativity_over_time(daily)
    out["ties_over_time"] = intensification.ties_over_time(daily)
    out["tie_changes"] = intensification.tie_changes(t.get("ties"))
    base_daily = frame(baseline.tables["daily"]) if baseline is not None else None
    out["chilling"] = intensification.chilling(daily, policy, base_daily)
    out["income_by_tier"] = intensification.income_by_tier(citizens, tiers)
    out["income_over_time"] = intensification.income_over_time(daily)
    # 6 taking authority
    if cons is not None and svc is not None:
        out["decisions_gated"] = authority.decisions_gated(cons, svc)
    out["score_knowledge"] = authority.score_knowledge(citizens, median)
    # disparate impact, by group and by region
    direction = disparate.list_direction(lists, sc.consequences)
    rates = pl.concat([
        disparate.group_rates(citizens, evidence, cons, svc, by=by, bottom=bottom,
                              lists=direction)
        for by in ("group", "region") if CITIZENS.has(citizens, by)])
    out["group_rates"] = rates
    out["disparate_impact"] = disparate.disparate_impact(rates)
    return {k: v for k, v in out.items() if v is not None}


# The tables read here have a few rows: reading them beats a query per lookup.
def _by(df: pl.DataFrame, value: str, level: str = "group") -> dict:
    return {r["who"]: r[value] for r in df.iter_rows(named=True) if r["by"] == level}


def _all(df: pl.DataFrame, value: str):
    return next((r[value] for r in df.iter_rows(named=True) if r["by"] == "all"), None)


def summary(run, tables: dict[str, pl.DataFrame] | None = None) -> dict:
    """The key numbers of each process as a JSON-able dict (NaN as null), for metrics.json
    under "processes". `tables` are `measure(run)` if already computed."""
    m = tables if tables is not None else measure(run)
    sc = run.scenario
    daily = frame(run.tables["daily"])
    s: dict[str, dict] = {}

    reg = m["behaviours_regulated"].row(0, named=True)
    reached = m["acts_scored"].row(0, named=True)
    s["limits"] = {
        "behaviours": reg["behaviours"], "regulated": reg["regulated"],
        "penalised": reg["penalised"], "rewarded": reg["rewarded"],
        "lawful_penalised": reg["lawful_penalised"],
        "acts_scored_share": reached["share"],
        "lawful_acts_penalised_share": reached["lawful_penalised_share"],
        "occurrences_source": reached["source"],
        "lawful_share_of_penalised_events": _all(m["lawful_penalised_share"], "share"),
    }

    det = m["detection_rate"]
    s["visibility"] = {
        "detection_rate": _all(det, "rate"),
        "detection_rate_by_group": _by(det, "rate"),
        "detection_rate_by_region": _by(det, "rate", "region"),
        "penalties": _all(m["benign_penalty_share"], "penalties"),
        "benign_penalty_share": _all(m["benign_penalty_share"], "share"),
        "benign_penalty_share_by_group": _by(m["benign_penalty_share"], "share"),
        "misattributed_penalties": _all(m["misattributed_per_100k"], "misattributed"),
        "misattributed_per_100k": _all(m["misattributed_per_100k"], "per_100k"),
        "misattributed_per_100k_by_group": _by(m["misattributed_per_100k"], "per_100k"),
        "misattributed_per_100k_by_region": _by(m["misattributed_per_100k"], "per_100k",
                                                "region"),
    }

    ts = m["tier_shares"].filter(pl.col("by") == "all")
    lsz = m["list_sizes_over_time"]
    # groups in the order they come (the scenario's), so metrics.json is the same each run
    by_list = [(name, g) for (name,), g in lsz.group_by("list", maintain_order=True)]
    s["categorisation"] = {
        "tier_shares": dict(zip(ts["tier"], ts["share"], strict=True)),
        "score_gini": _all(m["score_gini"], "gini"),
        "score_gini_by_group": _by(m["score_gini"], "gini"),
        "mean_score_by_group": _by(m["score_gini"], "mean_score"),
        "list_sizes_final": {name: int(g.sort("day")["size"][-1]) for name, g in by_list},
        "list_sizes_peak": {name: int(g["size"].max()) for name, g in by_list},
        "ever_listed_share": {r["list"]: r["ever_share"] for r in m["list_shares"].filter(
            pl.col("by") == "all").iter_rows(named=True)},
        "list_entries": {name: daily_total(daily, f"entered_{name}") for name in
                         (x.name for x in sc.lists)},
        "list_exits": {name: daily_total(daily, f"left_{name}") for name in
                       (x.name for x in sc.lists)},
    }

    j: dict = {}
    if "service_decisions" in m:
        sd = m["service_decisions"].filter(pl.col("group") == "all")
        j.update(denials=int(sd["denied"].sum()), throttles=int(sd["throttled"].sum()),
                 grants=int(sd["granted"].sum()),
                 denial_rate_by_service={r["service"]: r["denial_rate"]
                                         for r in sd.iter_rows(named=True) if r["denied"]})
    if "consequence_rates" in m:
        cr = m["consequence_rates"].filter(pl.col("group") == "all")
        j["applied"] = {r["consequence"]: r["applied"] for r in cr.iter_rows(named=True)}
        j["sanctions_total"] = int(cr.filter(pl.col("sanction"))["applied"].sum())
    sc_all = m["sanctioned_citizens"]
    wr = m["wrongful_sanctions"]
    j.update(
        citizens_sanctioned=_all(sc_all, "sanctioned"),
        sanctioned_share=_all(sc_all, "sanctioned_share"),
        sanctioned_share_by_group=_by(sc_all, "sanctioned_share"),
        wrongful_sanctions=_all(wr, "wrongful"),
        wrongful_share=_all(wr, "share"),
        wrongful_better_half=_all(wr, "better_half"),
        wrongful_mostly_tainted=_all(wr, "mostly_tainted"),
        wrongful_by_group=_by(wr, "wrongful"),
    )
    if "prediction_errors" in m:
        pe = m["prediction_errors"]
        j["predictions"] = {r["group"]: {k: r[k] for k in (
            "tp", "fp", "fn", "tn", "precision", "base_rate", "false_positive_rate")}
            for r in pe.iter_rows(named=True)}
    s["judgements"] = j

    i: dict = {}
    if "mobility" in m:
        mob = m["mobility"]
        i["mobility_horizons"] = sorted(set(mob["horizon"].to_list()))
        stay = mob.filter(pl.col("from_tier") == pl.col("to_tier"))
        i["tier_persistence"] = {str(h): {r["from_tier"]: r["share"] for r in
                                          g.iter_rows(named=True)}
                                 for (h,), g in stay.group_by("horizon", maintain_order=True)}
    i["bottom_tiers"] = bottom_tiers(sc)
    if "persistence" in m:
        per = m["persistence"].filter(pl.col("by") == "all")
        i["persistence_at_bottom"] = {str(r["horizon"]): r["share"]
                                      for r in per.iter_rows(named=True)}
    if "persistence_after_entry" in m:
        pe = m["persistence_after_entry"].row(0, named=True)
        i["still_at_bottom_after_entry"] = {"checked": pe["checked"], "stayed": pe["stayed"],
                                            "share": pe["share"]}
    if "assortativity_over_time" in m and m["assortativity_over_time"].height:
        a = m["assortativity_over_time"]["assortativity"]
        i["assortativity"] = {"first": a[0], "last": a[-1], "change": a[-1] - a[0]}
    if "ties_over_time" in m:
        ties = m["ties_over_time"]
        i["ties_dropped"] = int(ties["ties_dropped"].sum())
        i["ties_formed"] = int(ties["ties_formed"].sum())
    if "tie_changes" in m:
        i["tie_changes"] = {f"{r['change']}:{r['reason']}": r["ties"]
                            for r in m["tie_changes"].iter_rows(named=True)}
    if "chilling" in m:
        ch = m["chilling"]
        i["chilled"] = {r["behaviour"]: r["chilled"] for r in ch.iter_rows(named=True)}
        i["lawful_chilled"] = int(ch["lawful_chilled"].sum())
    ib = m["income_by_tier"]
    i["income_by_tier"] = {r["tier"]: r["income_end"] for r in ib.iter_rows(named=True)
                           if r["citizens"]}
    i["income_gap"] = intensification.income_gap(ib)
    if DAILY.has(daily, "mean_income"):
        income = daily[DAILY["mean_income"]]
        i["mean_income"] = {"first": income[0], "last": income[-1]}
    s["intensification"] = i

    auth: dict = {}
    if "decisions_gated" in m:
        dg = m["decisions_gated"].filter(pl.col("group") == "all").row(0, named=True)
        auth.update(decisions=dg["decisions"], changed=dg["changed"],
                    changed_share=dg["changed_share"])
    sk = m["score_knowledge"]
    auth.update(spearman=_all(sk, "spearman"), auc=_all(sk, "auc"),
                auc_by_group=_by(sk, "auc"), spearman_by_group=_by(sk, "spearman"))
    s["authority"] = auth

    di = m["disparate_impact"]
    worst = di.filter(pl.col("impact_ratio").is_not_null()).sort("impact_ratio")

    def finding(r: dict) -> dict:
        return {k: r[k] for k in ("rate", "by", "who", "value", "reference", "impact_ratio",
                                  "ci_low", "ci_high", "p_value", "p_adjusted",
                                  "below_four_fifths")}

    s["disparate_impact"] = {
        "rule": (f"flagged when significant at {disparate.ALPHA:g} (family-wise): "
                 "chi-squared test of the group against the reference group (Fisher's exact "
                 "below 5 expected), Holm-adjusted over every pair of groups of every rate; "
                 f"{1 - disparate.ALPHA:.0%} Katz log intervals; the four-fifths rule "
                 "(ratio below 0.8) is descriptive"),
        "level": disparate.ALPHA,
        "rates_checked": di.select("rate", "by").unique().height,
        "flagged": [finding(r) for r in di.filter(pl.col("flagged")).sort("impact_ratio")
                    .iter_rows(named=True)],
        "below_four_fifths_not_significant": [
            finding(r) for r in di.filter(pl.col("below_four_fifths") & ~pl.col("flagged"))
            .sort("impact_ratio").iter_rows(named=True)],
        "worst": (None if worst.height == 0 else
                  {k: worst.row(0, named=True)[k] for k in ("rate", "by", "who",
                                                            "impact_ratio", "flagged")}),
    }
    # Every daily count the run recorded, over the whole run, as the schema declares them.
    s["totals"] = {c.name: daily_total(daily, DAILY[c.name]) for c in DAILY.fixed()
                   if c.flow and DAILY.has(daily, c.name)}
    s["totals"].update(days=sc.run.days, citizens=sc.run.citizens)
    return clean(s)
