"""Occur and observe: what citizens do (hidden truth), what the sensors see of it, and
the cameras' false matches."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.backend import scatter_add
from metricpower.engine.observe import concat
from metricpower.engine.stages.base import Stage, Today


class OccurAndObserve(Stage):
    name = "occur_and_observe"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.observer = engine.observer
        self.penalised = [p > 0 for p in engine.penalty]
        self.windows_of = [[w for (name, _), w in engine.windows.items() if name == b.name]
                           for b in sc.behaviours]

    def propensity(self, bi: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """How much responses scale the rate of the citizens asked about (None: not at
        all); worked out only for the day's candidates, not for everyone."""
        scales = [s for s in (r.scale(bi) for r in self.engine.responses) if s is not None]
        if not scales:
            return None
        headroom = np.float32(self.observer.headroom[bi])

        def scale(who: np.ndarray) -> np.ndarray:
            factor = np.float32(1.0)
            for s in scales:
                factor = factor * s(who)
            return np.minimum(factor, headroom)

        return scale

    def step(self, day: int, today: Today) -> None:
        obs, state, row = self.observer, self.engine.state, today.row
        false = obs.false_matches(day)
        totals = dict.fromkeys(("occurrences", "benign_occurrences", "observed",
                                "chilled", "benign_chilled"), 0)
        for bi, b in enumerate(self.engine.scenario.behaviours):
            cand, keep, would, is_benign, u_sensor = obs.occurrences(day, bi,
                                                                     self.propensity(bi))
            if b.requires == "pet_owner":  # a confiscated pet is walked by nobody
                still = state.pet_owner[cand]
                keep, would = keep & still, would & still
            chilled = would & ~keep
            acted, acted_benign = cand[keep], is_benign[keep]
            counts = {"occurrences": len(acted),
                      "benign_occurrences": int(acted_benign.sum()),
                      "chilled": int(chilled.sum()),
                      "benign_chilled": int((chilled & is_benign).sum())}
            for key, value in counts.items():
                row[f"{key}_{b.name}"] = value
                totals[key] += value
            if self.penalised[bi]:
                scatter_add(state.true_offences, acted[~acted_benign], 1)
            today.acted[bi] = acted
            ev = obs.observe(bi, acted, acted_benign, u_sensor[:, keep])
            totals["observed"] += len(ev.citizen)
            scatter_add(state.acts, acted, 1)
            scatter_add(state.observed, ev.citizen, 1)
            if bi in false:
                ev = concat([ev, false[bi]])
            today.events[bi] = ev
            for window in self.windows_of[bi]:
                window.add(ev.citizen)
        row.update(totals, false_matches=sum(len(e.citizen) for e in false.values()))
