"""Responses: how people change under the system, and the ways out it offers.

- `Ties`: the social network as it changes when people drop bad company;
- `AppealOffice`: a capacity-limited queue that can reverse penalties;
- `RiskModel`: a prediction refit on what the system has seen, judged on hidden truth.
"""

from __future__ import annotations

import numpy as np

from metricpower.population import Network


class Ties:
    """The network under association avoidance. Dropped ties vanish at once (a mask);
    new ties are kept aside and folded into the CSR arrays when someone next reads the
    network, so rows never need sorting and nothing is rebuilt on quiet days."""

    def __init__(self, network: Network):
        self._net = network
        self._active = np.ones(len(network.indices), dtype=bool)
        self._new_a: list[np.ndarray] = []
        self._new_b: list[np.ndarray] = []
        self._dirty = False

    @property
    def network(self) -> Network:
        if self._dirty:
            self._compact()
        return self._net

    def friends_of(self, citizens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Active ties out of `citizens`: (citizen, friend, position of the tie)."""
        net = self._net
        start, stop = net.indptr[citizens], net.indptr[citizens + 1]
        lens = stop - start
        owner = np.repeat(citizens, lens)
        offset = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        pos = np.repeat(start, lens) + offset
        live = self._active[pos]
        pos = pos[live]
        return owner[live], net.indices[pos].astype(np.int64), pos

    def drop(self, a: np.ndarray, pos_ab: np.ndarray) -> None:
        """Drop ties a→b at positions `pos_ab`, and their mirror images b→a."""
        net = self._net
        b = net.indices[pos_ab].astype(np.int64)
        self._active[pos_ab] = False
        start, stop = net.indptr[b], net.indptr[b + 1]
        lens = stop - start
        owner_a = np.repeat(a, lens)
        pos = np.repeat(start, lens) + np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens,
                                                                         lens)
        self._active[pos[net.indices[pos] == owner_a]] = False
        self._dirty = True

    def form(self, a: np.ndarray, b: np.ndarray) -> None:
        keep = a != b
        self._new_a.append(a[keep])
        self._new_b.append(b[keep])
        self._dirty = True

    def _compact(self) -> None:
        """Fold drops and new ties into fresh CSR arrays in O(ties), without sorting."""
        net, n = self._net, len(self._net.indptr) - 1
        owner = net.owner()[self._active]
        dst = net.indices[self._active]
        new_a = np.concatenate(self._new_a) if self._new_a else np.zeros(0, np.int64)
        new_b = np.concatenate(self._new_b) if self._new_b else np.zeros(0, np.int64)
        src = np.concatenate([owner, new_a, new_b]).astype(np.int64)
        dst = np.concatenate([dst, new_b, new_a]).astype(np.int32)
        order = np.argsort(src, kind="stable")
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        self._net = Network(indptr=indptr, indices=dst[order])
        self._active = np.ones(len(dst), dtype=bool)
        self._new_a, self._new_b = [], []
        self._dirty = False


class AppealOffice:
    """Penalties wait in a first-in, first-out queue; the office decides `capacity` a day,
    each at least `decision_days` after it was filed."""

    FIELDS = ("entry", "day", "citizen", "rule", "points", "behaviour", "sensor", "benign",
              "misattributed", "filed")

    def __init__(self):
        self._chunks: list[dict[str, np.ndarray]] = []
        self.waiting = 0

    def file(self, **columns: np.ndarray) -> None:
        if len(columns["citizen"]):
            self._chunks.append(columns)
            self.waiting += len(columns["citizen"])

    def take(self, day: int, capacity: int, decision_days: int) -> dict[str, np.ndarray]:
        """Up to `capacity` of the oldest appeals that are ripe for a decision."""
        if not self._chunks:
            return {f: np.zeros(0) for f in self.FIELDS}
        queue = {f: np.concatenate([c[f] for c in self._chunks]) for f in self.FIELDS}
        ripe = np.flatnonzero(queue["filed"] <= day - decision_days)[:capacity]
        taken = {f: v[ripe] for f, v in queue.items()}
        rest = np.ones(len(queue["citizen"]), bool)
        rest[ripe] = False
        self._chunks = [{f: v[rest] for f, v in queue.items()}] if rest.any() else []
        self.waiting = int(rest.sum())
        return taken


class RiskModel:
    """Logistic regression on what the system sees (score, recent observed events,
    days clean, lists), refit every few days to predict a fall to the bottom tier within
    the horizon. Its flags are later judged against the hidden truth: did the citizen
    really commit a rule-breaking act (not a benign one) within the horizon?"""

    #: Most citizens the model is fitted on (a seeded sample beyond that).
    FIT_SAMPLE = 20_000

    def __init__(self, horizon: int, threshold: float, rng: np.random.Generator):
        self.horizon, self.threshold, self.rng = horizon, threshold, rng
        self._snapshots: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []

    def refit_and_flag(self, day: int, features: np.ndarray, at_bottom: np.ndarray,
                       offences: np.ndarray) -> np.ndarray | None:
        """Store today's features; fit on the snapshot `horizon` days old (label: reached
        the bottom since); flag today's citizens. None until there is history to fit on."""
        self._snapshots[day] = (features, at_bottom.copy())
        old = day - self.horizon
        if old not in self._snapshots:
            return None
        x_old, bottom_then = self._snapshots.pop(old)
        fell = at_bottom & ~bottom_then
        fit_on = np.flatnonzero(~bottom_then)
        if len(fit_on) > self.FIT_SAMPLE:
            fit_on = self.rng.choice(fit_on, self.FIT_SAMPLE, replace=False)
        if fell[fit_on].all() or not fell[fit_on].any():
            return None
        mean, sd = x_old.mean(axis=0), x_old.std(axis=0) + 1e-9
        coef = fit_logistic((x_old[fit_on] - mean) / sd, fell[fit_on])
        risk = predict_logistic(coef, (features - mean) / sd)
        flagged = (risk >= self.threshold) & ~at_bottom
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
