"""The GPU backend: the day's stages on CuPy arrays (the `gpu` extra), selected by
`[run] backend = "gpu"` or `run --backend gpu`.

The stages are the CPU's, through the array API (array-api-compat's CuPy namespace);
what the standard lacks is done here on the device: scatter-add by `cupyx.scatter_add`,
scatter-multiply by repeated multiplicity passes (exact, in index order), bincount,
sorted distinct values, runs of equal keys by cumulative sums, and reductions over
friends by a CUDA kernel over the CSR arrays, which summing in the same order as the
Numba kernel gives the same sums. The random streams are the CPU's NumPy streams, so a
GPU run sees the same draws as a CPU run with the same seed; the draws move to the
device once a day per behaviour and service.
"""

from __future__ import annotations

import numpy as np

from metricpower.engine.backend import Backend, bands_numpy

#: The optional extra that brings CuPy.
EXTRA = "gpu"

_REDUCE = r"""
extern "C" __global__ void friend_reduce(const long long* indptr, const int* indices,
                                         const double* padded, double* out, long long n,
                                         int minimum) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    long long lo = indptr[i], hi = indptr[i + 1];
    double acc = padded[n];
    if (hi > lo) {
        acc = padded[indices[lo]];
        for (long long k = lo + 1; k < hi; ++k) {
            double v = padded[indices[k]];
            acc = minimum ? fmin(acc, v) : acc + v;
        }
    }
    out[i] = acc;
}
"""


class GpuUnavailable(RuntimeError):
    """CuPy or a CUDA device is missing; the message says what to install."""


def load_cupy():
    """CuPy and its scatter functions, or GpuUnavailable naming the extra."""
    try:
        import cupy
        import cupyx
    except ImportError as e:
        raise GpuUnavailable(
            f"the gpu backend needs CuPy ({e}); install the extra: "
            f"pip install 'metricpower[{EXTRA}]' (CUDA 12), or use backend = \"cpu\"") from e
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy raises its own CUDA errors when there is no driver
        raise GpuUnavailable(f"the gpu backend found no CUDA device ({e}); "
                             "use backend = \"cpu\"") from e
    if devices < 1:
        raise GpuUnavailable("the gpu backend found no CUDA device; use backend = \"cpu\"")
    return cupy, cupyx


class CupyBackend(Backend):
    name = "gpu"

    def __init__(self):
        self.cupy, self.cupyx = load_cupy()
        self._reduce = self.cupy.RawKernel(_REDUCE, "friend_reduce")
        #: The network's arrays on the device, by network; refreshed after it changes.
        self._csr: dict[int, tuple] = {}

    def asarray(self, values):
        return self.cupy.asarray(values) if isinstance(values, np.ndarray) else values

    def device_free(self) -> int:
        free, _ = self.cupy.cuda.runtime.memGetInfo()
        return int(free)

    def to_numpy(self, values):
        if isinstance(values, self.cupy.ndarray):
            return self.cupy.asnumpy(values)
        return np.asarray(values)

    def scatter_add(self, target, index, value):
        if index.shape[0]:
            self.cupyx.scatter_add(target, index, self.cupy.asarray(value, dtype=target.dtype))

    def scatter_multiply(self, target, index, value):
        # The k-th pass multiplies the citizens named at least k times: the same roundings
        # as multiplying once per entry, in order (the factor is one scalar).
        cp = self.cupy
        if not index.shape[0]:
            return
        who, times = cp.unique(index, return_counts=True)
        factor = cp.asarray(value, dtype=target.dtype)
        for k in range(1, int(times.max()) + 1):
            at = who[times >= k]
            target[at] = target[at] * factor

    def set_at(self, target, index, value):
        target[index] = value

    def bands(self, rate, top, n_bands):
        return bands_numpy(rate, top, n_bands)

    def bincount(self, values, minlength):
        return self.cupy.bincount(values.astype(self.cupy.int64), minlength=minlength)

    def unique(self, values):
        return self.cupy.unique(values)

    def cumsum_within(self, sorted_keys, size):
        cp = self.cupy
        if not sorted_keys.shape[0]:
            return size.copy()
        first = cp.concatenate([cp.ones(1, bool), sorted_keys[1:] != sorted_keys[:-1]])
        starts = cp.flatnonzero(first)
        run = cp.cumsum(first) - 1
        before = cp.cumsum(size) - size
        return before - before[starts[run]]

    def rank_within(self, citizen):
        cp = self.cupy
        order = cp.argsort(citizen, kind="stable")
        out = cp.empty(citizen.shape[0], cp.int64)
        out[order] = self.cumsum_within(citizen[order], cp.ones(citizen.shape[0], cp.int64))
        return out

    def _device_csr(self, network):
        cp = self.cupy
        csr = self._csr.get(id(network))
        if csr is None:
            csr = (cp.asarray(network.indptr, dtype=cp.int64),
                   cp.asarray(network.indices, dtype=cp.int32),
                   cp.asarray(network.friend_count(), dtype=cp.int32))
            self._csr = {id(network): csr}
        return csr

    def friends(self, network, name, values):
        cp = self.cupy
        indptr, indices, count = self._device_csr(network)
        n = indptr.shape[0] - 1
        minimum = name == "friends_min"
        padded = cp.empty(n + 1, cp.float64)
        padded[:n] = values
        padded[n] = np.inf if minimum else 0.0
        out = cp.empty(n, cp.float64)
        threads = 256
        self._reduce(((n + threads - 1) // threads,), (threads,),
                     (indptr, indices, padded, out, np.int64(n), np.int32(minimum)))
        pairs = getattr(network, "_pairs", None)
        if pairs is not None:  # ties formed during the run, beside the CSR arrays
            owner, friend = (cp.asarray(p) for p in pairs())
            scatter = self.cupyx.scatter_min if minimum else self.cupyx.scatter_add
            scatter(out, owner, padded[friend])
        if name == "friends_mean":
            out = out / count  # float64; 0 / 0 is NaN: nobody to be judged by
        return out

    def on_network(self, method, *args):
        # The network changes on the host (association); its device copy is renewed.
        if method.__name__ in ("drop", "form"):
            self._csr.clear()
        return super().on_network(method, *args)
