"""A Mesa 3 twin of the engine: the same model, written the idiomatic agent-based way.

One `Citizen` agent per citizen, a `SocialCreditModel` that steps them with
`model.agents.shuffle_do("step")`, and a `DataCollector` for the daily aggregates. It
reads every parameter from a resolved `metricpower.scenario.Scenario`, builds the same
population (`make_citizens`, `make_network`) and evaluates the same compiled rule
conditions (`scenario.conditions()`), each on one agent at a time. It is the reference the
vectorised engine is checked against (the way mesa-frames proves its fast path by a twin)
and the baseline the benchmark measures it against. It is not part of the package.

The twin draws its own random numbers per agent from the model's generator
(`self.random`), so it agrees with the engine in distribution, not draw for draw:

- per citizen-day each behaviour occurs Poisson(rate_i) times (rate_i from the engine's
  `rates`, the same log-linear drivers); an occurrence is benign with probability
  `benign_share`, and each listed sensor in order sees it with probability
  coverage(urban or rural) × detection, the first one that sees it being the evidence;
- each camera charges Poisson(false-match rate_i) false matches a day to citizen i, each
  with a public behaviour it watches, drawn in proportion to the behaviours' mean rates;
- each service gets Poisson(demand_i) attempts a day.

The day runs in the engine's stages, each a pass over the agents: occur and observe
(`step`, in random order); score the day's events (conditions read the state at the start
of the day) and settle (apply the points, re-tier); then each periodic or restoration rule
due today, in the policy's order, scored and settled in turn (each sees the day's points so
far); lists in order; direct consequences (confiscate_pet, publish) in order; services
(deny/throttle before reward). Each pass reads only what the passes before it wrote, so
the order of agents within a pass does not matter — which is what makes the stages
synchronous like the engine's whole-array updates. Where a condition reads friends
(`friends_*`), a stage that writes what friends read is split into a decide pass and an
apply pass.

Behavioural responses (`scenario.responses`) are not modelled: a scenario that enables
them is refused (`without_responses` gives the same scenario with them off).
"""

from __future__ import annotations

import ast
import bisect
import math
from collections import deque

import mesa
import numpy as np
from mesa.datacollection import DataCollector

from metricpower.engine.observe import Rates, false_match_rates
from metricpower.population import Citizens, Network, make_citizens, make_network
from metricpower.scenario.schema import Responses, Scenario

FRIENDS = ("friends_mean", "friends_min", "friends_sum")


def without_responses(scenario: Scenario) -> Scenario:
    """The same scenario with people's responses switched off (the schema's default)."""
    return scenario.model_copy(update={"responses": Responses()})


def friends_depth(text: str) -> int:
    """How deeply friends_*() calls nest in a condition (0: it reads only the citizen)."""

    def depth(node: ast.AST) -> int:
        inner = max((depth(child) for child in ast.iter_child_nodes(node)), default=0)
        is_friends = (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                      and node.func.id in FRIENDS)
        return inner + is_friends

    return depth(ast.parse(text, mode="eval"))


def poisson_inverse(u: float, lam: float, p0: float) -> int:
    """The Poisson(lam) value whose CDF interval holds the uniform u (inversion);
    p0 = exp(-lam). Callers test `u <= p0` (a zero, the common case) first."""
    k, p, s = 0, p0, p0
    while u > s and p > 0.0:
        k += 1
        p *= lam / k
        s += p
    return k


class ScalarXP:
    """The array namespace a condition sees when it is evaluated on one agent: Python
    scalars in, Python scalars out."""

    @staticmethod
    def asarray(value):
        return value

    @staticmethod
    def logical_and(a, b):
        return bool(a) and bool(b)

    @staticmethod
    def logical_or(a, b):
        return bool(a) or bool(b)

    @staticmethod
    def logical_not(a):
        return not a


class Neighbourhood:
    """Evaluation context for a condition that reads friends: every variable is an array
    over the agent (position 0) and the citizens within `depth` ties of it, so that
    friends_*() can aggregate over each member's friends. Values at the rim (members
    exactly `depth` ties away) are never read by the agent's own result."""

    xp = np

    def __init__(self, agent: Citizen, depth: int):
        self.agent, self.day = agent, agent.model.day
        self.members, self.friend_pos = agent.ball(depth)

    def var(self, name: str):
        if name == "day":
            return self.day
        if name == "days_clean":
            return np.array([self.day - a.last_penalty for a in self.members])
        return np.array([getattr(a, name) for a in self.members])

    def call(self, name: str, args: tuple):
        if name == "count":
            behaviour, days = args
            return np.array([a.count(behaviour, int(days)) for a in self.members])
        if name == "on_list":
            return np.array([a.on_list[args[0]] for a in self.members])
        values = np.broadcast_to(np.asarray(args[0]), (len(self.members),))
        out = np.full(len(self.members), np.nan)
        for j, pos in enumerate(self.friend_pos):
            friends = values[pos]
            if name == "friends_sum":  # of true values (a count), or of any numbers
                out[j] = friends.astype(np.float64).sum()
            elif name == "friends_mean":
                out[j] = friends.astype(np.float64).mean() if len(pos) else np.nan
            else:
                out[j] = friends.astype(np.float64).min() if len(pos) else np.inf
        return out


class Citizen(mesa.Agent):
    """One citizen: traits, what the system knows about them, what it did to them.

    The agent is also the evaluation context of the conditions that read only the
    citizen (`xp`, `var`, `call`)."""

    xp = ScalarXP

    def __init__(self, model: SocialCreditModel, index: int, traits: dict):
        super().__init__(model)
        self.index = index
        sc = model.scenario
        # Traits (read by conditions and by the rates).
        self.urban = bool(traits["urban"])
        self.income = float(traits["income"])  # constant: no economic feedback in the twin
        self.has_child = bool(traits["has_child"])
        self.group = int(traits["group"])
        # What the system knows and does.
        self.score = sc.population.initial_score
        self.tier = model.tier_of(self.score)
        self.last_penalty = -1
        self.pet_owner = bool(traits["pet_owner"])
        self.flagged = False  # no risk model (a response) in the twin
        self.labelled = False
        self.on_list = {s.name: False for s in sc.lists}
        self.list_since = {s.name: 0 for s in sc.lists}
        self.rule_total = {r.name: 0 for r in sc.rules if r.cap}
        self.rule_hours = {r.name: 0.0 for r in sc.rules if r.schedule}
        self.seen_days = {b: deque() for b in model.window_days}
        self.friends: list[Citizen] = []
        self._balls: dict[int, tuple] = {}
        self.today: list[tuple[int, int, bool, bool]] = []  # (behaviour, sensor, benign, misattr.)
        self.not_yet: tuple[str, int] | None = None  # today's acts after the one scored
        self.pending: list[tuple[int, int]] = []             # (rule, points) to settle
        # What happened to them (per-citizen tallies).
        self.sanctions = self.rewards = 0
        self.penalties = self.benign_penalties = self.misattributed_penalties = 0
        self.reward_events = 0
        self.rule_entries = [0] * len(sc.rules)  # score changes by rule
        self.pets_confiscated = False
        self.days_labelled = 0
        self.days_listed = {s.name: 0 for s in sc.lists}

    # ------------------------------------------------------------ condition context
    def var(self, name: str):
        if name == "day":
            return self.model.day
        if name == "days_clean":
            return self.model.day - self.last_penalty
        return getattr(self, name)

    def call(self, name: str, args: tuple):
        if name == "count":
            return self.count(args[0], int(args[1]))
        if name == "on_list":
            return self.on_list[args[0]]
        raise ValueError(f"{name}() reads friends: evaluate it in a Neighbourhood")

    def count(self, behaviour: str, days: int) -> int:
        """Observed events of `behaviour` in the last `days` days, today included."""
        q = self.seen_days[behaviour]
        if not q:
            return 0
        first = self.model.day - days
        later = self.not_yet[1] if self.not_yet and self.not_yet[0] == behaviour else 0
        return sum(1 for d in q if d > first) - later

    def holds(self, where: str) -> bool:
        """Whether the policy's condition `where` (e.g. "lists[0].enter") holds for me."""
        cond, depth = self.model.compiled[where]
        if depth == 0:
            return bool(cond(self))
        value = np.asarray(cond(Neighbourhood(self, depth)))
        return bool(value.flat[0])

    def ball(self, depth: int):
        """The agent and everyone within `depth` ties (agent first), and for each member
        closer than `depth` the positions of its friends among the members."""
        if depth not in self._balls:
            members, pos, frontier = [self], {self: 0}, [self]
            for _ in range(depth):
                nxt = []
                for a in frontier:
                    for f in a.friends:
                        if f not in pos:
                            pos[f] = len(members)
                            members.append(f)
                            nxt.append(f)
                frontier = nxt
            rim = set(frontier)
            inner = [a for a in members if a not in rim]  # the rim comes last
            friend_pos = [np.array([pos[f] for f in a.friends], dtype=np.int64)
                          for a in inner]
            self._balls[depth] = (members, friend_pos)
        return self._balls[depth]

    # ------------------------------------------------------------ 1. occur and observe
    def step(self):
        """Today's acts, and what the sensors make of them."""
        model, random = self.model, self.random.random
        day, today = model.day, []
        for bi, lam, p0 in self.acts:
            u = random()
            if u <= p0:  # no occurrence today (the common case)
                continue
            if bi in model.behaviour_when and not self.holds(f"behaviours[{bi}].when"):
                continue  # nobody outside the behaviour's condition can do it
            k = poisson_inverse(u, lam, p0)
            benign_share, sensors = model.benign_share[bi], model.behaviour_sensors[bi]
            for _ in range(k):
                benign = random() < benign_share
                for si in sensors:
                    if random() < self.seen[si]:
                        today.append((bi, si, benign, False))
                        model.tally["observed"] += 1
                        break
            model.tally["occurrences"] += k
            model.tally[model.occurrence_keys[bi]] += k
        for si, bi, lam, p0 in self.false_match:
            u = random()
            if u <= p0:
                continue
            for _ in range(poisson_inverse(u, lam, p0)):
                today.append((bi, si, False, True))
                model.tally["false_matches"] += 1
        for bi, _si, _benign, _mis in today:
            name = model.behaviour_names[bi]
            if name in self.seen_days:  # an event window reads this behaviour
                q = self.seen_days[name]
                q.append(day)
                first = day - model.window_days[name]
                while q[0] <= first:  # forget what no window reaches any more
                    q.popleft()
        self.today = today

    # ------------------------------------------------------------ 2. score
    def score_events(self):
        """Points from today's events (pending until settled). Conditions read the state
        at the start of the day, and the event windows with today's events up to the
        one being scored (a threshold falls on the act that crosses it)."""
        model, pending = self.model, self.pending
        rules = model.scenario.rules
        if self.today:
            by_behaviour: dict[int, list] = {}
            for ev in self.today:
                by_behaviour.setdefault(ev[0], []).append(ev)
            for bi, events in by_behaviour.items():
                name = model.behaviour_names[bi]
                for ri in model.event_rules[bi]:
                    rule = rules[ri]
                    for k, (_bi, _si, benign, mis) in enumerate(events):
                        if rule.when is not None:
                            self.not_yet = (name, len(events) - 1 - k)
                            held = self.holds(f"rules[{ri}].when")
                            self.not_yet = None
                            if not held:
                                continue
                        points = self._scheduled(ri) if rule.schedule else rule.points
                        points = self._capped(rule, points)
                        if points == 0:
                            continue
                        pending.append((ri, points))
                        if rule.points < 0:
                            self.penalties += 1
                            self.benign_penalties += benign
                            self.misattributed_penalties += mis
                            model.tally["penalties"] += 1
                        else:
                            self.reward_events += 1

    def score_rule(self, ri: int):
        """A periodic or restoration rule due today (pending until settled). It sees the
        day's event points and the rules before it: nobody penalised today is restored."""
        model, rule = self.model, self.model.scenario.rules[ri]
        if rule.kind == "periodic":
            if not self.holds(f"rules[{ri}].when"):
                return
            points = rule.points
        else:  # restoration: up to the initial score after a clean spell
            initial = model.scenario.population.initial_score
            if not (model.day - self.last_penalty >= rule.clean_days and self.score < initial):
                return
            points = min(rule.points, initial - self.score)
        points = self._capped(rule, points)
        if points == 0:
            return
        self.pending.append((ri, points))
        if rule.points < 0:
            self.penalties += 1
            model.tally["penalties"] += 1
        else:
            self.reward_events += 1

    def score_rule_and_settle(self, ri: int):
        """`score_rule` and `settle` at once, for a rule that reads no friends."""
        self.score_rule(ri)
        self.settle()

    def _scheduled(self, ri: int) -> int:
        """Points for one more act paid by the hour on the rule's diminishing schedule."""
        rule = self.model.scenario.rules[ri]
        before = self.rule_hours[rule.name]
        self.rule_hours[rule.name] = before + rule.hours
        points_at = self.model.schedule_points[ri]
        return min(points_at(before + rule.hours) - points_at(before), rule.points)

    def _capped(self, rule, points: int) -> int:
        """Points left under the rule's cap on |points| per citizen."""
        if not rule.cap:
            return points
        total = self.rule_total[rule.name]
        granted = min(abs(points), max(rule.cap - total, 0))
        self.rule_total[rule.name] = total + granted
        return granted if points > 0 else -granted

    def settle(self):
        """Apply today's points; re-tier."""
        if not self.pending:
            return
        for ri, points in self.pending:
            self.rule_entries[ri] += 1
            self.score += points
            if points < 0:
                self.last_penalty = self.model.day
        self.tier = self.model.tier_of(self.score)
        self.pending = []

    # ------------------------------------------------------------ 3. lists
    def decide_list(self, li: int):
        """Whether the citizen enters or leaves list `li` today (not applied yet)."""
        spec = self.model.scenario.lists[li]
        day, name = self.model.day, spec.name
        self._list_next = self.on_list[name]
        if not self.on_list[name]:
            if self.holds(f"lists[{li}].enter"):
                self._list_next = True
        elif day - self.list_since[name] >= spec.min_days:
            if spec.exit is not None:
                leave = self.holds(f"lists[{li}].exit")
            else:
                leave = not self.holds(f"lists[{li}].enter")
            if leave:
                self._list_next = False

    def apply_list(self, li: int):
        name = self.model.scenario.lists[li].name
        if self._list_next != self.on_list[name]:
            self.on_list[name] = self._list_next
            if self._list_next:
                self.list_since[name] = self.model.day
            self.model.tally[("entered_" if self._list_next else "left_") + name] += 1
        self.days_listed[name] += self.on_list[name]

    def categorise(self):
        """Every list in order, decided and applied at once (no list reads friends)."""
        for li in range(len(self.model.scenario.lists)):
            self.decide_list(li)
            self.apply_list(li)

    # ------------------------------------------------------------ 4. consequences
    def decide_direct(self, ci: int):
        cons = self.model.scenario.consequences[ci]
        if cons.effect == "confiscate_pet":
            self._direct_hit = self.pet_owner and self.holds(f"consequences[{ci}].when")
        else:  # publish
            self._direct_hit = self.holds(f"consequences[{ci}].when")

    def apply_direct(self, ci: int):
        model = self.model
        cons = model.scenario.consequences[ci]
        if cons.effect == "confiscate_pet":
            if self._direct_hit:
                self.pet_owner = False
                self.pets_confiscated = True
                # No pet, no walking it off the lead.
                behaviours = model.scenario.behaviours
                self.acts = [a for a in self.acts if behaviours[a[0]].requires != "pet_owner"]
                self.false_match = [f for f in self.false_match
                                    if behaviours[f[1]].requires != "pet_owner"]
                self.sanctions += 1
                model.tally["applied_" + cons.name] += 1
        else:  # publish: a labelling counts once, when it starts
            if self._direct_hit:
                self._labelled_now = True
                if not self.labelled:
                    self.sanctions += 1
                    model.tally["applied_" + cons.name] += 1

    def start_direct(self):
        self._labelled_now = False

    def end_direct(self):
        self.labelled = self._labelled_now
        self.days_labelled += self.labelled

    def sanction_directly(self):
        """Every direct consequence in order (none reads friends)."""
        self.start_direct()
        for ci in self.model.direct:
            self.decide_direct(ci)
            self.apply_direct(ci)
        self.end_direct()

    def use_services(self):
        """Today's attempts at each service: sanctions first (a denial ends the attempt),
        then rewards for the rest."""
        model, random = self.model, self.random.random
        for si, lam, p0 in self.demand:
            u = random()
            if u <= p0:
                continue
            k = poisson_inverse(u, lam, p0)
            model.tally["attempts_" + model.service_names[si]] += k
            denied = False
            for ci, effect, name in model.service_consequences[si]:
                if effect == "reward":
                    if denied or not self.holds(f"consequences[{ci}].when"):
                        continue
                    self.rewards += k
                else:
                    if denied or not self.holds(f"consequences[{ci}].when"):
                        continue
                    self.sanctions += k
                    if effect == "deny":
                        denied = True
                model.tally["applied_" + name] += k


class SocialCreditModel(mesa.Model):
    """The social credit system of a scenario, one agent per citizen."""

    def __init__(self, scenario: Scenario, citizens: Citizens | None = None,
                 network: Network | None = None, seed: int | None = None):
        super().__init__(seed=scenario.run.seed if seed is None else seed)
        if scenario.responses != Responses():
            raise ValueError(
                "the Mesa twin does not model responses; use without_responses(scenario)")
        self.scenario = sc = scenario
        citizens = make_citizens(sc) if citizens is None else citizens
        network = make_network(sc, citizens) if network is None else network
        self.n = n = len(citizens)
        self.day = 0
        # Policy, compiled once.
        self.conditions = sc.conditions()
        self.depth = {where: friends_depth(c.text) for where, c in self.conditions.items()}
        self.compiled = {where: (c, self.depth[where]) for where, c in self.conditions.items()}
        self.behaviour_when = {i for i, b in enumerate(sc.behaviours) if b.when is not None}
        self.floors = sorted(sc.tier_floors)
        self.schedule_points = {ri: _schedule(r.schedule) for ri, r in enumerate(sc.rules)
                                if r.schedule}
        self.behaviour_names = [b.name for b in sc.behaviours]
        self.occurrence_keys = [f"occurrences_{b}" for b in self.behaviour_names]
        self.benign_share = [b.benign_share for b in sc.behaviours]
        sensor_index = {s.name: i for i, s in enumerate(sc.sensors)}
        self.behaviour_sensors = [[sensor_index[s] for s in b.sensors] for b in sc.behaviours]
        self.window_days: dict[str, int] = {}
        for name, days in sc.windows():
            self.window_days[name] = max(days, self.window_days.get(name, 0))
        bindex = {b: i for i, b in enumerate(self.behaviour_names)}
        self.event_rules = {bi: [] for bi in range(len(sc.behaviours))}
        for ri, r in enumerate(sc.rules):
            if r.kind == "event":
                self.event_rules[bindex[r.behaviour]].append(ri)
        self.service_names = [s.name for s in sc.services]
        self.direct = [ci for ci, c in enumerate(sc.consequences)
                       if c.effect in ("confiscate_pet", "publish")]
        self.service_consequences = []
        for svc in sc.services:
            ordered = [(ci, c.effect, c.name) for effects in (("deny", "throttle"), ("reward",))
                       for ci, c in enumerate(sc.consequences)
                       if c.service == svc.name and c.effect in effects]
            self.service_consequences.append(ordered)
        # The day's passes; a stage whose conditions read friends gets a decide and an
        # apply pass per item, so that nobody reads a friend's half-updated state.
        reads_friends = {where for where, d in self.depth.items() if d > 0}
        self.phases: list[tuple] = []
        if any(w.startswith("lists[") for w in reads_friends):
            for li in range(len(sc.lists)):
                self.phases += [("decide_list", li), ("apply_list", li)]
        else:
            self.phases.append(("categorise",))
        if any(w.startswith("consequences[") for w in reads_friends):
            self.phases.append(("start_direct",))
            for ci in self.direct:
                self.phases += [("decide_direct", ci), ("apply_direct", ci)]
            self.phases.append(("end_direct",))
        else:
            self.phases.append(("sanction_directly",))
        self.phases.append(("use_services",))

        # Per-citizen rates, from the engine's own rate function (same drivers, same means).
        act_rate = [Rates(citizens, b.rate, b.drivers, b.requires).at(slice(None))
                    for b in sc.behaviours]
        demand = [Rates(citizens, s.demand, s.drivers, s.requires).at(slice(None))
                  for s in sc.services]
        urban = citizens.urban
        seen = [np.where(urban, s.coverage.urban, s.coverage.rural) * s.detection
                for s in sc.sensors]
        false_match = [(si, bi, r.at(slice(None)))
                       for si, bi, r in false_match_rates(sc, citizens)]

        columns = citizens.columns()
        agents = []
        for i in range(n):
            a = Citizen(self, i, {k: v[i] for k, v in columns.items()})
            a.acts = [(bi, float(r[i]), math.exp(-float(r[i])))
                      for bi, r in enumerate(act_rate) if r[i] > 0]
            a.demand = [(si, float(r[i]), math.exp(-float(r[i])))
                        for si, r in enumerate(demand) if r[i] > 0]
            a.seen = [float(s[i]) for s in seen]
            a.false_match = [(si, bi, float(r[i]), math.exp(-float(r[i])))
                             for si, bi, r in false_match if r[i] > 0]
            agents.append(a)
        self.citizens_by_index = agents
        indptr, indices = network.indptr, network.indices
        for i, a in enumerate(agents):
            a.friends = [agents[j] for j in indices[indptr[i]:indptr[i + 1]]]

        self.tally: dict[str, int] = {}
        reporters = {
            "day": "day",
            "mean_score": lambda m: m.agents.agg("score", np.mean),
            **{f"tier_{t.name}": (lambda m, ti=ti: m.census["tier"].get(ti, 0))
               for ti, t in enumerate(sc.tiers)},
            **{f"list_{s.name}": (lambda m, name=s.name: m.census["lists"][name])
               for s in sc.lists},
            **{key: (lambda m, key=key: m.tally[key]) for key in self._tally_keys()},
        }
        self.datacollector = DataCollector(model_reporters=reporters)

    def _tally_keys(self) -> list[str]:
        sc = self.scenario
        return (["occurrences", "observed", "false_matches", "penalties"]
                + self.occurrence_keys
                + [f"{k}_{s.name}" for s in sc.lists for k in ("entered", "left")]
                + [f"attempts_{s.name}" for s in sc.services]
                + [f"applied_{c.name}" for c in sc.consequences])

    def tier_of(self, score: int) -> int:
        """Tier index (0 = best): the number of tier floors above the score."""
        return len(self.floors) - bisect.bisect_right(self.floors, score)

    def step(self):
        sc, day = self.scenario, self.day
        self.tally = dict.fromkeys(self._tally_keys(), 0)
        self.due_rules = [ri for ri, r in enumerate(sc.rules)
                          if r.kind != "event" and (day + 1) % r.every == 0]
        self.agents.shuffle_do("step")          # occur and observe
        # The other stages read only what earlier stages wrote: their order is immaterial.
        self.agents.do("score_events")
        self.agents.do("settle")
        for ri in self.due_rules:  # each sees the ones before it
            if self.depth.get(f"rules[{ri}].when", 0):
                self.agents.do("score_rule", ri)
                self.agents.do("settle")
            else:
                self.agents.do("score_rule_and_settle", ri)
        for method, *args in self.phases:
            self.agents.do(method, *args)
        self.census = {
            "tier": dict(zip(*np.unique(self.agents.get("tier"), return_counts=True),
                             strict=True)),
            "lists": {s.name: sum(a.on_list[s.name] for a in self.agents) for s in sc.lists},
        }
        self.datacollector.collect(self)
        self.day += 1

    def run(self, days: int | None = None) -> None:
        for _ in range(self.scenario.run.days if days is None else days):
            self.step()

    # ------------------------------------------------------------ results
    def summary(self) -> dict[str, float]:
        """The run's outcomes per citizen, keyed as `engine_summary` keys the engine's."""
        sc, n = self.scenario, self.n
        agents = self.citizens_by_index
        flows = self.datacollector.get_model_vars_dataframe()
        out = {"mean_score": sum(a.score for a in agents) / n}
        tiers = np.bincount([a.tier for a in agents], minlength=len(sc.tiers))
        out.update({f"tier_{t.name}": tiers[ti] / n for ti, t in enumerate(sc.tiers)})
        out.update({f"list_{s.name}": sum(a.on_list[s.name] for a in agents) / n
                    for s in sc.lists})
        for key in ("sanctions", "rewards", "penalties", "benign_penalties",
                    "misattributed_penalties", "reward_events", "pets_confiscated",
                    "days_labelled"):
            out[key] = sum(getattr(a, key) for a in agents) / n
        out.update({f"days_listed_{s.name}": sum(a.days_listed[s.name] for a in agents) / n
                    for s in sc.lists})
        out.update({f"entries_{r.name}": sum(a.rule_entries[ri] for a in agents) / n
                    for ri, r in enumerate(sc.rules)})
        out.update({key: flows[key].sum() / n for key in self._tally_keys()
                    if key != "penalties"})
        return {k: float(v) for k, v in out.items()}


def _schedule(schedule):
    """Whole points earned after h hours on a schedule [[upper hours, points per hour], …]."""
    uppers = [0.0] + [float(u) for u, _ in schedule]
    per_hour = [float(p) for _, p in schedule]
    earned = [0.0]
    for i, p in enumerate(per_hour):
        earned.append(earned[-1] + (uppers[i + 1] - uppers[i]) * p)

    def points_at(h: float) -> int:
        band = min(max(bisect.bisect_right(uppers, h) - 1, 0), len(per_hour) - 1)
        inside = min(h, uppers[-1]) - uppers[band]
        return math.floor(earned[band] + inside * per_hour[band] + 1e-9)

    return points_at


def _days(kept, daily: list, *key) -> np.ndarray:
    """Days labelled or listed per citizen, kept as an array (or a dict of them) or
    computed on demand from the days run."""
    if callable(kept):
        return kept(*key, len(daily))
    return kept[key[0]] if key else kept


def engine_summary(engine) -> dict[str, float]:
    """The engine's outcomes per citizen, keyed as `SocialCreditModel.summary` (needs the
    full ledger, i.e. ledger_sample 1 — the default up to a million citizens)."""
    state, sc, n = engine.state, engine.scenario, engine.n
    assert engine.ledger.kept.all(), "engine_summary needs the full ledger"
    cols = engine.ledger.columns()
    if "reverses" in cols:  # appeals upheld (a response, off here) undo earlier entries
        assert (cols["reverses"] < 0).all(), "engine_summary expects no appeals"
    rule_points = np.array([r.points for r in sc.rules])
    penalty = rule_points[cols["rule"]] < 0 if len(cols["rule"]) else np.zeros(0, bool)
    out = {"mean_score": state.score.mean()}
    tiers = np.bincount(state.tier, minlength=len(sc.tiers))
    out.update({f"tier_{t.name}": tiers[ti] / n for ti, t in enumerate(sc.tiers)})
    out.update({f"list_{s.name}": state.on_list[s.name].mean() for s in sc.lists})
    out.update(
        sanctions=state.sanctions.sum() / n,
        rewards=state.rewards.sum() / n,
        penalties=penalty.sum() / n,
        benign_penalties=(penalty & cols["benign"]).sum() / n,
        misattributed_penalties=(penalty & cols["misattributed"]).sum() / n,
        reward_events=(~penalty).sum() / n,
        pets_confiscated=state.pets_confiscated.sum() / n,
        days_labelled=_days(state.days_labelled, engine.daily).sum() / n,
    )
    out.update({f"days_listed_{s.name}": _days(state.days_listed, engine.daily, s.name).sum() / n
                for s in sc.lists})
    entries = np.bincount(cols["rule"], minlength=len(sc.rules))
    out.update({f"entries_{r.name}": entries[ri] / n for ri, r in enumerate(sc.rules)})
    flows = ["occurrences", "observed", "false_matches"]
    flows += [f"occurrences_{b.name}" for b in sc.behaviours]
    flows += [f"{k}_{s.name}" for s in sc.lists for k in ("entered", "left")]
    flows += [f"attempts_{s.name}" for s in sc.services]
    flows += [f"applied_{c.name}" for c in sc.consequences]
    out.update({key: sum(row.get(key, 0) for row in engine.daily) / n for key in flows})
    return {k: float(v) for k, v in out.items()}


def summary_of_run(task: tuple) -> dict[str, float]:
    """One run for the agreement test, (system, preset, overrides, citizens, days,
    population seed, seed): the population is drawn with the population seed, the run
    with `seed` (the engine's `run.seed`, the twin's Mesa seed); returns its summary."""
    from metricpower.engine import Engine
    from metricpower.scenario import load_preset

    system, preset, overrides, citizens, days, population_seed, seed = task

    def scenario(s):
        run = {"citizens": citizens, "days": days, "seed": s}
        return without_responses(load_preset(preset, overrides={**overrides, "run": run}))

    population = scenario(population_seed)
    people = make_citizens(population)
    network = make_network(population, people)
    if system == "twin":
        model = SocialCreditModel(population, people, network, seed=seed)
        model.run()
        return model.summary()
    engine = Engine(scenario(seed), people, network)
    engine.run()
    return engine_summary(engine)
