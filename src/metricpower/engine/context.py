"""What a rule condition can read: the citizen arrays, event windows, lists and friends.

Conditions run under the array namespace of the arrays they read (NumPy in the engine;
any array-API library through `array-api-compat`): the compiled closures call only
`ctx.xp`, and reductions over friends are the backend's (engine/backend.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metricpower.engine.backend import Backend
from metricpower.engine.state import State
from metricpower.engine.windows import EventWindow
from metricpower.population import Citizens, Network


class Context:
    """Evaluates conditions over every citizen (`idx` None) or over the citizens `idx`.

    Conditions that look at friends always run over everyone, because a friend's value
    is needed whoever the friend is.
    """

    def __init__(self, citizens: Citizens, network: Network, state: State,
                 windows: dict[tuple[str, int], EventWindow], day: int,
                 idx: np.ndarray | None = None, xp=np, backend: Backend | None = None,
                 shift: Shift | None = None):
        self.citizens, self.network, self.state = citizens, network, state
        self.windows, self.day, self.idx, self.xp = windows, day, idx, xp
        self.backend, self.shift = backend, shift

    def _take(self, values: np.ndarray) -> np.ndarray:
        return values if self.idx is None else values[self.idx]

    def var(self, name: str):
        state, citizens = self.state, self.citizens
        if name == "day":
            return self.day
        if name == "days_clean":
            return self._take(self.day - state.last_penalty)
        if name in ("score", "tier", "pet_owner", "income", "flagged"):
            return self._take(getattr(state, name))
        return self._take(getattr(citizens, name))

    def call(self, name: str, args: tuple):
        if name == "count":
            behaviour, days = args
            counts = self.windows[(behaviour, int(days))].counts
            shift = self.shift
            if shift is None or shift.behaviour != behaviour:
                return self._take(counts)
            if self.idx is not None:
                return counts[self.idx] + shift.by
            moved = self.xp.asarray(counts, copy=True)
            self.backend.set_at(moved, shift.rows, counts[shift.rows] + shift.by)
            return moved
        if name == "on_list":
            return self._take(self.state.on_list[args[0]])
        xp = self.xp
        values = xp.broadcast_to(xp.asarray(args[0]), self.state.score.shape)
        return self.backend.friends(self.network, name, values)


@dataclass(frozen=True)
class Shift:
    """A count as it stands for one act rather than as the windows hold it: `count` of
    `behaviour` is moved by `by` for the citizens `rows` (the citizens asked about; one
    asked about twice is moved once), and for nobody else."""

    behaviour: str
    by: int
    rows: np.ndarray


class Conditions:
    """The policy's compiled conditions, evaluated on the run's current state."""

    def __init__(self, compiled: dict, citizens: Citizens, network: Network, state: State,
                 windows: dict[tuple[str, int], EventWindow], backend: Backend):
        self.compiled, self.citizens, self.network = compiled, citizens, network
        self.state, self.windows, self.backend = state, windows, backend
        self.n = state.score.shape[0]
        self.xp = backend.namespace(state.score)

    def context(self, day: int, idx: np.ndarray | None = None,
                shift: Shift | None = None) -> Context:
        return Context(self.citizens, self.network, self.state, self.windows, day, idx,
                       self.xp, self.backend, shift)

    def holds(self, where: str, day: int, idx: np.ndarray | None = None,
              shift: tuple[str, int] | None = None) -> np.ndarray:
        """A condition's truth for citizens `idx` (everyone when None), as a bool array.
        `shift = (behaviour, by)`: the citizens `idx` count `by` more acts of `behaviour`
        than their windows hold."""
        cond = self.compiled[where]
        moved = None if shift is None else Shift(*shift, idx)
        if idx is not None and not reads_friends([cond]):
            return self._spread(cond(self.context(day, idx, moved)), idx.shape)
        value = self._spread(cond(self.context(day, shift=moved)), (self.n,))
        return value if idx is None else value[idx]

    def _spread(self, value, shape: tuple[int, ...]):
        """A condition's value as a bool array of `shape` (a constant, or one that reads no
        per-citizen value, is spread over it)."""
        xp = self.xp
        value = xp.asarray(value, dtype=xp.bool)
        return value if value.shape == shape else xp.broadcast_to(value, shape)


def reads_friends(conditions) -> bool:
    """Whether any of these compiled conditions reads friends' values."""
    return any(f.startswith("friends_") for c in conditions for f in c.functions)
