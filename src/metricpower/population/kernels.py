"""Compiled kernels for building and reducing over the network, with NumPy twins.

NumPy is the reference; when Numba is installed (the `fast` extra) the compiled versions
are used, and the tests check that both give identical arrays. Set
METRICPOWER_KERNELS=numpy to force the reference path.
"""

from __future__ import annotations

import os

import numpy as np

try:
    import numba

    # The work-queue threads survive fork(), unlike OpenMP's: runs may be started in
    # worker processes (ensembles, sweeps, tests).
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
except ImportError:  # the `fast` extra is optional
    numba = None


def use_numba() -> bool:
    return numba is not None and os.environ.get("METRICPOWER_KERNELS", "") != "numpy"


# ---------------------------------------------------------------- partners
def partners_numpy(a, local, u, far, region, bounds, community):
    """The other end of each tie started by citizen a[k]: with local[k], a citizen of
    a[k]'s community (a block of `community` citizens inside its region), picked by
    u[k]; otherwise far[k], anyone."""
    r = region[a]
    start = bounds[r] + (a - bounds[r]) // community * community
    size = np.minimum(start + community, bounds[r + 1]) - start
    near = start + (u.astype(np.float64) * size).astype(np.int64)
    return np.where(local, near, far).astype(np.int64)


if numba is not None:

    @numba.njit(cache=True)
    def _partners(a, local, u, far, region, bounds, community):  # pragma: no cover
        out = np.empty(len(a), np.int64)
        for k in range(len(a)):
            if local[k]:
                r = region[a[k]]
                lo = bounds[r]
                start = lo + (a[k] - lo) // community * community
                size = min(start + community, bounds[r + 1]) - start
                out[k] = start + np.int64(np.float64(u[k]) * size)
            else:
                out[k] = far[k]
        return out


def partners(a, local, u, far, region, bounds, community) -> np.ndarray:
    if not use_numba():
        return partners_numpy(a, local, u, far, region, bounds, community)
    return _partners(a, local, u, far, region, bounds.astype(np.int64), community)


# ---------------------------------------------------------------- CSR from ties
def csr_numpy(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected ties → (indptr, indices): both directions, no self-ties, no duplicates,
    friends sorted within each row."""
    keep = a != b
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    key = np.sort(np.concatenate([a * n + b, b * n + a]))
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    src, dst = key // n, key % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst.astype(np.int32)


if numba is not None:

    @numba.njit(cache=True)
    def _place(n, a, b):  # pragma: no cover - compiled
        count = np.zeros(n + 1, np.int64)
        for k in range(len(a)):
            if a[k] != b[k]:
                count[a[k] + 1] += 1
                count[b[k] + 1] += 1
        for i in range(n):
            count[i + 1] += count[i]
        fill = count[:-1].copy()
        out = np.empty(count[n], np.int32)
        for k in range(len(a)):
            if a[k] != b[k]:
                out[fill[a[k]]] = b[k]
                fill[a[k]] += 1
                out[fill[b[k]]] = a[k]
                fill[b[k]] += 1
        return count, out

    @numba.njit(cache=True)
    def _dedupe(indptr, indices):  # pragma: no cover - compiled
        n = len(indptr) - 1
        new = np.zeros(n + 1, np.int64)
        w = 0
        for i in range(n):
            lo, hi = indptr[i], indptr[i + 1]
            for j in range(lo + 1, hi):  # insertion sort: rows are short
                v = indices[j]
                k = j - 1
                while k >= lo and indices[k] > v:
                    indices[k + 1] = indices[k]
                    k -= 1
                indices[k + 1] = v
            for j in range(lo, hi):
                if j == lo or indices[j] != indices[j - 1]:
                    indices[w] = indices[j]
                    w += 1
            new[i + 1] = w
        return new, indices[:w].copy()


def csr(n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not use_numba():
        return csr_numpy(n, a, b)
    indptr, indices = _place(n, a, b)
    return _dedupe(indptr, indices)


# ---------------------------------------------------------------- reductions over friends
def reduce_numpy(indptr, indices, padded, minimum: bool, chunk: int) -> np.ndarray:
    """Sum (or min) of padded[friend] over each row, `chunk` ties at a time; empty rows
    get padded[-1] (the neutral value, also what dropped ties point at)."""
    ufunc = np.minimum if minimum else np.add
    n = len(indptr) - 1
    out = np.full(n, padded[-1], dtype=padded.dtype)
    row = 0
    while row < n:
        stop = int(np.searchsorted(indptr, indptr[row] + chunk, side="right")) - 1
        stop = min(max(stop, row + 1), n)
        lo, hi = indptr[row], indptr[stop]
        starts = indptr[row:stop]
        has = starts < indptr[row + 1:stop + 1]
        if hi > lo:
            out[row:stop][has] = ufunc.reduceat(padded[indices[lo:hi]], starts[has] - lo)
        row = stop
    return out


if numba is not None:

    @numba.njit(cache=True, parallel=True)
    def _reduce(indptr, indices, padded, minimum):  # pragma: no cover - compiled
        n = len(indptr) - 1
        out = np.empty(n, padded.dtype)
        for i in numba.prange(n):
            acc = padded[-1]
            lo, hi = indptr[i], indptr[i + 1]
            if hi > lo:
                acc = padded[indices[lo]]
                for k in range(lo + 1, hi):
                    v = padded[indices[k]]
                    if minimum:
                        acc = min(acc, v)
                    else:
                        acc += v
            out[i] = acc
        return out


def reduce(indptr, indices, padded, minimum: bool, chunk: int) -> np.ndarray:
    if not use_numba():
        return reduce_numpy(indptr, indices, padded, minimum, chunk)
    return _reduce(indptr, indices, padded, minimum)
