"""Categorise: citizens enter lists (blacklists, redlists) when a list's condition holds
and leave after its minimum stay, when its exit condition holds."""

from __future__ import annotations

import numpy as np

from metricpower.engine.stages.base import Stage, Today


class Categorise(Stage):
    name = "categorise"

    def __init__(self, engine):
        super().__init__(engine)
        #: Members of each list, kept as they enter and leave.
        self.list_size = np.zeros(len(engine.scenario.lists), dtype=np.int64)

    def step(self, day: int, today: Today) -> None:
        state, holds, row = self.engine.state, self.engine.conditions.holds, today.row
        for li, spec in enumerate(self.engine.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            holds_enter = holds(f"lists[{li}].enter", day)
            members = np.flatnonzero(on)
            served = members[day - since[members] >= spec.min_days]
            if spec.exit is not None:
                leave = served[holds(f"lists[{li}].exit", day, served)]
            else:
                leave = served[~holds_enter[served]]
            enter = np.flatnonzero(holds_enter & ~on)
            on[enter] = True
            since[enter] = day
            on[leave] = False
            state.listed_before[spec.name][leave] += day - since[leave]
            self.list_size[li] += len(enter) - len(leave)
            row[f"entered_{spec.name}"] = len(enter)
            row[f"left_{spec.name}"] = len(leave)
