"""Memory per citizen (benchmarks/footprint.py): the account of the engine's arrays misses
nothing tracemalloc sees, and the essay preset stays within what the account says a
citizen costs. Each check fails on the faults it was written against: samplers keeping
their rates and band orders twice (and the orders in int64), 16 B per citizen and sampler
more than now; rates kept as arrays rather than worked out for the day's candidates, 4 B;
and per-citizen arrays for what follows from where a citizen lives (the chance of being
seen, 20 B; the deterrence factors, 56 B)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
import footprint  # noqa: E402  (benchmarks/footprint.py)


@pytest.fixture(scope="module")
def essay():
    return footprint.measure(100_000, 5)


def test_the_account_is_what_tracemalloc_sees(essay):
    # Everything the engine holds, citizens and network included, against every byte
    # NumPy allocated since before the population was built and is still held.
    assert essay["total"] == pytest.approx(essay["traced"], rel=0.05)
    account = essay["account"]
    assert account["samplers"]["host"] > 50 and account["state"]["host"] > 50


def test_each_sampler_holds_one_place_per_citizen(essay):
    # An int32 place in its band order where rates differ; rates are worked out for the
    # day's candidates. Of the essay's 21 samplers, 19 have rates that differ.
    per_sampler = essay["account"]["samplers"]["host"] / essay["samplers"]
    assert 3.5 <= per_sampler <= 4.0


def test_the_essay_engine_holds_no_more_than_its_parts(essay):
    account = essay["account"]
    # State, windows, traits and network as declared; "other" is the few arrays the
    # stages keep (a flag, a tier code, the economy's pull, the member of each citizen).
    assert account["other"]["host"] <= 16
    held = footprint.total_of(account) - account["ledger"]["host"]
    assert held <= 280
    gpu = footprint.on_gpu(account)
    assert gpu["device"] <= 205 and gpu["host"] <= 165


def test_a_gpu_account_sorts_arrays_by_where_they_are():
    class Device:  # an array of another backend: only nbytes and shape
        def __init__(self, n):
            self.nbytes, self.shape, self.base = 4 * n, (n,), None

    class Engine:
        pass

    engine = Engine()
    engine.n = 10
    engine.citizens, engine.state, engine.windows = Device(10), Device(10), {}
    engine.network = np.zeros(11, np.int64)
    engine.observer = type("O", (), {"sampler": [np.zeros(10, np.float32)],
                                     "false_match": []})()
    engine.consequences, engine.ledger, engine.population = None, None, None
    account = footprint.footprint(engine)
    assert account["traits"] == {"host": 0.0, "device": 4.0}
    assert account["network"] == {"host": 8.8, "device": 0.0}
    assert account["samplers"] == {"host": 4.0, "device": 0.0}
