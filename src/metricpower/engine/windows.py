"""Counts of observed events per citizen over a sliding window of days.

A ring of the last `days` days' event arrays plus a running count per citizen: adding a
day costs as much as that day's events and the events that fall out of the window.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from metricpower.engine.backend import rank_within, scatter_add


class EventWindow:
    def __init__(self, n: int, days: int):
        self.days = days
        self.counts = np.zeros(n, dtype=np.int32)
        self._ring: deque[np.ndarray] = deque()

    def add(self, citizens: np.ndarray) -> None:
        """Record one day's observed events (citizen indices, repeats allowed)."""
        scatter_add(self.counts, citizens, 1)
        self._ring.append(citizens)
        if len(self._ring) > self.days:
            scatter_add(self.counts, self._ring.popleft(), -1)

    def withdraw(self, citizens: np.ndarray, days_ago: np.ndarray) -> None:
        """Take back one event of each citizen recorded `days_ago` days before today (0:
        today), where the window still holds it: an appeal reversed its penalty."""
        for ago in np.unique(days_ago):
            if ago >= len(self._ring):
                continue
            day = len(self._ring) - 1 - int(ago)
            events, back = self._ring[day], citizens[days_ago == ago]
            # Drop the first k events of a citizen taken back k times.
            who, times = np.unique(back, return_counts=True)
            at = np.minimum(np.searchsorted(who, events), len(who) - 1)
            owed = np.where(who[at] == events, times[at], 0)
            gone = rank_within(events) < owed
            scatter_add(self.counts, events[gone], -1)
            self._ring[day] = events[~gone]
