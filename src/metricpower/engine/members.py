"""Members: the runs one engine holds side by side.

An engine can run several members of an ensemble at once — the same policy on other
seeds and populations — as one population made of theirs, laid end to end (member m's
citizens are `start[m]` to `start[m + 1]`, its network ties only among them). The day's
fixed cost (a few thousand Python and NumPy calls) is then paid once for all of them.

A member's results are those of running it alone, to the last bit: every random number
is drawn from the member's own streams, in the order a run of it alone draws them, and
whatever a run measures over its whole population (the rates' means, the appeal office,
the risk model, the day's counts) is kept per member. Arrays the stages build keep each
member's entries in the order its own run would have them (member after member, or
interleaved: `uniform` puts each member's draws at its own entries, in order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from metricpower.population import Citizens
from metricpower.scenario.schema import Scenario
from metricpower.streams import Streams


def without_seeds(scenario: Scenario) -> dict:
    """A scenario as data, less what may differ between members of one engine."""
    data = scenario.model_dump(mode="json")
    data["run"] = {k: v for k, v in data["run"].items() if k not in ("seed", "population_seed")}
    return data


@dataclass
class Members:
    """Each member's scenario (its seeds) and population (NumPy), and where its citizens
    sit in the engine's arrays. The methods take the backend's arrays (`host` moves them
    to NumPy) and answer in NumPy."""

    scenarios: list[Scenario]
    populations: list[Citizens]
    host: Callable = np.asarray
    streams: list[Streams] = field(init=False)

    def __post_init__(self):
        first = without_seeds(self.scenarios[0])
        for sc in self.scenarios[1:]:
            if without_seeds(sc) != first:
                raise ValueError(f"scenario {sc.name!r}: members of one engine must differ "
                                 "in their seeds only")
        self.count = len(self.scenarios)
        self.one = self.count == 1
        self.size = np.array([len(c) for c in self.populations], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.size)]).astype(np.int64)
        self.streams = [Streams(sc.run.seed) for sc in self.scenarios]
        #: The member of each citizen (NumPy).
        self.of = np.repeat(np.arange(self.count, dtype=np.int32), self.size)

    def rngs(self, name: str, day: int = -1) -> list[np.random.Generator]:
        """Each member's generator for `name` on `day`."""
        return [s.rng(name, day) for s in self.streams]

    def members_of(self, citizens: np.ndarray) -> np.ndarray:
        """The member of each of `citizens`."""
        return self.of[self.host(citizens)]

    def count_of(self, citizens: np.ndarray) -> np.ndarray:
        """How many of `citizens` (repeats counted) belong to each member (NumPy int64)."""
        if self.one:
            return np.array([citizens.shape[0]], dtype=np.int64)
        return np.bincount(self.of[self.host(citizens)], minlength=self.count)

    def tally(self, citizens, values, k: int) -> np.ndarray:
        """How many of `citizens` (everyone: None) have each value 0..k-1 of `values`
        (theirs), per member: an int64 array (members, k)."""
        v = self.host(values).astype(np.int64)
        if self.one:
            return np.bincount(v, minlength=k)[None, :]
        of = self.of if citizens is None else self.of[self.host(citizens)]
        return np.bincount(of * k + v, minlength=self.count * k).reshape(self.count, k)

    def uniform(self, rngs: list[np.random.Generator], citizens: np.ndarray,
                dtype=np.float64) -> np.ndarray:
        """One uniform for each of `citizens`, from its member's generator: a member's
        entries get its draws in their order, as its own run would draw them."""
        if self.one:
            return rngs[0].random(citizens.shape[0], dtype=dtype)
        member = self.of[self.host(citizens)]
        counts = np.bincount(member, minlength=self.count)
        drawn = np.concatenate([rng.random(int(k), dtype=dtype)
                                for rng, k in zip(rngs, counts, strict=True)])
        if len(member) < 2 or np.all(member[1:] >= member[:-1]):
            return drawn
        out = np.empty(len(member), dtype=dtype)
        out[np.argsort(member, kind="stable")] = drawn
        return out

    def parts(self, citizens) -> list:
        """Each member's entries of `citizens`, in their order (indices, or a slice)."""
        if self.one:
            return [slice(None)]
        member = self.of[self.host(citizens)]
        order = np.argsort(member, kind="stable")
        ends = np.cumsum(np.bincount(member, minlength=self.count))[:-1]
        return np.split(order, ends)
