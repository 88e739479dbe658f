"""metricpower: a social credit system, executable, on a synthetic population."""

from metricpower.compare import compare
from metricpower.ensembles import Results, ensemble, sweep
from metricpower.population import Population, build_population
from metricpower.runs import Run, load_run, simulate
from metricpower.scenario import Scenario, ScenarioError, load_preset, load_scenario

__all__ = ["Population", "Results", "Run", "Scenario", "ScenarioError", "build_population",
           "compare", "ensemble", "load_preset", "load_run", "load_scenario", "simulate",
           "sweep"]
