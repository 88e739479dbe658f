"""Occur and observe: what citizens do (hidden truth), what the sensors see of it, and
the cameras' false matches."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.observe import Events, concat
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

    def propensity(self, bi: int, day: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """How much responses scale the rate of the citizens asked about (None: not at
        all); worked out only for the day's candidates, not for everyone."""
        scales = [s for s in (r.scale(bi, day) for r in self.engine.responses) if s is not None]
        if not scales:
            return None
        headroom, xp = self.observer.headroom[bi], self.engine.xp

        def scale(who: np.ndarray) -> np.ndarray:
            factor = scales[0](who)
            for s in scales[1:]:
                factor = factor * s(who)
            return xp.minimum(factor, headroom)

        return scale

    def able(self, bi: int, day: int, who: np.ndarray) -> np.ndarray:
        """Which of `who` can do behaviour `bi` today, so can act or be charged with it:
        a confiscated pet is walked by nobody, and a behaviour with a `when` happens only
        where it holds (paying off a listed debt needs a listing)."""
        b = self.engine.scenario.behaviours[bi]
        xp, k = self.engine.xp, who.shape[0]
        able = xp.ones(k, dtype=xp.bool)
        if b.requires == "pet_owner":
            able = able & self.engine.state.pet_owner[who]
        if b.when is not None and k:
            able = able & self.engine.conditions.holds(f"behaviours[{bi}].when", day, who)
        return able

    def step(self, day: int, today: Today) -> None:
        obs, state, row = self.observer, self.engine.state, today.row
        xp, bk = self.engine.xp, self.engine.backend
        count = self.engine.members.count_of
        false = obs.false_matches(day)
        totals = dict.fromkeys(("occurrences", "benign_occurrences", "observed",
                                "chilled", "benign_chilled"), 0)
        for bi, b in enumerate(self.engine.scenario.behaviours):
            cand, keep, would, is_benign, u_sensor = obs.occurrences(day, bi,
                                                                     self.propensity(bi, day))
            able = self.able(bi, day, cand)
            keep, would = keep & able, would & able
            chilled = would & ~keep
            acted, acted_benign = cand[keep], is_benign[keep]
            counts = {"occurrences": acted, "benign_occurrences": acted[acted_benign],
                      "chilled": cand[chilled], "benign_chilled": cand[chilled & is_benign]}
            for key, who in counts.items():
                value = count(who)
                row[f"{key}_{b.name}"] = value
                totals[key] = totals[key] + value
            if self.penalised[bi]:
                bk.scatter_add(state.true_offences, acted[~acted_benign], 1)
            today.acted[bi] = acted
            ev = obs.observe(bi, acted, acted_benign,
                             xp.take(u_sensor, xp.nonzero(keep)[0], axis=1))
            totals["observed"] = totals["observed"] + count(ev.citizen)
            bk.scatter_add(state.acts, acted, 1)
            bk.scatter_add(state.observed, ev.citizen, 1)
            if bi in false:
                wrong = false[bi]
                able = self.able(bi, day, wrong.citizen)
                false[bi] = Events(*(getattr(wrong, f)[able] for f in (
                    "citizen", "sensor", "benign", "misattributed")))
                ev = concat([ev, false[bi]])
            today.events[bi] = ev
            for window in self.windows_of[bi]:
                window.add(ev.citizen)
        row.update(totals, false_matches=sum(count(e.citizen) for e in false.values()))
