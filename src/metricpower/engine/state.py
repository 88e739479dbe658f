"""What the system knows and does to each citizen, as arrays (one per attribute)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from metricpower.engine.backend import namespace
from metricpower.population import Citizens
from metricpower.scenario.schema import Scenario


@dataclass
class State:
    score: np.ndarray               # int32
    tier: np.ndarray                # int8, 0 = best tier
    last_penalty: np.ndarray        # int32, day of the last penalty (-1: start of the run)
    pet_owner: np.ndarray           # bool: pets can be confiscated
    labelled: np.ndarray            # bool: publicly labelled now
    on_list: dict[str, np.ndarray]  # list name -> bool
    list_since: dict[str, np.ndarray]   # list name -> int32 day of entry
    #: list name -> int32: observed acts the list's entry condition counts, since entry
    #: (what the listing rests on; an appeal that reverses the last one withdraws it)
    list_grounds: dict[str, np.ndarray] = field(default_factory=dict)
    rule_total: dict[str, np.ndarray] = field(default_factory=dict)  # capped rule -> |points|
    sanctions: np.ndarray = None    # int32 sanctions suffered (denials, throttles, …)
    rewards: np.ndarray = None      # int32 rewards received
    pets_confiscated: np.ndarray = None  # bool
    labelled_since: np.ndarray = None    # int32: day the current labelling began
    labelled_before: np.ndarray = None   # int32: days labelled in earlier spells
    listed_before: dict[str, np.ndarray] = field(default_factory=dict)  # earlier spells
    income: np.ndarray = None            # float32, moves under economic feedback
    flagged: np.ndarray = None           # bool: the risk model flags the citizen
    true_offences: np.ndarray = None     # int32: real rule-breaking acts, seen or not
    acts: np.ndarray = None              # int32: everything the citizen did
    observed: np.ndarray = None          # int32: of which a sensor saw (not false matches)
    rule_hours: dict[str, np.ndarray] = field(default_factory=dict)  # scheduled rule -> hours

    @classmethod
    def start(cls, scenario: Scenario, citizens: Citizens) -> State:
        n = len(citizens)
        score = np.full(n, scenario.population.initial_score, dtype=np.int32)
        lists = [s.name for s in scenario.lists]
        state = cls(
            score=score,
            tier=tiers_of(scenario, score),
            last_penalty=np.full(n, -1, dtype=np.int32),
            pet_owner=citizens.pet_owner.copy(),
            labelled=np.zeros(n, dtype=bool),
            on_list={name: np.zeros(n, dtype=bool) for name in lists},
            list_since={name: np.zeros(n, dtype=np.int32) for name in lists},
            list_grounds={name: np.zeros(n, dtype=np.int32) for name in lists},
            sanctions=np.zeros(n, dtype=np.int32),
            rewards=np.zeros(n, dtype=np.int32),
            pets_confiscated=np.zeros(n, dtype=bool),
            labelled_since=np.zeros(n, dtype=np.int32),
            labelled_before=np.zeros(n, dtype=np.int32),
            listed_before={name: np.zeros(n, dtype=np.int32) for name in lists},
            income=citizens.income.copy(),
            flagged=np.zeros(n, dtype=bool),
            true_offences=np.zeros(n, dtype=np.int32),
            acts=np.zeros(n, dtype=np.int32),
            observed=np.zeros(n, dtype=np.int32),
        )
        state.add_rule_totals(scenario)
        return state

    def add_rule_totals(self, scenario: Scenario, convert: Callable = np.asarray) -> None:
        """Per-citizen totals for the rules with a cap (points taken) or an hours schedule
        (hours done) that have none yet: all of them at the start, those given one by a
        dated change on its day (counted from then), made in NumPy and passed through
        `convert` (into the backend's arrays, mid-run)."""
        n = self.score.shape[0]
        for r in scenario.rules:
            if r.cap and r.name not in self.rule_total:
                self.rule_total[r.name] = convert(np.zeros(n, dtype=np.int32))
            if r.schedule and r.name not in self.rule_hours:
                self.rule_hours[r.name] = convert(np.zeros(n, dtype=np.float32))

    def converted(self, convert: Callable) -> State:
        """The same state with every array passed through `convert` (into or out of a
        backend's arrays)."""
        def each(value):
            if isinstance(value, dict):
                return {k: convert(v) for k, v in value.items()}
            return convert(value)

        return State(**{f.name: each(getattr(self, f.name)) for f in fields(self)})

    def relabel(self, now, day: int, backend) -> None:
        """Who is publicly labelled from today; spells are counted when they end."""
        xp = namespace(now)
        start = xp.nonzero(now & ~self.labelled)[0]
        end = xp.nonzero(self.labelled & ~now)[0]
        backend.set_at(self.labelled_before, end,
                       self.labelled_before[end] + (day - self.labelled_since[end]))
        backend.set_at(self.labelled_since, start, day)
        self.labelled = now

    def days_labelled(self, days: int) -> np.ndarray:
        """Days each citizen was publicly labelled in a run of `days` days."""
        xp = namespace(self.labelled)
        return self.labelled_before + xp.where(self.labelled, days - self.labelled_since, 0)

    def days_listed(self, name: str, days: int) -> np.ndarray:
        """Days each citizen spent on list `name` in a run of `days` days."""
        on = self.on_list[name]
        xp = namespace(on)
        return self.listed_before[name] + xp.where(on, days - self.list_since[name], 0)


def tiers_of(scenario: Scenario, score: np.ndarray) -> np.ndarray:
    """Tier index of each score (0 = best): the number of tier floors above it."""
    xp = namespace(score)
    floors = xp.asarray(np.array(scenario.tier_floors[::-1], dtype=np.int64))  # ascending
    above = floors.shape[0] - xp.searchsorted(floors, score, side="right")
    return xp.astype(above, xp.int8)
