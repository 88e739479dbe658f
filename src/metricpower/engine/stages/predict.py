"""Predict: a risk model refit on what the system has seen flags citizens before the
fact (consequences can target `flagged`); each flag is judged later on what it
predicted (a fall to the bottom)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.backend import Backend, namespace
from metricpower.engine.backend import backend as default_backend
from metricpower.engine.stages.base import Stage, Today


class Predict(Stage):
    name = "predict"
    carries = ("risks", "predictions")

    def __init__(self, engine):
        super().__init__(engine)
        spec = engine.scenario.responses.prediction
        # One model per member of the engine, fitted on its own citizens.
        self.risks = [RiskModel(spec.horizon, spec.threshold, rng, engine.xp, engine.backend)
                      for rng in engine.members.rngs("prediction")]
        #: Confusion counts by group, one row per prediction day and group (per member).
        self.predictions: list[list[dict]] = [[] for _ in self.risks]

    def retarget(self, engine):
        """The models go on (their fits, pending flags); a dated change may move the
        threshold they flag at (not their horizon: what they predict stays one thing)."""
        fresh = super().retarget(engine)
        for risk in fresh.risks:
            risk.threshold = engine.scenario.responses.prediction.threshold
        return fresh

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        state, spec, xp = engine.state, engine.scenario.responses.prediction, engine.xp
        mb = engine.members
        at_bottom = state.tier >= engine.scenario.bottom
        groups = len(engine.scenario.population.groups)
        bounds = mb.start.tolist()
        for m, risk in enumerate(self.risks):
            a, b = bounds[m], bounds[m + 1]
            self.predictions[m] += risk.judge(day, at_bottom[a:b], engine.citizens.group[a:b],
                                              groups)
        if (day + 1) % spec.every == 0:
            for m, risk in enumerate(self.risks):
                a, b = bounds[m], bounds[m + 1]

                def features(rows, a=a):
                    """What the system has seen of these citizens (numbered from the
                    member's first)."""
                    rows = (slice(rows.start + a, rows.stop + a) if isinstance(rows, slice)
                            else rows + a)
                    cols = [state.score[rows], xp.minimum(day - state.last_penalty[rows], 365),
                            state.sanctions[rows]]
                    cols += [w.counts[rows] for w in engine.windows.values()]
                    cols += [on[rows] for on in state.on_list.values()]
                    return xp.stack([xp.astype(c, xp.float32) for c in cols], axis=1)

                flagged = risk.refit_and_flag(day, features, at_bottom[a:b])
                if flagged is None:
                    continue
                if mb.one:
                    state.flagged = flagged
                else:
                    state.flagged[a:b] = flagged
        today.row["flagged"] = mb.count_of(xp.nonzero(state.flagged)[0])


class RiskModel:
    """Logistic regression on what the system sees (score, recent observed events,
    days clean, lists), refit every few days to predict a fall to the bottom tier within
    the horizon. Its flags are judged on what it predicts, once the horizon has passed:
    of the citizens not at the bottom when flagged, who is at the bottom `horizon` days
    later (the label it is fitted on), so its precision can be read against the share
    who fell (the base rate)."""

    #: Citizens sampled (seeded) on each refit day to fit the model on later.
    FIT_SAMPLE = 20_000
    #: Citizens scored per pass when predicting (bounds the temporary memory).
    CHUNK = 1 << 20

    def __init__(self, horizon: int, threshold: float, rng: np.random.Generator, xp=np,
                 backend: Backend | None = None):
        self.horizon, self.threshold, self.rng = horizon, threshold, rng
        self.xp, self.backend = xp, backend or default_backend()
        self._snapshots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []

    def refit_and_flag(self, day: int, features: Callable[[slice | np.ndarray], np.ndarray],
                       at_bottom: np.ndarray) -> np.ndarray | None:
        """Keep today's features for a sample of citizens; fit on the sample kept
        `horizon` days ago (label: reached the bottom since); flag today's citizens.
        `features(rows)` gives the feature matrix of those citizens. None until there is
        history to fit on."""
        xp = self.xp
        n = at_bottom.shape[0]
        sample = self.backend.asarray(
            np.sort(self.rng.choice(n, min(n, self.FIT_SAMPLE), replace=False)))
        self._snapshots[day] = (sample, features(sample), at_bottom[sample])
        old = day - self.horizon
        if old not in self._snapshots:
            return None
        rows, x_old, bottom_then = self._snapshots.pop(old)
        fell = at_bottom[rows] & ~bottom_then
        fit_on = ~bottom_then
        if xp.all(fell[fit_on]) or not xp.any(fell[fit_on]):
            return None
        mean, sd = xp.mean(x_old, axis=0), xp.std(x_old, axis=0) + 1e-9
        coef = fit_logistic((x_old[fit_on] - mean) / sd, fell[fit_on])
        flagged = xp.zeros(n, dtype=xp.bool)
        for start in range(0, n, self.CHUNK):
            part = slice(start, min(start + self.CHUNK, n))
            risk = predict_logistic(coef, (features(part) - mean) / sd)
            flagged[part] = (risk >= self.threshold) & ~at_bottom[part]
        self._pending.append((day, flagged, xp.asarray(at_bottom, copy=True)))
        return flagged

    def judge(self, day: int, at_bottom: np.ndarray, group: np.ndarray, n_groups: int):
        """Confusion counts by group for the flags made `horizon` days ago, over the
        citizens not at the bottom then: positive is being at the bottom now."""
        xp, rows = self.xp, []
        while self._pending and self._pending[0][0] + self.horizon <= day:
            made, flagged, bottom_then = self._pending.pop(0)
            judged = ~bottom_then
            fell = at_bottom & judged
            for g in range(n_groups):
                m = (group == g) & judged
                f, t = flagged[m], fell[m]
                count = xp.count_nonzero
                rows.append({"day": made, "group": g, "tp": int(count(f & t)),
                             "fp": int(count(f & ~t)), "fn": int(count(~f & t)),
                             "tn": int(count(~f & ~t))})
        return rows


def _design(x):
    xp = namespace(x)
    return xp.concat([xp.ones((x.shape[0], 1)), xp.astype(x, xp.float64)], axis=1)


def fit_logistic(x, y, l2: float = 1.0, steps: int = 25):
    """L2-penalised logistic regression by Newton's method (intercept unpenalised), the
    same objective as scikit-learn's LogisticRegression(C=1/l2)."""
    xp = namespace(x)
    a = _design(x)
    y = xp.astype(y, xp.float64)
    k = a.shape[1]
    w = xp.zeros(k)
    penalty = xp.concat([xp.zeros(1), xp.full(k - 1, l2)])
    for _ in range(steps):
        p = 1.0 / (1.0 + xp.exp(-(a @ w)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + xp.eye(k) * penalty
        step = xp.linalg.solve(hess + 1e-9 * xp.eye(k), grad)
        w -= step
        if float(xp.max(xp.abs(step))) < 1e-8:
            break
    return w


def predict_logistic(coef, x):
    xp = namespace(x)
    return 1.0 / (1.0 + xp.exp(-(_design(x) @ coef)))
