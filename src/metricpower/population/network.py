"""The social network: undirected ties with community structure, as CSR; and `Ties`, the
same network as it changes when people drop bad company.

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
        numeric assortativity); NaN when undefined."""
        return self.assortativity_within(values, [0, len(self.indptr) - 1])[0]

    def assortativity_within(self, values: np.ndarray, starts: list[int]) -> list[float]:
        """`assortativity` of each part of a network whose parts are tied only among
        themselves (citizens starts[j] to starts[j + 1]). Ties run both ways, so both ends
        share one distribution and the sums below need no list of tie owners."""
        x_all = np.asarray(values, dtype=np.float64)
        k_all = self.friend_count().astype(np.float64)
        sums = self.friend_sum(x_all)
        out = []
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            # Copies: a part's sums are then those of a network of that part alone.
            x, k, fs = x_all[a:b].copy(), k_all[a:b].copy(), sums[a:b].copy()
            ties = k.sum()
            if ties == 0:
                out.append(float("nan"))
                continue
            mean = (k @ x) / ties
            var = (k @ (x * x)) / ties - mean**2
            cov = (x @ fs) / ties - mean**2
            out.append(float(cov / var) if var > 1e-12 * max(1.0, mean**2) else float("nan"))
        return out

    @classmethod
    def join(cls, networks: list[Network]) -> Network:
        """Networks side by side as one, each part's citizens numbered after the last
        part's (no ties between parts)."""
        sizes = [len(net.indptr) - 1 for net in networks]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        ties = np.concatenate([[0], np.cumsum([len(net.indices) for net in networks])])
        index = np.int32 if starts[-1] < 2**31 else np.int64
        indptr = np.concatenate([net.indptr[:-1] + t for net, t in zip(
            networks, ties[:-1], strict=True)] + [ties[-1:]]).astype(np.int64)
        indices = np.concatenate([net.indices.astype(index) + index(s) for net, s in zip(
            networks, starts[:-1], strict=True)])
        return cls(indptr=indptr, indices=indices)

    @classmethod
    def from_edges(cls, n: int, a: np.ndarray, b: np.ndarray) -> Network:
        """Undirected ties (a[k], b[k]) → CSR with each tie in both directions, without
        self-ties or duplicates, friends sorted within each row."""
        indptr, indices = kernels.csr(n, a, b)
        return cls(indptr=indptr, indices=indices)


class Ties(Network):
    """The network under association avoidance, changed in place without rebuilding.

    A dropped tie's two slots in the CSR arrays point at citizen n, one past the last,
    which reductions read as nobody; new ties are kept as a list of pairs beside the CSR
    arrays. Reductions and counts cover both. The network's arrays are changed in place
    (at national scale a copy would not fit): hand it a network nobody else uses."""

    def __init__(self, network: Network):
        super().__init__(indptr=network.indptr, indices=network.indices)
        self.n = len(network.indptr) - 1
        self.active_degree = network.degree.astype(np.int32)
        # New ties: pairs [0, formed) of these arrays (spare room after), alive or dropped.
        self.pair_a = np.zeros(0, np.int64)
        self.pair_b = np.zeros(0, np.int64)
        self.alive = np.zeros(0, bool)
        self.formed = 0

    def friend_count(self) -> np.ndarray:
        return self.active_degree

    def _pairs(self):
        a, b = self.pair_a[self.alive], self.pair_b[self.alive]
        return np.concatenate([a, b]), np.concatenate([b, a])

    def friend_sum(self, values: np.ndarray) -> np.ndarray:
        out = super().friend_sum(values)
        owner, friend = self._pairs()
        np.add.at(out, owner, np.asarray(values, np.float64)[friend])
        return out

    def friend_min(self, values: np.ndarray) -> np.ndarray:
        out = super().friend_min(values)
        owner, friend = self._pairs()
        np.minimum.at(out, owner, np.asarray(values, np.float64)[friend])
        return out

    def friends_of(self, citizens: np.ndarray, wanted: np.ndarray):
        """Live ties from `citizens` (wanted[c] is True for them): (citizen, friend, where);
        `where` is the CSR slot, or -(k + 1) for the k-th new tie."""
        start, stop = self.indptr[citizens], self.indptr[citizens + 1]
        lens = stop - start
        owner = np.repeat(citizens, lens)
        pos = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        friend = self.indices[pos].astype(np.int64)
        live = friend < self.n
        owner, friend, pos = owner[live], friend[live], pos[live]
        # New ties, from whichever end (or both ends) is wanted.
        fwd = np.flatnonzero(self.alive & wanted[self.pair_a])
        back = np.flatnonzero(self.alive & wanted[self.pair_b])
        return (np.concatenate([owner, self.pair_a[fwd], self.pair_b[back]]),
                np.concatenate([friend, self.pair_b[fwd], self.pair_a[back]]),
                np.concatenate([pos, -(fwd + 1), -(back + 1)]))

    def drop(self, owner: np.ndarray, friend: np.ndarray, where: np.ndarray) -> None:
        """Drop ties (both directions) found by `friends_of`."""
        new = where < 0
        self.alive[-where[new] - 1] = False
        slot, a, b = where[~new], owner[~new], friend[~new]
        self.indices[slot] = self.n
        # The mirror slot: in b's row, the one that points at a.
        start, lens = self.indptr[b], self.indptr[b + 1] - self.indptr[b]
        pos = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        mirror = pos[self.indices[pos] == np.repeat(a, lens)]
        self.indices[mirror] = self.n
        np.subtract.at(self.active_degree, owner, 1)
        np.subtract.at(self.active_degree, friend, 1)

    def form(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Tie a[k] to b[k] where they are not friends yet, each pair once (a second tie
        would count one friend twice in degrees, sums and assortativity); returns which
        of the proposed ties were made."""
        made = self._new(a.astype(np.int64), b.astype(np.int64))
        a, b = a[made], b[made]
        # Grow the pair arrays by doubling, so a day's new ties cost what they are.
        used = self.formed
        if used + len(a) > len(self.pair_a):
            size = max(2 * len(self.pair_a), used + len(a), 1024)
            for name in ("pair_a", "pair_b", "alive"):
                old = getattr(self, name)
                new = np.zeros(size, old.dtype)
                new[:used] = old[:used]
                setattr(self, name, new)
        self.pair_a[used:used + len(a)] = a
        self.pair_b[used:used + len(a)] = b
        self.alive[used:used + len(a)] = True
        self.formed = used + len(a)
        np.add.at(self.active_degree, a, 1)
        np.add.at(self.active_degree, b, 1)
        return made

    def _new(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Which pairs (a[k], b[k]) are neither live ties nor repeats of an earlier k."""
        n = np.int64(self.n)
        key = np.minimum(a, b) * n + np.maximum(a, b)
        made = np.zeros(len(a), bool)
        made[np.unique(key, return_index=True)[1]] = True
        if not len(a):
            return made
        wanted = np.zeros(self.n, bool)
        wanted[a] = True
        owner, friend, _ = self.friends_of(np.unique(a), wanted)
        linked = np.minimum(owner, friend) * n + np.maximum(owner, friend)
        return made & ~np.isin(key, linked)


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
