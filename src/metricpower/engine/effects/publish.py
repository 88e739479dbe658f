"""publish: the citizen is publicly labelled while the condition holds; a labelling
counts as a sanction once, when it starts."""

from __future__ import annotations

from metricpower.engine.effects.base import Effect, register


@register
class Publish(Effect):
    name = "publish"

    def strike(self, day, today):
        self.now = self.holds(day)
        return self.engine.xp.nonzero(self.now & ~self.engine.state.labelled)[0]

    @classmethod
    def settle(cls, effects, day):
        engine = effects[0].engine
        xp = engine.xp
        labelled = xp.zeros(engine.state.labelled.shape, dtype=xp.bool)
        for effect in effects:
            labelled |= effect.now
        engine.state.relabel(labelled, day, engine.backend)
