"""Categorise: citizens enter lists (blacklists, redlists) when a list's condition holds
and leave after its minimum stay, when its exit condition holds, or when the listing
expires (`max_days`); a listing whose ground an appeal reversed today is withdrawn."""

from __future__ import annotations

import numpy as np

from metricpower.engine.stages.base import Stage, Today


class Categorise(Stage):
    name = "categorise"
    carries = ("list_size",)

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        #: Members of each list (per member of the engine), kept as they enter and leave.
        self.list_size = [np.zeros(engine.members.count, np.int64) for _ in sc.lists]
        index = {b.name: i for i, b in enumerate(sc.behaviours)}
        #: Per list, the behaviours its entry condition counts (their acts are grounds).
        self.grounds = [sorted({index[b] for b, _ in sc.windows(f"lists[{li}].enter")})
                        for li in range(len(sc.lists))]

    def step(self, day: int, today: Today) -> None:
        state, holds, row = self.engine.state, self.engine.conditions.holds, today.row
        xp, bk = self.engine.xp, self.engine.backend
        count = self.engine.members.count_of
        appeals = self.engine.scenario.responses.appeals.enabled
        for li, spec in enumerate(self.engine.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            grounds = state.list_grounds[spec.name]
            withdrawn = self._withdrawn(li, day, today)
            holds_enter = holds(f"lists[{li}].enter", day)
            members = xp.nonzero(on)[0]
            stay = day - since[members]
            served = members[stay >= spec.min_days]
            if spec.exit is not None:
                leave = served[holds(f"lists[{li}].exit", day, served)]
            else:
                leave = served[~holds_enter[served]]
            if spec.max_days is not None:
                leave = bk.unique(xp.concat([leave, members[stay >= spec.max_days]]))
            leave = bk.unique(xp.concat([leave, withdrawn]))
            enter = xp.nonzero(holds_enter & ~on)[0]
            bk.set_at(on, enter, True)
            bk.set_at(since, enter, day)
            bk.set_at(grounds, enter, 0)
            bk.set_at(on, leave, False)
            for bi in self.grounds[li]:
                acts = (today.events[bi].citizen if bi in today.events
                        else xp.zeros(0, dtype=xp.int64))
                bk.scatter_add(grounds, acts[on[acts]], 1)
            before = state.listed_before[spec.name]
            bk.set_at(before, leave, before[leave] + (day - since[leave]))
            entered, left = count(enter), count(leave)
            self.list_size[li] = self.list_size[li] + entered - left
            row[f"entered_{spec.name}"] = entered
            row[f"left_{spec.name}"] = left
            if appeals:
                row[f"withdrawn_{spec.name}"] = count(withdrawn)

    def _withdrawn(self, li: int, day: int, today: Today) -> np.ndarray:
        """Members of list `li` whose listing rested on penalties reversed today: each
        reversal of a penalty for an act the entry condition counts, recorded since the
        listing, takes one act from what the listing rests on; with none left, and the
        entry condition false now (the appeals stage took the act out of the windows),
        the listing is withdrawn."""
        engine = self.engine
        xp, bk = engine.xp, engine.backend
        spec = engine.scenario.lists[li]
        on, since = engine.state.on_list[spec.name], engine.state.list_since[spec.name]
        grounds = engine.state.list_grounds[spec.name]
        out = []
        for citizen, behaviour, when in today.reversed:
            for bi in self.grounds[li]:
                hit = citizen[(behaviour == bi) & on[citizen] & (when >= since[citizen])]
                bk.scatter_add(grounds, hit, -1)
                c = bk.unique(hit)
                c = c[grounds[c] <= 0]
                if c.shape[0]:
                    out.append(c[~engine.conditions.holds(f"lists[{li}].enter", day, c)])
        return bk.unique(xp.concat(out)) if out else xp.zeros(0, dtype=xp.int64)
