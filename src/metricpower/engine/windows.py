"""Counts of observed events per citizen over a sliding window of days.

A ring of the last `days` days' event arrays plus a running count per citizen: adding a
day costs as much as that day's events and the events that fall out of the window.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from metricpower.engine.backend import Backend


class EventWindow:
    def __init__(self, n: int, days: int, backend: Backend):
        self.days, self.backend = days, backend
        self.counts = backend.asarray(np.zeros(n, dtype=np.int32))
        self._ring: deque = deque()

    def add(self, citizens) -> None:
        """Record one day's observed events (citizen indices, repeats allowed)."""
        self.backend.scatter_add(self.counts, citizens, 1)
        self._ring.append(citizens)
        if len(self._ring) > self.days:
            self.backend.scatter_add(self.counts, self._ring.popleft(), -1)

    def withdraw(self, citizens, days_ago) -> None:
        """Take back one event of each citizen recorded `days_ago` days before today (0:
        today), where the window still holds it: an appeal reversed its penalty."""
        bk = self.backend
        xp = bk.namespace(self.counts)
        for ago in bk.to_numpy(bk.unique(days_ago)).tolist():
            if ago >= len(self._ring):
                continue
            day = len(self._ring) - 1 - ago
            events, back = self._ring[day], xp.sort(citizens[days_ago == ago])
            # Drop the first k events of a citizen taken back k times (k: how often the
            # citizen is among those taken back).
            owed = (xp.searchsorted(back, events, side="right")
                    - xp.searchsorted(back, events, side="left"))
            gone = bk.rank_within(events) < owed
            bk.scatter_add(self.counts, events[gone], -1)
            self._ring[day] = events[~gone]
