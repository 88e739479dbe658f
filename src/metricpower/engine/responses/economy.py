"""Economy: sanctions cut income, rewards raise it, costly acts (paid repair) cost it,
and income drifts back toward one's own level; income drives the behaviours whose
`drivers` name it."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import scatter_multiply
from metricpower.engine.responses.base import Response, register


@register
class Economy(Response):
    name = "economy"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.spec = sc.responses.economy
        self.coef = [np.float32(b.drivers.get("income", 0.0)) for b in sc.behaviours]
        index = {b.name: i for i, b in enumerate(sc.behaviours)}
        self.costly = sorted(index[b] for b in self.spec.costly)
        self.pull = np.float32(self.spec.recovery) * engine.citizens.income

    def scale(self, bi, day):
        coef = self.coef[bi]
        if not coef:
            return None
        income, income0 = self.engine.state.income, self.engine.citizens.income
        return lambda who: (income[who] / income0[who]) ** coef

    def step(self, day, today):
        spec, income = self.spec, self.engine.state.income
        if today.sanctioned:
            scatter_multiply(income, np.concatenate(today.sanctioned),
                             np.float32(1 - spec.sanction_loss))
        if today.rewarded:
            scatter_multiply(income, np.concatenate(today.rewarded),
                             np.float32(1 + spec.reward_gain))
        if self.costly:
            scatter_multiply(income, np.concatenate([today.acted[bi] for bi in self.costly]),
                             np.float32(1 - spec.cost))
        # income += recovery · (baseline − income), in place: no temporary the size of
        # the population.
        income *= np.float32(1 - spec.recovery)
        income += self.pull
