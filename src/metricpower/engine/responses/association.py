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
    #: The network is changed in place: it is saved here, with the log of changes.
    carries = ("ties", "tie_changes")

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.spec = sc.responses.association
        # Made mutable once; rebuilt at a dated change, it goes on with the same ties.
        if not isinstance(engine.network, Ties):
            engine.network = Ties(engine.network)
        self.ties = engine.network
        tiers = [t.name for t in sc.tiers]
        avoid_tier = np.zeros(len(tiers), bool)
        if reads_friends(engine.compiled.values()):
            for name in self.spec.avoid_tiers:
                avoid_tier[tiers.index(name)] = True
        self.avoid_tier = engine.backend.asarray(avoid_tier)
        # Where each region's citizens start, per member of the engine (in the engine's
        # numbering): row m, column r; flattened.
        regions = len(sc.population.regions)
        mb = engine.members
        self.bounds = engine.backend.asarray(np.concatenate([
            start + np.concatenate([[0], np.cumsum(np.bincount(c.region, minlength=regions))])
            for start, c in zip(mb.start[:-1], mb.populations, strict=True)]))
        self.width = regions + 1
        #: (day, citizen, friend, formed, public) per batch of changes.
        self.tie_changes: list[tuple[int, np.ndarray, np.ndarray, bool, np.ndarray]] = []

    def step(self, day, today):
        spec, state, sc = self.spec, self.engine.state, self.engine.scenario
        xp, bk = self.engine.xp, self.engine.backend
        public = xp.zeros(self.engine.n, dtype=xp.bool)
        if spec.public_lists:
            for s in sc.lists:
                if s.public:
                    public |= state.on_list[s.name]
        avoided = public | self.avoid_tier[state.tier]
        target = xp.nonzero(avoided)[0]
        mb = self.engine.members
        rngs = mb.rngs("association", day)

        def uniform(citizens):
            """A uniform per entry, from its member's stream (citizens say whose)."""
            return bk.asarray(mb.uniform(rngs, citizens))

        def member(citizens):
            return xp.astype(bk.asarray(mb.members_of(citizens)), xp.int64)

        dropped, dropper, where = bk.on_network(self.ties.friends_of, target, avoided)
        go = (uniform(dropped) < spec.drop) & ~avoided[dropper]
        dropper, dropped, where = dropper[go], dropped[go], where[go]
        bk.on_network(self.ties.drop, dropped, dropper, where)
        reason = public[dropped]  # True: a public list; False: the association rule
        host = bk.to_numpy
        self.tie_changes.append((day, host(dropper), host(dropped), False, host(reason)))
        # Each side may replace the tie: the dropper among the well-regarded of their
        # region, the dropped among the other avoided (of their own member) — the network
        # sorts itself.
        formed = uniform(dropper) < spec.form
        a = dropper[formed]
        at = member(a) * self.width + xp.astype(self.engine.citizens.region[a], xp.int64)
        size = xp.astype(self.bounds[at + 1] - self.bounds[at], xp.float64)
        b = self.bounds[at] + xp.astype(uniform(a) * size, xp.int64)
        ok = ~avoided[b] & (a != b)
        outcast = dropped[formed]
        counts = mb.count_of(target)
        first = bk.asarray(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        among = bk.asarray(counts.astype(np.float64))
        m = member(outcast)
        other = target[first[m] + xp.astype(uniform(outcast) * among[m], xp.int64)]
        a = xp.concat([a[ok], outcast])
        b = xp.concat([b[ok], other])
        why = xp.concat([reason[formed][ok], reason[formed]])
        keep = a != b
        a, b, why = a[keep], b[keep], why[keep]
        made = bk.on_network(self.ties.form, a, b)
        a, b, why = a[made], b[made], why[made]
        self.tie_changes.append((day, host(a), host(b), True, host(why)))
        today.row.update(ties_dropped=mb.count_of(dropper), ties_formed=mb.count_of(a))

    def tie_log(self) -> dict[str, np.ndarray]:
        """Every change to the network as columns: day, citizen, friend, formed (else
        dropped), public (a public list was the reason, else the association rule)."""
        return tie_log(self.tie_changes)


def tie_log(changes: list[tuple]) -> dict[str, np.ndarray]:
    parts = changes or [(0, np.zeros(0, np.int64), np.zeros(0, np.int64), False,
                         np.zeros(0, bool))]
    sizes = [len(p[1]) for p in parts]
    return {
        "day": np.repeat(np.array([p[0] for p in parts], np.int16), sizes),
        "citizen": np.concatenate([p[1] for p in parts]).astype(np.int64),
        "friend": np.concatenate([p[2] for p in parts]).astype(np.int64),
        "formed": np.repeat(np.array([p[3] for p in parts], bool), sizes),
        "public": np.concatenate([p[4] for p in parts]).astype(bool),
    }
