"""Categorise: citizens enter lists (blacklists, redlists) when a list's condition holds
and leave after its minimum stay, when its exit condition holds, or when the listing
expires (`max_days`); a listing whose ground an appeal reversed today is withdrawn."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import scatter_add, unique
from metricpower.engine.stages.base import Stage, Today


class Categorise(Stage):
    name = "categorise"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        #: Members of each list, kept as they enter and leave.
        self.list_size = np.zeros(len(sc.lists), dtype=np.int64)
        index = {b.name: i for i, b in enumerate(sc.behaviours)}
        #: Per list, the behaviours its entry condition counts (their acts are grounds).
        self.grounds = [sorted({index[b] for b, _ in sc.windows(f"lists[{li}].enter")})
                        for li in range(len(sc.lists))]

    def step(self, day: int, today: Today) -> None:
        state, holds, row = self.engine.state, self.engine.conditions.holds, today.row
        appeals = self.engine.scenario.responses.appeals.enabled
        for li, spec in enumerate(self.engine.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            grounds = state.list_grounds[spec.name]
            withdrawn = self._withdrawn(li, day, today)
            holds_enter = holds(f"lists[{li}].enter", day)
            members = np.flatnonzero(on)
            stay = day - since[members]
            served = members[stay >= spec.min_days]
            if spec.exit is not None:
                leave = served[holds(f"lists[{li}].exit", day, served)]
            else:
                leave = served[~holds_enter[served]]
            if spec.max_days is not None:
                leave = np.union1d(leave, members[stay >= spec.max_days])
            leave = np.union1d(leave, withdrawn)
            enter = np.flatnonzero(holds_enter & ~on)
            on[enter] = True
            since[enter] = day
            grounds[enter] = 0
            on[leave] = False
            for bi in self.grounds[li]:
                acts = today.events[bi].citizen if bi in today.events else np.zeros(0, np.int64)
                scatter_add(grounds, acts[on[acts]], 1)
            state.listed_before[spec.name][leave] += day - since[leave]
            self.list_size[li] += len(enter) - len(leave)
            row[f"entered_{spec.name}"] = len(enter)
            row[f"left_{spec.name}"] = len(leave)
            if appeals:
                row[f"withdrawn_{spec.name}"] = len(withdrawn)

    def _withdrawn(self, li: int, day: int, today: Today) -> np.ndarray:
        """Members of list `li` whose listing rested on penalties reversed today: each
        reversal of a penalty for an act the entry condition counts, recorded since the
        listing, takes one act from what the listing rests on; with none left, and the
        entry condition false now (the appeals stage took the act out of the windows),
        the listing is withdrawn."""
        engine = self.engine
        spec = engine.scenario.lists[li]
        on, since = engine.state.on_list[spec.name], engine.state.list_since[spec.name]
        grounds = engine.state.list_grounds[spec.name]
        out = []
        for citizen, behaviour, when in today.reversed:
            for bi in self.grounds[li]:
                hit = citizen[(behaviour == bi) & on[citizen] & (when >= since[citizen])]
                scatter_add(grounds, hit, -1)
                c = unique(hit)
                c = c[grounds[c] <= 0]
                if len(c):
                    out.append(c[~engine.conditions.holds(f"lists[{li}].enter", day, c)])
        return unique(np.concatenate(out)) if out else np.zeros(0, np.int64)
