"""metricpower: a social credit system, executable, on a synthetic population.

The names below are loaded when first used (PEP 562): `import metricpower.cli` or a
worker's `import metricpower.runs` does not pay for the comparison, statistics and
ensemble modules it never calls."""

import sys
from importlib import import_module
from types import ModuleType

#: Each public name loaded on first use and the module that defines it.
_WHERE = {
    "compare": "metricpower.compare",
    "Results": "metricpower.ensembles", "ensemble": "metricpower.ensembles",
    "sweep": "metricpower.ensembles",
    "Population": "metricpower.population", "build_population": "metricpower.population",
    "Run": "metricpower.runs", "load_run": "metricpower.runs", "simulate": "metricpower.runs",
    "Scenario": "metricpower.scenario", "ScenarioError": "metricpower.scenario",
    "load_preset": "metricpower.scenario", "load_scenario": "metricpower.scenario",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'metricpower' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


class _Package(ModuleType):
    """`compare` is both a public function and the submodule defining it. Importing the
    submodule (`from metricpower.compare import …`) makes the import system set the
    package's `compare` to the module, after which `metricpower.compare(...)` would call
    a module: the function is kept instead."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, ModuleType) and _WHERE.get(name) == value.__name__:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
