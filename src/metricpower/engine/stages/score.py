"""Score: event rules on the day's observed events, then periodic rules and restoration,
which see the day's penalties (nobody penalised today is restored today). Every score
change goes to the ledger; tiers follow the score."""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import cumsum_within, rank_within, scatter_add, unique
from metricpower.engine.stages.base import Stage, Today
from metricpower.engine.state import tiers_of


class Score(Stage):
    name = "score"

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.event_rules = {bi: [] for bi in range(len(sc.behaviours))}
        index = {b.name: i for i, b in enumerate(sc.behaviours)}
        for i, r in enumerate(sc.rules):
            if r.kind == "event":
                self.event_rules[index[r.behaviour]].append(i)
        # Running totals, kept as scores change, so a day costs what happened in it.
        self.score_total = int(engine.state.score.sum(dtype=np.int64))
        self.tier_count = np.bincount(engine.state.tier, minlength=len(sc.tiers))

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        rules, state, ledger = engine.scenario.rules, engine.state, engine.ledger
        initial = engine.scenario.population.initial_score
        who, pts = [], []
        counts = dict.fromkeys(("penalties", "benign_penalties", "misattributed_penalties",
                                "reward_events"), 0)
        for bi, ev in today.events.items():
            for ri in self.event_rules[bi]:
                rule = rules[ri]
                hit = np.ones(len(ev.citizen), bool)
                if rule.when is not None and len(ev.citizen):
                    hit = self._holds_per_act(ri, bi, day, ev.citizen)
                citizen = ev.citizen[hit]
                points = self._scheduled(ri, citizen) if rule.schedule else rule.points
                points = self._capped(ri, citizen, points)
                got = points != 0
                citizen, points = citizen[got], points[got]
                sensor = ev.sensor[hit][got]
                benign, misattributed = ev.benign[hit][got], ev.misattributed[hit][got]
                entry = ledger.append(day, citizen, ri, points, bi, sensor, benign,
                                      misattributed)
                who.append(citizen)
                pts.append(points)
                if rule.is_penalty:
                    counts["penalties"] += len(citizen)
                    counts["benign_penalties"] += int(benign.sum())
                    counts["misattributed_penalties"] += int(misattributed.sum())
                    today.penalties.append((entry, citizen, ri, points, bi, sensor, benign,
                                            misattributed))
                else:
                    counts["reward_events"] += len(citizen)
        self.apply(day, today, who, pts)
        for ri, rule in enumerate(rules):
            if rule.kind == "event" or (day + 1) % rule.every:
                continue
            if rule.kind == "periodic":
                citizen = np.flatnonzero(engine.conditions.holds(f"rules[{ri}].when", day))
                points = np.full(len(citizen), rule.points, np.int32)
            else:  # restoration: up to the initial score after a clean spell
                clean = (day - state.last_penalty >= rule.clean_days)
                citizen = np.flatnonzero(clean & (state.score < initial))
                points = np.minimum(rule.points, initial - state.score[citizen])
            points = self._capped(ri, citizen, points)
            got = points != 0
            citizen, points = citizen[got], points[got].astype(np.int32)
            ledger.append(day, citizen, ri, points)
            self.apply(day, today, [citizen], [points])
            counts["penalties" if rule.is_penalty else "reward_events"] += len(citizen)
        today.row.update(counts)

    def apply(self, day: int, today: Today, who: list[np.ndarray],
              pts: list[np.ndarray]) -> None:
        """Add points to scores; a penalty restarts the clean clock; tiers follow."""
        if not who:
            return
        citizen = np.concatenate(who)
        points = np.concatenate(pts).astype(np.int32)
        state, scenario = self.engine.state, self.engine.scenario
        scatter_add(state.score, citizen, points)
        self.score_total += int(points.sum(dtype=np.int64))
        state.last_penalty[citizen[points < 0]] = day
        moved = unique(citizen)
        today.moved.append(moved)
        tiers = len(scenario.tiers)
        self.tier_count -= np.bincount(state.tier[moved], minlength=tiers)
        state.tier[moved] = tiers_of(scenario, state.score[moved])
        self.tier_count += np.bincount(state.tier[moved], minlength=tiers)

    def _holds_per_act(self, ri: int, bi: int, day: int, citizen: np.ndarray) -> np.ndarray:
        """An event rule's condition for each of the day's events, in the order they
        came: the event windows already hold all of today's events, so the k-th of m
        events of one citizen counts the m - 1 - k after it as not yet done (a threshold
        falls on the act that crosses it, not on the ones before)."""
        engine = self.engine
        _, inverse, per_citizen = np.unique(citizen, return_inverse=True, return_counts=True)
        later = per_citizen[inverse] - 1 - rank_within(citizen)
        behaviour = engine.scenario.behaviours[bi].name
        hit = np.empty(len(citizen), bool)
        for k in np.unique(later):
            # One round per number of later acts: its citizens are distinct.
            rows = np.flatnonzero(later == k)
            hit[rows] = engine.conditions.holds(f"rules[{ri}].when", day, citizen[rows],
                                                shift=(behaviour, -int(k)) if k else None)
        return hit

    def _scheduled(self, ri: int, citizen: np.ndarray) -> np.ndarray:
        """Points for acts paid by the hour on a diminishing schedule: the whole points
        earned by the hours after the act, minus those earned before it."""
        rule = self.engine.scenario.rules[ri]
        hours = self.engine.state.rule_hours[rule.name]
        uppers = np.array([0.0] + [u for u, _ in rule.schedule])
        per_hour = np.array([p for _, p in rule.schedule])
        earned = np.concatenate([[0.0], np.cumsum(np.diff(uppers) * per_hour)])

        def points_at(h):
            band = np.clip(np.searchsorted(uppers, h, side="right") - 1, 0, len(per_hour) - 1)
            inside = np.minimum(h, uppers[-1]) - uppers[band]
            return np.floor(earned[band] + inside * per_hour[band] + 1e-9)

        k = rank_within(citizen)  # the k-th act today of the same citizen
        before = hours[citizen] + k * rule.hours
        points = points_at(before + rule.hours) - points_at(before)
        scatter_add(hours, citizen, np.float32(rule.hours))
        return np.minimum(points, rule.points).astype(np.int32)

    def _capped(self, ri: int, citizen: np.ndarray, points) -> np.ndarray:
        """Points after the rule's cap on |points| per citizen; the k-th event of a citizen
        on one day gets what the earlier ones left."""
        points = np.broadcast_to(np.asarray(points, dtype=np.int32), citizen.shape).copy()
        rule = self.engine.scenario.rules[ri]
        if rule.cap is None or not len(citizen):
            return points
        total = self.engine.state.rule_total[rule.name]
        order = np.argsort(citizen, kind="stable")
        size = np.abs(points[order]).astype(np.int64)
        before = cumsum_within(citizen[order], size)
        granted = np.minimum(size, np.maximum(rule.cap - total[citizen[order]] - before, 0))
        out = np.empty_like(points)
        out[order] = (np.sign(points[order]) * granted).astype(np.int32)
        scatter_add(total, citizen, np.abs(out))
        return out
