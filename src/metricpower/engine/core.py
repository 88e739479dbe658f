"""The day step: occur → observe → score → categorise → consequences.

Every stage works on whole arrays; the only per-item loops are over the policy's
behaviours, rules, lists and services, never over citizens.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from metricpower.engine.context import Context
from metricpower.engine.observe import Events, Observer, concat, rates, thin
from metricpower.engine.state import State, tiers_of
from metricpower.engine.windows import EventWindow
from metricpower.ledger import Ledger
from metricpower.population import Citizens, Network
from metricpower.scenario.schema import Scenario
from metricpower.streams import Streams

#: Above this many citizens the ledger keeps a sample of this many (unless set).
LEDGER_SAMPLE_MAX = 1_000_000


class Engine:
    def __init__(self, scenario: Scenario, citizens: Citizens, network: Network):
        self.scenario, self.citizens, self.network = scenario, citizens, network
        self.n = n = len(citizens)
        self.streams = Streams(scenario.run.seed)
        self.state = State.start(scenario, citizens)
        self.observer = Observer(scenario, citizens, self.streams)
        self.windows = {key: EventWindow(n, key[1]) for key in scenario.windows()}
        self.conditions = scenario.conditions()
        self.behaviour_index = {b.name: i for i, b in enumerate(scenario.behaviours)}
        self.rule_index = {r.name: i for i, r in enumerate(scenario.rules)}
        self.event_rules = {bi: [] for bi in range(len(scenario.behaviours))}
        for i, r in enumerate(scenario.rules):
            if r.kind == "event":
                self.event_rules[self.behaviour_index[r.behaviour]].append(i)
        self.service_rate = [rates(citizens, s.demand, s.drivers, s.requires)
                             for s in scenario.services]
        self.ledger = Ledger(self._ledger_sample(), [r.name for r in scenario.rules],
                             [b.name for b in scenario.behaviours],
                             [s.name for s in scenario.sensors])
        n_groups, n_cons = len(scenario.population.groups), len(scenario.consequences)
        # Totals by consequence and group (denials, throttles, rewards, direct effects).
        self.applied = np.zeros((n_cons, n_groups), dtype=np.int64)
        self.attempts = np.zeros((len(scenario.services), n_groups), dtype=np.int64)
        self.daily: list[dict] = []

    def _ledger_sample(self) -> np.ndarray:
        share = self.scenario.run.ledger_sample
        if share is None:
            share = min(1.0, LEDGER_SAMPLE_MAX / self.n)
        if share >= 1.0:
            return np.ones(self.n, dtype=bool)
        return self.streams.rng("ledger_sample").random(self.n) < share

    def context(self, day: int, idx: np.ndarray | None = None) -> Context:
        return Context(self.citizens, self.network, self.state, self.windows, day, idx)

    def holds(self, where: str, day: int, idx: np.ndarray | None = None) -> np.ndarray:
        """A condition's truth for citizens `idx` (everyone when None), as a bool array."""
        cond = self.conditions[where]
        if idx is not None and not any(f.startswith("friends_") for f in cond.functions):
            return np.broadcast_to(np.asarray(cond(self.context(day, idx)), bool), idx.shape)
        value = np.broadcast_to(np.asarray(cond(self.context(day)), bool), (self.n,))
        return value if idx is None else value[idx]

    # ------------------------------------------------------------------ the day
    def step(self, day: int) -> dict:
        row = {"day": day}
        events = self._occur_and_observe(day, row)
        self._score(day, events, row)
        self._categorise(day, row)
        self._consequences(day, row)
        self._aggregate(row)
        self.daily.append(row)
        return row

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        for day in range(self.scenario.run.days):
            self.step(day)
            if progress is not None:
                progress(day)

    def _occur_and_observe(self, day: int, row: dict) -> dict[int, Events]:
        obs = self.observer
        false = obs.false_matches(day)
        events: dict[int, Events] = {}
        occurred = observed = benign = 0
        for bi, b in enumerate(self.scenario.behaviours):
            cand, keep, _would, is_benign, u_sensor = obs.occurrences(day, bi)
            occurred += int(keep.sum())
            benign += int((keep & is_benign).sum())
            ev = obs.observe(bi, cand[keep], is_benign[keep], u_sensor[:, keep])
            observed += len(ev.citizen)
            if bi in false:
                ev = concat([ev, false[bi]])
            events[bi] = ev
            for (name, _), window in self.windows.items():
                if name == b.name:
                    window.add(ev.citizen)
        row.update(occurrences=occurred, benign_occurrences=benign, observed=observed,
                   false_matches=sum(len(e.citizen) for e in false.values()))
        return events

    def _score(self, day: int, events: dict[int, Events], row: dict) -> None:
        rules, state, ledger = self.scenario.rules, self.state, self.ledger
        who, pts = [], []
        penalties = benign_pen = misattributed_pen = rewards = 0
        for bi, ev in events.items():
            for ri in self.event_rules[bi]:
                rule = rules[ri]
                hit = np.ones(len(ev.citizen), bool)
                if rule.when is not None and len(ev.citizen):
                    hit = self.holds(f"rules[{ri}].when", day, ev.citizen)
                citizen = ev.citizen[hit]
                points = self._capped(ri, citizen, rule.points)
                got = points != 0
                citizen, points = citizen[got], points[got]
                ledger.append(day, citizen, ri, points, bi, ev.sensor[hit][got],
                              ev.benign[hit][got], ev.misattributed[hit][got])
                who.append(citizen)
                pts.append(points)
                if rule.points < 0:
                    penalties += len(citizen)
                    benign_pen += int(ev.benign[hit][got].sum())
                    misattributed_pen += int(ev.misattributed[hit][got].sum())
                else:
                    rewards += len(citizen)
        for ri, rule in enumerate(rules):
            if rule.kind == "event" or (day + 1) % rule.every:
                continue
            if rule.kind == "periodic":
                citizen = np.flatnonzero(self.holds(f"rules[{ri}].when", day))
                points = np.full(len(citizen), rule.points, np.int32)
            else:  # restoration: up to the initial score after a clean spell
                clean = (day - state.last_penalty >= rule.clean_days)
                below = state.score < self.scenario.population.initial_score
                citizen = np.flatnonzero(clean & below)
                points = np.minimum(rule.points,
                                    self.scenario.population.initial_score - state.score[citizen])
            points = self._capped(ri, citizen, points)
            got = points != 0
            citizen, points = citizen[got], points[got].astype(np.int32)
            ledger.append(day, citizen, ri, points)
            who.append(citizen)
            pts.append(points)
            if rule.points < 0:
                penalties += len(citizen)
            else:
                rewards += len(citizen)
        if who:
            citizen = np.concatenate(who)
            points = np.concatenate(pts).astype(np.int32)
            np.add.at(state.score, citizen, points)
            state.last_penalty[citizen[points < 0]] = day
            changed = np.unique(citizen)
            state.tier[changed] = tiers_of(self.scenario, state.score[changed])
        row.update(penalties=penalties, benign_penalties=benign_pen,
                   misattributed_penalties=misattributed_pen, reward_events=rewards)

    def _capped(self, ri: int, citizen: np.ndarray, points) -> np.ndarray:
        """Points after the rule's cap on |points| per citizen; the k-th event of a citizen
        on one day gets what the earlier ones left."""
        points = np.broadcast_to(np.asarray(points, dtype=np.int32), citizen.shape).copy()
        rule = self.scenario.rules[ri]
        if rule.cap is None or not len(citizen):
            return points
        total = self.state.rule_total[rule.name]
        order = np.argsort(citizen, kind="stable")
        sorted_c = citizen[order]
        first = np.r_[True, sorted_c[1:] != sorted_c[:-1]]
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(sorted_c)), 0))
        size = np.abs(points[order]).astype(np.int64)
        before = np.cumsum(size) - size
        before -= before[run_start]
        left = np.maximum(rule.cap - total[sorted_c] - before, 0)
        granted = np.minimum(size, left)
        out = np.empty_like(points)
        out[order] = (np.sign(points[order]) * granted).astype(np.int32)
        np.add.at(total, citizen, np.abs(out))
        return out

    def _categorise(self, day: int, row: dict) -> None:
        state = self.state
        for li, spec in enumerate(self.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            enter = self.holds(f"lists[{li}].enter", day) & ~on
            served = on & (day - since >= spec.min_days)
            if spec.exit is not None:
                leave = served & self.holds(f"lists[{li}].exit", day)
            else:
                leave = served & ~self.holds(f"lists[{li}].enter", day)
            on[enter] = True
            since[enter] = day
            on[leave] = False
            state.days_listed[spec.name] += on
            row[f"entered_{spec.name}"] = int(enter.sum())
            row[f"left_{spec.name}"] = int(leave.sum())

    def _consequences(self, day: int, row: dict) -> None:
        sc, state, group = self.scenario, self.state, self.citizens.group
        n_groups = len(sc.population.groups)
        labelled = np.zeros(self.n, bool)
        for ci, cons in enumerate(sc.consequences):
            if cons.effect == "confiscate_pet":
                hit = self.holds(f"consequences[{ci}].when", day) & state.pet_owner
                state.pet_owner[hit] = False
                state.pets_confiscated |= hit
            elif cons.effect == "publish":
                now = self.holds(f"consequences[{ci}].when", day)
                hit = now & ~state.labelled  # a labelling counts once, when it starts
                labelled |= now
            else:
                continue
            state.sanctions += hit
            self.applied[ci] += np.bincount(group[hit], minlength=n_groups)
            row[f"applied_{cons.name}"] = int(hit.sum())
        state.labelled = labelled
        state.days_labelled += labelled
        for si, svc in enumerate(sc.services):
            rate = self.service_rate[si]
            rate_max = float(rate.max(initial=0.0))
            cand, u = thin(self.streams.rng(f"demand:{svc.name}", day), self.n, rate_max, 0)
            who = cand[u[0] < rate[cand] / np.float32(rate_max or 1.0)]
            self.attempts[si] += np.bincount(group[who], minlength=n_groups)
            row[f"attempts_{svc.name}"] = len(who)
            served = np.ones(len(who), bool)
            # Sanctions first (a denial ends the attempt), then rewards for the rest.
            for effects in (("deny", "throttle"), ("reward",)):
                for ci, cons in enumerate(sc.consequences):
                    if cons.service != svc.name or cons.effect not in effects:
                        continue
                    hit = served & self.holds(f"consequences[{ci}].when", day, who)
                    if cons.effect == "deny":
                        served &= ~hit
                    if cons.is_sanction:
                        np.add.at(state.sanctions, who[hit], 1)
                    else:
                        np.add.at(state.rewards, who[hit], 1)
                    self.applied[ci] += np.bincount(group[who[hit]], minlength=n_groups)
                    row[f"applied_{cons.name}"] = int(hit.sum())

    def _aggregate(self, row: dict) -> None:
        state, sc = self.state, self.scenario
        row["mean_score"] = float(state.score.mean())
        counts = np.bincount(state.tier, minlength=len(sc.tiers))
        for t, c in zip(sc.tiers, counts, strict=True):
            row[f"tier_{t.name}"] = int(c)
        for spec in sc.lists:
            row[f"list_{spec.name}"] = int(state.on_list[spec.name].sum())
