"""publish: the citizen is publicly labelled while the condition holds; a labelling
counts as a sanction once, when it starts."""

from __future__ import annotations

import numpy as np

from metricpower.engine.effects.base import Effect, register


@register
class Publish(Effect):
    name = "publish"

    def strike(self, day, today):
        self.now = self.holds(day)
        return np.flatnonzero(self.now & ~self.engine.state.labelled)

    @classmethod
    def settle(cls, effects, day):
        state = effects[0].engine.state
        labelled = np.zeros(len(state.labelled), bool)
        for effect in effects:
            labelled |= effect.now
        state.relabel(labelled, day)
