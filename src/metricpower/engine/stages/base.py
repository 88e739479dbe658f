"""What every stage of the day shares: the stage interface and the day's record."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from metricpower.engine.observe import Events

if TYPE_CHECKING:
    from metricpower.engine.core import Engine


class Stage(ABC):
    """One step of the day. Built once from the engine (which holds the run's shared
    state); `step` runs once a day, in the loop's order, and keeps its own state."""

    #: The stage's name, for the per-stage timer.
    name: ClassVar[str]

    def __init__(self, engine: Engine):
        self.engine = engine

    @abstractmethod
    def step(self, day: int, today: Today) -> None:
        """Do the stage's work for `day`, reading and adding to `today`."""


@dataclass
class Today:
    """What happened today, handed from stage to stage; `row` becomes the daily row."""

    day: int
    row: dict
    #: Observed events (and false matches) by behaviour, for scoring.
    events: dict[int, Events] = field(default_factory=dict)
    #: Citizens who acted, by behaviour (repeats: several acts).
    acted: dict[int, np.ndarray] = field(default_factory=dict)
    #: Penalties from event rules, for appeals: (ledger entry, citizen, rule, points,
    #: behaviour, sensor, benign, misattributed), one tuple per rule and behaviour.
    penalties: list[tuple] = field(default_factory=list)
    #: Citizens sanctioned and rewarded today (one entry each time).
    sanctioned: list[np.ndarray] = field(default_factory=list)
    rewarded: list[np.ndarray] = field(default_factory=list)
    #: Citizens whose score moved today.
    moved: list[np.ndarray] = field(default_factory=list)
    #: Penalties reversed on appeal today: (citizen, behaviour, day of the penalty).
    reversed: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
