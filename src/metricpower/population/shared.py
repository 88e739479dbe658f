"""A population built once and shared by several runs: many seeds or policies on one
population (the ensemble and sweep machinery builds one per population seed, not per arm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from metricpower.population.citizens import Citizens, make_citizens
from metricpower.population.network import Network, make_network
from metricpower.scenario.schema import Scenario


def population_of(scenario: Scenario) -> str:
    """What a population is built from: its settings, the network's, the number of
    citizens and the population seed. Scenarios with the same key get the same population."""
    return json.dumps({"population": scenario.population.model_dump(mode="json"),
                       "network": scenario.network.model_dump(mode="json"),
                       "citizens": scenario.run.citizens,
                       "seed": scenario.run.effective_population_seed}, sort_keys=True)


@dataclass(frozen=True)
class Population:
    """Citizens and their network, and the key of the scenarios they belong to."""

    citizens: Citizens
    network: Network
    key: str

    def fits(self, scenario: Scenario) -> bool:
        return self.key == population_of(scenario)

    def network_copy(self) -> Network:
        """A fresh copy of the network for one run: the engine may change a run's network in
        place (association avoidance), and other runs must start from the same one."""
        return Network(indptr=self.network.indptr.copy(), indices=self.network.indices.copy())


def build_population(scenario: Scenario) -> Population:
    citizens = make_citizens(scenario)
    return Population(citizens, make_network(scenario, citizens), population_of(scenario))
