"""The synthetic population: citizens (column arrays) and their social network (CSR)."""

from metricpower.population.citizens import Citizens, make_citizens
from metricpower.population.network import Network, Ties, make_network

__all__ = ["Citizens", "Network", "Ties", "make_citizens", "make_network"]
