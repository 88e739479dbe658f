"""The scenario schema: policy, population, network, responses and run settings.

Every model is strict (unknown keys are errors) so a typo in a scenario file is caught
before anything runs. Every number is bounded before work starts: no NaN or infinity
anywhere, scores and points inside int32 (the engine's type), rates and sizes that cannot
allocate absurd memory, day counts inside the ledger's int16. Cross-references (a rule
naming a behaviour, a consequence naming a service) and rule conditions are checked in
`Scenario`'s validators, so one call to `Scenario.model_validate` answers whether a
scenario can run.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: Mean events per citizen per day: 100 a day is already far beyond any behaviour.
Rate = Annotated[float, Field(ge=0.0, le=100.0)]
#: What the sources say of a mechanic, strongest evidence first (docs/model.md):
#: documented — a real pilot or the court list does this, with this value where one is
#: given; partly — a narrower real measure exists (the sources say "partly"), or the
#: mechanic is real but its value here is the preset's own; reported — only reported
#: second-hand or said by someone, never found as a rule; hypothetical — the model's or
#: the essay's own, no source.
Provenance = Literal["documented", "partly", "reported", "hypothetical"]
PROVENANCE: tuple[str, ...] = Provenance.__args__
#: Scores are int32 in the engine; one rule's points and the starting score stay far
#: inside it, and `Scenario` checks that a run's expected drift does too.
INT32_MAX = 2**31 - 1
Score = Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)]
Points = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
#: Days are int16 in the ledger.
MAX_DAYS = 32_000
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]
#: Entries of one kind: the ledger indexes rules, behaviours and sensors as int16.
MAX_ENTRIES = 30_000
#: A driver's coefficient: rates are exp(coefficient · trait), traits of order 1.
Coefficient = Annotated[float, Field(ge=-50.0, le=50.0)]
#: How many times a group's false matches may exceed the sensor's base rate.
MAX_GROUP_FACTOR = 1_000.0
#: Longest scenario name (it names the run's folder).
MAX_NAME = 100


def _folder_name(name: str) -> str:
    """A scenario's name names its run folder: a plain name, never a path."""
    if not name.strip():
        raise ValueError("expected a name (it names the run's folder); found an empty one")
    if name in (".", "..") or name.startswith("."):
        raise ValueError(f"expected a plain name, not starting with '.'; found {name!r}")
    if re.search(r"[/\\\x00-\x1f\x7f]", name) or re.match(r"^[A-Za-z]:", name):
        raise ValueError("expected a plain name without path separators or control "
                         f"characters (it names the run's folder); found {name!r}")
    if len(name) > MAX_NAME:
        raise ValueError(f"expected a name of at most {MAX_NAME} characters; found "
                         f"{len(name)}")
    return name


FolderName = Annotated[str, AfterValidator(_folder_name)]

#: Citizen traits a behaviour's or a service's rate may depend on (log-linear drivers).
TRAITS = ("conduct", "gamer", "prosociality", "urban", "pet_owner", "has_child", "income")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Beta(Strict):
    """A Beta(alpha, beta) distribution on [0, 1]."""

    alpha: float = Field(gt=0, le=1e6)
    beta: float = Field(gt=0, le=1e6)


class Region(Strict):
    name: str
    share: float = Field(gt=0, le=1, description="share of the population living here")
    urban: Probability = Field(description="share of the region's citizens who live in a city")


class Group(Strict):
    """A demographic group, used for audits (who is misidentified, who is sanctioned)."""

    name: str
    share: float = Field(gt=0, le=1)


class Population(Strict):
    initial_score: Score = 1000
    regions: list[Region] = Field(min_length=1, max_length=MAX_ENTRIES)
    groups: list[Group] = Field(min_length=1, max_length=MAX_ENTRIES)
    conduct: Beta = Beta(alpha=5, beta=2)
    gamer: Beta = Beta(alpha=1.2, beta=4)
    prosociality: Beta = Beta(alpha=2, beta=3)
    pet_owner: Probability = 0.2
    has_child: Probability = 0.3
    # Incomes are float32: beyond these, the poorest or richest underflow or overflow.
    income_sigma: float = Field(0.5, ge=0, le=3, description="sd of log income")
    urban_income_premium: float = Field(0.4, ge=-5, le=5,
                                        description="log-income premium of city dwellers")

    @field_validator("regions", "groups")
    @classmethod
    def _shares_sum_to_one(cls, items):
        total = sum(item.share for item in items)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must add up to 1, found {total:g}")
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, found {names}")
        return items


class Network(Strict):
    mean_degree: float = Field(10.0, ge=0, le=500)
    homophily: Probability = Field(0.8, description="share of ties within one's community")
    community_size: int = Field(
        1000, ge=2, le=2_000_000_000,
        description="citizens per community (communities nest in regions)")


class Behaviour(Strict):
    """Something citizens do. Occurrences are ground truth; only observed ones are scored."""

    name: str
    rate: Rate = Field(description="mean occurrences per citizen per day")
    drivers: dict[str, Coefficient] = Field(
        default_factory=dict,
        description="log-linear rate multipliers by trait, normalised so the mean rate is `rate`",
    )
    requires: Literal["pet_owner", "has_child"] | None = None
    when: str | None = Field(
        None, description="a condition: the behaviour happens (at `rate`) only where it "
        "holds that day, e.g. \"on_list('blacklist')\" for paying off a listed debt")
    benign_share: Probability = Field(
        0.0, description="share of occurrences with a benign reason no sensor can see"
    )
    public: bool = False
    lawful: bool = Field(False, description="the act breaks no law (only this policy calls it bad)")
    sensors: list[str] = Field(default_factory=list)

    @field_validator("drivers")
    @classmethod
    def _known_traits(cls, drivers):
        unknown = sorted(set(drivers) - set(TRAITS))
        if unknown:
            raise ValueError(f"unknown trait(s) {unknown}; expected some of {list(TRAITS)}")
        return drivers


class Coverage(Strict):
    urban: Probability
    rural: Probability


class Sensor(Strict):
    """A way the system sees: coverage where the citizen is, and detection when it looks."""

    name: str
    kind: Literal["camera", "records", "online"]
    coverage: Coverage
    detection: Probability = 1.0
    false_match_rate: Probability = Field(
        0.0, description="false matches per citizen-day at full coverage (cameras only), "
        "shared among the public behaviours it sees by how many acts of each there are, "
        "each charged only to citizens who could do it (`requires`, `when`)"
    )
    false_match_by_group: dict[str, Annotated[float, Field(ge=0, le=MAX_GROUP_FACTOR)]] = \
        Field(default_factory=dict, description="multiplier of false_match_rate by group")

    @model_validator(mode="after")
    def _at_most_one_a_day(self):
        for group, factor in self.false_match_by_group.items():
            if self.false_match_rate * factor > 1:
                raise ValueError(
                    f"false_match_by_group.{group}: false_match_rate × {factor:g} = "
                    f"{self.false_match_rate * factor:g} false matches per citizen-day; "
                    "expected at most 1")
        return self


class Rule(Strict):
    """Maps observed events or a citizen's state to points.

    kind = "event": `points` per observed event of `behaviour` (when `when` holds);
    kind = "periodic": `points` every `every` days to citizens for whom `when` holds;
    kind = "restoration": `points` every `every` days to citizens with no penalty in the
    last `clean_days` days, never above the initial score.

    An event rule with a `schedule` pays for hours with diminishing returns (Weihai's
    volunteering curve): each act is worth `hours`; `schedule = [[20, 1], [80, 0.5]]`
    pays 1 point an hour up to 20 hours in all, then 0.5 an hour up to 80, and nothing
    after the last band. `points` then caps what one act can earn.
    """

    name: str
    kind: Literal["event", "periodic", "restoration"]
    points: Points
    behaviour: str | None = None
    when: str | None = None
    every: Days = 30
    clean_days: Days = 180
    cap: int | None = Field(None, gt=0, le=INT32_MAX,
                            description="most |points| one citizen can get from it")
    hours: float = Field(1.0, gt=0, le=1e6, description="hours each act is worth (with `schedule`)")
    schedule: list[tuple[Annotated[float, Field(gt=0, le=1e9)],
                         Annotated[float, Field(ge=0, le=1e6)]]] | None = Field(
        None, max_length=1000)
    provenance: Provenance = "hypothetical"
    source: str = ""

    @model_validator(mode="after")
    def _fields_for_kind(self):
        if self.schedule is not None:
            if self.kind != "event" or self.points <= 0:
                raise ValueError("a `schedule` belongs to an event rule with positive `points`")
            uppers = [upper for upper, _ in self.schedule]
            if uppers != sorted(set(uppers)):
                raise ValueError(f"schedule: hour bounds must rise, found {uppers}")
        if self.kind == "event" and self.behaviour is None:
            raise ValueError("an event rule needs `behaviour`")
        if self.kind != "event" and self.behaviour is not None:
            raise ValueError(f"a {self.kind} rule takes no `behaviour`")
        if self.kind == "periodic" and self.when is None:
            raise ValueError("a periodic rule needs `when`")
        if self.kind == "restoration" and self.points <= 0:
            raise ValueError("a restoration rule needs positive `points`")
        return self

    @property
    def is_penalty(self) -> bool:
        """The rule takes points away (else it gives them)."""
        return self.points < 0


class Tier(Strict):
    """A score band; `min`/`max` inclusive, omitted at the open ends."""

    name: str
    min: Score | None = None
    max: Score | None = None


class ScoreList(Strict):
    """A blacklist or redlist: entered when `enter` holds, left when `exit` holds after
    `min_days` (or, with no `exit`, when `enter` no longer holds after `min_days`), and
    at the latest after `max_days` (the listing expires; `enter` may list again).

    A listing is withdrawn, whatever its stay, when appeals have reversed the penalties
    for every act since the listing that `enter` counts (`count(...)` of a behaviour)
    and `enter` does not hold now (a reversed act no longer counts anywhere): the
    listing rested on nothing. An exit by an act of the listed (paying off the debt)
    is a behaviour with `when = "on_list('<list>')"` that `exit` counts."""

    name: str
    enter: str
    exit: str | None = None
    min_days: int = Field(0, ge=0, le=MAX_DAYS)
    max_days: int | None = Field(None, ge=1, le=MAX_DAYS,
                                 description="days after which a listing expires")
    public: bool = False
    provenance: Provenance = "hypothetical"
    source: str = ""

    @model_validator(mode="after")
    def _stay(self):
        if self.max_days is not None and self.max_days < self.min_days:
            raise ValueError(f"max_days: a listing cannot expire ({self.max_days} days) "
                             f"before its minimum stay ({self.min_days} days)")
        return self


class Service(Strict):
    """Something citizens try to use; consequences gate it."""

    name: str
    demand: Rate = Field(description="attempts per citizen per day")
    drivers: dict[str, Coefficient] = Field(default_factory=dict)
    requires: Literal["pet_owner", "has_child"] | None = None

    _known_traits = field_validator("drivers")(Behaviour._known_traits.__func__)


class EffectKind(NamedTuple):
    on_service: bool  # acts on a service's attempts (else on the citizen directly)
    sanction: bool    # a sanction (else a reward)


#: The effects a consequence can have; the engine implements each one in
#: engine/effects/<name>.py (see the README's contributor section).
EFFECTS = {
    "deny": EffectKind(on_service=True, sanction=True),
    "throttle": EffectKind(on_service=True, sanction=True),
    "reward": EffectKind(on_service=True, sanction=False),
    "confiscate_pet": EffectKind(on_service=False, sanction=True),
    "publish": EffectKind(on_service=False, sanction=True),
}


class Consequence(Strict):
    """A sanction or reward. deny/throttle/reward act on a service's attempts;
    confiscate_pet and publish act on the citizen directly."""

    name: str
    effect: str = Field(description="one of EFFECTS")
    when: str
    service: str | None = None
    provenance: Provenance = "hypothetical"
    source: str = ""

    @field_validator("effect")
    @classmethod
    def _known_effect(cls, effect: str) -> str:
        if effect not in EFFECTS:
            raise ValueError(f"unknown effect {effect!r}; expected one of {list(EFFECTS)}")
        return effect

    @model_validator(mode="after")
    def _service_for_effect(self):
        needs_service = EFFECTS[self.effect].on_service
        if needs_service and self.service is None:
            raise ValueError(f"a `{self.effect}` consequence needs `service`")
        if not needs_service and self.service is not None:
            raise ValueError(f"a `{self.effect}` consequence acts on the citizen: drop `service`")
        return self

    @property
    def is_sanction(self) -> bool:
        return EFFECTS[self.effect].sanction


class RunSettings(Strict):
    citizens: int = Field(100_000, ge=1, le=2_000_000_000)
    days: Days = 365
    seed: int = Field(1, ge=0, le=2**63 - 1, description="seeds the day's random streams")
    population_seed: int | None = Field(
        None, ge=0, le=2**63 - 1,
        description="seeds the citizens and their network; default: `seed`. Runs that share "
        "it (and the population and network settings) share one population, so several "
        "seeds or policies can be run on it",
    )
    start: dt.date | None = Field(
        None, description="calendar date of day 0; dated `changes` need it")
    represents: int | None = Field(
        None, ge=1, le=100_000_000_000,
        description="the population the run stands for: counts are also reported scaled "
        "by represents / citizens, with their sampling error",
    )
    ledger_sample: Annotated[float, Field(gt=0.0, le=1.0)] | None = Field(
        None,
        description="share of citizens whose ledger entries are kept (above 0); "
        "default: everyone up to 250,000 citizens, then a seeded sample of 250,000",
    )
    backend: Literal["cpu", "gpu"] = Field(
        "cpu", description="where the day's stages run: cpu (NumPy, compiled by Numba when "
        "installed) or gpu (CuPy on a CUDA device: the `gpu` extra)")

    @property
    def effective_population_seed(self) -> int:
        """The seed the population and network are built from."""
        return self.seed if self.population_seed is None else self.population_seed


class Deterrence(Strict):
    """Citizens do less of what is penalised where they feel watched — benign acts too.

    A citizen's rate of a penalised behaviour is multiplied by
    exp(-elasticity · P(seen where they live) · |points| / 10): elasticity 1 means a
    10-point penalty that is always seen cuts the rate by 1 - 1/e (63%). |points| is what
    the rules would take for the citizen's next act: a rule whose condition would not
    hold with that act counted (`count('game_purchase', 30) > 3` before the fourth
    purchase), or whose cap is reached, takes nothing."""

    enabled: bool = False
    elasticity: dict[str, Annotated[float, Field(ge=0, le=1e3)]] = Field(
        default_factory=dict, description="per behaviour; others get `default`"
    )
    default: float = Field(1.0, ge=0, le=1e3)
    provenance: Provenance = "hypothetical"
    source: str = ""


class Association(Strict):
    """Citizens drop ties to friends the system marks as bad company, and make new ones."""

    enabled: bool = False
    drop: Probability = Field(0.01,
                              description="daily chance of dropping a tie to an avoided friend")
    form: Probability = Field(0.5, description="chance a dropped tie is replaced by a new one")
    avoid_tiers: list[str] = Field(
        default_factory=list,
        description="tiers whose members are avoided (only while the policy has a rule on friends)",
    )
    public_lists: bool = Field(True, description="members of public lists are avoided")
    provenance: Provenance = "hypothetical"
    source: str = ""


class Economy(Strict):
    """Income feedback: sanctions cut income, rewards raise it, charity costs it; income
    drives the behaviours whose `drivers` name it (defaults rise as income falls)."""

    enabled: bool = False
    sanction_loss: Probability = Field(0.02, description="share of income lost per sanction")
    reward_gain: Probability = Field(0.01, description="share of income gained per reward")
    costly: list[str] = Field(default_factory=list,
                              description="behaviours that cost income (charity: paid repair)")
    cost: Probability = Field(0.005, description="share of income each costly act takes")
    recovery: Probability = Field(0.002, description="daily pull back toward one's own baseline")
    provenance: Provenance = "hypothetical"
    source: str = ""


class Labelling(Strict):
    """Public labelling costs opportunities: others refuse a labelled citizen."""

    refusal: Probability = Field(0.0, description="chance another party refuses a labelled citizen")
    services: list[str] = Field(default_factory=list)
    provenance: Provenance = "hypothetical"
    source: str = ""


class Prediction(Strict):
    """A risk model refit every `every` days on what the system has seen, predicting who
    falls to the bottom tier within `horizon` days; `flagged` citizens can be targeted by
    consequences (`when = "flagged"`)."""

    enabled: bool = False
    every: Days = 30
    horizon: Days = 90
    threshold: Probability = 0.5
    provenance: Provenance = "hypothetical"
    source: str = ""


class Appeals(Strict):
    """A capacity-limited appeal office. A penalised citizen appeals with probability
    probability · (|points| / 10)^points_elasticity · income^income_elasticity (at most 1)."""

    enabled: bool = False
    probability: float = Field(0.05, ge=0, le=1e12)
    points_elasticity: float = Field(1.0, ge=-10, le=10)
    income_elasticity: float = Field(0.5, ge=-10, le=10)
    capacity_per_100k: Annotated[float, Field(ge=0, le=1e7)] | Literal["unlimited"] = Field(
        20.0, description='appeals decided per day per 100,000 citizens, or "unlimited"'
    )
    decision_days: int = Field(14, ge=0, le=MAX_DAYS,
                               description="days before an appeal can be decided")
    success_misattributed: Probability = 0.8
    success_benign: Probability = 0.4
    success_true: Probability = 0.05
    provenance: Provenance = "hypothetical"
    source: str = ""


class Responses(Strict):
    """How people respond to the system (the essay's intensification). Off by default."""

    deterrence: Deterrence = Deterrence()
    association: Association = Association()
    economy: Economy = Economy()
    labelling: Labelling = Labelling()
    prediction: Prediction = Prediction()
    appeals: Appeals = Appeals()


#: What a dated change may set: the policy and the world's rates and coverage. The
#: population, the network, tiers and the run are drawn or fixed once, at the start.
CHANGEABLE = ("behaviours", "sensors", "services", "rules", "lists", "consequences",
              "responses")
#: Response settings a change may not move, and why: switching these responses on or off
#: would start or end state the run keeps (an appeal queue, a risk model, a changing
#: network); the horizon is what the risk model predicts; the services others check
#: decide which columns the run records. Everything else in them may be tuned.
FIXED_SETTINGS = {
    ("appeals", "enabled"): "switch it on or off (it keeps state over the run)",
    ("association", "enabled"): "switch it on or off (it keeps state over the run)",
    ("prediction", "enabled"): "switch it on or off (it keeps state over the run)",
    ("prediction", "horizon"): "move its horizon (what the model predicts)",
    ("labelling", "services"): "change its services (they decide what the run records)",
}


class Change(BaseModel):
    """From `date` on, the values it gives replace the scenario's: named entries (rules,
    consequences, behaviours, …) are matched by name and updated key by key, as a preset
    override is. A rollout, a new restriction, a policy switched on (a consequence with
    `when = "False"` until its date). Changes never add or remove entries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    date: dt.date
    provenance: Provenance = "hypothetical"
    source: str = ""


#: Functions a rule condition may call, with their argument kinds (see scenario.expr).
FUNCTIONS = {
    "count": ("behaviour", "num"),
    "on_list": ("list",),
    "friends_mean": ("num",),
    "friends_min": ("num",),
    "friends_sum": ("num",),
}
#: Per-citizen variables a rule condition may read, with the NumPy type the engine gives
#: them (`day` is one Python int for everyone).
VARIABLES = {"score": "int32", "income": "float32", "urban": "bool", "pet_owner": "bool",
             "has_child": "bool", "days_clean": "int32", "day": "int", "flagged": "bool"}
#: The tier is an index into the tiers (0 = best), int8 in the engine: at most 127 tiers.
TIER_TYPE, MAX_TIERS = "int8", 127
#: What each function gives, as NumPy types.
RESULTS = {"count": "int32", "on_list": "bool", "friends_mean": "float64",
           "friends_min": "float64", "friends_sum": "float64"}
#: Variables that are never zero (and so may divide): incomes are log-normal.
NONZERO = frozenset({"income"})


class Scenario(Strict):
    """A whole scenario: the world (population, network, behaviours, sensors, services),
    the policy (rules, tiers, lists, consequences), people's responses and run settings."""

    name: FolderName = "scenario"
    description: str = ""
    run: RunSettings = RunSettings()
    population: Population
    network: Network = Network()
    behaviours: list[Behaviour] = Field(min_length=1, max_length=MAX_ENTRIES)
    sensors: list[Sensor] = Field(default_factory=list, max_length=MAX_ENTRIES)
    services: list[Service] = Field(default_factory=list, max_length=MAX_ENTRIES)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_ENTRIES)
    tiers: list[Tier] = Field(min_length=1, max_length=MAX_TIERS)
    lists: list[ScoreList] = Field(default_factory=list, max_length=MAX_ENTRIES)
    consequences: list[Consequence] = Field(default_factory=list, max_length=MAX_ENTRIES)
    responses: Responses = Responses()
    bottom_tier: str | None = Field(
        None, description="this tier and worse count as 'the bottom' (default: the worst tier)"
    )
    changes: list[Change] = Field(default_factory=list,
                                  description="dated changes of parameters (see Change)")
    _segments: list[tuple[int, Scenario]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self):
        for field in ("behaviours", "sensors", "services", "rules", "tiers", "lists",
                      "consequences", "changes"):
            names = [item.name for item in getattr(self, field)]
            seen = set()
            for i, name in enumerate(names):
                if name in seen:
                    raise ValueError(f"{field}[{i}].name: duplicate name {name!r}")
                seen.add(name)
        sensors = {s.name for s in self.sensors}
        behaviours = {b.name for b in self.behaviours}
        services = {s.name for s in self.services}
        groups = {g.name for g in self.population.groups}
        for i, b in enumerate(self.behaviours):
            for s in b.sensors:
                if s not in sensors:
                    raise ValueError(
                        f"behaviours[{i}].sensors: unknown sensor {s!r}; "
                        f"expected one of {sorted(sensors)}"
                    )
        for i, s in enumerate(self.sensors):
            for g in s.false_match_by_group:
                if g not in groups:
                    raise ValueError(
                        f"sensors[{i}].false_match_by_group: unknown group {g!r}; "
                        f"expected one of {sorted(groups)}"
                    )
        for i, r in enumerate(self.rules):
            if r.behaviour is not None and r.behaviour not in behaviours:
                raise ValueError(
                    f"rules[{i}].behaviour: unknown behaviour {r.behaviour!r}; "
                    f"expected one of {sorted(behaviours)}"
                )
        for i, c in enumerate(self.consequences):
            if c.service is not None and c.service not in services:
                raise ValueError(
                    f"consequences[{i}].service: unknown service {c.service!r}; "
                    f"expected one of {sorted(services)}"
                )
        for name in self.responses.deterrence.elasticity:
            if name not in behaviours:
                raise ValueError(
                    f"responses.deterrence.elasticity: unknown behaviour {name!r}; "
                    f"expected one of {sorted(behaviours)}"
                )
        tiers = [t.name for t in self.tiers]
        for key, names in (("bottom_tier", [self.bottom_tier] if self.bottom_tier else []),
                           ("responses.association.avoid_tiers",
                            self.responses.association.avoid_tiers)):
            for name in names:
                if name not in tiers:
                    raise ValueError(f"{key}: unknown tier {name!r}; expected one of {tiers}")
        for name in self.responses.economy.costly:
            if name not in behaviours:
                raise ValueError(f"responses.economy.costly: unknown behaviour {name!r}; "
                                 f"expected one of {sorted(behaviours)}")
        for name in self.responses.labelling.services:
            if name not in services:
                raise ValueError(f"responses.labelling.services: unknown service {name!r}; "
                                 f"expected one of {sorted(services)}")
        self._check_tiers()
        self._check_drift()
        self.windows()  # compiles every condition, raising on the first bad one
        self._segments = self._resolve_changes()
        return self

    # ------------------------------------------------------------------ dated changes
    def day_of(self, date: dt.date) -> int:
        """The run day of a calendar date (day 0 is `run.start`)."""
        if self.run.start is None:
            raise ValueError("run.start: the scenario has no calendar start date")
        return (date - self.run.start).days

    def date_of(self, day: int) -> dt.date:
        if self.run.start is None:
            raise ValueError("run.start: the scenario has no calendar start date")
        return self.run.start + dt.timedelta(days=day)

    def segments(self) -> list[tuple[int, Scenario]]:
        """(first day, the scenario in force from that day) for day 0 and for each later
        day of the run on which a change takes effect; the scenarios carry no changes.
        Without changes: [(0, self)]."""
        return list(self._segments) or [(0, self)]

    def at(self, day: int) -> Scenario:
        """The scenario in force on `day`."""
        return [s for first, s in self.segments() if first <= day][-1]

    def _resolve_changes(self) -> list[tuple[int, Scenario]]:
        if not self.changes:
            return []  # (not [(0, self)]: a model holding itself breaks equality)
        from metricpower.scenario.load import merge

        if self.run.start is None:
            raise ValueError("changes: dated changes need `run.start`, the calendar date "
                             "of day 0 (e.g. start = 2013-10-01 under [run])")
        current = self.model_dump(exclude={"changes"})
        order = sorted(range(len(self.changes)), key=lambda k: self.changes[k].date)
        segments: dict[int, Scenario] = {}
        for k in order:
            change = self.changes[k]
            overlay = change.model_extra or {}
            self._check_change(k, overlay, current)
            current = merge(current, overlay)
            try:
                scenario = Scenario.model_validate(current)
            except ValidationError as err:
                raise ValueError(_change_error(k, change, overlay, current, err)) from None
            day = max(0, self.day_of(change.date))
            if day < self.run.days:
                segments[day] = scenario
        if 0 not in segments:
            segments[0] = Scenario.model_validate(self.model_dump(exclude={"changes"}))
        return sorted(segments.items(), key=lambda item: item[0])

    @staticmethod
    def _check_change(k: int, overlay: dict[str, Any], current: dict[str, Any]) -> None:
        where = f"changes[{k}]"
        for key, value in overlay.items():
            if key not in CHANGEABLE:
                raise ValueError(f"{where}.{key}: a change may set only "
                                 f"{', '.join(CHANGEABLE)}; found {key!r}")
            if key == "responses":
                if not isinstance(value, dict):
                    raise ValueError(f"{where}.responses: expected a table, found {value!r}")
                for (name, setting), why in FIXED_SETTINGS.items():
                    part = value.get(name)
                    if isinstance(part, dict) and setting in part and \
                            part[setting] != current["responses"][name][setting]:
                        raise ValueError(
                            f"{where}.responses.{name}.{setting}: a change may tune this "
                            f"response but not {why}; set it at the start")
                continue
            if not isinstance(value, list):
                raise ValueError(f"{where}.{key}: expected a list of tables naming "
                                 f"existing entries, found {value!r}")
            names = {e["name"] for e in current[key]}
            for j, entry in enumerate(value):
                if not isinstance(entry, dict) or entry.get("name") not in names:
                    found = entry.get("name") if isinstance(entry, dict) else entry
                    raise ValueError(
                        f"{where}.{key}[{j}].name: a change updates existing entries; "
                        f"expected one of {sorted(names)}, found {found!r} (declare the "
                        'entry in the scenario, switched off with when = "False", and '
                        "switch it on here)")

    def _check_drift(self):
        """Scores are int32: the starting score plus what the rules can pay over the run
        (each behaviour at ten times its mean rate, each periodic rule every time) must
        stay inside it."""
        rate = {b.name: b.rate for b in self.behaviours}
        daily = sum(abs(r.points) * (10 * rate[r.behaviour] if r.kind == "event"
                                     else 1 / r.every) for r in self.rules)
        reach = abs(self.population.initial_score) + daily * self.run.days
        if reach > INT32_MAX:
            raise ValueError(
                f"rules: scores could reach {reach:.3g} over {self.run.days} days (starting "
                f"at {self.population.initial_score}), beyond the engine's int32 range "
                f"(±{INT32_MAX:,}); expected smaller points or fewer days")

    # ------------------------------------------------------------------ conditions

    def _check_tiers(self):
        """Bands run from best to worst, each directly below the one before, no gaps."""
        tiers = self.tiers
        if tiers[0].max is not None:
            raise ValueError(f"tiers[0].max: the best tier is open upwards; found {tiers[0].max}")
        if tiers[-1].min is not None:
            raise ValueError(
                f"tiers[{len(tiers) - 1}].min: the worst tier is open downwards; "
                f"found {tiers[-1].min}"
            )
        for i in range(len(tiers) - 1):
            upper, lower = tiers[i], tiers[i + 1]
            if upper.min is None or lower.max is None:
                raise ValueError(f"tiers[{i}]: inner bands need both `min` and `max`")
            if lower.max >= upper.min:
                raise ValueError(
                    f"tiers[{i + 1}].max: bands overlap: {lower.name!r} ends at {lower.max} "
                    f"but {upper.name!r} starts at {upper.min}"
                )
            if lower.max + 1 != upper.min:
                raise ValueError(
                    f"tiers[{i + 1}].max: gap between bands: {lower.name!r} ends at "
                    f"{lower.max}, {upper.name!r} starts at {upper.min}; expected "
                    f"{upper.min - 1}"
                )
            if lower.min is not None and lower.min > lower.max:
                raise ValueError(f"tiers[{i + 1}]: min {lower.min} is above max {lower.max}")

    def vocabulary(self):
        from metricpower.scenario.expr import Vocabulary

        return Vocabulary(
            variables=frozenset(VARIABLES),
            enums={"tier": [t.name for t in self.tiers]},
            functions=FUNCTIONS,
            domains={
                "behaviour": {b.name for b in self.behaviours},
                "list": {s.name for s in self.lists},
            },
            types={name: "bool" if kind == "bool" else "num"
                   for name, kind in (VARIABLES | RESULTS).items()},
            nonzero=NONZERO,
        )

    def conditions(self) -> dict[str, object]:
        """Every condition in the policy, compiled, keyed by its key path."""
        from metricpower.scenario.expr import compile_condition

        vocab = self.vocabulary()
        compiled = {}
        for field, key_names in (("behaviours", ("when",)), ("rules", ("when",)),
                                 ("lists", ("enter", "exit")),
                                 ("consequences", ("when",))):
            for i, item in enumerate(getattr(self, field)):
                for key in key_names:
                    text = getattr(item, key)
                    if text is not None:
                        where = f"{field}[{i}].{key}"
                        compiled[where] = compile_condition(text, vocab, where)
        return compiled

    def windows(self, only: str | None = None) -> set[tuple[str, int]]:
        """The (behaviour, days) event counts the conditions read (those of the condition
        at key path `only`, when given), so the engine keeps exactly those. Found by
        running each condition once on a recording stand-in that gives every variable and
        function the engine's own types, so that what fails on those types fails here,
        before the run."""
        recorder = _WindowRecorder()
        for where, condition in self.conditions().items():
            if only is not None and where != only:
                continue
            recorder.where = where
            try:
                with _WindowRecorder.xp.errstate(all="ignore"):
                    condition(recorder)
            except (TypeError, ArithmeticError) as err:
                raise ValueError(f"{where}: cannot be evaluated on the engine's types "
                                 f"({err})") from None
        return recorder.windows

    @property
    def bottom(self) -> int:
        """Index of the first tier that counts as the bottom."""
        names = [t.name for t in self.tiers]
        return names.index(self.bottom_tier) if self.bottom_tier else len(names) - 1

    @property
    def tier_floors(self) -> list[int]:
        """Lowest score of each tier but the worst, best first."""
        return [t.min for t in self.tiers[:-1]]


def _change_error(k: int, change: Change, overlay: dict, merged: dict,
                  err: ValidationError) -> str:
    """The first error of the scenario in force from a change's date, at the change's own
    key when the change set the value, else named by the key in the scenario."""
    first = err.errors()[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    path = path.lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    if not path:  # cross-field checks carry their key path in the message
        path, _, message = message.partition(": ")
    if first["type"] not in ("value_error", "assertion_error") and "input" in first \
            and not isinstance(first["input"], dict | list):
        message += f"; found {first['input']!r}"
    match = re.match(r"^(\w+)\[(\d+)\](.*)$", path)
    if match and isinstance(overlay.get(match[1]), list):
        name = merged[match[1]][int(match[2])].get("name")
        mine = [j for j, e in enumerate(overlay[match[1]]) if e.get("name") == name]
        if mine:
            return f"changes[{k}].{match[1]}[{mine[0]}]{match[3]}: {message}"
    if path.startswith("responses.") and "responses" in overlay:
        return f"changes[{k}].{path}: {message}"
    return (f"changes[{k}]: the scenario in force from {change.date} is not valid: "
            f"{path}: {message}")


class _WindowRecorder:
    """A stand-in evaluation context that records the count() windows a condition uses."""

    import numpy as xp

    def __init__(self):
        self.windows: set[tuple[str, int]] = set()
        self.where = ""

    def var(self, name):
        if name == "day":
            return 0
        return self.xp.zeros(2, dtype=TIER_TYPE if name == "tier" else VARIABLES[name])

    def call(self, name, args):
        if name == "count":
            behaviour, days = args
            if self.xp.ndim(days) != 0 or not 1 <= days <= 3650 or days != int(days):
                raise ValueError(
                    f"{self.where}: count({behaviour!r}, ...) needs a window of 1 to 3650 "
                    "whole days written as a number; found "
                    + (repr(days) if self.xp.ndim(days) == 0 else "an expression")
                )
            self.windows.add((behaviour, int(days)))
        return self.xp.zeros(2, dtype=RESULTS[name])
