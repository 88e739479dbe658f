"""throttle: the service is given, worse (slow internet): a sanction, not a denial."""

from __future__ import annotations

from metricpower.engine.effects.base import Effect, register


@register
class Throttle(Effect):
    name = "throttle"
