"""Record: the day's row of running counts (kept up to date as they change, so that a
day costs what happened in it, not a pass over everyone), and the raw material the
metrics read: tier snapshots, the network's score assortativity (the network is the
engine's alone), and every move into and out of the bottom tiers."""

from __future__ import annotations

import numpy as np

from metricpower.engine.stages.base import Stage, Today

#: Every citizen's tier is kept every this many days (and on the last), for mobility.
SNAPSHOT_EVERY = 30
#: Network score assortativity is measured every this many days (and on the last day).
ASSORTATIVITY_EVERY = 30


class Record(Stage):
    name = "record"
    carries = ("snapshots", "bottom_moves", "_at_bottom")

    def __init__(self, engine):
        super().__init__(engine)
        state, sc = engine.state, engine.scenario
        #: Every citizen's tier on the snapshot days.
        self.snapshots: dict[int, np.ndarray] = {}
        #: Moves into and out of the bottom tiers: (day, entered, left) per day.
        self.bottom_moves: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._at_bottom = state.tier >= sc.bottom
        #: Each member's mean income at the start (as its own run works it out).
        self.mean_income = np.array([c.income.mean(dtype=np.float64)
                                     for c in engine.members.populations])
        self.bounds = engine.members.start.tolist()

    def step(self, day: int, today: Today) -> None:
        engine, row = self.engine, today.row
        state, sc, xp, bk = engine.state, engine.scenario, engine.xp, engine.backend
        last = day == sc.run.days - 1
        size = engine.members.size
        row["mean_score"] = engine.score.score_total / size
        row["mean_income"] = (np.array([float(xp.sum(state.income[a:b], dtype=xp.float64))
                                        for a, b in zip(self.bounds[:-1], self.bounds[1:],
                                                        strict=True)]) / size
                              if sc.responses.economy.enabled else self.mean_income)
        for i, t in enumerate(sc.tiers):
            row[f"tier_{t.name}"] = engine.score.tier_count[:, i].copy()
        for spec, listed in zip(sc.lists, engine.categorise.list_size, strict=True):
            row[f"list_{spec.name}"] = listed.copy()
        if day % SNAPSHOT_EVERY == 0 or last:
            self.snapshots[day] = xp.asarray(state.tier, copy=True)
        row["assortativity"] = (np.array(bk.assortativity(engine.network, state.score,
                                                          self.bounds))
                                if day % ASSORTATIVITY_EVERY == 0 or last else None)
        # Only citizens whose score moved today can have entered or left the bottom.
        moved = (bk.unique(xp.concat(today.moved)) if today.moved
                 else xp.zeros(0, dtype=xp.int64))
        now = state.tier[moved] >= sc.bottom
        was = self._at_bottom[moved]
        if xp.any(now != was):
            host = bk.to_numpy
            self.bottom_moves.append((day, host(moved[now & ~was]), host(moved[was & ~now])))
        bk.set_at(self._at_bottom, moved, now)

    def bottom_log(self) -> dict[str, np.ndarray]:
        """Every move into or out of the bottom tiers: day, citizen, entered (else left)."""
        parts = [(d, c, True) for d, c, _ in self.bottom_moves]
        parts += [(d, c, False) for d, _, c in self.bottom_moves]
        parts.sort(key=lambda p: (p[0], not p[2]))
        return {
            "day": np.concatenate([np.full(len(c), d, np.int16) for d, c, _ in parts]
                                  or [np.zeros(0, np.int16)]),
            "citizen": np.concatenate([c for _, c, _ in parts]
                                      or [np.zeros(0, np.int64)]).astype(np.int64),
            "entered": np.concatenate([np.full(len(c), e) for _, c, e in parts]
                                      or [np.zeros(0, bool)]),
        }
