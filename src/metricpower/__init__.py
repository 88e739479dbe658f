"""metricpower: a social credit system, executable, on a synthetic population."""

from metricpower.runs import Run, load_run, simulate
from metricpower.scenario import Scenario, ScenarioError, load_preset, load_scenario

__all__ = ["Run", "Scenario", "ScenarioError", "load_preset", "load_run", "load_scenario",
           "simulate"]
