"""deny: the attempt fails (no flight, no seat, no school place)."""

from __future__ import annotations

from metricpower.engine.effects.base import Effect, register


@register
class Deny(Effect):
    name = "deny"

    def serve(self, served, hit):
        return served & ~hit
