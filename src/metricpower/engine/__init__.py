"""The engine: a day step over whole arrays, seeded and deterministic."""

from metricpower.engine.core import Engine

__all__ = ["Engine"]
