"""Measures of what the system does to the people inside it, computed from a run's tables.

One function per metric, grouped by the essay's six processes (see `PROCESSES`); each
returns a Polars table, overall and by group and region where the data allow.
`measure(run)` computes them all, `summary(run)` the JSON-able key numbers.
"""

from metricpower.metrics.authority import decisions_gated, score_knowledge
from metricpower.metrics.categorisation import (
    list_shares,
    list_sizes_over_time,
    score_gini,
    tier_shares,
    tier_shares_over_time,
)
from metricpower.metrics.common import (
    average_ranks,
    citizen_evidence,
    frame,
    pearson,
    roc_auc,
    spearman,
)
from metricpower.metrics.disparate import (
    ALPHA,
    FOUR_FIFTHS,
    disparate_impact,
    group_rates,
    list_direction,
)
from metricpower.metrics.headline import gini, headline
from metricpower.metrics.intensification import (
    HORIZONS,
    PERSISTENCE_DAYS,
    assortativity_over_time,
    chilling,
    income_by_tier,
    income_gap,
    income_over_time,
    mobility,
    persistence,
    persistence_after_entry,
    snapshot_days,
    snapshot_pairs,
    tie_changes,
    ties_over_time,
)
from metricpower.metrics.judgements import (
    consequence_rates,
    prediction_errors,
    sanctioned_citizens,
    service_decisions,
    wrongful_sanctions,
)
from metricpower.metrics.limits import (
    acts_scored,
    behaviours_regulated,
    lawful_penalised_share,
    occurrences_by_behaviour,
    policy_table,
)
from metricpower.metrics.measure import PROCESSES, bottom_tiers, measure, summary
from metricpower.metrics.visibility import (
    benign_penalty_share,
    detection_rate,
    misattributed_per_100k,
    penalties_over_time,
)

__all__ = [
    "ALPHA", "FOUR_FIFTHS", "HORIZONS", "PERSISTENCE_DAYS", "PROCESSES",
    "assortativity_over_time", "average_ranks", "behaviours_regulated",
    "benign_penalty_share", "bottom_tiers", "chilling", "citizen_evidence",
    "consequence_rates", "decisions_gated", "detection_rate", "disparate_impact", "frame",
    "gini", "group_rates", "headline", "income_by_tier", "income_gap", "income_over_time",
    "lawful_penalised_share", "list_direction", "list_shares", "list_sizes_over_time",
    "measure", "misattributed_per_100k", "mobility", "occurrences_by_behaviour",
    "acts_scored", "pearson", "penalties_over_time", "persistence",
    "persistence_after_entry", "policy_table", "prediction_errors", "roc_auc",
    "sanctioned_citizens", "score_gini", "score_knowledge", "service_decisions",
    "snapshot_days", "snapshot_pairs", "spearman", "summary", "tie_changes", "tier_shares",
    "tier_shares_over_time", "ties_over_time", "wrongful_sanctions",
]
