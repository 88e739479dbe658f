"""The array backend of the day's stages: one interface (`Backend`) for what the stages
need beyond the array API standard, with implementations for NumPy (the reference),
Numba (the `fast` extra: the hot primitives compiled, identical arrays) and
array-api-strict (the standard and nothing else, to prove the stages use nothing more).

The stages hold their state in the backend's arrays and call the standard through the
namespace `array_namespace` gives for those arrays (`Engine.xp`); for NumPy that is
NumPy itself, so the CPU path pays nothing for the seam. The primitives the standard
lacks: scatter-add and scatter-multiply with repeated indices, assignment at indices,
counts by value (bincount), sorted distinct values, ranks and sums within runs of equal
keys, reductions over friends (the network is NumPy's), and the move of arrays in and
out of the backend (random streams draw in NumPy, population building and the run's
tables are NumPy: they convert here, so every backend sees the same numbers).
`backend()` picks Numba when it is installed, unless METRICPOWER_KERNELS=numpy.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
from array_api_compat import array_namespace

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


# ---------------------------------------------------------------- rate bands
def bands_numpy(rate: np.ndarray, top: float, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-octave band of each rate below `top` (0: within √2 of the top; rates below
    the last band's floor share the last band, `bands - 1`; `bands`: no rate at all), and
    the citizens grouped by band, in order.
    Exact arithmetic (frexp), so both paths agree to the last citizen."""
    with np.errstate(divide="ignore"):
        ratio = np.float32(top) / rate
    mantissa, exponent = np.frexp(ratio)
    band = 2 * (exponent.astype(np.int64) - 1) + (2.0 * mantissa >= np.sqrt(2.0))
    band = np.where(rate > 0, np.minimum(band, bands - 1), bands).astype(np.int8)
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
                b = min(b, bands - 1)
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
def namespace(*arrays):
    """The array API namespace of these arrays, through array-api-compat: NumPy itself
    for NumPy arrays (NumPy 2 follows the standard: no wrapper to slow the CPU's day), the
    compat wrapper for a library that needs one (CuPy), the library for one that follows
    the standard itself (array-api-strict)."""
    own = all(isinstance(a, np.ndarray) for a in arrays)
    return array_namespace(*arrays, use_compat=False if own else None)


class Backend(ABC):
    """What the stages need beyond the array API standard, on the backend's arrays."""

    #: The name a scenario's `[run] backend` or `--backend` uses.
    name: ClassVar[str]

    def namespace(self, array):
        """The array API namespace of the backend's arrays."""
        return namespace(array)

    def asarray(self, values: np.ndarray):
        """A NumPy array (a population column, a random draw) as the backend's array."""
        return values

    def device_free(self) -> int | None:
        """Bytes free on the device the backend's arrays live on (None: the host's
        memory, which `memory.available_bytes` reads)."""
        return None

    def to_numpy(self, values) -> np.ndarray:
        """A backend array as NumPy (for the run's tables and the network's kernels)."""
        return values

    @abstractmethod
    def scatter_add(self, target, index, value) -> None:
        """target[index[k]] += value[k] (or += value), repeated indices adding up."""

    @abstractmethod
    def bands(self, rate: np.ndarray, top: float, n_bands: int):
        """Half-octave band of each rate, and citizens grouped by band (`bands_numpy`);
        on NumPy arrays: it builds the samplers, before the run."""

    def scatter_multiply(self, target, index, value) -> None:
        """target[index[k]] *= value, in index order (repeats multiply again)."""
        np.multiply.at(target, index, value)

    def set_at(self, target, index, value) -> None:
        """target[index] = value, `index` integers (the standard has no assignment at
        an integer array)."""
        target[index] = value

    def bincount(self, values, minlength: int):
        return np.bincount(values, minlength=minlength)

    def unique(self, values):
        """Sorted distinct values."""
        return unique(values)

    def rank_within(self, citizen):
        """For each entry, how many earlier entries name the same citizen."""
        return rank_within(citizen)

    def cumsum_within(self, sorted_keys, size):
        """Sum of `size` over the earlier entries with the same key (keys sorted)."""
        return cumsum_within(sorted_keys, size)

    def friends(self, network, name: str, values):
        """`friends_sum`, `friends_mean` or `friends_min` of `values` over each citizen's
        friends (float64): the network's kernels, on NumPy."""
        values = self.to_numpy(values)
        if name == "friends_sum":
            out = network.friend_sum(values)
        elif name == "friends_mean":
            # A citizen with no friends has nobody to be judged by: NaN compares false.
            with np.errstate(invalid="ignore", divide="ignore"):
                out = network.friend_sum(values) / network.friend_count()
        else:
            out = network.friend_min(values)
        return self.asarray(out)

    def assortativity(self, network, values, starts: list[int]) -> list[float]:
        """Score assortativity of each part of the network (citizens starts[j] to
        starts[j + 1], tied only among themselves)."""
        return network.assortativity_within(self.to_numpy(values), starts)

    def on_network(self, method, *args):
        """Call a method of the network (CSR gathers and changes, NumPy kernels) on the
        backend's arrays: arguments and results (None, an array or a tuple of arrays)
        convert at the seam."""
        out = method(*(self.to_numpy(a) for a in args))
        if out is None:
            return None
        if isinstance(out, tuple):
            return tuple(self.asarray(o) for o in out)
        return self.asarray(out)


class NumpyBackend(Backend):
    name = "numpy"

    def scatter_add(self, target, index, value):
        np.add.at(target, index, value)

    def bands(self, rate, top, n_bands):
        return bands_numpy(rate, top, n_bands)


class NumbaBackend(NumpyBackend):
    name = "numba"

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


class ArrayApiStrictBackend(NumpyBackend):
    """The stages' arrays in array-api-strict, which refuses anything outside the
    standard: a run on it shows the day step calls nothing else. Its primitives are
    NumPy's, converting at the seam (it is a proof, not a fast path)."""

    name = "array-api-strict"

    def __init__(self):
        import array_api_strict

        self.xp = array_api_strict

    def asarray(self, values):
        return self.xp.asarray(values) if isinstance(values, np.ndarray) else values

    def to_numpy(self, values):
        if isinstance(values, np.ndarray) or not hasattr(values, "__dlpack__"):
            return np.asarray(values)
        return np.from_dlpack(values).copy()

    def _inplace(self, fn, target, index, value):
        out = self.to_numpy(target)
        fn(out, self.to_numpy(index), self.to_numpy(value))
        target[...] = self.asarray(out)

    def scatter_add(self, target, index, value):
        self._inplace(np.add.at, target, index, value)

    def scatter_multiply(self, target, index, value):
        self._inplace(np.multiply.at, target, index, value)

    def set_at(self, target, index, value):
        self._inplace(np.put, target, index, value)

    def bincount(self, values, minlength):
        return self.asarray(np.bincount(self.to_numpy(values), minlength=minlength))

    def unique(self, values):
        return self.asarray(unique(self.to_numpy(values)))

    def rank_within(self, citizen):
        return self.asarray(rank_within(self.to_numpy(citizen)))

    def cumsum_within(self, sorted_keys, size):
        return self.asarray(cumsum_within(self.to_numpy(sorted_keys), self.to_numpy(size)))


_NUMPY, _NUMBA = NumpyBackend(), (NumbaBackend() if numba is not None else None)


def backend() -> Backend:
    """The CPU backend: Numba when installed, unless METRICPOWER_KERNELS=numpy."""
    return _NUMBA if use_numba() else _NUMPY


def backend_named(name: str) -> Backend:
    """The backend a scenario's `[run] backend` names: `cpu` or `gpu` (CuPy; raises
    engine.gpu.GpuUnavailable, naming the extra, where CuPy or a device is missing)."""
    if name == "gpu":
        from metricpower.engine.gpu import CupyBackend

        return CupyBackend()
    return backend()
