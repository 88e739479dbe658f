"""Association: friends of avoided citizens (publicly listed, or in an avoided tier while
the policy scores friendships) drop the tie with a daily chance; then each side may make
a new tie instead. The engine's network becomes a `Ties`, changed in place."""

from __future__ import annotations

import numpy as np

from metricpower.engine.context import reads_friends
from metricpower.engine.responses.base import Response, register
from metricpower.population import Ties


@register
class Association(Response):
    name = "association"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.spec = sc.responses.association
        self.ties = engine.network = Ties(engine.network)
        tiers = [t.name for t in sc.tiers]
        self.avoid_tier = np.zeros(len(tiers), bool)
        if reads_friends(engine.compiled.values()):
            for name in self.spec.avoid_tiers:
                self.avoid_tier[tiers.index(name)] = True
        self.region_bounds = engine.citizens.region_bounds()
        #: (day, citizen, friend, formed, public) per batch of changes.
        self.tie_changes: list[tuple[int, np.ndarray, np.ndarray, bool, np.ndarray]] = []

    def step(self, day, today):
        spec, state, sc = self.spec, self.engine.state, self.engine.scenario
        public = np.zeros(self.engine.n, bool)
        if spec.public_lists:
            for s in sc.lists:
                if s.public:
                    public |= state.on_list[s.name]
        avoided = public | self.avoid_tier[state.tier]
        target = np.flatnonzero(avoided)
        rng = self.engine.streams.rng("association", day)
        dropped, dropper, where = self.ties.friends_of(target, avoided)
        go = (rng.random(len(where)) < spec.drop) & ~avoided[dropper]
        dropper, dropped, where = dropper[go], dropped[go], where[go]
        self.ties.drop(dropped, dropper, where)
        reason = public[dropped]  # True: a public list; False: the association rule
        self.tie_changes.append((day, dropper, dropped, False, reason))
        # Each side may replace the tie: the dropper among the well-regarded of their
        # region, the dropped among the other avoided — the network sorts itself.
        formed = rng.random(len(dropper)) < spec.form
        a = dropper[formed]
        bounds = self.region_bounds
        region = self.engine.citizens.region[a]
        b = bounds[region] + (rng.random(len(a)) * (bounds[region + 1] - bounds[region])
                              ).astype(np.int64)
        ok = ~avoided[b] & (a != b)
        outcast = dropped[formed]
        other = target[(rng.random(len(outcast)) * len(target)).astype(np.int64)]
        a = np.concatenate([a[ok], outcast])
        b = np.concatenate([b[ok], other])
        why = np.concatenate([reason[formed][ok], reason[formed]])
        keep = a != b
        a, b, why = a[keep], b[keep], why[keep]
        made = self.ties.form(a, b)
        a, b, why = a[made], b[made], why[made]
        self.tie_changes.append((day, a, b, True, why))
        today.row.update(ties_dropped=len(dropper), ties_formed=len(a))

    def tie_log(self) -> dict[str, np.ndarray]:
        """Every change to the network as columns: day, citizen, friend, formed (else
        dropped), public (a public list was the reason, else the association rule)."""
        return tie_log(self.tie_changes)


def tie_log(changes: list[tuple]) -> dict[str, np.ndarray]:
    parts = changes or [(0, np.zeros(0, np.int64), np.zeros(0, np.int64), False,
                         np.zeros(0, bool))]
    return {
        "day": np.concatenate([np.full(len(p[1]), p[0], np.int16) for p in parts]),
        "citizen": np.concatenate([p[1] for p in parts]).astype(np.int64),
        "friend": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "formed": np.concatenate([np.full(len(p[1]), p[3]) for p in parts]),
        "public": np.concatenate([p[4] for p in parts]).astype(bool),
    }
