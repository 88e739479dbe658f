"""Labelling: others than the state (employers, lenders) turn a publicly labelled
citizen away from the services they check."""

from __future__ import annotations

import numpy as np

from metricpower.engine.responses.base import Response, register


@register
class Labelling(Response):
    name = "labelling"
    carries = ("refused",)

    @classmethod
    def wanted(cls, scenario):
        return bool(scenario.responses.labelling.services)

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.refusal = sc.responses.labelling.refusal
        self.checked = {si for si, s in enumerate(sc.services)
                        if s.name in sc.responses.labelling.services}
        self.n_groups = len(sc.population.groups)
        #: Refusals by member, service and group (NumPy).
        self.refused = np.zeros((engine.members.count, len(sc.services), self.n_groups),
                                dtype=np.int64)

    def attempted(self, si, who, served, u, today):
        if si not in self.checked:
            return
        state, bk, mb = self.engine.state, self.engine.backend, self.engine.members
        refused = who[served & state.labelled[who] & (u < self.refusal)]
        bk.scatter_add(state.sanctions, refused, 1)
        today.sanctioned.append(refused)
        self.refused[:, si, :] += mb.tally(refused, self.engine.citizens.group[refused],
                                           self.n_groups)
        name = self.engine.scenario.services[si].name
        today.row[f"refused_{name}"] = mb.count_of(refused)
