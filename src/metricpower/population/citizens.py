"""Citizens, stored column-wise: one array per attribute.

Citizens are laid out region by region, so that a region's citizens (and, with a
homophilous network, most of a citizen's friends) sit near each other in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from metricpower.scenario.schema import Scenario
from metricpower.streams import Streams


@dataclass
class Citizens:
    region: np.ndarray        # int16, index into scenario.population.regions
    urban: np.ndarray         # bool
    group: np.ndarray         # int8, index into scenario.population.groups
    conduct: np.ndarray       # float32 in [0, 1]: hidden true conduct, 1 = never breaks a rule
    gamer: np.ndarray         # float32 in [0, 1]
    prosociality: np.ndarray  # float32 in [0, 1]
    pet_owner: np.ndarray     # bool
    has_child: np.ndarray     # bool
    income: np.ndarray        # float32 income index, population mean about 1

    def __len__(self) -> int:
        return len(self.region)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def join(cls, parts: list[Citizens]) -> Citizens:
        """Several populations as one, each part's citizens after the last part's."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                      for f in fields(cls)})

    def region_bounds(self) -> np.ndarray:
        """Start offset of each region's block, plus the end: regions are contiguous."""
        counts = np.bincount(self.region, minlength=int(self.region.max()) + 1)
        return np.concatenate([[0], np.cumsum(counts)])


def make_citizens(scenario: Scenario, n: int | None = None) -> Citizens:
    pop = scenario.population
    n = scenario.run.citizens if n is None else n
    rng = Streams(scenario.run.effective_population_seed).rng("population")
    shares = np.array([r.share for r in pop.regions])
    counts = rng.multinomial(n, shares / shares.sum())
    region = np.repeat(np.arange(len(counts), dtype=np.int16), counts)
    urban_share = np.array([r.urban for r in pop.regions])[region]
    urban = rng.random(n) < urban_share
    gshares = np.array([g.share for g in pop.groups])
    group = rng.choice(len(gshares), size=n, p=gshares / gshares.sum()).astype(np.int8)

    def beta(dist):
        return rng.beta(dist.alpha, dist.beta, size=n).astype(np.float32)

    log_income = rng.normal(0.0, pop.income_sigma, size=n) + pop.urban_income_premium * urban
    income = np.exp(log_income - np.log(np.mean(np.exp(log_income)))).astype(np.float32)
    return Citizens(
        region=region,
        urban=urban,
        group=group,
        conduct=beta(pop.conduct),
        gamer=beta(pop.gamer),
        prosociality=beta(pop.prosociality),
        pet_owner=rng.random(n) < pop.pet_owner,
        has_child=rng.random(n) < pop.has_child,
        income=income,
    )
