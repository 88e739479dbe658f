"""Scenarios: schema, presets, loading, and the rule-condition language."""

from metricpower.scenario.load import (
    ScenarioError,
    load_preset,
    load_scenario,
    preset_names,
    preset_summary,
    preset_text,
    to_toml,
)
from metricpower.scenario.schema import Scenario

__all__ = ["Scenario", "ScenarioError", "load_preset", "load_scenario", "preset_names",
           "preset_summary", "preset_text", "to_toml"]
