"""Appeals: penalised citizens may appeal (the richer and the harder hit more often); a
capacity-limited office (one per member of the engine) decides the oldest ripe appeals,
and an upheld appeal reverses its penalty with a new ledger entry, takes the act out of
the event windows, and tells the categorise stage, which withdraws a listing that
rested on it."""

from __future__ import annotations

from collections import deque

import numpy as np

from metricpower.engine.stages.base import Stage, Today


class Appeals(Stage):
    name = "appeals"
    carries = ("offices",)

    def __init__(self, engine):
        super().__init__(engine)
        self.spec = engine.scenario.responses.appeals
        self.offices = [AppealOffice(engine.xp) for _ in range(engine.members.count)]
        self.index = {b.name: i for i, b in enumerate(engine.scenario.behaviours)}

    def step(self, day: int, today: Today) -> None:
        filed = sum((self._file(day, *penalty) for penalty in today.penalties),
                    np.zeros(self.engine.members.count, np.int64))
        self.engine.score.apply(day, today, *self._decide(day, today, filed))

    def _file(self, day, entry, citizen, ri, points, bi, sensor, benign, misattributed):
        """File the appeals against one rule's penalties today; returns how many each
        member filed."""
        mb = self.engine.members
        n = citizen.shape[0]
        if not n:  # nothing to appeal, nothing drawn
            return np.zeros(mb.count, np.int64)
        spec, state = self.spec, self.engine.state
        xp, bk = self.engine.xp, self.engine.backend
        p = (spec.probability * (xp.astype(xp.abs(points), xp.float64) / 10.0)
             ** spec.points_elasticity
             * xp.astype(state.income[citizen], xp.float64) ** spec.income_elasticity)
        u = bk.asarray(mb.uniform(mb.rngs(f"appeal:{ri}", day), citizen))
        go = u < p
        k = int(xp.count_nonzero(go))
        columns = dict(entry=entry[go], day=xp.full(k, day), citizen=citizen[go],
                       rule=xp.full(k, ri), points=points[go], behaviour=xp.full(k, bi),
                       sensor=sensor[go], benign=benign[go], misattributed=misattributed[go],
                       filed=xp.full(k, day))
        for office, mine in zip(self.offices, mb.parts(columns["citizen"]), strict=True):
            mine = mine if isinstance(mine, slice) else bk.asarray(mine)
            office.file(**{f: v[mine] for f, v in columns.items()})
        return mb.count_of(columns["citizen"])

    def _decide(self, day: int, today: Today, filed) -> tuple[list, list]:
        spec, engine = self.spec, self.engine
        xp, bk, mb = engine.xp, engine.backend, engine.members
        cases, draws = [], []
        for office, rng, n in zip(self.offices, mb.rngs("appeal_office", day), mb.size,
                                  strict=True):
            if spec.capacity_per_100k == "unlimited":
                capacity = office.waiting
            else:
                mean = spec.capacity_per_100k * int(n) / 1e5
                capacity = int(mean) + int(rng.random() < mean - int(mean))
            case = office.take(day, capacity, spec.decision_days)
            cases.append(case)
            draws.append(rng.random(case["citizen"].shape[0]))
        # An office with nothing to decide hands back columns of no particular type.
        some = [k for k, c in enumerate(cases) if c["citizen"].shape[0]] or [0]
        case = {f: xp.concat([cases[k][f] for k in some]) for f in AppealOffice.FIELDS}
        decided = np.array([c["citizen"].shape[0] for c in cases], np.int64)
        benign, misattributed = (xp.astype(case[f], xp.bool) for f in ("benign",
                                                                       "misattributed"))
        chance = xp.where(misattributed, spec.success_misattributed,
                          xp.where(benign, xp.asarray(spec.success_benign),
                                   spec.success_true))
        upheld = bk.asarray(np.concatenate(draws)) < chance
        citizen = xp.astype(case["citizen"][upheld], xp.int64)
        back = -xp.astype(case["points"][upheld], xp.int32)
        engine.log(day, citizen, xp.astype(case["rule"][upheld], xp.int16), back,
                   xp.astype(case["behaviour"][upheld], xp.int16),
                   xp.astype(case["sensor"][upheld], xp.int16),
                   benign[upheld], misattributed[upheld],
                   reverses=xp.astype(case["entry"][upheld], xp.int64))
        behaviour = xp.astype(case["behaviour"][upheld], xp.int64)
        when = xp.astype(case["day"][upheld], xp.int64)
        # The reversed act no longer counts where conditions count acts (thresholds,
        # list grounds, confiscation).
        for (name, _), window in engine.windows.items():
            mine = behaviour == self.index[name]
            window.withdraw(citizen[mine], day - when[mine])
        today.reversed.append((citizen, behaviour, when))
        waited = np.zeros(mb.count, np.int64)
        np.add.at(waited, mb.members_of(citizen), bk.to_numpy(day - when))
        today.row.update(
            appeals_filed=filed, appeals_decided=decided,
            appeals_upheld=mb.count_of(citizen),
            appeals_upheld_misattributed=mb.count_of(citizen[misattributed[upheld]]),
            appeals_upheld_benign=mb.count_of(citizen[benign[upheld]]),
            redress_days=waited,
            appeals_waiting=np.array([o.waiting for o in self.offices], np.int64))
        return [citizen], [back]

class AppealOffice:
    """Penalties wait in a first-in, first-out queue; the office decides `capacity` a day,
    each at least `decision_days` after it was filed."""

    FIELDS = ("entry", "day", "citizen", "rule", "points", "behaviour", "sensor", "benign",
              "misattributed", "filed")

    def __init__(self, xp=np):
        self.xp = xp
        self._chunks: deque[dict[str, np.ndarray]] = deque()  # in filing order
        self.waiting = 0

    def file(self, **columns: np.ndarray) -> None:
        if k := columns["citizen"].shape[0]:
            self._chunks.append(columns)
            self.waiting += k

    def take(self, day: int, capacity: int, decision_days: int) -> dict[str, np.ndarray]:
        """Up to `capacity` of the oldest appeals that are ripe for a decision. Appeals
        are filed in day order, so the ripe ones are at the head of the queue: a day
        costs the appeals decided, not the length of the queue."""
        xp = self.xp
        taken: list[dict[str, np.ndarray]] = []
        left = capacity
        while self._chunks and left > 0:
            head = self._chunks[0]
            ripe = int(xp.searchsorted(head["filed"], xp.asarray([day - decision_days]),
                                       side="right")[0])
            k = min(ripe, left)
            if k == 0:
                break
            taken.append({f: v[:k] for f, v in head.items()})
            left -= k
            if k == head["citizen"].shape[0]:
                self._chunks.popleft()
            else:
                self._chunks[0] = {f: v[k:] for f, v in head.items()}
                if k == ripe:  # the rest of the queue was filed later still
                    break
        self.waiting -= capacity - left
        if not taken:
            return {f: xp.zeros(0) for f in self.FIELDS}
        return {f: xp.concat([t[f] for t in taken]) for f in self.FIELDS}
