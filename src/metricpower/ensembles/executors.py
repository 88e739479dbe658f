"""Where members run: one interface, two implementations (a local process pool, Ray).

Both take the same groups and call the same `run_group`, so results are identical
whichever ran them; both hand results back as groups finish, so the caller can stream
them to disk.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from metricpower.ensembles.member import run_group
from metricpower.forkserver import PRELOAD, cores, start


def preload() -> None:
    """Import PRELOAD (in a Ray worker, which has no fork server to inherit them from)."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


class ExtraMissing(RuntimeError):
    """An optional dependency is not installed; the message names the extra."""


def share_cores(threads: int) -> None:
    """Let a worker use `threads` threads (its share of the cores) in the compiled kernels
    and BLAS, so that workers side by side do not oversubscribe the machine."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    try:
        import numba
    except ImportError:  # the `fast` extra is optional
        return
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


class Executor(ABC):
    """Runs `run_group(*args)` for each task and yields the results as they finish."""

    workers: int

    @abstractmethod
    def map(self, tasks: list[tuple]) -> Iterator[list]:
        ...

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""


class LocalPool(Executor):
    """A process pool over this machine's cores. Workers come from a fork server that has
    imported metricpower once: no process start or import cost per member, and no fork of
    a parent holding threads (a progress bar's, Ray's)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or cores()
        self.pool = None

    def map(self, tasks):
        if self.workers == 1 or len(tasks) == 1:
            # In this process: nothing to gain from a worker, and a killed parent kills it.
            for t in tasks:
                yield run_group(*t)
            return
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        if self.pool is None:
            self.pool = ProcessPoolExecutor(self.workers, mp_context=start(),
                                            initializer=share_cores,
                                            initargs=(max(1, cores() // self.workers),))
        pending = {self.pool.submit(run_group, *t) for t in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class RayExecutor(Executor):
    """The same groups as Ray tasks: a local Ray started on demand (and stopped after), or
    an existing cluster at `address` (its nodes need metricpower installed, and `out` must
    be a folder every node can write, since members write their run directories there)."""

    def __init__(self, address: str | None = None, workers: int | None = None):
        try:
            import ray
        except ImportError:
            raise ExtraMissing("running on Ray needs the `ray` extra: "
                               "pip install 'metricpower[ray]'") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            options = {"address": address} if address else {
                "num_cpus": workers or cores(), "include_dashboard": False}
            ray.init(**options, log_to_driver=False, configure_logging=False)
        self.workers = int(ray.cluster_resources().get("CPU", 1))
        # One task per CPU Ray counts, each with one thread (as the pool's workers have
        # their share of the cores).
        one = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        task = {"num_cpus": 1, "runtime_env": {"env_vars": one}}
        self.remote = ray.remote(max_retries=0, **task)(run_group)
        # Each worker imports what a member needs now, as the pool's workers inherit it
        # from their fork server, rather than during its first member.
        warm = ray.remote(**task)(preload)
        ray.get([warm.remote() for _ in range(self.workers)])

    def map(self, tasks):
        pending = [self.remote.remote(*t) for t in tasks]
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield self.ray.get(done[0])

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
