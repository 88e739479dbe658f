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
behaviours, rules, lists and services, never over citizens.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from metricpower.engine.context import Conditions
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
from metricpower.streams import Streams

#: Above this many citizens the ledger keeps a sample of this many (unless set).
LEDGER_SAMPLE_MAX = 250_000


class Engine:
    """Builds the run's shared state (citizens, state, streams, ledger, network,
    conditions) and the stages, then runs the loop day after day."""

    def __init__(self, scenario: Scenario, citizens: Citizens, network: Network):
        self.scenario, self.citizens, self.network = scenario, citizens, network
        self.n = n = len(citizens)
        self.streams = Streams(scenario.run.seed)
        self.state = State.start(scenario, citizens)
        self.observer = Observer(scenario, citizens, self.streams)
        self.windows = {key: EventWindow(n, key[1]) for key in scenario.windows()}
        self.compiled = scenario.conditions()
        self.ledger = Ledger(self._ledger_sample(), [r.name for r in scenario.rules],
                             [b.name for b in scenario.behaviours],
                             [s.name for s in scenario.sensors])
        # Points the rules can take per act of each behaviour (hidden offences are the
        # acts of a behaviour with some).
        self.penalty = [sum(-r.points for r in scenario.rules
                            if r.kind == "event" and r.behaviour == b.name and r.is_penalty)
                        for b in scenario.behaviours]
        # Responses first: a response may change what the others read (association
        # makes the network mutable).
        self.responses = [cls(self) for cls in RESPONSES.values() if cls.wanted(scenario)]
        self.conditions = Conditions(self.compiled, citizens, self.network, self.state,
                                     self.windows)
        res = scenario.responses
        self.score, self.categorise = Score(self), Categorise(self)
        self.consequences = Consequences(self)
        self.appeals = Appeals(self) if res.appeals.enabled else None
        self.predict = Predict(self) if res.prediction.enabled else None
        self.record = Record(self)
        self.stages: list[Stage] = [s for s in (
            OccurAndObserve(self), self.score, self.appeals, self.categorise, self.predict,
            self.consequences, *self.responses, self.record) if s is not None]
        self.daily: list[dict] = []
        self.stage_seconds = dict.fromkeys((s.name for s in self.stages), 0.0)

    def _ledger_sample(self) -> np.ndarray:
        share = self.scenario.run.ledger_sample
        if share is None:
            share = min(1.0, LEDGER_SAMPLE_MAX / self.n)
        if share >= 1.0:
            return np.ones(self.n, dtype=bool)
        return self.streams.rng("ledger_sample").random(self.n) < share

    def step(self, day: int) -> dict:
        today = Today(day, {"day": day})
        clock = time.perf_counter
        for stage in self.stages:
            t0 = clock()
            stage.step(day, today)
            # Where the time goes, for the benchmark's profile.
            self.stage_seconds[stage.name] += clock() - t0
        self.daily.append(today.row)
        return today.row

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        for day in range(self.scenario.run.days):
            self.step(day)
            if progress is not None:
                progress(day)

    def response(self, name: str):
        """The response `name` if the scenario switches it on, else None."""
        return next((r for r in self.responses if r.name == name), None)

    # What the run's tables read (runs._tables).
    @property
    def applied(self) -> np.ndarray:
        return self.consequences.applied

    @property
    def attempts(self) -> np.ndarray:
        return self.consequences.attempts

    @property
    def refused(self) -> np.ndarray:
        labelling = self.response("labelling")
        return labelling.refused if labelling is not None else np.zeros_like(self.attempts)

    @property
    def snapshots(self) -> dict[int, np.ndarray]:
        return self.record.snapshots

    @property
    def predictions(self) -> list[dict]:
        return self.predict.predictions if self.predict is not None else []

    def bottom_log(self) -> dict[str, np.ndarray]:
        return self.record.bottom_log()

    def tie_log(self) -> dict[str, np.ndarray]:
        association = self.response("association")
        return association.tie_log() if association is not None else tie_log([])
