"""Named random streams: one generator per (purpose, day), keyed by the run's seed.

Two runs with the same seed draw the same numbers for the same purpose on the same day,
whatever else differs between their policies. That is what makes common random numbers
work: a counterfactual policy sees the same occurrences for the same citizens.

A day's stream is Philox (counter-based: the n-th number of a stream is a keyed bijection
of n, with no sequential state to set up). The key is (seed, hash of the purpose), the
day is the counter's third word, so each (seed, purpose, day) reads its own block of 2^128
numbers: independent streams by construction, and one costs a few microseconds to open,
against some 25 for hashing a SeedSequence into a PCG64 — a run opens some thirty a day.
A stream of no particular day (the population, the network, the ledger's sample), opened
once per run, is PCG64 seeded by a SeedSequence of (seed, CRC-32 of the purpose), as it
has always been: populations built from a seed stay the ones earlier versions built.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
from numpy.random.bit_generator import ISeedSequence


class _Key(ISeedSequence):
    """Hands Philox its key as it is (NumPy's interface for a seed sequence: Philox asks
    it for two 64-bit words), where `Philox(key=...)` would first gather OS entropy."""

    def __init__(self, key: np.ndarray):
        self.key = key

    def generate_state(self, n_words: int, dtype=np.uint64) -> np.ndarray:
        assert n_words == 2 and dtype == np.uint64
        return self.key


class Streams:
    def __init__(self, seed: int):
        self.seed = int(seed)
        self._keys: dict[str, _Key] = {}

    def rng(self, name: str, day: int = -1) -> np.random.Generator:
        if day < 0:
            key = [self.seed, zlib.crc32(name.encode()), 0]
            return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
        key = self._keys.get(name)
        if key is None:
            word = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(),
                                  "little")
            key = self._keys[name] = _Key(np.array([self.seed, word], np.uint64))
        return np.random.Generator(np.random.Philox(key, counter=[0, 0, day, 0]))
