"""What an ensemble, sweep or paired comparison runs: arms (a scenario each, with the
parameters that made it) times seeds, numbered as members.

Member m is arm m // len(seeds) on seed seeds[m % len(seeds)]. Every arm runs on the same
seeds, and a member's population is built from its population seed (by default its seed):
arms on one seed share one population and the day's random numbers (common random
numbers), so their differences are the parameters' effects alone.
"""

from __future__ import annotations

import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metricpower.population import population_of
from metricpower.scenario import Scenario, ScenarioError
from metricpower.scenario.load import NAMED_ARRAYS, merge

#: Members of one arm run side by side in one engine up to this many citizens in all:
#: enough to share the day's fixed cost among small members, few enough that a batch
#: of large ones is not held in memory at once (a member this large runs alone).
BATCH_CITIZENS = 200_000


class PlanError(ValueError):
    """Seeds or arms that cannot make a plan."""


@dataclass(frozen=True)
class Arm:
    label: str
    params: dict[str, Any]     # dotted scenario key -> value (empty for a plain ensemble)
    scenario: Scenario


@dataclass(frozen=True)
class Member:
    member: int
    arm: int
    seed: int
    scenario: Scenario


@dataclass(frozen=True)
class Plan:
    kind: str                  # "ensemble", "sweep" or "compare"
    arms: list[Arm]
    seeds: list[int]
    baseline: int | None = None  # the arm effects are measured against

    def members(self) -> list[Member]:
        out = []
        for a, arm in enumerate(self.arms):
            for s, seed in enumerate(self.seeds):
                sc = with_seed(arm.scenario, seed)
                out.append(Member(a * len(self.seeds) + s, a, seed, sc))
        return out

    @property
    def params(self) -> list[str]:
        return list(dict.fromkeys(k for arm in self.arms for k in arm.params))

    def groups(self, members: list[Member], workers: int,
               batch: int = BATCH_CITIZENS) -> list[list[Member]]:
        """The tasks the workers are given: members grouped by the population they run on
        (built once per task), each group cut into pieces when there are fewer groups
        than workers; small groups packed together, no fewer tasks than workers, so that
        a worker runs their members side by side in one engine (`member.batches`), up to
        `batch` citizens (0: each member alone, each group a task of its own)."""
        by_pop: dict[str, list[Member]] = {}
        for m in members:
            by_pop.setdefault(population_of(m.scenario), []).append(m)
        groups = list(by_pop.values())
        if self.kind == "compare" or len(groups) >= workers:
            # A paired comparison measures its effects with both sides in one process.
            return packed(groups, workers, batch)
        pieces = -(-workers // len(groups))
        out = []
        for g in groups:
            size = -(-len(g) // pieces)
            out.extend(g[i:i + size] for i in range(0, len(g), size))
        return out

    def describe(self) -> dict:
        """The plan as JSON data: what `--resume` checks it is continuing."""
        return {"kind": self.kind, "seeds": self.seeds, "baseline": self.baseline,
                "arms": [{"label": a.label, "params": a.params,
                          "scenario": a.scenario.model_dump(mode="json")} for a in self.arms]}


def packed(groups: list[list[Member]], workers: int,
           batch: int = BATCH_CITIZENS) -> list[list[Member]]:
    """Consecutive groups joined into tasks: as many tasks as workers, or more where one
    arm's members in a task would pass `batch` citizens (a task is then one batch, so a
    killed run loses no more than the batches under way). `batch` 0: no packing."""
    if batch <= 0:
        return groups
    arms = max(len({m.arm for m in g}) for g in groups) if groups else 1
    citizens = sum(m.scenario.run.citizens for g in groups for m in g) / arms
    tasks = min(len(groups), max(workers, -(-int(citizens) // batch)))
    size = -(-len(groups) // tasks) if tasks else 1
    return [[m for g in groups[i:i + size] for m in g] for i in range(0, len(groups), size)]


def with_seed(scenario: Scenario, seed: int) -> Scenario:
    run = scenario.run.model_copy(update={"seed": seed})
    return scenario.model_copy(update={"run": run})


def seed_list(scenario: Scenario, seeds: int | list[int]) -> list[int]:
    """`seeds` numbers from the scenario's own seed on, or the seeds given."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise PlanError(f"--seeds: expected at least 1, found {seeds}")
        return [scenario.run.seed + i for i in range(seeds)]
    if len(set(seeds)) != len(seeds) or not seeds:
        raise PlanError(f"seeds: expected distinct seeds, found {seeds}")
    return [int(s) for s in seeds]


# ---------------------------------------------------------------- sweeps
def override(key: str, value: Any) -> dict:
    """A dotted scenario key as an override: `rules.jaywalking.points = -10` becomes
    {"rules": [{"name": "jaywalking", "points": -10}]} (named entries are merged by name)."""
    parts = key.split(".")
    if parts[0] in NAMED_ARRAYS:
        if len(parts) < 3:
            raise ValueError(f"{key!r}: expected {parts[0]}.<name>.<setting>")
        return {parts[0]: [{"name": parts[1], **override(".".join(parts[2:]), value)}]}
    out: Any = value
    for part in reversed(parts):
        out = {part: out}
    return out


def apply(scenario: Scenario, params: dict[str, Any], file: str = "<sweep>") -> Scenario:
    """`scenario` with each dotted key set; a key naming no entry or setting is refused
    (merging would otherwise add an entry or a setting nobody asked for)."""
    data = scenario.model_dump(mode="python")
    for key, value in params.items():
        parts = key.split(".")
        if parts[0] in NAMED_ARRAYS and len(parts) >= 2:
            names = [e["name"] for e in data.get(parts[0], [])]
            if parts[1] not in names:
                raise ScenarioError(file, f"no {parts[0]} entry named {parts[1]!r}; expected "
                                          f"one of {names}", key=key)
        try:
            data = merge(data, override(key, value))
        except ValueError as err:
            raise ScenarioError(file, str(err), key=key) from None
    try:
        return Scenario.model_validate(data)
    except Exception as err:  # pydantic's ValidationError: name the keys swept
        first = str(err).splitlines()
        raise ScenarioError(file, f"the arm {json.dumps(params)} is not a valid scenario: "
                                  f"{' '.join(first[:3])}") from None


def label_of(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1] if k.count('.') else k}={v}"
                     for k, v in params.items()) or "base"


def sweep_plan(scenario: Scenario, arms: list[dict[str, Any]], seeds: int | list[int],
               baseline: int = 0, labels: list[str] | None = None,
               file: str = "<sweep>") -> Plan:
    if not arms:
        raise ScenarioError(file, "no arms: expected a [grid] table or [[arms]] entries")
    built = [Arm(labels[i] if labels else label_of(p), dict(p), apply(scenario, p, file))
             for i, p in enumerate(arms)]
    return Plan("sweep", built, seed_list(scenario, seeds), baseline)


def load_grid(path: str | Path) -> tuple[list[dict[str, Any]], list[str], int, int | None]:
    """GRID.toml: either a `[grid]` table of key = [values] (every combination, the first
    the baseline), or `[[arms]]` entries of key = value with an optional `name`
    (`baseline = "name"` picks the baseline, else the first); `seeds = N` is optional.
    Returns (arms, labels, baseline index, seeds)."""
    path = Path(path)
    file = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ScenarioError(file, "no such file; expected a sweep grid TOML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(file, f"cannot read it as a text file ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(file, f"not valid TOML: {err}") from None
    known = {"grid", "arms", "seeds", "baseline"}
    for key in data:
        if key not in known:
            raise ScenarioError(file, f"expected one of {sorted(known)}, found {key!r}",
                                key=key, line=_line(path, key))
    seeds = data.get("seeds")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ScenarioError(file, f"expected a positive whole number, found {seeds!r}",
                            key="seeds", line=_line(path, "seeds"))
    if ("grid" in data) == ("arms" in data):
        raise ScenarioError(file, "expected either a [grid] table or [[arms]] entries")
    if "grid" in data:
        grid = _flat(data["grid"])
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ScenarioError(file, f"expected a non-empty list of values, found "
                                          f"{values!r}", key=f"grid.{key}",
                                    line=_line(path, key))
        arms = [dict(zip(grid, combo, strict=True))
                for combo in itertools.product(*grid.values())]
        return arms, [label_of(a) for a in arms], 0, seeds
    entries = data["arms"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ScenarioError(file, "expected [[arms]] tables", key="arms")
    labels = [str(e.get("name") or label_of(_flat({k: v for k, v in e.items()
                                                      if k != "name"})))
              for e in entries]
    arms = [_flat({k: v for k, v in e.items() if k != "name"}) for e in entries]
    baseline = data.get("baseline")
    if baseline is None:
        return arms, labels, 0, seeds
    if baseline not in labels:
        raise ScenarioError(file, f"expected one of the arms' names {labels}, found "
                                  f"{baseline!r}", key="baseline", line=_line(path, "baseline"))
    return arms, labels, labels.index(baseline), seeds


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables back to dotted keys (`a.b = 1` parses as {"a": {"b": 1}})."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(_flat(v, key))
        else:
            out[key] = v
    return out


def _line(path: Path, key: str) -> int | None:
    leaf = key.split(".")[-1]
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith((key, f'"{key}"', leaf)):
            return n
    return None
