"""reward: the attempt is served with a perk (a discount, a fast lane, cheap credit)."""

from __future__ import annotations

from metricpower.engine.effects.base import Effect, register


@register
class Reward(Effect):
    name = "reward"
