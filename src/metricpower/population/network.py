"""The social network: undirected ties with community structure, as CSR.

A stochastic block model with blocks nested in regions: each region is cut into
communities of `community_size` citizens (neighbourhoods, villages, workplaces), and
each citizen starts Poisson(mean_degree / 2) ties; a tie stays in the citizen's
community with probability `homophily`, otherwise it goes to a citizen anywhere.
Self-ties and duplicates are dropped, ties are made symmetric.

Citizens are stored region by region and community by community, so most friends sit
near each other in memory: gathers over friends mostly hit the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metricpower.population import kernels
from metricpower.population.citizens import Citizens
from metricpower.scenario.schema import Scenario
from metricpower.streams import Streams


@dataclass
class Network:
    indptr: np.ndarray   # int64, len n + 1
    indices: np.ndarray  # int32, friends of citizen i are indices[indptr[i]:indptr[i+1]]

    #: Ties gathered per pass when reducing over friends (bounds the temporary memory).
    CHUNK = 1 << 22

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def friend_count(self) -> np.ndarray:
        """Number of friends of each citizen."""
        return self.degree

    def _reduce(self, values: np.ndarray, empty: float, minimum: bool) -> np.ndarray:
        """Sum (or min) over each citizen's friends' values, in float64. Slots pointing at
        citizen n (one past the last) read `empty`: those are dropped ties."""
        n = len(self.indptr) - 1
        # One padded copy of the values, kept between calls: fresh memory of this size
        # costs more to fault in than the reduction itself on some machines.
        padded = self.__dict__.get("_padded")
        if padded is None or len(padded) != n + 1:
            padded = self.__dict__["_padded"] = np.empty(n + 1, dtype=np.float64)
        padded[:n] = values
        padded[n] = empty
        return kernels.reduce(self.indptr, self.indices, padded, minimum, self.CHUNK)

    def friend_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of friends' values (float64), 0 for the friendless."""
        return self._reduce(values, 0.0, minimum=False)

    def friend_min(self, values: np.ndarray) -> np.ndarray:
        """Least of friends' values (float64), +inf for the friendless."""
        return self._reduce(values, np.inf, minimum=True)

    def assortativity(self, values: np.ndarray) -> float:
        """Pearson correlation of `values` across the two ends of every tie (Newman's
        numeric assortativity); NaN when undefined. Ties run both ways, so both ends
        share one distribution and the sums below need no list of tie owners."""
        x = np.asarray(values, dtype=np.float64)
        k = self.friend_count().astype(np.float64)
        ties = k.sum()
        if ties == 0:
            return float("nan")
        mean = (k @ x) / ties
        var = (k @ (x * x)) / ties - mean**2
        cov = (x @ self.friend_sum(x)) / ties - mean**2
        return float(cov / var) if var > 1e-12 * max(1.0, mean**2) else float("nan")

    @classmethod
    def from_edges(cls, n: int, a: np.ndarray, b: np.ndarray) -> Network:
        """Undirected ties (a[k], b[k]) → CSR with each tie in both directions, without
        self-ties or duplicates, friends sorted within each row."""
        indptr, indices = kernels.csr(n, a, b)
        return cls(indptr=indptr, indices=indices)


def make_network(scenario: Scenario, citizens: Citizens) -> Network:
    n = len(citizens)
    spec = scenario.network
    rng = Streams(scenario.run.effective_population_seed).rng("network")
    stubs = rng.poisson(spec.mean_degree / 2.0, size=n)
    a = np.repeat(np.arange(n, dtype=np.int32), stubs)
    # Narrow draws: these arrays are the size of the network.
    local = rng.random(len(a), dtype=np.float32) < spec.homophily
    u = rng.random(len(a), dtype=np.float32)
    far = rng.integers(0, n, size=len(a), dtype=np.int32 if n < 2**31 else np.int64)
    b = kernels.partners(a, local, u, far, citizens.region, citizens.region_bounds(),
                         spec.community_size)
    return Network.from_edges(n, a, b)
