"""Measures of what the system does to the people inside it, computed from a run's tables."""

from metricpower.metrics.headline import gini, headline

__all__ = ["gini", "headline"]
