"""Score: event rules on the day's observed events, then periodic rules and restoration,
which see the day's penalties (nobody penalised today is restored today). Every score
change goes to the ledger; tiers follow the score."""

from __future__ import annotations

import numpy as np

from metricpower.engine.stages.base import Stage, Today
from metricpower.engine.state import tiers_of


class Score(Stage):
    name = "score"
    carries = ("score_total", "tier_count")

    def __init__(self, engine):
        super().__init__(engine)
        sc = engine.scenario
        self.event_rules = {bi: [] for bi in range(len(sc.behaviours))}
        index = {b.name: i for i, b in enumerate(sc.behaviours)}
        for i, r in enumerate(sc.rules):
            if r.kind == "event":
                self.event_rules[index[r.behaviour]].append(i)
        # Running totals per member, kept as scores change, so a day costs what happened
        # in it (NumPy: they go to the daily row).
        mb, score = engine.members, engine.backend.to_numpy(engine.state.score)
        self.score_total = np.array([score[a:b].sum(dtype=np.int64) for a, b in zip(
            mb.start[:-1], mb.start[1:], strict=True)], dtype=np.int64)
        self.tier_count = mb.tally(None, engine.state.tier, len(sc.tiers))

    def step(self, day: int, today: Today) -> None:
        engine = self.engine
        rules, state, xp = engine.scenario.rules, engine.state, engine.xp
        initial = engine.scenario.population.initial_score
        count = engine.members.count_of
        who, pts = [], []
        counts = dict.fromkeys(("penalties", "benign_penalties", "misattributed_penalties",
                                "reward_events"), 0)
        for bi, ev in today.events.items():
            for ri in self.event_rules[bi]:
                rule = rules[ri]
                hit = xp.ones(ev.citizen.shape, dtype=xp.bool)
                if rule.when is not None and ev.citizen.shape[0]:
                    hit = self._holds_per_act(ri, bi, day, ev.citizen)
                citizen = ev.citizen[hit]
                points = self._scheduled(ri, citizen) if rule.schedule else rule.points
                points = self._capped(ri, citizen, points)
                got = points != 0
                citizen, points = citizen[got], points[got]
                sensor = ev.sensor[hit][got]
                benign, misattributed = ev.benign[hit][got], ev.misattributed[hit][got]
                entry = engine.log(day, citizen, ri, points, bi, sensor, benign,
                                   misattributed)
                who.append(citizen)
                pts.append(points)
                if rule.is_penalty:
                    counts["penalties"] = counts["penalties"] + count(citizen)
                    counts["benign_penalties"] = (counts["benign_penalties"]
                                                  + count(citizen[benign]))
                    counts["misattributed_penalties"] = (counts["misattributed_penalties"]
                                                         + count(citizen[misattributed]))
                    today.penalties.append((entry, citizen, ri, points, bi, sensor, benign,
                                            misattributed))
                else:
                    counts["reward_events"] = counts["reward_events"] + count(citizen)
        self.apply(day, today, who, pts)
        for ri, rule in enumerate(rules):
            if rule.kind == "event" or (day + 1) % rule.every:
                continue
            if rule.kind == "periodic":
                citizen = xp.nonzero(engine.conditions.holds(f"rules[{ri}].when", day))[0]
                points = xp.full(citizen.shape, rule.points, dtype=xp.int32)
            else:  # restoration: up to the initial score after a clean spell
                clean = (day - state.last_penalty >= rule.clean_days)
                citizen = xp.nonzero(clean & (state.score < initial))[0]
                points = xp.minimum(rule.points, initial - state.score[citizen])
            points = self._capped(ri, citizen, points)
            got = points != 0
            citizen, points = citizen[got], xp.astype(points[got], xp.int32)
            engine.log(day, citizen, ri, points)
            self.apply(day, today, [citizen], [points])
            key = "penalties" if rule.is_penalty else "reward_events"
            counts[key] = counts[key] + count(citizen)
        today.row.update(counts)

    def apply(self, day: int, today: Today, who: list[np.ndarray],
              pts: list[np.ndarray]) -> None:
        """Add points to scores; a penalty restarts the clean clock; tiers follow."""
        if not who:
            return
        xp, bk = self.engine.xp, self.engine.backend
        citizen = xp.concat(who)
        points = xp.astype(xp.concat(pts), xp.int32)
        state, scenario = self.engine.state, self.engine.scenario
        bk.scatter_add(state.score, citizen, points)
        mb = self.engine.members
        if mb.one:
            self.score_total += int(xp.sum(points, dtype=xp.int64))
        else:
            np.add.at(self.score_total, mb.members_of(citizen),
                      bk.to_numpy(points).astype(np.int64))
        bk.set_at(state.last_penalty, citizen[points < 0], day)
        moved = bk.unique(citizen)
        today.moved.append(moved)
        tiers = len(scenario.tiers)
        self.tier_count -= mb.tally(moved, state.tier[moved], tiers)
        bk.set_at(state.tier, moved, tiers_of(scenario, state.score[moved]))
        self.tier_count += mb.tally(moved, state.tier[moved], tiers)

    def _holds_per_act(self, ri: int, bi: int, day: int, citizen: np.ndarray) -> np.ndarray:
        """An event rule's condition for each of the day's events, in the order they
        came: the event windows already hold all of today's events, so the k-th of m
        events of one citizen counts the m - 1 - k after it as not yet done (a threshold
        falls on the act that crosses it, not on the ones before)."""
        engine = self.engine
        xp, bk = engine.xp, engine.backend
        ordered = xp.sort(citizen)
        if not xp.any(ordered[1:] == ordered[:-1]):  # one act each: none comes later
            return engine.conditions.holds(f"rules[{ri}].when", day, citizen)
        per_citizen = (xp.searchsorted(ordered, citizen, side="right")
                       - xp.searchsorted(ordered, citizen, side="left"))
        later = per_citizen - 1 - bk.rank_within(citizen)
        behaviour = engine.scenario.behaviours[bi].name
        hit = xp.empty(citizen.shape, dtype=xp.bool)
        for k in bk.to_numpy(bk.unique(later)).tolist():
            # One round per number of later acts: its citizens are distinct.
            rows = xp.nonzero(later == k)[0]
            bk.set_at(hit, rows, engine.conditions.holds(
                f"rules[{ri}].when", day, citizen[rows], shift=(behaviour, -k) if k else None))
        return hit

    def _scheduled(self, ri: int, citizen: np.ndarray) -> np.ndarray:
        """Points for acts paid by the hour on a diminishing schedule: the whole points
        earned by the hours after the act, minus those earned before it."""
        xp, bk = self.engine.xp, self.engine.backend
        rule = self.engine.scenario.rules[ri]
        hours = self.engine.state.rule_hours[rule.name]
        top = np.array([0.0] + [u for u, _ in rule.schedule])
        rate = np.array([p for _, p in rule.schedule])
        earned = bk.asarray(np.concatenate([[0.0], np.cumsum(np.diff(top) * rate)]))
        uppers, per_hour = bk.asarray(top), bk.asarray(rate)

        def points_at(h):
            band = xp.clip(xp.searchsorted(uppers, h, side="right") - 1, 0, len(rate) - 1)
            inside = xp.minimum(h, float(top[-1])) - uppers[band]
            return xp.floor(earned[band] + inside * per_hour[band] + 1e-9)

        k = bk.rank_within(citizen)  # the k-th act today of the same citizen
        before = hours[citizen] + xp.astype(k, xp.float64) * rule.hours
        points = points_at(before + rule.hours) - points_at(before)
        bk.scatter_add(hours, citizen, rule.hours)
        return xp.astype(xp.minimum(points, rule.points), xp.int32)

    def _capped(self, ri: int, citizen: np.ndarray, points) -> np.ndarray:
        """Points after the rule's cap on |points| per citizen; the k-th event of a citizen
        on one day gets what the earlier ones left."""
        xp, bk = self.engine.xp, self.engine.backend
        points = (xp.full(citizen.shape, points, dtype=xp.int32) if isinstance(points, int)
                  else xp.astype(points, xp.int32))
        rule = self.engine.scenario.rules[ri]
        if rule.cap is None or not citizen.shape[0]:
            return points
        total = self.engine.state.rule_total[rule.name]
        order = xp.argsort(citizen, stable=True)
        size = xp.astype(xp.abs(points[order]), xp.int64)
        before = bk.cumsum_within(citizen[order], size)
        granted = xp.minimum(size, xp.maximum(rule.cap - total[citizen[order]] - before, 0))
        out = xp.empty_like(points)
        bk.set_at(out, order, xp.astype(xp.sign(points[order]) * granted, xp.int32))
        bk.scatter_add(total, citizen, xp.abs(out))
        return out
