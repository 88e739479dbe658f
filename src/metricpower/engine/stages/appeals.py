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

    def __init__(self, engine):
        super().__init__(engine)
        self.spec = engine.scenario.responses.appeals
        self.office = AppealOffice()
        self.index = {b.name: i for i, b in enumerate(engine.scenario.behaviours)}

    def step(self, day: int, today: Today) -> None:
        filed = sum(self._file(day, *penalty) for penalty in today.penalties)
        self.engine.score.apply(day, today, *self._decide(day, today, filed))

    def _file(self, day, entry, citizen, ri, points, bi, sensor, benign, misattributed) -> int:
        spec, state = self.spec, self.engine.state
        p = (spec.probability * (np.abs(points) / 10.0) ** spec.points_elasticity
             * state.income[citizen].astype(np.float64) ** spec.income_elasticity)
        u = self.engine.streams.rng(f"appeal:{ri}", day).random(len(citizen))
        go = u < p
        k = int(go.sum())
        self.office.file(entry=entry[go], day=np.full(k, day), citizen=citizen[go],
                         rule=np.full(k, ri), points=points[go], behaviour=np.full(k, bi),
                         sensor=sensor[go], benign=benign[go], misattributed=misattributed[go],
                         filed=np.full(k, day))
        return k

    def _decide(self, day: int, today: Today, filed: int) -> tuple[list, list]:
        spec, engine = self.spec, self.engine
        rng = engine.streams.rng("appeal_office", day)
        if spec.capacity_per_100k == "unlimited":
            capacity = self.office.waiting
        else:
            mean = spec.capacity_per_100k * engine.n / 1e5
            capacity = int(mean) + int(rng.random() < mean - int(mean))
        case = self.office.take(day, capacity, spec.decision_days)
        chance = np.where(case["misattributed"], spec.success_misattributed,
                          np.where(case["benign"], spec.success_benign, spec.success_true))
        upheld = rng.random(len(chance)) < chance
        citizen = case["citizen"][upheld].astype(np.int64)
        back = -case["points"][upheld].astype(np.int32)
        engine.ledger.append(day, citizen, case["rule"][upheld].astype(np.int16), back,
                             case["behaviour"][upheld].astype(np.int16),
                             case["sensor"][upheld].astype(np.int16),
                             case["benign"][upheld].astype(bool),
                             case["misattributed"][upheld].astype(bool),
                             reverses=case["entry"][upheld].astype(np.int64))
        behaviour = case["behaviour"][upheld].astype(np.int64)
        when = case["day"][upheld].astype(np.int64)
        # The reversed act no longer counts where conditions count acts (thresholds,
        # list grounds, confiscation).
        for (name, _), window in engine.windows.items():
            mine = behaviour == self.index[name]
            window.withdraw(citizen[mine], day - when[mine])
        today.reversed.append((citizen, behaviour, when))
        waited = day - when
        today.row.update(appeals_filed=filed, appeals_decided=len(chance),
                         appeals_upheld=int(upheld.sum()),
                         appeals_upheld_misattributed=int(case["misattributed"][upheld].sum()),
                         appeals_upheld_benign=int(case["benign"][upheld].sum()),
                         redress_days=int(waited.sum()), appeals_waiting=self.office.waiting)
        return [citizen], [back]


class AppealOffice:
    """Penalties wait in a first-in, first-out queue; the office decides `capacity` a day,
    each at least `decision_days` after it was filed."""

    FIELDS = ("entry", "day", "citizen", "rule", "points", "behaviour", "sensor", "benign",
              "misattributed", "filed")

    def __init__(self):
        self._chunks: deque[dict[str, np.ndarray]] = deque()  # in filing order
        self.waiting = 0

    def file(self, **columns: np.ndarray) -> None:
        if len(columns["citizen"]):
            self._chunks.append(columns)
            self.waiting += len(columns["citizen"])

    def take(self, day: int, capacity: int, decision_days: int) -> dict[str, np.ndarray]:
        """Up to `capacity` of the oldest appeals that are ripe for a decision. Appeals
        are filed in day order, so the ripe ones are at the head of the queue: a day
        costs the appeals decided, not the length of the queue."""
        taken: list[dict[str, np.ndarray]] = []
        left = capacity
        while self._chunks and left > 0:
            head = self._chunks[0]
            ripe = int(np.searchsorted(head["filed"], day - decision_days, side="right"))
            k = min(ripe, left)
            if k == 0:
                break
            taken.append({f: v[:k] for f, v in head.items()})
            left -= k
            if k == len(head["citizen"]):
                self._chunks.popleft()
            else:
                self._chunks[0] = {f: v[k:] for f, v in head.items()}
                if k == ripe:  # the rest of the queue was filed later still
                    break
        self.waiting -= capacity - left
        if not taken:
            return {f: np.zeros(0) for f in self.FIELDS}
        return {f: np.concatenate([t[f] for t in taken]) for f in self.FIELDS}
