"""Appeals: penalised citizens may appeal (the richer and the harder hit more often); a
capacity-limited office decides the oldest ripe appeals, and an upheld appeal reverses
its penalty with a new ledger entry, takes the act out of the event windows, and tells
the categorise stage, which withdraws a listing that rested on it."""

from __future__ import annotations

from collections import deque

import numpy as np

from metricpower.engine.stages.base import Stage, Today


class Appeals(Stage):
    name = "appeals"
    carries = ("office",)

    def __init__(self, engine):
        super().__init__(engine)
        self.spec = engine.scenario.responses.appeals
        self.office = AppealOffice(engine.xp)
        self.index = {b.name: i for i, b in enumerate(engine.scenario.behaviours)}

    def step(self, day: int, today: Today) -> None:
        filed = sum(self._file(day, *penalty) for penalty in today.penalties)
        self.engine.score.apply(day, today, *self._decide(day, today, filed))

    def _file(self, day, entry, citizen, ri, points, bi, sensor, benign, misattributed) -> int:
        n = citizen.shape[0]
        if not n:  # nothing to appeal, nothing drawn
            return 0
        spec, state = self.spec, self.engine.state
        xp, bk = self.engine.xp, self.engine.backend
        p = (spec.probability * (xp.astype(xp.abs(points), xp.float64) / 10.0)
             ** spec.points_elasticity
             * xp.astype(state.income[citizen], xp.float64) ** spec.income_elasticity)
        u = bk.asarray(self.engine.streams.rng(f"appeal:{ri}", day).random(n))
        go = u < p
        k = int(xp.count_nonzero(go))
        self.office.file(entry=entry[go], day=xp.full(k, day), citizen=citizen[go],
                         rule=xp.full(k, ri), points=points[go], behaviour=xp.full(k, bi),
                         sensor=sensor[go], benign=benign[go], misattributed=misattributed[go],
                         filed=xp.full(k, day))
        return k

    def _decide(self, day: int, today: Today, filed: int) -> tuple[list, list]:
        spec, engine = self.spec, self.engine
        xp, bk = engine.xp, engine.backend
        rng = engine.streams.rng("appeal_office", day)
        if spec.capacity_per_100k == "unlimited":
            capacity = self.office.waiting
        else:
            mean = spec.capacity_per_100k * engine.n / 1e5
            capacity = int(mean) + int(rng.random() < mean - int(mean))
        case = self.office.take(day, capacity, spec.decision_days)
        benign, misattributed = (xp.astype(case[f], xp.bool) for f in ("benign",
                                                                       "misattributed"))
        chance = xp.where(misattributed, spec.success_misattributed,
                          xp.where(benign, xp.asarray(spec.success_benign),
                                   spec.success_true))
        upheld = bk.asarray(rng.random(chance.shape[0])) < chance
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
        waited = day - when
        today.row.update(
            appeals_filed=filed, appeals_decided=chance.shape[0],
            appeals_upheld=int(xp.count_nonzero(upheld)),
            appeals_upheld_misattributed=int(xp.count_nonzero(misattributed[upheld])),
            appeals_upheld_benign=int(xp.count_nonzero(benign[upheld])),
            redress_days=int(xp.sum(waited)), appeals_waiting=self.office.waiting)
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
