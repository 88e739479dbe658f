"""The fork server the process pool's workers come from (`ensembles.executors.LocalPool`):
what it imports once, before forking any worker, and how to start it early.

Its imports take seconds (metricpower, SciPy, pandas, Numba's kernels). Started by the
first ensemble, they come after the parent's own imports and before any member; the
command line starts it first thing instead, so that on a second core they run beside the
parent's. This module is outside `ensembles` because importing that package is part of
the parent's work it overlaps."""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

#: What a worker imports before its first member: metricpower's modules, pandas, which
#: PyArrow looks up the first time it converts a list (half a second, where it is
#: installed; a module that is missing is passed over), threadpoolctl, which each pool
#: worker's `share_cores` calls as it starts, the command line, which each worker of a
#: `metricpower` command imports again as its main module, and `warm`, which loads the
#: compiled kernels a population's build uses.
PRELOAD = ["metricpower.ensembles.member", "metricpower.runs", "metricpower.metrics",
           "metricpower.compare", "pandas", "threadpoolctl", "metricpower.cli",
           "metricpower.ensembles.warm"]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def start() -> BaseContext:
    """Start the fork server (once per process; it imports PRELOAD in the background) and
    return the context that forks from it."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    return ctx
