"""The engine: a day is a loop over stages, in this order —

1. occur and observe (`stages/occur.py`): what citizens do, what sensors see;
2. score (`stages/score.py`): rules turn events and states into points;
3. appeals (`stages/appeals.py`, when on): penalties appealed, some reversed;
4. categorise (`stages/categorise.py`): lists entered and left;
5. predict (`stages/predict.py`, when on): the risk model flags citizens;
6. consequences (`stages/consequences.py`): effects (`effects/`) on citizens and on
   service attempts;
7. the responses switched on (`responses/`, alphabetically: association, deterrence,
   economy, labelling), whose end-of-day work comes here (deterrence and labelling act
   through the occur and consequences stages instead);
8. record (`stages/record.py`): the day's row and raw snapshots.

Every stage works on whole arrays; the only per-item loops are over the policy's
behaviours, rules, lists and services, never over citizens. The arrays are the
backend's (engine/backend.py): stages call the array API standard through `Engine.xp`
and the backend's primitives for what the standard lacks.

An engine may hold several members of an ensemble side by side (engine/members.py,
`Engine.batch`): the same policy on other seeds and populations, each member's results
those of its own run; `member(m)` is what member m's run recorded.

Between two days the engine's state is what the engine and each stage declare in
`carries` (engine/carry.py): `checkpoint` collects it, `resume` puts it back. A dated
change (`[[changes]]`, `Scenario.segments`) takes effect at the start of its day:
`retarget` rebuilds every stage from the new scenario, each with what it carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from metricpower.engine.backend import Backend
from metricpower.engine.backend import backend as default_backend
from metricpower.engine.carry import Carrier
from metricpower.engine.context import Conditions
from metricpower.engine.members import Members
from metricpower.engine.observe import Observer
from metricpower.engine.responses import RESPONSES
from metricpower.engine.responses.association import tie_log
from metricpower.engine.stages.appeals import Appeals
from metricpower.engine.stages.base import Stage, Today
from metricpower.engine.stages.categorise import Categorise
from metricpower.engine.stages.consequences import Consequences
from metricpower.engine.stages.occur import OccurAndObserve
from metricpower.engine.stages.predict import Predict
from metricpower.engine.stages.record import Record
from metricpower.engine.stages.score import Score
from metricpower.engine.state import State
from metricpower.engine.windows import EventWindow
from metricpower.ledger import Ledger
from metricpower.population import Citizens, Network
from metricpower.scenario.schema import Scenario


@dataclass
class Recorded:
    """What one member's run recorded, for its tables (runs._tables): its scenario and
    citizens, their state and friends at the end, the daily rows, totals by group, tier
    snapshots, the risk model's judged flags, the ledger, and the logs of moves to and
    from the bottom and of changes to the network."""

    scenario: Scenario
    citizens: Citizens
    n: int
    state: State
    friends: np.ndarray
    daily: list[dict]
    applied: np.ndarray
    attempts: np.ndarray
    refused: np.ndarray
    snapshots: dict[int, np.ndarray]
    predictions: list[dict]
    ledger: Ledger
    bottom: dict[str, np.ndarray]
    ties: dict[str, np.ndarray]


#: Above this many citizens the ledger keeps a sample of this many (unless set).
LEDGER_SAMPLE_MAX = 250_000


class Engine(Carrier):
    """Builds the run's shared state (citizens, state, streams, ledger, network,
    conditions) and the stages, then runs the loop day after day.

    The population arrives in NumPy; the citizens and the state are moved into the
    backend's arrays here, and `host()` moves them back for the run's tables."""

    #: The shared state that changes as days pass (the network, when it changes, is
    #: carried by the association response).
    carries = ("state", "windows", "ledger", "daily")

    def __init__(self, scenario: Scenario, citizens: Citizens, network: Network,
                 backend: Backend | None = None, members: Members | None = None):
        self.backend = bk = backend or default_backend()
        #: The runs held (one, unless built by `batch`); their streams are the run's.
        self.members = members or Members([scenario], [citizens], bk.to_numpy)
        # Dated changes (scenario.segments): the engine starts on the scenario in force on
        # day 0 and takes up each later one on its first day (`retarget`).
        (_, first), *later = scenario.segments()
        self.changes: dict[int, Scenario] = dict(later)
        self.population = citizens
        self.citizens = Citizens(**{k: bk.asarray(v) for k, v in citizens.columns().items()})
        self.scenario, self.network = first, network
        self.n = n = len(citizens)
        self.state = State.start(first, citizens).converted(bk.asarray)
        self.xp = bk.namespace(self.state.score)
        # The event counts every segment's conditions read, kept from day 0: what the
        # sensors saw before a change is on record when a condition set by it counts.
        # Sorted: a set of strings iterates in an order that changes from process to
        # process, and the risk model reads the windows as columns (a resumed run must
        # see them as the run before did).
        self.windows = {key: EventWindow(n, key[1], bk) for key in sorted(
            set().union(*(s.windows() for _, s in scenario.segments())))}
        self.ledger = Ledger(self._ledger_sample(), [r.name for r in first.rules],
                             [b.name for b in first.behaviours],
                             [s.name for s in first.sensors],
                             None if self.members.one else self.members.of)
        self._build([])
        self.daily: list[dict] = []
        self._logs_cache: dict | None = None
        self.stage_seconds = dict.fromkeys((s.name for s in self.stages), 0.0)

    @classmethod
    def batch(cls, scenarios: list[Scenario], populations: list[tuple[Citizens, Network]],
              backend: Backend | None = None) -> Engine:
        """One engine for several members: `scenarios` differing in their seeds only, each
        on its population (citizens and a network of its own, which the engine may
        change)."""
        bk = backend or default_backend()
        citizens = [c for c, _ in populations]
        members = Members(list(scenarios), citizens, bk.to_numpy)
        return cls(scenarios[0], Citizens.join(citizens),
                   Network.join([net for _, net in populations]), bk, members)

    def _build(self, previous: list[Stage]) -> None:
        """What is worked out from the scenario in force: the observer, the compiled
        conditions, the points at stake, and the stages (with the responses and the
        consequences' effects). A stage in `previous` (a dated change) is rebuilt by its
        `retarget`, with what it carries."""
        sc, bk = self.scenario, self.backend
        before = {type(s): s for s in previous}

        def build(cls: type[Stage]) -> Stage:
            return before[cls].retarget(self) if cls in before else cls(self)

        self.observer = Observer(sc, self.members, bk)
        self.compiled = sc.conditions()
        # Points the rules can take per act of each behaviour (hidden offences are the
        # acts of a behaviour with some).
        self.penalty = [sum(-r.points for r in sc.rules
                            if r.kind == "event" and r.behaviour == b.name and r.is_penalty)
                        for b in sc.behaviours]
        # Responses first: a response may change what the others read (association
        # makes the network mutable).
        self.responses = [build(cls) for cls in RESPONSES.values() if cls.wanted(sc)]
        self.conditions = Conditions(self.compiled, self.citizens, self.network, self.state,
                                     self.windows, bk)
        res = sc.responses
        self.score, self.categorise = build(Score), build(Categorise)
        self.consequences = build(Consequences)
        self.appeals = build(Appeals) if res.appeals.enabled else None
        self.predict = build(Predict) if res.prediction.enabled else None
        self.record = build(Record)
        self.stages: list[Stage] = [s for s in (
            build(OccurAndObserve), self.score, self.appeals, self.categorise, self.predict,
            self.consequences, *self.responses, self.record) if s is not None]

    def retarget(self, scenario: Scenario) -> None:
        """Take up the parameters in force from today (a dated change: the same entries by
        name, new values). Everything worked out from parameters is rebuilt from
        `scenario`; what the run has done goes on: what the engine and each stage carry
        (citizens' state, the ledger, the event windows, the network, totals, queues,
        the risk model). A cap or an hours schedule set today counts from today."""
        self.scenario = scenario
        self.state.add_rule_totals(scenario, self.backend.asarray)
        self._build(self.stages)

    def _ledger_sample(self) -> np.ndarray:
        """Whose ledger records are kept (NumPy, as the ledger is), each member's drawn
        from its own stream."""
        return np.concatenate([self._kept(int(n), rng) for n, rng in zip(
            self.members.size, self.members.rngs("ledger_sample"), strict=True)])

    def _kept(self, n: int, rng: np.random.Generator) -> np.ndarray:
        share = self.scenario.run.ledger_sample
        if share is None:
            share = min(1.0, LEDGER_SAMPLE_MAX / n)
        if share >= 1.0:
            return np.ones(n, dtype=bool)
        return rng.random(n) < share

    def step(self, day: int) -> dict:
        if day in self.changes:
            self.retarget(self.changes[day])
        today = Today(day, {"day": day})
        clock = time.perf_counter
        for stage in self.stages:
            t0 = clock()
            stage.step(day, today)
            # Where the time goes, for the benchmark's profile.
            self.stage_seconds[stage.name] += clock() - t0
        # The row holds one value per member; a run of one keeps plain numbers.
        row = today.row if not self.members.one else {
            k: v if v is None or isinstance(v, int | float) else v[0].item()
            for k, v in today.row.items()}
        self.daily.append(row)
        return row

    def run(self, progress: Callable[[int], None] | None = None, start: int = 0) -> None:
        """Run the days from `start` (0, or the day after a checkpoint) to the last."""
        for day in range(start, self.scenario.run.days):
            self.step(day)
            if progress is not None:
                progress(day)

    def checkpoint(self, day: int) -> dict:
        """The whole state at the end of `day`: the engine's and every stage's."""
        return {"day": day, "engine": self.carried(),
                "stages": {s.name: s.carried() for s in self.stages}}

    def resume(self, saved: dict) -> int:
        """Put a checkpoint's state in place of this (new) engine's; returns the day to
        go on from. The stages are first those of the scenario in force on that day (a
        dated change before it)."""
        taken_up = [day for day in self.changes if day <= saved["day"]]
        if taken_up:
            self.retarget(self.changes[max(taken_up)])
        stages = {s.name: s for s in self.stages}
        if set(saved["stages"]) != set(stages):
            raise ValueError(f"the checkpoint holds the stages {sorted(saved['stages'])}, "
                             f"this scenario runs {sorted(stages)}")
        self.restore(saved["engine"])
        for name, carried in saved["stages"].items():
            stages[name].restore(carried)
        return saved["day"] + 1

    def host(self) -> None:
        """Move the citizens and the state back to NumPy, for the run's tables (after the
        last step; nothing to do on a NumPy backend)."""
        self.citizens = self.population
        self.state = self.state.converted(self.backend.to_numpy)

    def log(self, day: int, citizen, rule, points, *evidence, **reverses):
        """Record score changes in the ledger (kept in NumPy: it becomes a table); their
        entry numbers come back in the backend's arrays."""
        host = self.backend.to_numpy
        entry = self.ledger.append(day, host(citizen), host(rule), host(points),
                                   *map(host, evidence),
                                   **{k: host(v) for k, v in reverses.items()})
        return self.backend.asarray(entry)

    def response(self, name: str):
        """The response `name` if the scenario switches it on, else None."""
        return next((r for r in self.responses if r.name == name), None)

    def _logs(self) -> dict:
        """What the members' records are cut from, worked out once for all members: each
        member's daily rows (a row holds one value per member; split column by column,
        not value by value), the moves to and from the bottom, the network's changes."""
        if self._logs_cache is None:
            daily = self.daily
            if not self.members.one:
                daily = [[{} for _ in self.daily] for _ in range(self.members.count)]
                for day, row in enumerate(self.daily):
                    for key, v in row.items():
                        if v is None or isinstance(v, int | float):
                            for mine in daily:
                                mine[day][key] = v
                        else:
                            for mine, x in zip(daily, v.tolist(), strict=True):
                                mine[day][key] = x
            association = self.response("association")
            self._logs_cache = {
                "daily": daily, "bottom": self.record.bottom_log(),
                "ties": association.tie_log() if association is not None else tie_log([])}
        return self._logs_cache

    def member(self, m: int) -> Recorded:
        """What member `m`'s run recorded, as its own run would have it (citizens
        numbered from 0; after `host`)."""
        mb, host, logs = self.members, self.backend.to_numpy, self._logs()
        a, b = int(mb.start[m]), int(mb.start[m + 1])

        def mine(log: dict[str, np.ndarray], *ids: str) -> dict[str, np.ndarray]:
            keep = (log["citizen"] >= a) & (log["citizen"] < b)
            return {k: v[keep] - a if k in ids else v[keep] for k, v in log.items()}

        # Totals by group are kept in NumPy, per member.
        labelling = self.response("labelling")
        attempts = self.consequences.attempts[m]
        return Recorded(
            scenario=mb.scenarios[m], citizens=mb.populations[m], n=b - a,
            state=self.state.converted(lambda v: v[a:b]),
            friends=host(self.network.friend_count())[a:b],
            daily=logs["daily"] if mb.one else logs["daily"][m],
            applied=self.consequences.applied[m], attempts=attempts,
            refused=(labelling.refused[m] if labelling is not None
                     else np.zeros_like(attempts)),
            snapshots={d: host(t)[a:b] for d, t in self.record.snapshots.items()},
            predictions=self.predict.predictions[m] if self.predict is not None else [],
            ledger=self.ledger.part(a, b, m), bottom=mine(logs["bottom"], "citizen"),
            ties=mine(logs["ties"], "citizen", "friend"))
