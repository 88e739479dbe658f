"""Categorise: citizens enter lists (blacklists, redlists) when a list's condition holds
and leave after its minimum stay, when its exit condition holds."""

from __future__ import annotations

from metricpower.engine.stages.base import Stage, Today


class Categorise(Stage):
    name = "categorise"

    def __init__(self, engine):
        super().__init__(engine)
        #: Members of each list, kept as they enter and leave.
        self.list_size = [0] * len(engine.scenario.lists)

    def step(self, day: int, today: Today) -> None:
        state, holds, row = self.engine.state, self.engine.conditions.holds, today.row
        xp, bk = self.engine.xp, self.engine.backend
        for li, spec in enumerate(self.engine.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            holds_enter = holds(f"lists[{li}].enter", day)
            members = xp.nonzero(on)[0]
            served = members[day - since[members] >= spec.min_days]
            if spec.exit is not None:
                leave = served[holds(f"lists[{li}].exit", day, served)]
            else:
                leave = served[~holds_enter[served]]
            enter = xp.nonzero(holds_enter & ~on)[0]
            bk.set_at(on, enter, True)
            bk.set_at(since, enter, day)
            bk.set_at(on, leave, False)
            before = state.listed_before[spec.name]
            bk.set_at(before, leave, before[leave] + (day - since[leave]))
            self.list_size[li] += enter.shape[0] - leave.shape[0]
            row[f"entered_{spec.name}"] = enter.shape[0]
            row[f"left_{spec.name}"] = leave.shape[0]
