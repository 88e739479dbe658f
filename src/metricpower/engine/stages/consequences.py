"""Consequences: effects on the citizen (confiscation, public labelling), then each
service's attempts, where sanctions come first (a denial ends the attempt) and rewards
go to the rest. Responses may act on attempts too (others refusing the labelled)."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import scatter_add
from metricpower.engine.effects import EFFECTS
from metricpower.engine.observe import Sampler, rates
from metricpower.engine.stages.base import Stage, Today


class Consequences(Stage):
    name = "consequences"

    def __init__(self, engine):
        super().__init__(engine)
        sc, citizens = engine.scenario, engine.citizens
        self.effects = [EFFECTS[c.effect](engine, ci, c) for ci, c in enumerate(sc.consequences)]
        self.on_citizen = [e for e in self.effects if not e.on_service]
        self.kinds = list(dict.fromkeys(type(e) for e in self.on_citizen))
        # Per service, its effects: sanctions first, then rewards, each in policy order.
        self.on_service = [sorted((e for e in self.effects
                                   if e.on_service and e.consequence.service == s.name),
                                  key=lambda e: (not e.sanction, e.index))
                           for s in sc.services]
        self.demand = [Sampler(rates(citizens, s.demand, s.drivers, s.requires))
                       for s in sc.services]
        self.n_groups = len(sc.population.groups)
        #: Totals by consequence and group, and attempts by service and group.
        self.applied = np.zeros((len(sc.consequences), self.n_groups), dtype=np.int64)
        self.attempts = np.zeros((len(sc.services), self.n_groups), dtype=np.int64)

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        for effect in self.on_citizen:
            self._count(effect, effect.strike(day, today), today)
        for kind in self.kinds:
            kind.settle([e for e in self.on_citizen if type(e) is kind], day)
        group = engine.citizens.group
        for si, svc in enumerate(engine.scenario.services):
            cand, p, u = self.demand[si].draw(engine.streams.rng(f"demand:{svc.name}", day), 1)
            accept = u[0] < p
            who, u_other = cand[accept], u[1][accept]
            self.attempts[si] += np.bincount(group[who], minlength=self.n_groups)
            today.row[f"attempts_{svc.name}"] = len(who)
            served = np.ones(len(who), bool)
            for effect in self.on_service[si]:
                hit = served & effect.holds(day, who)
                served = effect.serve(served, hit)
                self._count(effect, who[hit], today)
            for response in engine.responses:
                response.attempted(si, who, served, u_other, today)

    def _count(self, effect, who: np.ndarray, today: Today) -> None:
        state = self.engine.state
        if effect.sanction:
            scatter_add(state.sanctions, who, 1)
            today.sanctioned.append(who)
        else:
            scatter_add(state.rewards, who, 1)
            today.rewarded.append(who)
        self.applied[effect.index] += np.bincount(self.engine.citizens.group[who],
                                                  minlength=self.n_groups)
        today.row[f"applied_{effect.consequence.name}"] = len(who)
