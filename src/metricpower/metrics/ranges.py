"""The values each number of metrics.json can take, declared once, by key.

A run's metrics.json (`headline` and `summary`) flattened with dots — `penalties.total`,
`processes.judgements.sanctioned_share_by_group.minority_women` — names every number an
ensemble averages. A count cannot be negative and a share cannot pass 1, so neither can
their mean: an interval of the mean is cut to the metric's range (`ensembles.stats`).
The range is read from the key, never from the data (every member's sample being
non-negative does not make a metric non-negative).

A pattern is a dotted key in which `*` stands for one name the scenario gives (a tier, a
group, a consequence, a behaviour, a horizon) and a trailing `**` for the rest of the
key; names the scenario gives are never read as a pattern's words, so a behaviour called
`share` cannot make a count a share. A key no pattern matches is unbounded, and the
tests check that every number the shipped presets write is declared.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple


class Range(NamedTuple):
    """The closed interval [low, high] a metric's values lie in."""

    low: float
    high: float


#: Counts, sums of counts, rates per citizen, income indices and their ratios.
NONNEGATIVE = Range(0.0, math.inf)
#: Shares, rates and probabilities, Gini coefficients, ROC AUC, yes/no (0/1) flags.
FRACTION = Range(0.0, 1.0)
#: Correlation coefficients (rank correlation, assortativity).
CORRELATION = Range(-1.0, 1.0)
#: Scores, differences and effects (A − B), and labels that are not measures.
UNBOUNDED = Range(-math.inf, math.inf)

_P = "processes."

#: Each range and the metrics that lie in it.
DECLARED: dict[Range, tuple[str, ...]] = {
    NONNEGATIVE: (
        # headline (metrics/headline.py)
        "citizens", "days", "occurrences", "observed", "false_matches", "reward_events",
        "sanctions_total", "rewards_total", "tier_counts.*", "list_sizes.*",
        "penalties.total", "penalties.benign_context", "penalties.misattributed",
        "penalties.true", "penalties.misattributed_per_100k", "consequences.*.applied",
        "consequences.*.by_group.*", "service_attempts.*", "ledger.entries",
        "ledger.citizens_kept", "appeals.filed", "appeals.decided", "appeals.upheld",
        "appeals.upheld_misattributed", "appeals.upheld_benign", "appeals.waiting_at_end",
        "appeals.mean_days_to_redress", "repair_by_income.*",
        # a national extrapolation: counts × a factor, and their standard errors
        "scaled.**",
        # summary (metrics/measure.py)
        f"{_P}limits.behaviours", f"{_P}limits.regulated", f"{_P}limits.penalised",
        f"{_P}limits.rewarded", f"{_P}limits.lawful_penalised",
        f"{_P}visibility.penalties", f"{_P}visibility.misattributed_penalties",
        f"{_P}visibility.misattributed_per_100k",
        f"{_P}visibility.misattributed_per_100k_by_group.*",
        f"{_P}visibility.misattributed_per_100k_by_region.*",
        f"{_P}categorisation.list_sizes_final.*", f"{_P}categorisation.list_sizes_peak.*",
        f"{_P}categorisation.list_entries.*", f"{_P}categorisation.list_exits.*",
        f"{_P}judgements.denials", f"{_P}judgements.throttles", f"{_P}judgements.grants",
        f"{_P}judgements.applied.*", f"{_P}judgements.sanctions_total",
        f"{_P}judgements.citizens_sanctioned", f"{_P}judgements.wrongful_sanctions",
        f"{_P}judgements.wrongful_better_half", f"{_P}judgements.wrongful_mostly_tainted",
        f"{_P}judgements.wrongful_by_group.*", f"{_P}judgements.predictions.*.tp",
        f"{_P}judgements.predictions.*.fp", f"{_P}judgements.predictions.*.fn",
        f"{_P}judgements.predictions.*.tn",
        f"{_P}intensification.still_at_bottom_after_entry.checked",
        f"{_P}intensification.still_at_bottom_after_entry.stayed",
        f"{_P}intensification.ties_dropped", f"{_P}intensification.ties_formed",
        f"{_P}intensification.tie_changes.*", f"{_P}intensification.chilled.*",
        f"{_P}intensification.lawful_chilled", f"{_P}intensification.income_by_tier.*",
        f"{_P}intensification.income_gap.ratio_start",
        f"{_P}intensification.income_gap.ratio_end",
        f"{_P}intensification.mean_income.first", f"{_P}intensification.mean_income.last",
        f"{_P}authority.decisions", f"{_P}authority.changed",
        f"{_P}disparate_impact.rates_checked", f"{_P}disparate_impact.worst.impact_ratio",
        # the schema's daily counts (flows) over the run, and the run's days and citizens
        f"{_P}totals.*",
    ),
    FRACTION: (
        "score_gini", "tier_shares.*", "penalties.benign_context_share",
        "consequences.*.sanction",
        f"{_P}limits.acts_scored_share", f"{_P}limits.lawful_acts_penalised_share",
        f"{_P}limits.lawful_share_of_penalised_events",
        f"{_P}visibility.detection_rate", f"{_P}visibility.detection_rate_by_group.*",
        f"{_P}visibility.detection_rate_by_region.*", f"{_P}visibility.benign_penalty_share",
        f"{_P}visibility.benign_penalty_share_by_group.*",
        f"{_P}categorisation.tier_shares.*", f"{_P}categorisation.score_gini",
        f"{_P}categorisation.score_gini_by_group.*",
        f"{_P}categorisation.ever_listed_share.*",
        f"{_P}judgements.denial_rate_by_service.*", f"{_P}judgements.sanctioned_share",
        f"{_P}judgements.sanctioned_share_by_group.*", f"{_P}judgements.wrongful_share",
        f"{_P}judgements.predictions.*.precision", f"{_P}judgements.predictions.*.base_rate",
        f"{_P}judgements.predictions.*.false_positive_rate",
        f"{_P}intensification.tier_persistence.*.*",
        f"{_P}intensification.persistence_at_bottom.*",
        f"{_P}intensification.still_at_bottom_after_entry.share",
        f"{_P}authority.changed_share", f"{_P}authority.auc", f"{_P}authority.auc_by_group.*",
        f"{_P}disparate_impact.level", f"{_P}disparate_impact.worst.flagged",
    ),
    CORRELATION: (
        f"{_P}authority.spearman", f"{_P}authority.spearman_by_group.*",
        f"{_P}intensification.assortativity.first", f"{_P}intensification.assortativity.last",
    ),
    UNBOUNDED: (
        "seed", "mean_score", "initial_score", f"{_P}categorisation.mean_score_by_group.*",
        f"{_P}intensification.assortativity.change",
        # a paired comparison's effects: differences A − B
        "effects.**",
    ),
}

_PATTERNS = tuple((tuple(p.split(".")), r) for r, ps in DECLARED.items() for p in ps)


def _matches(pattern: tuple[str, ...], parts: list[str]) -> bool:
    if pattern[-1] == "**":
        head = pattern[:-1]
        return len(parts) > len(head) and _matches(head, parts[:len(head)])
    return len(pattern) == len(parts) and all(
        p in ("*", k) for p, k in zip(pattern, parts, strict=True))


def declared(key: str) -> Range | None:
    """The declared range of the metric `key`, or None where no pattern matches. Two
    patterns matching one key would be two declarations of one fact: a ValueError."""
    parts = key.split(".")
    hits = [(".".join(p), r) for p, r in _PATTERNS if _matches(p, parts)]
    if len(hits) > 1:
        raise ValueError(f"metric {key!r} has more than one declared range: {hits}")
    return hits[0][1] if hits else None


@functools.cache
def range_of(key: str) -> Range:
    """The range the values of metric `key` lie in (unbounded where undeclared)."""
    return declared(key) or UNBOUNDED


__all__ = ["CORRELATION", "DECLARED", "FRACTION", "NONNEGATIVE", "UNBOUNDED", "Range",
           "declared", "range_of"]
