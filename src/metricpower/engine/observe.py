"""Occurrences (ground truth) and what the sensors make of them.

Occurrences are drawn by thinning a Poisson process: each day a behaviour gets
K ~ Poisson(N · rate_max) candidate citizens, uniformly, and candidate k is a real
occurrence when u_k < rate_i / rate_max. This costs as much as the day's events, not the
population, and it gives common random numbers for free: the candidates and every draw
about them depend only on the seed, the behaviour and the day, so a policy that makes
citizen i less likely to act (deterrence) keeps a subset of the same occurrences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metricpower.population import Citizens
from metricpower.scenario.schema import TRAITS, Scenario
from metricpower.streams import Streams

#: Candidates are drawn at HEADROOM times the highest base rate, so that responses can
#: raise a citizen's rate up to that factor (income feedback) and runs with and without
#: responses still share every draw.
HEADROOM = 2.0


def trait_values(citizens: Citizens, trait: str) -> np.ndarray:
    """A trait as a float array on a comparable scale (income as log income)."""
    if trait == "income":
        return np.log(citizens.income.astype(np.float64))
    return getattr(citizens, trait).astype(np.float64)


def rates(citizens: Citizens, mean_rate: float, drivers: dict[str, float],
          requires: str | None) -> np.ndarray:
    """Per-citizen daily rates, log-linear in the drivers, with mean `mean_rate` over those
    who can act at all (`requires`)."""
    assert set(drivers) <= set(TRAITS)
    log_m = np.zeros(len(citizens))
    for trait, coef in drivers.items():
        log_m += coef * trait_values(citizens, trait)
    m = np.exp(log_m - log_m.max(initial=0.0))
    eligible = np.ones(len(citizens), bool) if requires is None else getattr(citizens, requires)
    m = np.where(eligible, m, 0.0)
    mean = m[eligible].mean() if eligible.any() else 1.0
    return (mean_rate * m / mean).astype(np.float32)


def thin(rng: np.random.Generator, n: int, rate_max: float, extra: int):
    """Candidates of one day's Poisson process: citizen indices and `1 + extra` uniforms
    each (the first decides acceptance)."""
    k = rng.poisson(n * rate_max) if rate_max > 0 else 0
    cand = rng.integers(0, n, size=k, dtype=np.int64)
    u = rng.random((1 + extra, k), dtype=np.float32)
    return cand, u


@dataclass
class Events:
    """One day's observed events for one behaviour."""

    citizen: np.ndarray        # int64
    sensor: np.ndarray         # int16, index into scenario.sensors
    benign: np.ndarray         # bool: the hidden context was benign
    misattributed: np.ndarray  # bool: a false match charged someone who did nothing


class Observer:
    """Draws a day's occurrences and observations for every behaviour."""

    def __init__(self, scenario: Scenario, citizens: Citizens, streams: Streams):
        self.citizens, self.streams = citizens, streams
        self.n = len(citizens)
        self.behaviours = scenario.behaviours
        sensor_index = {s.name: i for i, s in enumerate(scenario.sensors)}
        self.rate = [rates(citizens, b.rate, b.drivers, b.requires) for b in self.behaviours]
        self.rate_max = [HEADROOM * float(r.max(initial=0.0)) for r in self.rate]
        self.sensor_ids = [np.array([sensor_index[s] for s in b.sensors], dtype=np.int16)
                           for b in self.behaviours]
        # Chance that sensor s sees an act, where each citizen lives.
        urban = citizens.urban
        self.seen = [np.where(urban, s.coverage.urban, s.coverage.rural).astype(np.float32)
                     * np.float32(s.detection) for s in scenario.sensors]
        self.false_match = []
        for si, s in enumerate(scenario.sensors):
            public = [bi for bi, b in enumerate(self.behaviours)
                      if b.public and s.name in b.sensors]
            if s.kind != "camera" or s.false_match_rate == 0 or not public:
                continue
            mult = np.array([s.false_match_by_group.get(g.name, 1.0)
                             for g in scenario.population.groups])
            rate = (s.false_match_rate * mult[citizens.group]
                    * np.where(urban, s.coverage.urban, s.coverage.rural)).astype(np.float32)
            weights = np.array([self.behaviours[bi].rate for bi in public])
            self.false_match.append((si, s.name, rate, float(rate.max(initial=0.0)),
                                     np.array(public), np.cumsum(weights) / weights.sum()))

    def occurrences(self, day: int, bi: int,
                    propensity: Callable[[np.ndarray], np.ndarray] | None = None):
        """Today's occurrences of behaviour `bi`: citizens, benign flags, and the uniforms
        that decide which sensors see them. `propensity(citizens)` (0..HEADROOM) scales
        the rate (deterrence, income); the draws are the same whatever it is. `would`
        marks the occurrences at the unscaled rate: those not kept now were chilled."""
        b = self.behaviours[bi]
        n_sensors = len(self.sensor_ids[bi])
        rng = self.streams.rng(f"occur:{b.name}", day)
        cand, u = thin(rng, self.n, self.rate_max[bi], 1 + n_sensors)
        p = self.rate[bi][cand] / np.float32(self.rate_max[bi] or 1.0)
        would = u[0] < p
        keep = would if propensity is None else u[0] < p * propensity(cand)
        return cand, keep, would, u[1] < b.benign_share, u[2:]

    def p_seen(self, bi: int) -> np.ndarray:
        """Chance, per citizen, that at least one of the behaviour's sensors sees an act."""
        unseen = np.ones(self.n, dtype=np.float32)
        for si in self.sensor_ids[bi]:
            unseen *= 1 - self.seen[si]
        return 1 - unseen

    def observe(self, bi: int, citizen: np.ndarray, benign: np.ndarray,
                u_sensor: np.ndarray) -> Events:
        """Which occurrences a sensor sees; the first sensor that sees one is its evidence."""
        sensor = np.full(len(citizen), -1, dtype=np.int16)
        for k, si in enumerate(self.sensor_ids[bi]):
            seen = (sensor < 0) & (u_sensor[k] < self.seen[si][citizen])
            sensor[seen] = si
        hit = sensor >= 0
        return Events(citizen[hit], sensor[hit], benign[hit], np.zeros(int(hit.sum()), bool))

    def false_matches(self, day: int) -> dict[int, Events]:
        """Cameras charging citizens who did nothing, by the behaviour they are charged with."""
        out: dict[int, list[Events]] = {}
        for si, name, rate, rate_max, public, cum in self.false_match:
            rng = self.streams.rng(f"falsematch:{name}", day)
            cand, u = thin(rng, self.n, rate_max, 1)
            keep = u[0] < rate[cand] / np.float32(rate_max)
            cand = cand[keep]
            which = public[np.minimum(np.searchsorted(cum, u[1][keep], side="right"),
                                      len(public) - 1)]
            for bi in np.unique(which):
                hit = cand[which == bi]
                out.setdefault(int(bi), []).append(Events(
                    hit, np.full(len(hit), si, np.int16), np.zeros(len(hit), bool),
                    np.ones(len(hit), bool)))
        return {bi: concat(ev) for bi, ev in out.items()}


def concat(events: list[Events]) -> Events:
    if len(events) == 1:
        return events[0]
    return Events(*(np.concatenate([getattr(e, f) for e in events])
                    for f in ("citizen", "sensor", "benign", "misattributed")))
