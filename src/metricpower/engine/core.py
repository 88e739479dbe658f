"""The day step: occur → observe → score → appeal → categorise → consequences → respond.

Every stage works on whole arrays; the only per-item loops are over the policy's
behaviours, rules, lists and services, never over citizens.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from metricpower.engine.context import Context
from metricpower.engine.observe import Events, Observer, Sampler, concat, rates
from metricpower.engine.respond import AppealOffice, RiskModel, Ties
from metricpower.engine.state import State, tiers_of
from metricpower.engine.windows import EventWindow
from metricpower.ledger import Ledger
from metricpower.population import Citizens, Network
from metricpower.population.kernels import scatter_add
from metricpower.scenario.schema import Scenario
from metricpower.streams import Streams

#: Above this many citizens the ledger keeps a sample of this many (unless set).
LEDGER_SAMPLE_MAX = 250_000
#: Every citizen's tier is kept every this many days (and on the last), for mobility.
SNAPSHOT_EVERY = 30
#: Network score assortativity is measured every this many days (and on the last day).
ASSORTATIVITY_EVERY = 30
#: Persistence at the bottom is checked this many days after a citizen enters it.
PERSISTENCE_DAYS = 180


class Engine:
    def __init__(self, scenario: Scenario, citizens: Citizens, network: Network):
        self.scenario, self.citizens = scenario, citizens
        self.n = n = len(citizens)
        self.streams = Streams(scenario.run.seed)
        self.state = State.start(scenario, citizens)
        self.observer = Observer(scenario, citizens, self.streams)
        self.windows = {key: EventWindow(n, key[1]) for key in scenario.windows()}
        self.windows_of = [[w for (name, _), w in self.windows.items() if name == b.name]
                           for b in scenario.behaviours]
        self.conditions = scenario.conditions()
        self.behaviour_index = {b.name: i for i, b in enumerate(scenario.behaviours)}
        self.event_rules = {bi: [] for bi in range(len(scenario.behaviours))}
        for i, r in enumerate(scenario.rules):
            if r.kind == "event":
                self.event_rules[self.behaviour_index[r.behaviour]].append(i)
        penalty = [sum(-scenario.rules[ri].points for ri in self.event_rules[bi]
                       if scenario.rules[ri].points < 0) for bi in self.event_rules]
        self.penalised = [p > 0 for p in penalty]
        self.demand = [Sampler(rates(citizens, s.demand, s.drivers, s.requires))
                       for s in scenario.services]
        self.ledger = Ledger(self._ledger_sample(), [r.name for r in scenario.rules],
                             [b.name for b in scenario.behaviours],
                             [s.name for s in scenario.sensors])
        self.n_groups = len(scenario.population.groups)
        # Totals by consequence and group (denials, throttles, rewards, direct effects).
        self.applied = np.zeros((len(scenario.consequences), self.n_groups), dtype=np.int64)
        self.attempts = np.zeros((len(scenario.services), self.n_groups), dtype=np.int64)
        self.refused = np.zeros((len(scenario.services), self.n_groups), dtype=np.int64)
        self.daily: list[dict] = []
        self.stage_seconds: dict[str, float] = {}
        self.snapshots: dict[int, np.ndarray] = {}
        self.tie_changes: list[tuple[int, np.ndarray, np.ndarray, bool, np.ndarray]] = []
        self.predictions: list[dict] = []
        self.entered_bottom: dict[int, np.ndarray] = {}

        res = scenario.responses
        self.deterrence = self._deterrence(penalty) if res.deterrence.enabled else None
        self.income_coef = [b.drivers.get("income", 0.0) for b in scenario.behaviours]
        # With association avoidance the engine changes the network it was given.
        self.ties = Ties(network) if res.association.enabled else None
        self._network = network if self.ties is None else None
        self.office = AppealOffice() if res.appeals.enabled else None
        self.risk = (RiskModel(res.prediction.horizon, res.prediction.threshold,
                               self.streams.rng("prediction"))
                     if res.prediction.enabled else None)
        uses_friends = any(f.startswith("friends_") for c in self.conditions.values()
                           for f in c.functions)
        tiers = [t.name for t in scenario.tiers]
        self.avoid_tier = np.zeros(len(tiers), bool)
        if uses_friends:
            for name in res.association.avoid_tiers:
                self.avoid_tier[tiers.index(name)] = True
        self.labelled_refusal = set(res.labelling.services)
        self._sanctioned: list[np.ndarray] = []
        self._rewarded: list[np.ndarray] = []
        self._filed = 0  # appeals filed today
        self._costly: list[np.ndarray] = []  # citizens who did something costly today
        self._at_bottom = self.state.tier >= scenario.bottom
        self._moved: list[np.ndarray] = []  # citizens whose score moved today
        self.score_total = int(self.state.score.sum(dtype=np.int64))
        self.mean_income = float(citizens.income.mean(dtype=np.float64))
        self.tier_count = np.bincount(self.state.tier, minlength=len(scenario.tiers))
        self.list_size = np.zeros(len(scenario.lists), dtype=np.int64)
        self.region_bounds = citizens.region_bounds()
        self.costly = {self.behaviour_index[b] for b in res.economy.costly}
        self._income_pull = (np.float32(res.economy.recovery) * citizens.income
                             if res.economy.enabled else None)
        # Dated changes: the scenario in force from each day a change takes effect.
        self._schedule = {day: s for day, s in scenario.segments() if s is not scenario}

    @property
    def network(self) -> Network:
        return self.ties if self.ties is not None else self._network

    def _ledger_sample(self) -> np.ndarray:
        share = self.scenario.run.ledger_sample
        if share is None:
            share = min(1.0, LEDGER_SAMPLE_MAX / self.n)
        if share >= 1.0:
            return np.ones(self.n, dtype=bool)
        return self.streams.rng("ledger_sample").random(self.n) < share

    def _deterrence(self, penalty: list[int]) -> list[np.ndarray | None]:
        """Per behaviour, the factor on each citizen's rate: exp(-e · P(seen) · |points|/10)."""
        spec = self.scenario.responses.deterrence
        out = []
        for bi, b in enumerate(self.scenario.behaviours):
            if not penalty[bi]:
                out.append(None)
                continue
            e = spec.elasticity.get(b.name, spec.default)
            out.append(np.exp(-e * self.observer.p_seen(bi) * penalty[bi] / 10.0)
                       .astype(np.float32))
        return out

    def context(self, day: int, idx: np.ndarray | None = None) -> Context:
        return Context(self.citizens, self.network, self.state, self.windows, day, idx)

    def holds(self, where: str, day: int, idx: np.ndarray | None = None) -> np.ndarray:
        """A condition's truth for citizens `idx` (everyone when None), as a bool array."""
        cond = self.conditions[where]
        if idx is not None and not any(f.startswith("friends_") for f in cond.functions):
            return np.broadcast_to(np.asarray(cond(self.context(day, idx)), bool), idx.shape)
        value = np.broadcast_to(np.asarray(cond(self.context(day)), bool), (self.n,))
        return value if idx is None else value[idx]

    # ------------------------------------------------------------------ schedule hook
    #: What the engine works out from the scenario's parameters alone. A dated change
    #: (scenario.segments) replaces exactly these; citizens' state, the ledger, the
    #: network, the appeal queue, the risk model and every total run on.
    FROM_PARAMETERS = ("scenario", "observer", "conditions", "event_rules", "penalised",
                       "demand", "deterrence", "income_coef", "avoid_tier",
                       "labelled_refusal", "costly", "_income_pull")

    def retarget(self, scenario: Scenario) -> None:
        """Take up the parameters in force from today. The same entries by name, new
        values (scenario.Change); windows a new condition counts start counting today."""
        fresh = Engine(scenario, self.citizens, self.network)
        for name in self.FROM_PARAMETERS:
            setattr(self, name, getattr(fresh, name))
        self.scenario = scenario
        for key, window in fresh.windows.items():
            self.windows.setdefault(key, window)
        self.windows_of = [[w for (name, _), w in self.windows.items() if name == b.name]
                           for b in scenario.behaviours]
        for store in ("rule_total", "rule_hours"):  # a cap or an hours schedule set today
            for name, start in getattr(fresh.state, store).items():
                getattr(self.state, store).setdefault(name, start)

    # ------------------------------------------------------------------ the day
    def step(self, day: int) -> dict:
        if day in self._schedule:
            self.retarget(self._schedule[day])
        row = {"day": day}
        clock = time.perf_counter
        t0 = clock()
        events = self._occur_and_observe(day, row)
        stages = [("occur_and_observe", clock())]
        self._score(day, events, row)
        stages.append(("score", clock()))
        self._categorise(day, row)
        stages.append(("categorise", clock()))
        self._predict(day, row)
        stages.append(("predict", clock()))
        self._consequences(day, row)
        stages.append(("consequences", clock()))
        self._respond(day, row)
        stages.append(("respond", clock()))
        self._aggregate(day, row)
        stages.append(("aggregate", clock()))
        for name, t in stages:  # where the time goes, for the benchmark's profile
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + t - t0
            t0 = t
        self.daily.append(row)
        return row

    def run(self, progress: Callable[[int], None] | None = None) -> None:
        for day in range(self.scenario.run.days):
            self.step(day)
            if progress is not None:
                progress(day)

    def _propensity(self, bi: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """How much responses scale the rate of the citizens asked about (None: not at all);
        worked out only for the day's candidates, not for everyone."""
        deter = self.deterrence[bi] if self.deterrence is not None else None
        coef = np.float32(self.income_coef[bi])
        moves = bool(self.scenario.responses.economy.enabled and coef)
        if deter is None and not moves:
            return None
        income, income0 = self.state.income, self.citizens.income
        headroom = self.observer.headroom[bi]

        def scale(who: np.ndarray) -> np.ndarray:
            factor = deter[who] if deter is not None else np.float32(1.0)
            if moves:
                factor = factor * (income[who] / income0[who]) ** coef
            return np.minimum(factor, np.float32(headroom))

        return scale

    def _occur_and_observe(self, day: int, row: dict) -> dict[int, Events]:
        obs = self.observer
        false = obs.false_matches(day)
        events: dict[int, Events] = {}
        totals = dict.fromkeys(("occurrences", "benign_occurrences", "observed",
                                "chilled", "chilled_benign"), 0)
        state = self.state
        for bi, b in enumerate(self.scenario.behaviours):
            cand, keep, would, is_benign, u_sensor = obs.occurrences(day, bi,
                                                                     self._propensity(bi))
            if b.requires == "pet_owner":  # a confiscated pet is walked by nobody
                still = state.pet_owner[cand]
                keep, would = keep & still, would & still
            chilled = would & ~keep
            acted, acted_benign = cand[keep], is_benign[keep]
            counts = {"occurrences": len(acted),
                      "benign_occurrences": int(acted_benign.sum()),
                      "chilled": int(chilled.sum()),
                      "chilled_benign": int((chilled & is_benign).sum())}
            for key, value in counts.items():
                row[f"{key}_{b.name}"] = value
                totals[key] += value
            if self.penalised[bi]:
                scatter_add(state.true_offences, acted[~acted_benign], 1)
            if bi in self.costly:
                self._costly.append(acted)
            ev = obs.observe(bi, acted, acted_benign, u_sensor[:, keep])
            totals["observed"] += len(ev.citizen)
            scatter_add(state.acts, acted, 1)
            scatter_add(state.observed, ev.citizen, 1)
            if bi in false:
                ev = concat([ev, false[bi]])
            events[bi] = ev
            for window in self.windows_of[bi]:
                window.add(ev.citizen)
        row.update(totals, false_matches=sum(len(e.citizen) for e in false.values()))
        return events

    def _score(self, day: int, events: dict[int, Events], row: dict) -> None:
        """Event rules first; then periodic rules and restoration, which see the day's
        penalties (nobody penalised today is restored today); then appeals."""
        rules, state, ledger = self.scenario.rules, self.state, self.ledger
        initial = self.scenario.population.initial_score
        who, pts = [], []
        counts = dict.fromkeys(("penalties", "benign_penalties", "misattributed_penalties",
                                "reward_events"), 0)
        for bi, ev in events.items():
            for ri in self.event_rules[bi]:
                rule = rules[ri]
                hit = np.ones(len(ev.citizen), bool)
                if rule.when is not None and len(ev.citizen):
                    hit = self.holds(f"rules[{ri}].when", day, ev.citizen)
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
                if rule.points < 0:
                    counts["penalties"] += len(citizen)
                    counts["benign_penalties"] += int(benign.sum())
                    counts["misattributed_penalties"] += int(misattributed.sum())
                    if self.office is not None:
                        self._file_appeals(day, entry, citizen, ri, points, bi, sensor, benign,
                                           misattributed)
                else:
                    counts["reward_events"] += len(citizen)
        self._apply(day, who, pts)
        for ri, rule in enumerate(rules):
            if rule.kind == "event" or (day + 1) % rule.every:
                continue
            if rule.kind == "periodic":
                citizen = np.flatnonzero(self.holds(f"rules[{ri}].when", day))
                points = np.full(len(citizen), rule.points, np.int32)
            else:  # restoration: up to the initial score after a clean spell
                clean = (day - state.last_penalty >= rule.clean_days)
                citizen = np.flatnonzero(clean & (state.score < initial))
                points = np.minimum(rule.points, initial - state.score[citizen])
            points = self._capped(ri, citizen, points)
            got = points != 0
            citizen, points = citizen[got], points[got].astype(np.int32)
            ledger.append(day, citizen, ri, points)
            self._apply(day, [citizen], [points])
            counts["penalties" if rule.points < 0 else "reward_events"] += len(citizen)
        if self.office is not None:
            self._apply(day, *self._decide_appeals(day, row))
        row.update(counts)

    def _apply(self, day: int, who: list[np.ndarray], pts: list[np.ndarray]) -> None:
        """Add points to scores; a penalty restarts the clean clock; tiers follow."""
        if not who:
            return
        citizen = np.concatenate(who)
        points = np.concatenate(pts).astype(np.int32)
        state = self.state
        scatter_add(state.score, citizen, points)
        self.score_total += int(points.sum(dtype=np.int64))
        state.last_penalty[citizen[points < 0]] = day
        moved = _unique(citizen)
        self._moved.append(moved)
        tiers = len(self.scenario.tiers)
        self.tier_count -= np.bincount(state.tier[moved], minlength=tiers)
        state.tier[moved] = tiers_of(self.scenario, state.score[moved])
        self.tier_count += np.bincount(state.tier[moved], minlength=tiers)

    def _scheduled(self, ri: int, citizen: np.ndarray) -> np.ndarray:
        """Points for acts paid by the hour on a diminishing schedule: the whole points
        earned by the hours after the act, minus those earned before it."""
        rule = self.scenario.rules[ri]
        hours = self.state.rule_hours[rule.name]
        uppers = np.array([0.0] + [u for u, _ in rule.schedule])
        per_hour = np.array([p for _, p in rule.schedule])
        earned = np.concatenate([[0.0], np.cumsum(np.diff(uppers) * per_hour)])

        def points_at(h):
            band = np.clip(np.searchsorted(uppers, h, side="right") - 1, 0, len(per_hour) - 1)
            inside = np.minimum(h, uppers[-1]) - uppers[band]
            return np.floor(earned[band] + inside * per_hour[band] + 1e-9)

        k = _rank_within(citizen)  # the k-th act today of the same citizen
        before = hours[citizen] + k * rule.hours
        points = points_at(before + rule.hours) - points_at(before)
        np.add.at(hours, citizen, np.float32(rule.hours))
        return np.minimum(points, rule.points).astype(np.int32)

    def _capped(self, ri: int, citizen: np.ndarray, points) -> np.ndarray:
        """Points after the rule's cap on |points| per citizen; the k-th event of a citizen
        on one day gets what the earlier ones left."""
        points = np.broadcast_to(np.asarray(points, dtype=np.int32), citizen.shape).copy()
        rule = self.scenario.rules[ri]
        if rule.cap is None or not len(citizen):
            return points
        total = self.state.rule_total[rule.name]
        order = np.argsort(citizen, kind="stable")
        size = np.abs(points[order]).astype(np.int64)
        before = _cumsum_within(citizen[order], size)
        granted = np.minimum(size, np.maximum(rule.cap - total[citizen[order]] - before, 0))
        out = np.empty_like(points)
        out[order] = (np.sign(points[order]) * granted).astype(np.int32)
        scatter_add(total, citizen, np.abs(out))
        return out

    # ------------------------------------------------------------------ appeals
    def _file_appeals(self, day, entry, citizen, ri, points, bi, sensor, benign, misattributed):
        spec = self.scenario.responses.appeals
        p = (spec.probability * (np.abs(points) / 10.0) ** spec.points_elasticity
             * self.state.income[citizen].astype(np.float64) ** spec.income_elasticity)
        u = self.streams.rng(f"appeal:{ri}", day).random(len(citizen))
        go = u < p
        self._filed += int(go.sum())
        self.office.file(entry=entry[go], day=np.full(int(go.sum()), day), citizen=citizen[go],
                         rule=np.full(int(go.sum()), ri), points=points[go],
                         behaviour=np.full(int(go.sum()), bi), sensor=sensor[go],
                         benign=benign[go], misattributed=misattributed[go],
                         filed=np.full(int(go.sum()), day))

    def _decide_appeals(self, day: int, row: dict) -> tuple[list, list]:
        spec = self.scenario.responses.appeals
        rng = self.streams.rng("appeal_office", day)
        if spec.capacity_per_100k == "unlimited":
            capacity = self.office.waiting
        else:
            mean = spec.capacity_per_100k * self.n / 1e5
            capacity = int(mean) + int(rng.random() < mean - int(mean))
        case = self.office.take(day, capacity, spec.decision_days)
        chance = np.where(case["misattributed"], spec.success_misattributed,
                          np.where(case["benign"], spec.success_benign, spec.success_true))
        upheld = rng.random(len(chance)) < chance
        citizen = case["citizen"][upheld].astype(np.int64)
        back = -case["points"][upheld].astype(np.int32)
        self.ledger.append(day, citizen, case["rule"][upheld].astype(np.int16), back,
                           case["behaviour"][upheld].astype(np.int16),
                           case["sensor"][upheld].astype(np.int16),
                           case["benign"][upheld].astype(bool),
                           case["misattributed"][upheld].astype(bool),
                           reverses=case["entry"][upheld].astype(np.int64))
        waited = day - case["day"][upheld]
        row.update(appeals_filed=self._filed, appeals_decided=len(chance),
                   appeals_upheld=int(upheld.sum()),
                   appeals_upheld_misattributed=int(case["misattributed"][upheld].sum()),
                   appeals_upheld_benign=int(case["benign"][upheld].sum()),
                   redress_days=int(waited.sum()), appeals_waiting=self.office.waiting)
        return [citizen], [back]

    # ------------------------------------------------------------------ categorise
    def _categorise(self, day: int, row: dict) -> None:
        state = self.state
        for li, spec in enumerate(self.scenario.lists):
            on, since = state.on_list[spec.name], state.list_since[spec.name]
            holds_enter = self.holds(f"lists[{li}].enter", day)
            members = np.flatnonzero(on)
            served = members[day - since[members] >= spec.min_days]
            if spec.exit is not None:
                leave = served[self.holds(f"lists[{li}].exit", day, served)]
            else:
                leave = served[~holds_enter[served]]
            enter = np.flatnonzero(holds_enter & ~on)
            on[enter] = True
            since[enter] = day
            on[leave] = False
            state.listed_before[spec.name][leave] += day - since[leave]
            self.list_size[li] += len(enter) - len(leave)
            row[f"entered_{spec.name}"] = len(enter)
            row[f"left_{spec.name}"] = len(leave)

    def _predict(self, day: int, row: dict) -> None:
        if self.risk is None:
            return
        state, spec = self.state, self.scenario.responses.prediction
        self.predictions += self.risk.judge(day, state.true_offences, self.citizens.group,
                                            self.n_groups)
        if (day + 1) % spec.every == 0:
            def features(rows):
                """What the system has seen of these citizens."""
                cols = [state.score[rows], np.minimum(day - state.last_penalty[rows], 365),
                        state.sanctions[rows]]
                cols += [w.counts[rows] for w in self.windows.values()]
                cols += [on[rows] for on in state.on_list.values()]
                return np.column_stack(cols).astype(np.float32)

            flagged = self.risk.refit_and_flag(day, features, state.tier >= self.scenario.bottom,
                                               state.true_offences)
            if flagged is not None:
                state.flagged = flagged
        row["flagged"] = int(state.flagged.sum())

    # ------------------------------------------------------------------ consequences
    def _consequences(self, day: int, row: dict) -> None:
        sc, state, group = self.scenario, self.state, self.citizens.group
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
            idx = np.flatnonzero(hit)
            state.sanctions[idx] += 1
            self._sanctioned.append(idx)
            self.applied[ci] += np.bincount(group[idx], minlength=self.n_groups)
            row[f"applied_{cons.name}"] = len(idx)
        if any(c.effect == "publish" for c in sc.consequences):
            state.relabel(labelled, day)
        refusal = sc.responses.labelling.refusal
        for si, svc in enumerate(sc.services):
            cand, p, u = self.demand[si].draw(self.streams.rng(f"demand:{svc.name}", day), 1)
            accept = u[0] < p
            who, u_refuse = cand[accept], u[1][accept]
            self.attempts[si] += np.bincount(group[who], minlength=self.n_groups)
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
                        scatter_add(state.sanctions, who[hit], 1)
                        self._sanctioned.append(who[hit])
                    else:
                        scatter_add(state.rewards, who[hit], 1)
                        self._rewarded.append(who[hit])
                    self.applied[ci] += np.bincount(group[who[hit]], minlength=self.n_groups)
                    row[f"applied_{cons.name}"] = int(hit.sum())
            if svc.name in self.labelled_refusal:
                # Others than the state turn a publicly labelled citizen away.
                refused = served & state.labelled[who] & (u_refuse < refusal)
                scatter_add(state.sanctions, who[refused], 1)
                self._sanctioned.append(who[refused])
                self.refused[si] += np.bincount(group[who[refused]], minlength=self.n_groups)
                row[f"refused_{svc.name}"] = int(refused.sum())

    # ------------------------------------------------------------------ respond
    def _respond(self, day: int, row: dict) -> None:
        res = self.scenario.responses
        if res.economy.enabled:
            self._economy(day)
        if self.ties is not None:
            self._avoid(day, row)
        self._sanctioned, self._rewarded, self._costly, self._filed = [], [], [], 0

    def _economy(self, day: int) -> None:
        spec, state = self.scenario.responses.economy, self.state
        income = state.income
        if self._sanctioned:
            hit = np.concatenate(self._sanctioned)
            np.multiply.at(income, hit, np.float32(1 - spec.sanction_loss))
        if self._rewarded:
            hit = np.concatenate(self._rewarded)
            np.multiply.at(income, hit, np.float32(1 + spec.reward_gain))
        if self._costly:
            np.multiply.at(income, np.concatenate(self._costly), np.float32(1 - spec.cost))
        # income += recovery · (baseline − income), in place: no temporary the size of
        # the population.
        income *= np.float32(1 - spec.recovery)
        income += self._income_pull

    def _avoid(self, day: int, row: dict) -> None:
        """Friends of avoided citizens (publicly listed, or in an avoided tier while the
        policy scores friendships) drop the tie with a daily chance; then each side may
        make a new tie instead."""
        spec, state, sc = self.scenario.responses.association, self.state, self.scenario
        public = np.zeros(self.n, bool)
        if spec.public_lists:
            for s in sc.lists:
                if s.public:
                    public |= state.on_list[s.name]
        avoided = public | self.avoid_tier[state.tier]
        target = np.flatnonzero(avoided)
        rng = self.streams.rng("association", day)
        dropped, dropper, where = self.ties.friends_of(target, avoided)
        go = (rng.random(len(where)) < spec.drop) & ~avoided[dropper]
        dropper, dropped, where = dropper[go], dropped[go], where[go]
        self.ties.drop(dropped, dropper, where)
        reason = public[dropped]  # True: a public list; False: the association rule
        self.tie_changes.append((day, dropper, dropped, False, reason))
        # Each side may replace the tie: the dropper among the well-regarded of their
        # region, the dropped among the other avoided — the network sorts itself.
        formed = rng.random(len(dropper)) < spec.form
        a = dropper[formed]
        bounds = self.region_bounds
        region = self.citizens.region[a]
        b = bounds[region] + (rng.random(len(a)) * (bounds[region + 1] - bounds[region])
                              ).astype(np.int64)
        ok = ~avoided[b] & (a != b)
        outcast = dropped[formed]
        other = target[(rng.random(len(outcast)) * len(target)).astype(np.int64)]
        a = np.concatenate([a[ok], outcast])
        b = np.concatenate([b[ok], other])
        why = np.concatenate([reason[formed][ok], reason[formed]])
        keep = a != b
        a, b, why = a[keep], b[keep], why[keep]
        self.ties.form(a, b)
        self.tie_changes.append((day, a, b, True, why))
        row.update(ties_dropped=len(dropper), ties_formed=len(a))

    def tie_log(self) -> dict[str, np.ndarray]:
        """Every change to the network as columns: day, citizen, friend, formed (else
        dropped), public (a public list was the reason, else the association rule)."""
        parts = self.tie_changes or [(0, np.zeros(0, np.int64), np.zeros(0, np.int64), False,
                                      np.zeros(0, bool))]
        return {
            "day": np.concatenate([np.full(len(p[1]), p[0], np.int16) for p in parts]),
            "citizen": np.concatenate([p[1] for p in parts]).astype(np.int64),
            "friend": np.concatenate([p[2] for p in parts]).astype(np.int64),
            "formed": np.concatenate([np.full(len(p[1]), p[3]) for p in parts]),
            "public": np.concatenate([p[4] for p in parts]).astype(bool),
        }

    # ------------------------------------------------------------------ aggregate
    def _aggregate(self, day: int, row: dict) -> None:
        """The day's row. Counts kept up to date as they change, so that a day costs
        what happened in it, not a pass over everyone."""
        state, sc = self.state, self.scenario
        last = day == sc.run.days - 1
        row["mean_score"] = self.score_total / self.n
        row["mean_income"] = (float(state.income.mean(dtype=np.float64))
                              if sc.responses.economy.enabled else self.mean_income)
        for t, c in zip(sc.tiers, self.tier_count, strict=True):
            row[f"tier_{t.name}"] = int(c)
        for spec, size in zip(sc.lists, self.list_size, strict=True):
            row[f"list_{spec.name}"] = int(size)
        if day % SNAPSHOT_EVERY == 0 or last:
            self.snapshots[day] = state.tier.copy()
        row["assortativity"] = (self.network.assortativity(state.score)
                                if day % ASSORTATIVITY_EVERY == 0 or last else None)
        # Persistence at the bottom: of those who entered it PERSISTENCE_DAYS ago, how
        # many are there now. Only citizens whose score moved today can have entered.
        moved = _unique(np.concatenate(self._moved)) if self._moved else np.zeros(0, np.int64)
        now = state.tier[moved] >= sc.bottom
        self.entered_bottom[day] = moved[now & ~self._at_bottom[moved]]
        self._at_bottom[moved] = now
        self._moved = []
        checked = self.entered_bottom.pop(day - PERSISTENCE_DAYS, np.zeros(0, np.int64))
        row.update(bottom_entered=len(self.entered_bottom[day]), bottom_checked=len(checked),
                   bottom_stayed=int(self._at_bottom[checked].sum()))


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort, which beats np.unique's hashing on large arrays)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _rank_within(citizen: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries name the same citizen."""
    order = np.argsort(citizen, kind="stable")
    rank = _cumsum_within(citizen[order], np.ones(len(citizen), np.int64))
    out = np.empty(len(citizen), np.int64)
    out[order] = rank
    return out


def _cumsum_within(sorted_keys: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Sum of `size` over the earlier entries with the same key (keys sorted)."""
    if not len(sorted_keys):
        return size.copy()
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(sorted_keys)), 0))
    before = np.cumsum(size) - size
    return before - before[run_start]
