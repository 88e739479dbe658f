"""Responses: how people change under the system, and the ways out it offers.

- `Ties`: the social network as it changes when people drop bad company;
- `AppealOffice`: a capacity-limited queue that can reverse penalties;
- `RiskModel`: a prediction refit on what the system has seen, judged on hidden truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from metricpower.population import Network


class Ties(Network):
    """The network under association avoidance, changed in place without rebuilding.

    A dropped tie's two slots in the CSR arrays point at citizen n, one past the last,
    which reductions read as nobody; new ties are kept as a list of pairs beside the CSR
    arrays. Reductions and counts cover both. The network's arrays are changed in place
    (at national scale a copy would not fit): hand it a network nobody else uses."""

    def __init__(self, network: Network):
        super().__init__(indptr=network.indptr, indices=network.indices)
        self.n = len(network.indptr) - 1
        self.active_degree = network.degree.astype(np.int32)
        # New ties: pairs [0, formed) of these arrays (spare room after), alive or dropped.
        self.pair_a = np.zeros(0, np.int64)
        self.pair_b = np.zeros(0, np.int64)
        self.alive = np.zeros(0, bool)
        self.formed = 0

    def friend_count(self) -> np.ndarray:
        return self.active_degree

    def _pairs(self):
        a, b = self.pair_a[self.alive], self.pair_b[self.alive]
        return np.concatenate([a, b]), np.concatenate([b, a])

    def friend_sum(self, values: np.ndarray) -> np.ndarray:
        out = super().friend_sum(values)
        owner, friend = self._pairs()
        np.add.at(out, owner, np.asarray(values, np.float64)[friend])
        return out

    def friend_min(self, values: np.ndarray) -> np.ndarray:
        out = super().friend_min(values)
        owner, friend = self._pairs()
        np.minimum.at(out, owner, np.asarray(values, np.float64)[friend])
        return out

    def friends_of(self, citizens: np.ndarray, wanted: np.ndarray):
        """Live ties from `citizens` (wanted[c] is True for them): (citizen, friend, where);
        `where` is the CSR slot, or -(k + 1) for the k-th new tie."""
        start, stop = self.indptr[citizens], self.indptr[citizens + 1]
        lens = stop - start
        owner = np.repeat(citizens, lens)
        pos = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        friend = self.indices[pos].astype(np.int64)
        live = friend < self.n
        owner, friend, pos = owner[live], friend[live], pos[live]
        # New ties, from whichever end (or both ends) is wanted.
        fwd = np.flatnonzero(self.alive & wanted[self.pair_a])
        back = np.flatnonzero(self.alive & wanted[self.pair_b])
        return (np.concatenate([owner, self.pair_a[fwd], self.pair_b[back]]),
                np.concatenate([friend, self.pair_b[fwd], self.pair_a[back]]),
                np.concatenate([pos, -(fwd + 1), -(back + 1)]))

    def drop(self, owner: np.ndarray, friend: np.ndarray, where: np.ndarray) -> None:
        """Drop ties (both directions) found by `friends_of`."""
        new = where < 0
        self.alive[-where[new] - 1] = False
        slot, a, b = where[~new], owner[~new], friend[~new]
        self.indices[slot] = self.n
        # The mirror slot: in b's row, the one that points at a.
        start, lens = self.indptr[b], self.indptr[b + 1] - self.indptr[b]
        pos = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        mirror = pos[self.indices[pos] == np.repeat(a, lens)]
        self.indices[mirror] = self.n
        np.subtract.at(self.active_degree, owner, 1)
        np.subtract.at(self.active_degree, friend, 1)

    def form(self, a: np.ndarray, b: np.ndarray) -> None:
        # Grow the pair arrays by doubling, so a day's new ties cost what they are.
        used = self.formed
        if used + len(a) > len(self.pair_a):
            size = max(2 * len(self.pair_a), used + len(a), 1024)
            for name in ("pair_a", "pair_b", "alive"):
                old = getattr(self, name)
                new = np.zeros(size, old.dtype)
                new[:used] = old[:used]
                setattr(self, name, new)
        self.pair_a[used:used + len(a)] = a
        self.pair_b[used:used + len(a)] = b
        self.alive[used:used + len(a)] = True
        self.formed = used + len(a)
        np.add.at(self.active_degree, a, 1)
        np.add.at(self.active_degree, b, 1)


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


class RiskModel:
    """Logistic regression on what the system sees (score, recent observed events,
    days clean, lists), refit every few days to predict a fall to the bottom tier within
    the horizon. Its flags are later judged against the hidden truth: did the citizen
    really commit a rule-breaking act (not a benign one) within the horizon?"""

    #: Citizens sampled (seeded) on each refit day to fit the model on later.
    FIT_SAMPLE = 20_000
    #: Citizens scored per pass when predicting (bounds the temporary memory).
    CHUNK = 1 << 20

    def __init__(self, horizon: int, threshold: float, rng: np.random.Generator):
        self.horizon, self.threshold, self.rng = horizon, threshold, rng
        self._snapshots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []

    def refit_and_flag(self, day: int, features: Callable[[slice | np.ndarray], np.ndarray],
                       at_bottom: np.ndarray, offences: np.ndarray) -> np.ndarray | None:
        """Keep today's features for a sample of citizens; fit on the sample kept
        `horizon` days ago (label: reached the bottom since); flag today's citizens.
        `features(rows)` gives the feature matrix of those citizens. None until there is
        history to fit on."""
        n = len(at_bottom)
        sample = np.sort(self.rng.choice(n, min(n, self.FIT_SAMPLE), replace=False))
        self._snapshots[day] = (sample, features(sample), at_bottom[sample])
        old = day - self.horizon
        if old not in self._snapshots:
            return None
        rows, x_old, bottom_then = self._snapshots.pop(old)
        fell = at_bottom[rows] & ~bottom_then
        fit_on = ~bottom_then
        if fell[fit_on].all() or not fell[fit_on].any():
            return None
        mean, sd = x_old.mean(axis=0), x_old.std(axis=0) + 1e-9
        coef = fit_logistic((x_old[fit_on] - mean) / sd, fell[fit_on])
        flagged = np.zeros(n, dtype=bool)
        for start in range(0, n, self.CHUNK):
            part = slice(start, min(start + self.CHUNK, n))
            risk = predict_logistic(coef, (features(part) - mean) / sd)
            flagged[part] = (risk >= self.threshold) & ~at_bottom[part]
        self._pending.append((day, flagged, offences.copy()))
        return flagged

    def judge(self, day: int, offences: np.ndarray, group: np.ndarray, n_groups: int):
        """Confusion counts by group for predictions made `horizon` days ago: the hidden
        truth is a true rule-breaking act in between."""
        rows = []
        while self._pending and self._pending[0][0] + self.horizon <= day:
            made, flagged, before = self._pending.pop(0)
            truth = offences > before
            for g in range(n_groups):
                m = group == g
                f, t = flagged[m], truth[m]
                rows.append({"day": made, "group": g, "tp": int((f & t).sum()),
                             "fp": int((f & ~t).sum()), "fn": int((~f & t).sum()),
                             "tn": int((~f & ~t).sum())})
        return rows


def _design(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x.astype(np.float64)])


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method (intercept unpenalised), the
    same objective as scikit-learn's LogisticRegression(C=1/l2)."""
    a = _design(x)
    y = y.astype(np.float64)
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def predict_logistic(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(_design(x) @ coef)))
