"""The array primitives the day's stages need beyond whole-array arithmetic: scatter-add
with repeated indices, rate bands, sorted distinct values and counts within runs.

NumPy is the reference; when Numba is installed (the `fast` extra) compiled versions
are used for the hot ones, and the tests check that both give identical arrays. Set
METRICPOWER_KERNELS=numpy to force the reference path.
"""

from __future__ import annotations

import math

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
    if not use_numba() or not len(index):
        np.add.at(target, index, value)
    elif np.ndim(value) == 0:
        _scatter_add_one(target, index, target.dtype.type(value))
    else:
        _scatter_add(target, index, np.asarray(value, dtype=target.dtype))


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
    if not use_numba() or len(rate) >= 2**31:
        return bands_numpy(rate, top, n_bands)
    return _bands(rate, np.float32(top), n_bands)


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
