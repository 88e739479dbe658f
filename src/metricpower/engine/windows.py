"""Counts of observed events per citizen over a sliding window of days.

A ring of the last `days` days' event arrays plus a running count per citizen: adding a
day costs as much as that day's events and the events that fall out of the window.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from metricpower.engine.backend import scatter_add


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
