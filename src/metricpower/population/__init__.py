"""The synthetic population: citizens (column arrays) and their social network (CSR)."""

from metricpower.population.citizens import Citizens, make_citizens
from metricpower.population.network import Network, Ties, make_network
from metricpower.population.shared import Population, build_population, population_of

__all__ = ["Citizens", "Network", "Population", "Ties", "build_population", "make_citizens",
           "make_network", "population_of"]
