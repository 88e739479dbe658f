"""Named random streams: one generator per (purpose, day), keyed by the run's seed.

Two runs with the same seed draw the same numbers for the same purpose on the same day,
whatever else differs between their policies. That is what makes common random numbers
work: a counterfactual policy sees the same occurrences for the same citizens.
"""

from __future__ import annotations

import zlib

import numpy as np


class Streams:
    def __init__(self, seed: int):
        self.seed = int(seed)

    def rng(self, name: str, day: int = -1) -> np.random.Generator:
        key = [self.seed, zlib.crc32(name.encode()), day + 1]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
