"""Deterrence: citizens do less of what is penalised where they feel watched — benign
acts too (nobody can show the camera their reason)."""

from __future__ import annotations

import numpy as np

from metricpower.engine.responses.base import Response, register


@register
class Deterrence(Response):
    name = "deterrence"

    def __init__(self, engine):
        super().__init__(engine)
        spec = engine.scenario.responses.deterrence
        # Per behaviour, the factor on each citizen's rate: exp(-e · P(seen) · |points|/10).
        self.factor: list[np.ndarray | None] = []
        for bi, b in enumerate(engine.scenario.behaviours):
            penalty = engine.penalty[bi]
            if not penalty:
                self.factor.append(None)
                continue
            e = spec.elasticity.get(b.name, spec.default)
            self.factor.append(np.exp(-e * engine.observer.p_seen(bi) * penalty / 10.0)
                               .astype(np.float32))

    def scale(self, bi):
        factor = self.factor[bi]
        return None if factor is None else factor.__getitem__
