"""Network measures on the CSR arrays the engine keeps (fast enough to run daily)."""

from __future__ import annotations

import math

import numpy as np


def assortativity(indptr, indices, values) -> float:
    """Score assortativity of the network: the Pearson correlation between the values at
    the two ends of every tie (each undirected tie counted both ways, as CSR stores it).
    +1: friends have equal scores; 0: no relation; NaN when there are no ties or every
    tie-end has the same value.

    `indptr` (n + 1) and `indices` are CSR arrays (friends of i are
    indices[indptr[i]:indptr[i + 1]], all valid citizen ids); `values` has length n.
    Cost: one gather of `values` over `indices` and a few O(n) passes."""
    indptr = np.asarray(indptr)
    values = np.asarray(values, dtype=np.float64)
    e = int(indptr[-1] - indptr[0])
    if e == 0:
        return math.nan
    deg = np.diff(indptr).astype(np.float64)
    # Centre by the degree-weighted mean (the mean at tie starts) to keep precision.
    shift = float(deg @ values) / e
    x = values - shift
    end = x[np.asarray(indices)]
    csum = np.concatenate(([0.0], np.cumsum(end)))
    friends_sum = csum[indptr[1:] - indptr[0]] - csum[indptr[:-1] - indptr[0]]
    m_src = float(deg @ x) / e
    m_dst = float(csum[-1]) / e
    var_src = float(deg @ (x * x)) / e - m_src * m_src
    var_dst = float(end @ end) / e - m_dst * m_dst
    cov = float(x @ friends_sum) / e - m_src * m_dst
    if var_src <= 0 or var_dst <= 0:
        return math.nan
    return float(cov / math.sqrt(var_src * var_dst))
