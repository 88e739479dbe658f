"""Named random streams: one generator per (purpose, day), keyed by the run's seed.

Two runs with the same seed draw the same numbers for the same purpose on the same day,
whatever else differs between their policies. That is what makes common random numbers
work: a counterfactual policy sees the same occurrences for the same citizens.

A day's stream is PCG64 whose 128-bit state and increment are a BLAKE2b hash of (purpose,
day) keyed by the seed. That is how NumPy makes independent streams (a SeedSequence
hashes its key into the state), with a hash that costs a microsecond where the
SeedSequence costs some 20, and a run opens some thirty streams a day: streams of
distinct keys are distinct sequences, and two overlap with negligible probability.
PCG64 rather than a counter-based generator (Philox, keyed the same way) because it draws
twice as fast, which counts at millions of citizens. A stream of no particular day (the
population, the network, the ledger's sample), opened once per run, is PCG64 seeded by a
SeedSequence of (seed, CRC-32 of the purpose), as it has always been: populations built
from a seed stay the ones earlier versions built.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
from numpy.random.bit_generator import ISeedSequence


class _State(ISeedSequence):
    """Hands PCG64 the four 64-bit words of its state and increment as they are (NumPy's
    interface for a seed sequence, which PCG64 asks for exactly that)."""

    def __init__(self, words: np.ndarray):
        self.words = words

    def generate_state(self, n_words: int, dtype=np.uint64) -> np.ndarray:
        assert n_words == len(self.words) and dtype == np.uint64
        return self.words


class Streams:
    def __init__(self, seed: int):
        self.seed = int(seed)
        self._key = self.seed.to_bytes(8, "little")

    def rng(self, name: str, day: int = -1) -> np.random.Generator:
        if day < 0:
            key = [self.seed, zlib.crc32(name.encode()), 0]
            return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
        digest = hashlib.blake2b(f"{day}:{name}".encode(), digest_size=32,
                                 key=self._key).digest()
        return np.random.Generator(np.random.PCG64(_State(np.frombuffer(digest, np.uint64))))
