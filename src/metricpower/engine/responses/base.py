"""The response interface and its registry."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.stages.base import Stage, Today
from metricpower.scenario.schema import Scenario

#: Response classes by mechanism name, in the order the loop runs them.
RESPONSES: dict[str, type[Response]] = {}


def register(cls: type[Response]) -> type[Response]:
    """Class decorator: make a response available under its `name`."""
    RESPONSES[cls.name] = cls
    return cls


class Response(Stage):
    """A way people respond. Besides its end-of-day `step` (after the consequences), it
    may scale the rate at which citizens act (`scale`) and act on service attempts
    (`attempted`)."""

    @classmethod
    def wanted(cls, scenario: Scenario) -> bool:
        """Whether the scenario switches it on."""
        return getattr(scenario.responses, cls.name).enabled

    def scale(self, bi: int, day: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """A float32 factor on the rate of behaviour `bi` on `day` for the citizens asked
        about (None: it does not touch that behaviour)."""
        return None

    def attempted(self, si: int, who: np.ndarray, served: np.ndarray, u: np.ndarray,
                  today: Today) -> None:
        """Attempts `who` on service `si`, `served` after the consequences; `u` is a
        uniform per attempt, kept for responses."""

    def step(self, day: int, today: Today) -> None:
        """End-of-day work, after the consequences."""
