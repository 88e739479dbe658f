"""The synthetic population: citizens (column arrays) and their social network (CSR)."""

from metricpower.population.citizens import Citizens, make_citizens
from metricpower.population.network import Network, make_network

__all__ = ["Citizens", "Network", "make_citizens", "make_network"]
