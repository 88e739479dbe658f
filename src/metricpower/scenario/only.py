"""A scenario cut down to the mechanics its sources support.

`only(scenario, "documented")` keeps the rules, lists, consequences and responses whose
provenance is documented and drops the rest — and whatever reads a dropped list — so that
a run of the result against the full scenario shows what the partly documented, reported
and hypothetical parts add. Behaviours, sensors, services, tiers and the population are
the world, not the policy: they stay, so both runs share common random numbers.
"""

from __future__ import annotations

import numpy as np

from metricpower.scenario.schema import PROVENANCE, Responses, Scenario


class _ListReader:
    """An evaluation stand-in that records which lists a condition reads."""

    xp = np

    def __init__(self):
        self.lists: set[str] = set()

    def var(self, name):
        return np.zeros(1)

    def call(self, name, args):
        if name == "on_list":
            self.lists.add(args[0])
        return np.zeros(1)


def lists_read(scenario: Scenario) -> dict[str, set[str]]:
    """For each condition's key path (rules[0].when, lists[1].enter, …), the lists it reads."""
    out = {}
    for where, condition in scenario.conditions().items():
        reader = _ListReader()
        condition(reader)
        out[where] = reader.lists
    return out


def only(scenario: Scenario, level: str = "documented") -> tuple[Scenario, list[str]]:
    """`scenario` with only the mechanics at least as well supported as `level` (one of
    PROVENANCE, strongest first), and one line for each thing dropped, saying why."""
    if level not in PROVENANCE:
        raise ValueError(f"only: unknown provenance {level!r}; expected one of "
                         f"{list(PROVENANCE)}")
    keep = set(PROVENANCE[:PROVENANCE.index(level) + 1])
    reads = lists_read(scenario)
    data = scenario.model_dump(mode="python")
    dropped: list[str] = []
    gone: dict[str, set[int]] = {"rules": set(), "lists": set(), "consequences": set()}
    for field in gone:
        for i, item in enumerate(getattr(scenario, field)):
            if item.provenance not in keep:
                gone[field].add(i)
                dropped.append(f"{field}.{item.name}: {item.provenance}")
    # Whatever reads a dropped list goes too, until nothing more does.
    changed = True
    while changed:
        changed = False
        names = {scenario.lists[i].name for i in gone["lists"]}
        for where, lists in reads.items():
            field, i = where.split("[")[0], int(where.split("[")[1].split("]")[0])
            hit = lists & names
            if hit and i not in gone[field]:
                gone[field].add(i)
                item = getattr(scenario, field)[i]
                dropped.append(f"{field}.{item.name}: reads the dropped list "
                               f"{', '.join(sorted(hit))}")
                changed = True
    for field, idx in gone.items():
        data[field] = [d for i, d in enumerate(data[field]) if i not in idx]
    for name in Responses.model_fields:
        spec = getattr(scenario.responses, name)
        on = getattr(spec, "enabled", None)
        if spec.provenance in keep:
            continue
        if on:
            data["responses"][name]["enabled"] = False
        elif on is None and getattr(spec, "refusal", 0):
            data["responses"][name]["refusal"] = 0.0
        else:
            continue
        dropped.append(f"responses.{name}: {spec.provenance}")
    data["name"] = f"{scenario.name}-only-{level}"
    data["description"] = (f"{scenario.name} with only its mechanics that are "
                           f"{' or '.join(p for p in PROVENANCE if p in keep)}. "
                           + scenario.description)
    return Scenario.model_validate(data), dropped
