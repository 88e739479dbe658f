"""Imported once by the process pool's fork server and by each Ray worker (`PRELOAD` in
executors.py), before any member runs: building a small population loads Numba's target
and the population's compiled kernels from their cache (some 0.3 s), which the pool's
workers then inherit instead of each paying it at its first member. Only serial kernels
run here: a fork server must hold no threads (the parallel ones load in the workers)."""

from __future__ import annotations

from metricpower.population import build_population
from metricpower.scenario import load_preset

build_population(load_preset("essay", {"run": {"citizens": 200}}))
