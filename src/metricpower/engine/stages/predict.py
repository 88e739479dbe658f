"""Predict: a risk model refit on what the system has seen flags citizens before the
fact (consequences can target `flagged`); each flag is judged later on what it
predicted (a fall to the bottom)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.stages.base import Stage, Today


class Predict(Stage):
    name = "predict"

    def __init__(self, engine):
        super().__init__(engine)
        spec = engine.scenario.responses.prediction
        self.risk = RiskModel(spec.horizon, spec.threshold, engine.streams.rng("prediction"))
        #: Confusion counts by group, one row per prediction day and group.
        self.predictions: list[dict] = []

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        state, spec = engine.state, engine.scenario.responses.prediction
        at_bottom = state.tier >= engine.scenario.bottom
        self.predictions += self.risk.judge(day, at_bottom, engine.citizens.group,
                                            len(engine.scenario.population.groups))
        if (day + 1) % spec.every == 0:
            def features(rows):
                """What the system has seen of these citizens."""
                cols = [state.score[rows], np.minimum(day - state.last_penalty[rows], 365),
                        state.sanctions[rows]]
                cols += [w.counts[rows] for w in engine.windows.values()]
                cols += [on[rows] for on in state.on_list.values()]
                return np.column_stack(cols).astype(np.float32)

            flagged = self.risk.refit_and_flag(day, features, at_bottom)
            if flagged is not None:
                state.flagged = flagged
        today.row["flagged"] = int(state.flagged.sum())


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

    def __init__(self, horizon: int, threshold: float, rng: np.random.Generator):
        self.horizon, self.threshold, self.rng = horizon, threshold, rng
        self._snapshots: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []

    def refit_and_flag(self, day: int, features: Callable[[slice | np.ndarray], np.ndarray],
                       at_bottom: np.ndarray) -> np.ndarray | None:
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
        self._pending.append((day, flagged, at_bottom.copy()))
        return flagged

    def judge(self, day: int, at_bottom: np.ndarray, group: np.ndarray, n_groups: int):
        """Confusion counts by group for the flags made `horizon` days ago, over the
        citizens not at the bottom then: positive is being at the bottom now."""
        rows = []
        while self._pending and self._pending[0][0] + self.horizon <= day:
            made, flagged, bottom_then = self._pending.pop(0)
            judged = ~bottom_then
            fell = at_bottom & judged
            for g in range(n_groups):
                m = (group == g) & judged
                f, t = flagged[m], fell[m]
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
