"""confiscate_pet: the citizen's pet is taken (and is walked by nobody after)."""

from __future__ import annotations

from metricpower.engine.effects.base import Effect, register


@register
class ConfiscatePet(Effect):
    name = "confiscate_pet"

    def strike(self, day, today):
        state, xp = self.engine.state, self.engine.xp
        hit = self.holds(day) & state.pet_owner
        state.pet_owner[hit] = False
        state.pets_confiscated |= hit
        return xp.nonzero(hit)[0]
