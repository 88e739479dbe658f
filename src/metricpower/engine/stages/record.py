"""Record: the day's row of running counts (kept up to date as they change, so that a
day costs what happened in it, not a pass over everyone), and the raw snapshots that
the metrics read: tiers, the network's score assortativity, entries to the bottom."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import unique
from metricpower.engine.stages.base import Stage, Today

#: Every citizen's tier is kept every this many days (and on the last), for mobility.
SNAPSHOT_EVERY = 30
#: Network score assortativity is measured every this many days (and on the last day).
ASSORTATIVITY_EVERY = 30
#: Persistence at the bottom is checked this many days after a citizen enters it.
PERSISTENCE_DAYS = 180


class Record(Stage):
    name = "record"

    def __init__(self, engine):
        super().__init__(engine)
        state, sc = engine.state, engine.scenario
        #: Every citizen's tier on the snapshot days.
        self.snapshots: dict[int, np.ndarray] = {}
        #: Citizens who entered the bottom, by day, until they are checked.
        self.entered_bottom: dict[int, np.ndarray] = {}
        self._at_bottom = state.tier >= sc.bottom
        self.mean_income = float(engine.citizens.income.mean(dtype=np.float64))

    def step(self, day: int, today: Today) -> None:
        engine, row = self.engine, today.row
        state, sc = engine.state, engine.scenario
        last = day == sc.run.days - 1
        row["mean_score"] = engine.score.score_total / engine.n
        row["mean_income"] = (float(state.income.mean(dtype=np.float64))
                              if sc.responses.economy.enabled else self.mean_income)
        for t, c in zip(sc.tiers, engine.score.tier_count, strict=True):
            row[f"tier_{t.name}"] = int(c)
        for spec, size in zip(sc.lists, engine.categorise.list_size, strict=True):
            row[f"list_{spec.name}"] = int(size)
        if day % SNAPSHOT_EVERY == 0 or last:
            self.snapshots[day] = state.tier.copy()
        row["assortativity"] = (engine.network.assortativity(state.score)
                                if day % ASSORTATIVITY_EVERY == 0 or last else None)
        # Persistence at the bottom: of those who entered it PERSISTENCE_DAYS ago, how
        # many are there now. Only citizens whose score moved today can have entered.
        moved = unique(np.concatenate(today.moved)) if today.moved else np.zeros(0, np.int64)
        now = state.tier[moved] >= sc.bottom
        self.entered_bottom[day] = moved[now & ~self._at_bottom[moved]]
        self._at_bottom[moved] = now
        checked = self.entered_bottom.pop(day - PERSISTENCE_DAYS, np.zeros(0, np.int64))
        row.update(bottom_entered=len(self.entered_bottom[day]), bottom_checked=len(checked),
                   bottom_stayed=int(self._at_bottom[checked].sum()))
