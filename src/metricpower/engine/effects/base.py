"""The effect interface and its registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from metricpower.scenario.schema import EFFECTS as KINDS
from metricpower.scenario.schema import Consequence

if TYPE_CHECKING:
    from metricpower.engine.core import Engine
    from metricpower.engine.stages.base import Today

#: Effect classes by the name a scenario's `effect` key uses.
EFFECTS: dict[str, type[Effect]] = {}


def register(cls: type[Effect]) -> type[Effect]:
    """Class decorator: make an effect available under its `name`."""
    if cls.name not in KINDS:
        raise KeyError(f"effect {cls.name!r} is not declared in scenario.schema.EFFECTS")
    EFFECTS[cls.name] = cls
    return cls


class Effect:
    """What one consequence does where its condition holds.

    A service effect (declared `on_service`) is asked about each attempt to use its
    service: `serve` says which attempts are still served. A citizen effect acts on the
    citizens themselves: `strike` does it and says whom it struck today. The
    consequences stage counts each strike as a sanction or a reward (as declared)."""

    #: The scenario's `effect` name.
    name: ClassVar[str]

    def __init__(self, engine: Engine, index: int, consequence: Consequence):
        self.engine, self.index, self.consequence = engine, index, consequence
        self.where = f"consequences[{index}].when"
        kind = KINDS[consequence.effect]
        self.on_service, self.sanction = kind.on_service, kind.sanction

    def holds(self, day: int, idx: np.ndarray | None = None) -> np.ndarray:
        return self.engine.conditions.holds(self.where, day, idx)

    def serve(self, served: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """Service effects: which attempts are still served after those `hit`."""
        return served

    def strike(self, day: int, today: Today) -> np.ndarray:
        """Citizen effects: act on the citizens it holds for; return whom it struck."""
        return np.flatnonzero(self.holds(day))

    @classmethod
    def settle(cls, effects: list[Effect], day: int) -> None:
        """After every citizen effect of this kind has struck today (`effects`)."""
