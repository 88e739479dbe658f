"""confiscate_pet: the citizen's pet is taken (and is walked by nobody after)."""

from __future__ import annotations

import numpy as np

from metricpower.engine.effects.base import Effect, register


@register
class ConfiscatePet(Effect):
    name = "confiscate_pet"

    def strike(self, day, today):
        state = self.engine.state
        hit = self.holds(day) & state.pet_owner
        state.pet_owner[hit] = False
        state.pets_confiscated |= hit
        return np.flatnonzero(hit)
