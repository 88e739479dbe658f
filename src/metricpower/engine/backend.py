"""The array primitives the day's stages need beyond whole-array arithmetic, behind one
interface (`Backend`) with two implementations: `NumpyBackend`, the reference, and
`NumbaBackend`, which compiles the hot ones (the `fast` extra) and gives identical
arrays (the tests compare them). `backend()` picks Numba when it is installed, unless
METRICPOWER_KERNELS=numpy; the module-level functions call the backend picked.

The primitives: scatter-add and scatter-multiply with repeated indices, counts by
value (bincount), rate bands, sorted distinct values, and sums within runs of equal keys.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from metricpower.population.kernels import numba, use_numba

# ---------------------------------------------------------------- scatter
if numba is not None:

    @numba.njit(cache=True)
    def _scatter_add(target, index, value):  # pragma: no cover - compiled
        for k in range(len(index)):
            target[index[k]] += value[k]

    @numba.njit(cache=True)
    def _scatter_add_one(target, index, value):  # pragma: no cover - compiled
        for k in range(len(index)):
            target[index[k]] += value


def scatter_add(target: np.ndarray, index: np.ndarray, value) -> None:
    """target[index[k]] += value[k] (or += value), repeated indices adding up: the
    engine's tallies of acts, points and counts per citizen."""
    backend().scatter_add(target, index, value)


def scatter_multiply(target: np.ndarray, index: np.ndarray, value) -> None:
    """target[index[k]] *= value, in index order (repeats multiply again): income
    feedback."""
    backend().scatter_multiply(target, index, value)


# ---------------------------------------------------------------- rate bands
def bands_numpy(rate: np.ndarray, top: float, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-octave band of each rate below `top` (0: within √2 of the top; `bands`: no
    rate at all, or below the last band), and the citizens grouped by band, in order.
    Exact arithmetic (frexp), so both paths agree to the last citizen."""
    with np.errstate(divide="ignore"):
        ratio = np.float32(top) / rate
    mantissa, exponent = np.frexp(ratio)
    band = 2 * (exponent.astype(np.int64) - 1) + (2.0 * mantissa >= np.sqrt(2.0))
    band = np.where(rate > 0, np.minimum(band, bands), bands).astype(np.int8)
    index = np.int32 if len(rate) < 2**31 else np.int64
    return band, np.argsort(band, kind="stable").astype(index)


if numba is not None:

    @numba.njit(cache=True)
    def _bands(rate, top, bands):  # pragma: no cover - compiled
        n = len(rate)
        band = np.empty(n, np.int8)
        count = np.zeros(bands + 2, np.int64)
        root2 = np.sqrt(2.0)
        for i in range(n):
            if rate[i] > 0:
                mantissa, exponent = math.frexp(np.float32(top) / rate[i])
                b = 2 * (exponent - 1) + (1 if 2.0 * mantissa >= root2 else 0)
                b = min(b, bands)
            else:
                b = bands
            band[i] = b
            count[b + 1] += 1
        for b in range(bands + 1):
            count[b + 1] += count[b]
        order = np.empty(n, np.int32)
        for i in range(n):
            order[count[band[i]]] = i
            count[band[i]] += 1
        return band, order


def bands(rate: np.ndarray, top: float, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    return backend().bands(rate, top, n_bands)


# ---------------------------------------------------------------- sorted runs
def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a sort, which beats np.unique's hashing on large arrays)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def rank_within(citizen: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries name the same citizen."""
    order = np.argsort(citizen, kind="stable")
    rank = cumsum_within(citizen[order], np.ones(len(citizen), np.int64))
    out = np.empty(len(citizen), np.int64)
    out[order] = rank
    return out


def cumsum_within(sorted_keys: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Sum of `size` over the earlier entries with the same key (keys sorted)."""
    if not len(sorted_keys):
        return size.copy()
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(sorted_keys)), 0))
    before = np.cumsum(size) - size
    return before - before[run_start]


# ---------------------------------------------------------------- the interface
class Backend(ABC):
    """What the stages need beyond whole-array arithmetic."""

    @abstractmethod
    def scatter_add(self, target: np.ndarray, index: np.ndarray, value) -> None:
        """target[index[k]] += value[k] (or += value), repeated indices adding up."""

    @abstractmethod
    def bands(self, rate: np.ndarray, top: float, n_bands: int):
        """Half-octave band of each rate, and citizens grouped by band (`bands_numpy`)."""

    def scatter_multiply(self, target: np.ndarray, index: np.ndarray, value) -> None:
        """target[index[k]] *= value, in index order (repeats multiply again)."""
        np.multiply.at(target, index, value)

    def bincount(self, values: np.ndarray, minlength: int) -> np.ndarray:
        return np.bincount(values, minlength=minlength)

    def unique(self, values: np.ndarray) -> np.ndarray:
        return unique(values)

    def rank_within(self, citizen: np.ndarray) -> np.ndarray:
        return rank_within(citizen)

    def cumsum_within(self, sorted_keys: np.ndarray, size: np.ndarray) -> np.ndarray:
        return cumsum_within(sorted_keys, size)


class NumpyBackend(Backend):
    def scatter_add(self, target, index, value):
        np.add.at(target, index, value)

    def bands(self, rate, top, n_bands):
        return bands_numpy(rate, top, n_bands)


class NumbaBackend(NumpyBackend):
    def scatter_add(self, target, index, value):
        if not len(index):
            return
        if np.ndim(value) == 0:
            _scatter_add_one(target, index, target.dtype.type(value))
        else:
            _scatter_add(target, index, np.asarray(value, dtype=target.dtype))

    def bands(self, rate, top, n_bands):
        if len(rate) >= 2**31:  # the compiled kernel numbers citizens in int32
            return bands_numpy(rate, top, n_bands)
        return _bands(rate, np.float32(top), n_bands)


_NUMPY, _NUMBA = NumpyBackend(), (NumbaBackend() if numba is not None else None)


def backend() -> Backend:
    """The backend in use: Numba when installed, unless METRICPOWER_KERNELS=numpy."""
    return _NUMBA if use_numba() else _NUMPY
