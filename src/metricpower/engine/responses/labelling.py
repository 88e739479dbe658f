"""Labelling: others than the state (employers, lenders) turn a publicly labelled
citizen away from the services they check."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import scatter_add
from metricpower.engine.responses.base import Response, register


@register
class Labelling(Response):
    name = "labelling"

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
        #: Refusals by service and group.
        self.refused = np.zeros((len(sc.services), self.n_groups), dtype=np.int64)

    def attempted(self, si, who, served, u, today):
        if si not in self.checked:
            return
        state = self.engine.state
        refused = served & state.labelled[who] & (u < self.refusal)
        scatter_add(state.sanctions, who[refused], 1)
        today.sanctioned.append(who[refused])
        self.refused[si] += np.bincount(self.engine.citizens.group[who[refused]],
                                        minlength=self.n_groups)
        today.row[f"refused_{self.engine.scenario.services[si].name}"] = int(refused.sum())
