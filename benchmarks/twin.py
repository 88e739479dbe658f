"""An independent twin of metricpower's model: the model written a second time from its
description (docs/model.md), sharing no code with the engine.

It reads only the scenario (`metricpower.scenario.schema`, the input). Everything else is
its own: the population and its incomes, the network, per-citizen rates, sensors and
false matches, a small interpreter of rule conditions over Python's syntax tree (parsed,
never run), scores, tiers, lists, consequences, appeals, deterrence and income feedback.
It is plain NumPy over whole arrays, one day at a time: a Mesa version would check the
same thing at a hundred times the cost, and the twin's worth is in being written apart,
not in its framework.

Where the engine and the twin's model differ on purpose, the twin follows issue 9's
reading of the model:

- deterrence scales a citizen's rate of an act by its expected penalty as the rules would
  treat that act now (a rule whose condition would not hold for the act deters nothing);
- a camera's false match charges a citizen only with a behaviour they could have been
  seen doing (`requires`: nobody without a dog is charged with a dog off the leash).

Not modelled (switched off on both sides by `comparable`): the risk model (a fitted
regression, not a mechanism to re-derive) and association avoidance (rewiring rules whose
effect at test sizes is below sampling error).

`compare(twin_runs, engine_runs)` sets the outcomes of several seeds side by side, group
by group, and says which differ by more than sampling error.
"""

from __future__ import annotations

import ast
import math
from collections import deque

import numpy as np
from scipy import sparse

from metricpower.scenario.schema import Scenario

#: Outcomes differing by more than this many standard errors fail (see `compare`).
Z = 5.0


def comparable(scenario: Scenario) -> Scenario:
    """The scenario both sides run: the risk model and association avoidance off."""
    res = scenario.responses.model_copy(update={
        "prediction": scenario.responses.prediction.model_copy(update={"enabled": False}),
        "association": scenario.responses.association.model_copy(update={"enabled": False}),
    })
    return scenario.model_copy(update={"responses": res})


# ---------------------------------------------------------------- population
class People:
    """The citizens: fixed traits, drawn from the scenario's distributions."""

    def __init__(self, sc: Scenario, rng: np.random.Generator):
        pop = sc.population
        n = self.n = sc.run.citizens
        shares = np.array([r.share for r in pop.regions])
        self.region = rng.choice(len(shares), size=n, p=shares / shares.sum())
        self.urban = rng.random(n) < np.array([r.urban for r in pop.regions])[self.region]
        gshare = np.array([g.share for g in pop.groups])
        self.group = rng.choice(len(gshare), size=n, p=gshare / gshare.sum())
        self.conduct = rng.beta(pop.conduct.alpha, pop.conduct.beta, n)
        self.gamer = rng.beta(pop.gamer.alpha, pop.gamer.beta, n)
        self.prosociality = rng.beta(pop.prosociality.alpha, pop.prosociality.beta, n)
        self.pet_owner = rng.random(n) < pop.pet_owner
        self.has_child = rng.random(n) < pop.has_child
        raw = np.exp(rng.normal(0.0, pop.income_sigma, n) + pop.urban_income_premium * self.urban)
        self.income = raw / raw.mean()

    def trait(self, name: str) -> np.ndarray:
        if name == "income":
            return np.log(self.income)
        return getattr(self, name).astype(float)


def friendships(sc: Scenario, people: People, rng: np.random.Generator) -> sparse.csr_matrix:
    """Each citizen starts Poisson(mean_degree / 2) ties, each to someone of their own
    community (a block of `community_size` citizens of their region) with probability
    `homophily`, else to anyone; ties are mutual, single, never to oneself."""
    spec, n = sc.network, people.n
    # Communities: the citizens of each region, in a random order, cut into blocks.
    community = np.empty(n, np.int64)
    members = []
    for r in range(len(sc.population.regions)):
        who = rng.permutation(np.flatnonzero(people.region == r))
        for start in range(0, len(who), spec.community_size):
            block = who[start:start + spec.community_size]
            community[block] = len(members)
            members.append(block)
    starts = rng.poisson(spec.mean_degree / 2.0, n)
    a = np.repeat(np.arange(n), starts)
    b = rng.integers(0, n, len(a))
    near = rng.random(len(a)) < spec.homophily
    for k in np.flatnonzero(near):
        block = members[community[a[k]]]
        b[k] = block[rng.integers(0, len(block))]
    keep = a != b
    a, b = a[keep], b[keep]
    adj = sparse.coo_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    adj = adj.tocsr()
    adj.data[:] = 1.0  # a tie made twice is one tie
    return adj


def base_rates(people: People, mean: float, drivers: dict, requires: str | None):
    """Daily rates, log-linear in the traits, averaging `mean` over those who can act."""
    log_m = np.zeros(people.n)
    for trait, coef in drivers.items():
        log_m += coef * people.trait(trait)
    m = np.exp(log_m)
    able = np.ones(people.n, bool) if requires is None else getattr(people, requires)
    m[~able] = 0.0
    return m * mean / m[able].mean() if able.any() else m


# ---------------------------------------------------------------- conditions
class Condition:
    """A rule condition, read from its syntax tree and evaluated over every citizen."""

    def __init__(self, text: str):
        self.text = text
        self.tree = ast.parse(text, mode="eval").body

    def __call__(self, world: Twin, plus_one: str | None = None) -> np.ndarray:
        """Truth for every citizen; with `plus_one`, counts of that behaviour read one
        more act (the condition as it would stand for one more act now)."""
        value = self._eval(self.tree, world, plus_one)
        return np.broadcast_to(np.asarray(value, bool), (world.n,))

    def _eval(self, node, world, plus):
        ev = lambda x: self._eval(x, world, plus)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Tuple | ast.List):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Name):
            return world.variable(node.id)
        if isinstance(node, ast.BoolOp):
            values = [np.asarray(ev(v), bool) for v in node.values]
            join = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
            out = values[0]
            for v in values[1:]:
                out = join(out, v)
            return out
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return ~np.asarray(v, bool)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            x, y = np.asarray(ev(node.left), float), np.asarray(ev(node.right), float)
            ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
                   ast.Div: np.divide}
            with np.errstate(divide="ignore", invalid="ignore"):
                return ops[type(node.op)](x, y)
        if isinstance(node, ast.Compare):
            left, out = ev(node.left), True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                out = np.logical_and(out, _compare(op, left, right))
                left = right
            return out
        if isinstance(node, ast.Call):
            name = node.func.id
            args = [ev(a) for a in node.args]
            if name == "count":
                behaviour, days = args
                return world.count(behaviour, int(days)) + (behaviour == plus)
            if name == "on_list":
                return world.on[args[0]]
            return world.over_friends(name, np.broadcast_to(np.asarray(args[0], float),
                                                            (world.n,)))
        raise ValueError(f"{self.text}: the twin cannot read {ast.dump(node)}")


def _compare(op, left, right):
    if isinstance(op, ast.In | ast.NotIn):
        inside = np.isin(left, right)
        return inside if isinstance(op, ast.In) else ~inside
    with np.errstate(invalid="ignore"):
        return {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less,
                ast.LtE: np.less_equal, ast.Gt: np.greater,
                ast.GtE: np.greater_equal}[type(op)](left, right)


# ---------------------------------------------------------------- the twin
class Twin:
    def __init__(self, scenario: Scenario, seed: int):
        sc = self.sc = scenario
        rng = self.rng = np.random.default_rng([seed, 9])
        self.people = p = People(sc, rng)
        self.n = n = p.n
        self.adj = friendships(sc, p, rng)
        self.degree = np.asarray(self.adj.sum(axis=1)).ravel()
        self.days = sc.run.days
        self.day = 0
        self.behaviours = {b.name: b for b in sc.behaviours}
        self.base = {b.name: base_rates(p, b.rate, b.drivers, b.requires)
                     for b in sc.behaviours}
        self.demand = {s.name: base_rates(p, s.demand, s.drivers, s.requires)
                       for s in sc.services}
        self.sensors = {s.name: s for s in sc.sensors}
        self.p_sensor = {s.name: np.where(p.urban, s.coverage.urban, s.coverage.rural)
                         * s.detection for s in sc.sensors}
        self.tier_names = np.array([t.name for t in sc.tiers])
        self.floors = [t.min for t in sc.tiers[:-1]]
        self.cond = {}
        for r in sc.rules:
            if r.when:
                self.cond[("rule", r.name)] = Condition(r.when)
        for b in sc.behaviours:
            if b.when:  # nobody outside the condition can do the behaviour
                self.cond[("behaviour", b.name)] = Condition(b.when)
        for s in sc.lists:
            self.cond[("enter", s.name)] = Condition(s.enter)
            if s.exit:
                self.cond[("exit", s.name)] = Condition(s.exit)
        for c in sc.consequences:
            self.cond[("cons", c.name)] = Condition(c.when)
        # state
        self.score = np.full(n, sc.population.initial_score, np.int64)
        self.last_penalty = np.full(n, -1, np.int64)
        self.pet_owner = p.pet_owner.copy()
        self.income = p.income.copy()
        self.on = {s.name: np.zeros(n, bool) for s in sc.lists}
        self.since = {s.name: np.zeros(n, np.int64) for s in sc.lists}
        self.ever = {s.name: np.zeros(n, bool) for s in sc.lists}
        self.labelled = np.zeros(n, bool)
        self.rule_total = {r.name: np.zeros(n, np.int64) for r in sc.rules}
        self.hours = {r.name: np.zeros(n) for r in sc.rules}
        self.seen = {b.name: [np.zeros(n, np.int64)] for b in sc.behaviours}  # cumulative
        self.appeals: deque = deque()
        # tallies
        groups = len(sc.population.groups)
        self.t = {"penalties": np.zeros(n), "misattributed": np.zeros(n),
                  "sanctions": np.zeros(n), "upheld": 0}
        self.points = {r.name: 0 for r in sc.rules}
        self.scored = {r.name: [0, 0] for r in sc.rules}  # points and entries, before appeals
        self.occurrences = {b.name: 0 for b in sc.behaviours}
        self.attempts = {s.name: 0 for s in sc.services}
        self.applied = {c.name: 0 for c in sc.consequences}
        self.entered = {s.name: 0 for s in sc.lists}
        self.left = {s.name: 0 for s in sc.lists}
        self.groups = groups

    # ---------------------------------------------------------------- what conditions read
    def tier(self) -> np.ndarray:
        below = np.zeros(self.n, np.int64)
        for floor in self.floors:
            below += self.score < floor
        return self.tier_names[below]

    def variable(self, name: str):
        p = self.people
        return {"score": lambda: self.score, "tier": self.tier, "income": lambda: self.income,
                "urban": lambda: p.urban, "pet_owner": lambda: self.pet_owner,
                "has_child": lambda: p.has_child,
                "days_clean": lambda: self.day - self.last_penalty,
                "day": lambda: self.day, "flagged": lambda: np.zeros(self.n, bool),
                "True": lambda: True, "False": lambda: False}[name]()

    def count(self, behaviour: str, days: int) -> np.ndarray:
        history = self.seen[behaviour]
        return history[-1] - history[max(0, len(history) - 1 - days)]

    def over_friends(self, name: str, x: np.ndarray) -> np.ndarray:
        if name == "friends_sum":
            return self.adj @ x
        if name == "friends_mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                return (self.adj @ x) / self.degree
        if name != "friends_min":
            raise ValueError(f"the twin does not know {name}()")
        out = np.full(self.n, np.inf)
        indptr, indices = self.adj.indptr, self.adj.indices
        has = np.diff(indptr) > 0
        out[has] = np.minimum.reduceat(x[indices], indptr[:-1][has])
        return out

    def holds(self, key) -> np.ndarray:
        return self.cond[key](self) if key in self.cond else np.ones(self.n, bool)

    # ---------------------------------------------------------------- the day
    def run(self) -> Twin:
        for day in range(self.days):
            self.day = day
            self.step()
        return self

    def step(self):
        sc, rng, n = self.sc, self.rng, self.n
        res = sc.responses
        sanctions = np.zeros(n)
        rewards = np.zeros(n)
        costly = np.zeros(n)
        # Occur and observe.
        events = {}
        for b in sc.behaviours:
            rate = self.base[b.name].copy()
            if b.requires == "pet_owner":
                rate[~self.pet_owner] = 0.0
            if b.when:
                rate[~self.holds(("behaviour", b.name))] = 0.0
            factor = np.ones(n)
            if res.deterrence.enabled:
                factor *= self._deterrence(b)
            if res.economy.enabled and "income" in b.drivers:
                factor *= (self.income / self.people.income) ** b.drivers["income"]
                factor = np.minimum(factor, 2.0)  # income can at most double a rate
            acts = rng.poisson(rate * factor)
            self.occurrences[b.name] += int(acts.sum())
            if b.name in res.economy.costly:
                costly += acts
            who = np.repeat(np.arange(n), acts)
            benign = rng.random(len(who)) < b.benign_share
            seen = np.zeros(len(who), bool)
            for s in b.sensors:
                seen |= rng.random(len(who)) < self.p_sensor[s][who]
            events[b.name] = (who[seen], benign[seen], np.zeros(int(seen.sum()), bool))
        self._false_matches(events)
        for b in sc.behaviours:
            self.seen[b.name].append(self.seen[b.name][-1]
                                     + np.bincount(events[b.name][0], minlength=n))
        # Score: event rules, then periodic rules and restoration, then appeals.
        delta = np.zeros(n, np.int64)
        for r in sc.rules:
            if r.kind != "event":
                continue
            who, benign, mis = events[r.behaviour]
            hit = self.holds(("rule", r.name))[who]
            who, benign, mis = who[hit], benign[hit], mis[hit]
            pts = self._event_points(r, who)
            got = pts != 0
            who, pts, benign, mis = who[got], pts[got], benign[got], mis[got]
            np.add.at(delta, who, pts)
            self._scored(r, pts)
            if r.points < 0:
                self._penalised(who, mis)
                if res.appeals.enabled:
                    self._file(r, who, pts, benign, mis)
        self._apply(delta)
        for r in sc.rules:
            if r.kind == "event" or (self.day + 1) % r.every:
                continue
            initial = sc.population.initial_score
            if r.kind == "periodic":
                who = np.flatnonzero(self.holds(("rule", r.name)))
                pts = np.full(len(who), r.points, np.int64)
            else:
                who = np.flatnonzero((self.day - self.last_penalty >= r.clean_days)
                                     & (self.score < initial))
                pts = np.minimum(r.points, initial - self.score[who])
            pts = self._cap(r, who, pts)
            who, pts = who[pts != 0], pts[pts != 0]
            d = np.zeros(n, np.int64)
            np.add.at(d, who, pts)
            self._scored(r, pts)
            if r.points < 0:
                self._penalised(who, np.zeros(len(who), bool))
            self._apply(d)
        if res.appeals.enabled:
            self._decide()
        # Categorise.
        for s in sc.lists:
            on, since = self.on[s.name], self.since[s.name]
            enter = self.holds(("enter", s.name))
            served = on & (self.day - since >= s.min_days)
            leave = served & (self.holds(("exit", s.name)) if s.exit else ~enter)
            new = enter & ~on
            on[new], since[new] = True, self.day
            on[leave] = False
            self.ever[s.name] |= new
            self.entered[s.name] += int(new.sum())
            self.left[s.name] += int(leave.sum())
        # Consequences on the citizen, then on services.
        labelled = np.zeros(n, bool)
        publishes = False
        for c in sc.consequences:
            if c.effect == "confiscate_pet":
                hit = self.holds(("cons", c.name)) & self.pet_owner
                self.pet_owner &= ~hit
            elif c.effect == "publish":
                publishes = True
                now = self.holds(("cons", c.name))
                hit = now & ~self.labelled
                labelled |= now
            else:
                continue
            sanctions += hit
            self.applied[c.name] += int(hit.sum())
        if publishes:
            self.labelled = labelled
        for s in sc.services:
            tries = rng.poisson(self.demand[s.name])
            self.attempts[s.name] += int(tries.sum())
            who = np.repeat(np.arange(n), tries)
            served = np.ones(len(who), bool)
            for effects in (("deny", "throttle"), ("reward",)):
                for c in sc.consequences:
                    if c.service != s.name or c.effect not in effects:
                        continue
                    hit = served & self.holds(("cons", c.name))[who]
                    if c.effect == "deny":
                        served &= ~hit
                    np.add.at(sanctions if c.is_sanction else rewards, who[hit], 1)
                    self.applied[c.name] += int(hit.sum())
            if s.name in res.labelling.services:
                refused = served & self.labelled[who] & (rng.random(len(who))
                                                         < res.labelling.refusal)
                np.add.at(sanctions, who[refused], 1)
        self.t["sanctions"] += sanctions
        # Respond: incomes.
        if res.economy.enabled:
            e = res.economy
            self.income *= ((1 - e.sanction_loss) ** sanctions * (1 + e.reward_gain) ** rewards
                            * (1 - e.cost) ** costly)
            self.income += e.recovery * (self.people.income - self.income)

    def _deterrence(self, b) -> np.ndarray:
        """exp(-elasticity · P(seen) · expected |points| of one more act now / 10)."""
        spec = self.sc.responses.deterrence
        penalty = np.zeros(self.n)
        for r in self.sc.rules:
            if r.kind == "event" and r.behaviour == b.name and r.points < 0:
                when = self.cond.get(("rule", r.name))
                applies = when(self, plus_one=b.name) if when else np.ones(self.n, bool)
                penalty += -r.points * applies
        if not penalty.any():
            return np.ones(self.n)
        unseen = np.ones(self.n)
        for s in b.sensors:
            unseen *= 1 - self.p_sensor[s]
        e = spec.elasticity.get(b.name, spec.default)
        return np.exp(-e * (1 - unseen) * penalty / 10.0)

    def _false_matches(self, events):
        """Cameras charge citizens with acts of others: each with a public behaviour the
        camera watches and the citizen could have done, in proportion to base rates."""
        people, rng = self.people, self.rng
        for s in self.sc.sensors:
            public = [b for b in self.sc.behaviours if b.public and s.name in b.sensors]
            if s.kind != "camera" or not s.false_match_rate or not public:
                continue
            mult = np.array([s.false_match_by_group.get(g.name, 1.0)
                             for g in self.sc.population.groups])[people.group]
            cover = np.where(people.urban, s.coverage.urban, s.coverage.rural)
            charges = rng.poisson(s.false_match_rate * mult * cover)
            who = np.repeat(np.arange(self.n), charges)
            able = np.column_stack([
                np.ones(len(who), bool) if b.requires is None
                else (self.pet_owner[who] if b.requires == "pet_owner"
                      else people.has_child[who]) for b in public])
            weight = able * np.array([b.rate for b in public])
            total = weight.sum(axis=1)
            ok = total > 0
            pick = (weight[ok].cumsum(axis=1) / total[ok, None]
                    < rng.random(int(ok.sum()))[:, None]).sum(axis=1)
            for k, b in enumerate(public):
                hit = who[ok][pick == k]
                c, ben, mis = events[b.name]
                events[b.name] = (np.r_[c, hit], np.r_[ben, np.zeros(len(hit), bool)],
                                  np.r_[mis, np.ones(len(hit), bool)])

    def _event_points(self, r, who) -> np.ndarray:
        if not r.schedule:
            return self._cap(r, who, np.full(len(who), r.points, np.int64))
        uppers = [0.0] + [u for u, _ in r.schedule]

        def earned(h: float) -> int:
            total = 0.0
            for lo, (hi, per) in zip(uppers, r.schedule, strict=False):
                total += max(0.0, min(h, hi) - lo) * per
            return math.floor(total + 1e-9)

        pts = np.zeros(len(who), np.int64)
        hours = self.hours[r.name]
        for k, c in enumerate(who):  # few acts a day: a loop is clear and cheap
            before = hours[c]
            pts[k] = min(earned(before + r.hours) - earned(before), r.points)
            hours[c] += r.hours
        return self._cap(r, who, pts)

    def _cap(self, r, who, pts) -> np.ndarray:
        if r.cap is None:
            return pts
        total = self.rule_total[r.name]
        out = np.zeros(len(who), np.int64)
        for k, c in enumerate(who):
            grant = min(abs(int(pts[k])), max(r.cap - int(total[c]), 0))
            out[k] = grant if pts[k] > 0 else -grant
            total[c] += grant
        return out

    def _scored(self, r, pts):
        self.points[r.name] += int(pts.sum())
        self.scored[r.name][0] += int(pts.sum())
        self.scored[r.name][1] += len(pts)

    def _penalised(self, who, mis):
        np.add.at(self.t["penalties"], who, 1)
        np.add.at(self.t["misattributed"], who[mis], 1)

    def _apply(self, delta):
        self.score += delta
        self.last_penalty[delta < 0] = self.day

    def _file(self, r, who, pts, benign, mis):
        spec = self.sc.responses.appeals
        chance = (spec.probability * (np.abs(pts) / 10.0) ** spec.points_elasticity
                  * self.income[who] ** spec.income_elasticity)
        go = self.rng.random(len(who)) < chance
        for c, p_, b_, m_ in zip(who[go], pts[go], benign[go], mis[go], strict=True):
            self.appeals.append((self.day, int(c), r.name, int(p_), bool(b_), bool(m_)))

    def _decide(self):
        spec = self.sc.responses.appeals
        if spec.capacity_per_100k == "unlimited":
            capacity = len(self.appeals)
        else:
            mean = spec.capacity_per_100k * self.n / 1e5
            capacity = int(mean) + int(self.rng.random() < mean - int(mean))
        delta = np.zeros(self.n, np.int64)
        while capacity and self.appeals and self.appeals[0][0] <= self.day - spec.decision_days:
            _, c, rule, pts, benign, mis = self.appeals.popleft()
            capacity -= 1
            chance = (spec.success_misattributed if mis else
                      spec.success_benign if benign else spec.success_true)
            if self.rng.random() < chance:
                delta[c] -= pts
                self.points[rule] -= pts
                self.t["upheld"] += 1
        self.score += delta

    # ---------------------------------------------------------------- outcomes
    def outcomes(self) -> dict[str, float]:
        return outcomes(self.sc, group=self.people.group, score=self.score,
                        tier=self.tier(), penalties=self.t["penalties"],
                        misattributed=self.t["misattributed"], sanctions=self.t["sanctions"],
                        ever_listed={k: v for k, v in self.ever.items()},
                        points=self.points, scored=self.scored, occurrences=self.occurrences,
                        attempts=self.attempts, applied=self.applied, entered=self.entered,
                        left=self.left, upheld=self.t["upheld"],
                        impossible=0)  # charges are drawn among acts one could do


def outcomes(sc, *, group, score, tier, penalties, misattributed, sanctions, ever_listed,
             points, scored, occurrences, attempts, applied, entered, left, upheld,
             impossible) -> dict[str, float]:
    """Every outcome compared, per citizen: by group (mean score, penalties, false-match
    penalties, sanctions, share ever on each list) and overall (points by rule, acts by
    behaviour, attempts by service, each consequence, list entries and exits, tier
    shares, appeals upheld, false matches for acts the citizen could not do) — and each
    rule's mean points per entry before appeals, which checks a rule's value whatever
    deterrence makes of how often it is applied."""
    n = len(score)
    out: dict[str, float] = {}
    for g, spec in enumerate(sc.population.groups):
        m = group == g
        size = max(int(m.sum()), 1)
        out[f"{spec.name}.mean_score"] = float(score[m].mean()) if m.any() else 0.0
        out[f"{spec.name}.penalties"] = float(penalties[m].sum()) / size
        out[f"{spec.name}.misattributed"] = float(misattributed[m].sum()) / size
        out[f"{spec.name}.sanctions"] = float(sanctions[m].sum()) / size
        for name, ever in ever_listed.items():
            out[f"{spec.name}.ever_{name}"] = float(ever[m].sum()) / size
    for kind, table in (("points", points), ("acts", occurrences), ("attempts", attempts),
                        ("applied", applied), ("entered", entered), ("left", left)):
        for name, value in table.items():
            out[f"{kind}.{name}"] = value / n
    for name, (total, entries) in scored.items():
        out[f"per_entry.{name}"] = total / entries if entries else 0.0
    for t in sc.tiers:
        out[f"tier.{t.name}"] = float((tier == t.name).sum()) / n
    out["appeals_upheld"] = upheld / n
    out["impossible_charges"] = impossible / n
    return out


def engine_outcomes(sc: Scenario, tables) -> dict[str, float]:
    """The same outcomes read from a finished engine run's tables (its output, not its
    code): citizens, ledger, daily and consequences."""
    import polars as pl

    def frame(t):
        df = pl.from_arrow(t)
        cats = [c for c, d in df.schema.items() if isinstance(d, pl.Categorical | pl.Enum)]
        return df.with_columns([pl.col(c).cast(pl.String) for c in cats])

    citizens, ledger = frame(tables["citizens"]), frame(tables["ledger"])
    daily, cons = frame(tables["daily"]), frame(tables["consequences"])
    groups = [g.name for g in sc.population.groups]
    group = np.array([groups.index(g) for g in citizens["group"].to_list()])
    n = citizens.height
    original = ledger.filter(pl.col("reverses") < 0)
    penalties = original.filter(pl.col("points") < 0)

    def per_citizen(df):
        return np.bincount(df["citizen"].to_numpy(), minlength=n).astype(float)

    requires = {b.name: b.requires for b in sc.behaviours}
    mis = penalties.filter(pl.col("misattributed"))
    able = np.ones(mis.height, bool)
    for k, (c, b) in enumerate(zip(mis["citizen"].to_list(), mis["behaviour"].to_list(),
                                   strict=True)):
        need = requires.get(b)
        if need is not None:
            able[k] = bool(citizens[need][c])
    points = {r.name: int(ledger.filter(pl.col("rule") == r.name)["points"].sum())
              for r in sc.rules}
    scored = {r.name: [int(original.filter(pl.col("rule") == r.name)["points"].sum()),
                       original.filter(pl.col("rule") == r.name).height] for r in sc.rules}
    applied = {c.name: int(cons.filter(pl.col("consequence") == c.name)["applied"].sum())
               for c in sc.consequences}
    return outcomes(
        sc, group=group, score=citizens["score"].to_numpy(),
        tier=np.array(citizens["tier"].to_list()),
        penalties=per_citizen(penalties), misattributed=per_citizen(mis),
        sanctions=citizens["sanctions"].to_numpy().astype(float),
        ever_listed={s.name: (citizens[f"on_{s.name}"].to_numpy()
                              | (citizens[f"days_on_{s.name}"].to_numpy() > 0))
                     for s in sc.lists},
        points=points, scored=scored,
        occurrences={b.name: int(daily[f"occurrences_{b.name}"].sum()) for b in sc.behaviours},
        attempts={s.name: int(daily[f"attempts_{s.name}"].sum()) for s in sc.services},
        applied=applied,
        entered={s.name: int(daily[f"entered_{s.name}"].sum()) for s in sc.lists},
        left={s.name: int(daily[f"left_{s.name}"].sum()) for s in sc.lists},
        upheld=int(daily["appeals_upheld"].sum()) if "appeals_upheld" in daily.columns else 0,
        impossible=int((~able).sum()))


def compare(twin: list[dict], engine: list[dict], citizens: int, z: float = Z):
    """Outcome by outcome over K seeds a side: d = mean(twin) − mean(engine), its standard
    error sqrt(var_twin / K + var_engine / K) from the spread between seeds (which holds
    everything that varies between populations and runs), floored at one citizen's
    worth (1 / (citizens · √K)). Rows: (outcome, twin, engine, z), sorted by |z|; an
    outcome fails when |z| > z. With K = 8 seeds a side (Welch df ≈ 14) a correct
    engine fails one of ~90 outcomes by chance with probability about 2%."""
    rows = []
    for key in twin[0]:
        a = np.array([t[key] for t in twin])
        b = np.array([e[key] for e in engine])
        k = len(a)
        se = max(math.sqrt(a.var(ddof=1) / k + b.var(ddof=1) / len(b)),
                 1.0 / (citizens * math.sqrt(k)))
        rows.append((key, float(a.mean()), float(b.mean()), float((a.mean() - b.mean()) / se)))
    rows.sort(key=lambda r: -abs(r[3]))
    return rows, [r[0] for r in rows if abs(r[3]) > z]
