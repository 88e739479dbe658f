"""What readers see instead of raw keys, and numbers written for their size: one place for
the label text of the report, the comparison report, the terminal summary and the
dashboard. A column of the run's tables is named and formatted as the results schema
(`metricpower.ledger.schema`) declares it, its meaning and unit; LABELS names only the
metrics' own keys, which are not columns (or, where a metric shares a column's name,
mean something else: `mean_score` in metrics.json is the last day's).
"""

from __future__ import annotations

import math

import numpy as np

from metricpower.ledger.schema import CITIZENS, DAILY, Column

#: The tables whose fixed columns name a metric key of the same name, in this order (a
#: daily count's total first: the summary's totals are those).
COLUMN_TABLES = (DAILY, CITIZENS)


def column(key: str) -> Column | None:
    """The declaration of the fixed column named `key` (daily first, then citizens)."""
    for table in COLUMN_TABLES:
        for col in table.fixed():
            if col.name == key:
                return col
    return None


#: Human names of metric keys that are not columns (unit after a comma where there is one).
LABELS = {
    "group": "group", "who": "who", "by": "by",
    "significant": "significant after Holm's correction",
    "tier_shares": "share of citizens in tier", "list_sizes_final": "on the list at the end",
    "list_sizes_peak": "on the list at its peak", "ever_listed_share": "ever on the list",
    "auc_by_group": "score vs conduct ROC AUC", "score_gini": "score inequality (Gini)",
    "income_gini": "income inequality (Gini)", "income_gap_by_tier": "income gap, best to "
    "worst tier (×)", "wrongful_penalties":
    "penalties on benign or misattributed evidence", "sanctions_total": "sanctions applied",
    "refusals_by_others": "refusals by others of labelled citizens",
    "citizens_sanctioned": "citizens sanctioned at least once", "wrongful_sanctions":
    "citizens sanctioned wrongfully", "detection_rate": "acts seen by a sensor",
    "benign_penalty_share": "penalties with a benign hidden context", "misattributed_per_100k":
    "misattributed penalties per 100,000 citizens", "sanctioned_share":
    "citizens sanctioned at least once", "wrongful_share": "sanctioned wrongfully",
    "gated_share": "decisions that consulted the score", "changed_share":
    "decisions the score changed", "decisions": "life decisions", "spearman":
    "score vs conduct rank correlation", "auc": "score vs conduct ROC AUC",
    "acts_chilled": "acts not done because of the system", "lawful_acts_chilled":
    "lawful acts not done because of the system",
    "lawful_chilled": "lawful acts not done", "denials": "service attempts denied",
    "throttles": "service attempts throttled", "grants": "rewards granted",
    "mean_score": "mean final score", "regulated": "behaviours scored",
    "behaviours": "behaviours in the catalogue", "penalised": "behaviours penalised",
    "rewarded": "behaviours rewarded", "lawful_penalised": "lawful behaviours penalised",
    "occurrence_share_under_rule": "acts under a rule",
    "occurrence_share_lawful_penalised": "lawful acts the policy penalises",
    "lawful_share_of_penalised_events": "penalised acts that were lawful",
    "citizens_scored_differently": "citizens whose score differs",
    "mean_score_change": "mean score change", "wrongful": "citizens sanctioned wrongfully",
    "assortativity": "friends' score assortativity", "income_gap": "income gap, best to "
    "worst tier", "applied": "consequence applied", "still_at_bottom_after_entry":
    "fell to the bottom and still there 180 days later", "tie_changes": "friendship changes",
    "income_by_tier": "mean income index at the end, tier",
    "wrongful_better_half": "sanctioned wrongfully: better half of conduct",
    "wrongful_mostly_tainted": "sanctioned wrongfully: mostly benign or misattributed "
    "evidence", "rates_checked": "rates compared across groups and regions",
    # metrics.json's penalties, by the evidence they rest on
    "penalties.total": "penalties", "penalties.true": "penalties on acts as recorded",
    "penalties.benign_context": "penalties on acts with a benign hidden reason",
    "penalties.misattributed": "penalties for someone else's act (false match)",
    "penalties.benign_context_share": "penalties with a benign hidden context",
    "penalties.misattributed_per_100k": "misattributed penalties per 100,000 citizens",
    "tier_counts": "citizens in tier", "list_sizes": "citizens on the list",
    "rewards_total": "rewards given", "service_attempts": "attempts to use",
}

#: Human names of the rates compared across groups (disparate impact); consequences and
#: lists are named by `rate_label`.
RATES = {
    "sanctioned": "share sanctioned at least once",
    "rewarded": "share rewarded at least once",
    "bottom_tier": "share in a bottom tier",
    "penalised": "share penalised at least once",
    "misattributed": "share charged for someone else's act",
    "wrongly_penalised": "share penalised on benign or misattributed evidence",
}


def on_list(name: str) -> str:
    """"on the blacklist" (not "on the blacklist list"), "on the watch list"."""
    words = name.replace("_", " ")
    return f"on the {words}" if words.endswith("list") else f"on the {words} list"


def rate_label(rate: str) -> str:
    if rate in RATES:
        return RATES[rate]
    if rate.startswith("on_"):
        return f"share {on_list(rate[3:])}"
    return f"{rate.replace('_', ' ')} rate"


#: Keys whose values are shares (0–1): written as percentages.
SHARES = ("share", "rate", "tier_shares", "ever_listed", "detection")
#: Keys whose values are inequality or agreement indices: written with 3 decimals.
INDICES = ("gini", "auc", "spearman", "assortativity", "ratio", "gap", "precision")

EVIDENCE = {"true": "true act", "benign": "benign hidden context",
            "misattributed": "misattributed (false match)",
            "derived": "derived from state or friends (no act)"}

PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd"]


def tier_colours(n: int) -> list[str]:
    """Best tier green through yellow to worst tier red, as hex colours."""
    stops = [(0x1a, 0x98, 0x50), (0xfe, 0xe0, 0x8b), (0xd7, 0x30, 0x27)]
    out = []
    for i in range(n):
        t = 2 * i / max(n - 1, 1)
        k = min(int(t), 1)
        a, b = stops[k], stops[k + 1]
        out.append("#" + "".join(f"{round(x + (y - x) * (t - k)):02x}"
                                 for x, y in zip(a, b, strict=True)))
    return out


COLOURS = {"true": "#4c72b0", "benign": "#dd8452", "misattributed": "#c44e52",
           "derived": "#8172b3", "penalty_lawful": "#c44e52", "penalty": "#dd8452",
           "reward": "#55a868", "none": "#bbbbbb", "palette": PALETTE, "tiers": tier_colours}


def label(key: str) -> str:
    """The reader's name for a metric key, a dotted key (``tier_shares.AA`` → "share of
    citizens in tier AA") or a column; an unknown key has its underscores spaced."""
    if key in LABELS:
        return LABELS[key]
    if "." in key:
        head, _, tail = key.rpartition(".")
        for by in ("group", "region"):
            if head.endswith(f"_by_{by}"):
                return f"{label(head[:-len(by) - 4])}, {by} {tail.replace('_', ' ')}"
        if head in LABELS:
            return f"{LABELS[head]}: {tail.replace('_', ' ')}"
        return f"{label(head)}: {label(tail)}"
    if key in LABELS:
        return LABELS[key]
    col = column(key)
    return col.meaning if col is not None else key.replace("_", " ")


def metric_label(key: str) -> str:
    """The reader's name for a metric of an ensemble's tidy table: a key of metrics.json
    flattened with dots (``processes.judgements.wrongful_sanctions``, ``penalties.total``,
    ``effects.lawful_acts_chilled``)."""
    if key.startswith("effects."):
        return f"effect: {metric_label(key.removeprefix('effects.'))}"
    if key.startswith("processes."):
        key = key.split(".", 2)[-1]
    return label(key)


def is_share(key: str) -> bool:
    last = key.split(".")[0] if key.startswith(("tier_shares", "ever_listed")) else key
    return any(s in last for s in SHARES) and "per_100k" not in last


def is_index(key: str) -> bool:
    return any(s in key for s in INDICES)


def count(x) -> str:
    """A count: an integer with thousands separators."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{round(x):,}"


def share(x, digits: int | None = None) -> str:
    """A share 0–1 as a percentage, with enough digits to show a small one."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    p = 100 * x
    if digits is None:
        digits = 1 if abs(p) >= 1 or p == 0 else 2 if abs(p) >= 0.1 else 3
    return f"{p:.{digits}f}%"


def per_100k(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:,.1f} per 100,000 citizens"


def decimal(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def value(key: str, x) -> str:
    """`x` written as the kind of number `key` names: a share, an index or a count."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if is_share(key):
        return share(x)
    if is_index(key):
        return decimal(x)
    if "per_100k" in key:
        return f"{x:,.1f}"
    col = column(key)
    if col is not None and col.unit in ("index", "correlation"):
        return decimal(x)
    if isinstance(x, float) and not x.is_integer():
        return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.3f}"
    return count(x)


def difference(key: str, d) -> str:
    """A difference A − B, signed, in percentage points for shares."""
    if d is None or (isinstance(d, float) and not math.isfinite(d)):
        return "n/a"
    sign = "+" if d > 0 else "−" if d < 0 else "±"
    if is_share(key):
        return f"{sign}{abs(100 * d):.2f} points"
    if is_index(key):
        return f"{sign}{small(abs(d))}"
    return sign + value(key, abs(d))


def small(x: float, digits: int = 4) -> str:
    """`x` to `digits` decimals, or, when that would round a non-zero value to 0, to two
    significant digits (0.000032, never 3.2e-05 nor 0.0000)."""
    if x == 0 or abs(x) >= 0.5 * 10 ** -digits:
        return f"{x:.{digits}f}"
    return np.format_float_positional(x, precision=2, fractional=False, trim="-")


def estimate(key: str, xs, sign: bool = False) -> list[str]:
    """An estimate and its interval bounds (`xs`, e.g. mean, low, high) written alike: to
    the precision the interval supports (two significant digits of its half-width), as
    percentages for shares, with thousands separators and a true minus sign; `sign` puts
    a + on positive values (differences, of shares in percentage points). NaN or None:
    "n/a"."""
    vals = [x if x is not None and math.isfinite(x) else None for x in xs]
    scale, unit = ((100.0, " points" if sign else "%") if is_share(key) else (1.0, ""))
    finite = [v * scale for v in vals if v is not None]
    spread = (max(finite) - min(finite)) / 2 if len(finite) > 1 else 0.0
    if spread > 0:
        digits = min(max(0, 1 - math.floor(math.log10(spread))), 8)
    else:
        digits = 0 if all(float(v).is_integer() for v in finite) else 3
    out = []
    for v in vals:
        if v is None:
            out.append("n/a")
            continue
        text = f"{abs(v * scale):,.{digits}f}"
        zero = float(text.replace(",", "")) == 0
        lead = "" if zero else "−" if v < 0 else "+" if sign else ""
        out.append(f"{'±' if zero and sign else ''}{lead}{text}{unit}")
    return out


def log_scale_needed(values, span: float = 100.0) -> bool:
    """Counts spanning more than `span`× among positive values read better on a log axis."""
    pos = [v for v in values if v is not None and v > 0]
    return bool(pos) and max(pos) / min(pos) > span


__all__ = ["COLOURS", "COLUMN_TABLES", "EVIDENCE", "LABELS", "PALETTE", "RATES", "column",
           "count", "decimal", "difference", "estimate", "is_index", "is_share", "label",
           "log_scale_needed", "metric_label", "on_list", "per_100k", "rate_label", "share",
           "small", "tier_colours", "value"]
