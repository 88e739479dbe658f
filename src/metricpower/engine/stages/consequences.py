"""Consequences: effects on the citizen (confiscation, public labelling), then each
service's attempts, where sanctions come first (a denial ends the attempt) and rewards
go to the rest. Responses may act on attempts too (others refusing the labelled)."""

from __future__ import annotations

import numpy as np

from metricpower.engine.effects import EFFECTS
from metricpower.engine.observe import Rates, Sampler, Samplers
from metricpower.engine.stages.base import Stage, Today


class Consequences(Stage):
    name = "consequences"
    carries = ("applied", "attempts")

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.effects = [EFFECTS[c.effect](engine, ci, c) for ci, c in enumerate(sc.consequences)]
        self.on_citizen = [e for e in self.effects if not e.on_service]
        self.kinds = list(dict.fromkeys(type(e) for e in self.on_citizen))
        # Per service, its effects: sanctions first, then rewards, each in policy order.
        self.on_service = [sorted((e for e in self.effects
                                   if e.on_service and e.consequence.service == s.name),
                                  key=lambda e: (not e.sanction, e.index))
                           for s in sc.services]
        # Per service, a demand sampler per member of the engine (rates relative to the
        # member's own mean).
        mb = engine.members
        self.demand = [Samplers([Sampler(Rates(c, s.demand, s.drivers, s.requires),
                                         engine.backend) for c in mb.populations],
                                mb.start[:-1].tolist()) for s in sc.services]
        self.n_groups = len(sc.population.groups)
        #: Totals by member, consequence and group, and attempts by member, service and
        #: group (NumPy).
        m = engine.members.count
        self.applied = np.zeros((m, len(sc.consequences), self.n_groups), dtype=np.int64)
        self.attempts = np.zeros((m, len(sc.services), self.n_groups), dtype=np.int64)

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        for effect in self.on_citizen:
            self._count(effect, effect.strike(day, today), today)
        for kind in self.kinds:
            kind.settle([e for e in self.on_citizen if type(e) is kind], day)
        group, xp, mb = engine.citizens.group, engine.xp, engine.members
        for si, svc in enumerate(engine.scenario.services):
            cand, p, u = self._demand(si, day)
            accept = u[0, :] < p
            who, u_other = cand[accept], u[1, :][accept]
            self.attempts[:, si, :] += mb.tally(who, group[who], self.n_groups)
            today.row[f"attempts_{svc.name}"] = mb.count_of(who)
            served = xp.ones(who.shape, dtype=xp.bool)
            for effect in self.on_service[si]:
                hit = served & effect.holds(day, who)
                served = effect.serve(served, hit)
                self._count(effect, who[hit], today)
            for response in engine.responses:
                response.attempted(si, who, served, u_other, today)

    def _demand(self, si: int, day: int):
        """Today's candidate attempts on service `si` of every member (with one uniform
        for the attempt and one kept for responses)."""
        name = self.engine.scenario.services[si].name
        cand, p, u, _ = self.demand[si].draw(self.engine.members.rngs(f"demand:{name}", day), 1)
        to = self.engine.backend.asarray
        return to(cand), to(p), to(u)

    def _count(self, effect, who: np.ndarray, today: Today) -> None:
        state, bk, mb = self.engine.state, self.engine.backend, self.engine.members
        if effect.sanction:
            bk.scatter_add(state.sanctions, who, 1)
            today.sanctioned.append(who)
        else:
            bk.scatter_add(state.rewards, who, 1)
            today.rewarded.append(who)
        self.applied[:, effect.index, :] += mb.tally(who, self.engine.citizens.group[who],
                                                     self.n_groups)
        today.row[f"applied_{effect.consequence.name}"] = mb.count_of(who)
