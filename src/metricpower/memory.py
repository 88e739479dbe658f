"""What a run will need in memory, estimated from its scenario before anything is made.

The estimate is an upper bound, not an accounting: per citizen, the traits, state and
network; per citizen and behaviour or service with its own rates, a rate and a band
order; per citizen and day, the events the event windows hold and the ledger entries the
rules can write if every periodic rule paid everyone. For the essay at 10 million
citizens it says 7.1 GiB where the benchmark peaked at 4.6 GiB. A run whose estimate exceeds
the memory the machine has available is refused before it starts, instead of being
killed (or swapping for hours) halfway.
"""

from __future__ import annotations

import os
from pathlib import Path

from metricpower.scenario import Scenario

#: Bytes per citizen for traits, state and buffers, and per tie of the network.
PER_CITIZEN, PER_TIE = 120, 16
#: Bytes of one kept ledger entry, and of one event held in a window's ring.
PER_ENTRY, PER_EVENT = 40, 8


def estimate_bytes(sc: Scenario) -> int:
    n, days = sc.run.citizens, sc.run.days
    personal = sum(1 for b in [*sc.behaviours, *sc.services] if b.drivers or b.requires)
    windows = sc.windows()
    per_citizen = (PER_CITIZEN + PER_TIE * sc.network.mean_degree + 8 * personal
                   + 4 * (len(windows) + 3 * len(sc.lists) + len(sc.rules)))
    rate = {b.name: b.rate * 2 for b in sc.behaviours}  # 2: headroom of income drivers
    held = sum(rate[b] * span for b, span in windows)
    false_match = sum(s.false_match_rate * max([1.0, *s.false_match_by_group.values()])
                      for s in sc.sensors)
    scored = sum(rate[r.behaviour] for r in sc.rules if r.kind == "event") + false_match
    scored += sum(1 / r.every for r in sc.rules if r.kind != "event")
    kept = n if sc.run.ledger_sample is None else n * sc.run.ledger_sample
    kept = min(kept, 250_000) if sc.run.ledger_sample is None else kept
    return int(n * per_citizen + n * held * PER_EVENT + kept * scored * days * PER_ENTRY)


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


def check_memory(sc: Scenario) -> None:
    """Refuse a run whose estimated memory exceeds what is available."""
    need, have = estimate_bytes(sc), available_bytes()
    if have is not None and need > have:
        gib = 1 << 30
        raise MemoryTooSmall(
            f"scenario {sc.name!r}: {sc.run.citizens:,} citizens for {sc.run.days:,} days "
            f"would need about {need / gib:,.1f} GiB of memory; {have / gib:,.1f} GiB is "
            "available. Run fewer citizens or days, lower the rates, or keep a smaller "
            "ledger sample ([run] ledger_sample)")
