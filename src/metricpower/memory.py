"""What a run will need in memory, estimated from its scenario before anything is made.

The estimate is an upper bound on the run's peak, part by part as
`benchmarks/footprint.py` accounts for them (`tests/test_memory.py` holds it above the
measured peak of every preset): the larger of building the population (traits, and the
network's edge lists before they become its arrays) and the engine at work (traits,
network, each behaviour's, service's and camera error's sampler, the state, the event
window counts, a day's temporaries), plus the events the windows hold, the ledger
entries the rules can write if every periodic rule paid everyone, and each day's row. A
run whose estimate exceeds the memory the machine has available is refused before it
starts, instead of being killed (or swapping for hours) halfway. A run on a GPU is also
held against the device's free memory (`estimate_device_bytes`: what moves to the
device; the samplers, the ledger and the population as built stay on the host).
"""

from __future__ import annotations

import os
from pathlib import Path

from metricpower.scenario import Scenario

#: Bytes per citizen: traits (`Citizens`), and their peak while being drawn.
TRAITS, TRAITS_DRAWN = 22, 48
#: The network: per citizen (offsets, a reduction buffer, active degrees), per friend
#: (an index), and per friend while the edge lists are built and sorted.
NETWORK, PER_FRIEND, PER_FRIEND_BUILT = 20, 4, 17
#: State per citizen, per list (flag, entry day, grounds, earlier days) and per rule with
#: a cap or an hours schedule; a sampler (an int32 place); the rest the stages keep
#: (member, tier codes, flags, the economy's pull); a day's temporaries, or a sampler's
#: rates and bands while it is built.
STATE, PER_LIST, PER_RULE_TOTAL, PER_SAMPLER, STAGES, TEMPORARIES = 45, 13, 4, 4, 16, 96
#: Bytes of one kept ledger entry, of one event held in a window's ring, and of one event
#: window's counts per citizen; of a day's row and records kept as Python objects.
PER_ENTRY, PER_EVENT, PER_WINDOW, PER_DAY = 40, 8, 4, 16_384


def _samplers(sc: Scenario) -> int:
    """Samplers the engine builds: one per behaviour and service, and at most one per
    camera that can err and public behaviour it watches."""
    from metricpower.engine.observe import cameras_that_err  # not at the CLI's start

    errors = sum(len(public) for _, public in cameras_that_err(sc))
    return len(sc.behaviours) + len(sc.services) + errors


def _on_device(sc: Scenario) -> int:
    """Bytes per citizen a run keeps in the backend's arrays: traits, the network's arrays,
    state, window counts, what the stages keep, a day's temporaries."""
    windows = set().union(*(s.windows() for _, s in sc.segments()))
    totals = sum(1 for r in sc.rules if r.cap) + sum(1 for r in sc.rules if r.schedule)
    return (TRAITS + NETWORK + PER_FRIEND * sc.network.mean_degree + STATE
            + PER_LIST * len(sc.lists) + PER_RULE_TOTAL * totals + PER_WINDOW * len(windows)
            + STAGES + TEMPORARIES)


def estimate_device_bytes(sc: Scenario) -> int:
    """What a GPU run of the scenario holds on the device, at most."""
    return int(sc.run.citizens * _on_device(sc))


def estimate_bytes(sc: Scenario) -> int:
    n, days, degree = sc.run.citizens, sc.run.days, sc.network.mean_degree
    windows = set().union(*(s.windows() for _, s in sc.segments()))
    built = TRAITS + TRAITS_DRAWN + NETWORK + PER_FRIEND_BUILT * degree
    working = _on_device(sc) + PER_SAMPLER * _samplers(sc)
    rate = {b.name: b.rate * 2 for b in sc.behaviours}  # 2: headroom of income drivers
    held = sum(rate[b] * span for b, span in windows)
    false_match = sum(s.false_match_rate * max([1.0, *s.false_match_by_group.values()])
                      for s in sc.sensors)
    scored = sum(rate[r.behaviour] for r in sc.rules if r.kind == "event") + false_match
    scored += sum(1 / r.every for r in sc.rules if r.kind != "event")
    kept = n if sc.run.ledger_sample is None else n * sc.run.ledger_sample
    kept = min(kept, 250_000) if sc.run.ledger_sample is None else kept
    return int(n * max(built, working) + n * held * PER_EVENT
               + kept * scored * days * PER_ENTRY + days * PER_DAY)


def available_bytes() -> int | None:
    """Memory available to a new allocation now (psutil, else /proc/meminfo)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    if hasattr(os, "sysconf") and "SC_AVPHYS_PAGES" in os.sysconf_names:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None


class MemoryTooSmall(Exception):
    """The run would not fit in memory. Its message is meant for the user as it is."""


def check_memory(sc: Scenario, backend=None) -> None:
    """Refuse a run whose estimated memory exceeds what is available: the host's, and on a
    backend with a device of its own (`backend.device_free()`), the device's."""
    gib = 1 << 30
    size = f"scenario {sc.name!r}: {sc.run.citizens:,} citizens for {sc.run.days:,} days"
    advice = ("Run fewer citizens or days (`[run] represents` scales a sample to a whole "
              "population), lower the rates, or keep a smaller ledger sample "
              "([run] ledger_sample)")
    need, have = estimate_bytes(sc), available_bytes()
    if have is not None and need > have:
        raise MemoryTooSmall(
            f"{size} would need about {need / gib:,.1f} GiB of memory; {have / gib:,.1f} GiB "
            f"is available. {advice}")
    free = backend.device_free() if backend is not None else None
    need = estimate_device_bytes(sc)
    if free is not None and need > free:
        raise MemoryTooSmall(
            f"{size} would need about {need / gib:,.1f} GiB on the GPU; {free / gib:,.1f} GiB "
            f"is free there. {advice}")
