"""The NumPy backend's fused inner step of the Andersen-Lake-Offengelt fixed point (American options).

Each fixed-point iteration of ``gpu_hedge._pricing.american.put_boundary`` evaluates, at every
node ``a`` of every row and every Gauss-Legendre point ``j`` (``rows x nodes x points``, about
130,000 values for a 256-row batch),

    dp = (sqrt(max(yq, 0)) - root_b[a] + drift) / sm + sm / 2,   dm = dp - sm,
    sum_q[a] = sum_j cq N(dp),   sum_r[a] = sum_j cr N(dm),

with ``yq = Y @ M`` the boundary interpolated at the point (one matrix product, done here).
Written as array code that is about fifteen NumPy passes over temporaries of that size,
each allocated afresh; here it is two Numba passes over buffers allocated once per batch, with one
NumPy ``exp`` call between them for all the ``exp(-d^2 / 2)`` that the normal CDFs need (Numba
has no vectorised ``exp`` without Intel's SVML; NumPy's is). The products ``cq N(dp)`` are formed
exactly as the array code forms them and summed by the same NumPy reduction, so the results are
the array code's within a rounding (the product's summation order may differ from BLAS's;
``tests/test_american_native.py``), and a row's boundary does not depend on the batch it is in.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._jit import njit
from ._ndtr_kernel import JIT, ndtr_from_exp


@njit(nogil=True, **JIT)
def _arguments(  # pragma: no cover - compiled
    Y: Any, M: Any, root_b: Any, drift: Any, sm: Any, points: int, yq: Any, dp_: Any, dm_: Any, ep: Any, em: Any
) -> None:
    """The boundary at every point (``Y @ M`` row by row, in ``yq``), then dp, dm and the exponents
    -dp^2/2, -dm^2/2 (flat, node-major, ``points`` per node). The product is done here, not by BLAS:
    OpenBLAS threads its own inside the backend's thread pool (2 threads ran slower than 1), and
    rounds by the batch's blocking (a row's boundary then depended on its neighbours). Four
    separate outputs (halves of two arrays): through one array with an offset the loop did not
    vectorise (3.0 ns a point against 0.6)."""
    rows, width = Y.shape[0], M.shape[1]
    for i in range(rows):
        base = i * width
        for k in range(width):
            yq[base + k] = 0.0
        for c in range(Y.shape[1]):
            y = Y[i, c]
            for k in range(width):
                yq[base + k] += y * M[c, k]
    for a in range(yq.shape[0] // points):
        rb = root_b[a]
        for j in range(points):
            k = a * points + j
            s = sm[k]
            dp = (math.sqrt(max(yq[k], 0.0)) - rb + drift[k]) / s + 0.5 * s
            dm = dp - s
            dp_[k] = dp
            dm_[k] = dm
            ep[k] = -0.5 * dp * dp
            em[k] = -0.5 * dm * dm


@njit(nogil=True, **JIT)
def _terms(d: Any, e: Any, c: Any, t: Any) -> None:  # pragma: no cover - compiled
    """``t = c N(d)`` given ``e = exp(-d^2 / 2)``."""
    for k in range(c.shape[0]):
        t[k] = c[k] * ndtr_from_exp(d[k], e[k])


def _flat(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


class AloSums:
    """``sums(Y, M, root_b) -> (sum_q, sum_r)`` (``yq = Y @ M``: the boundary at the points) for
    one boundary solve of ``rows x nodes x points``
    (the constants ``drift``, ``sm``, ``cq``, ``cr`` of that solve given once; buffers kept across
    its iterations). float64 only; build through :func:`alo_sums`."""

    def __init__(self, drift: Any, sm: Any, cq: Any, cr: Any) -> None:
        self.shape = np.broadcast_shapes(np.shape(drift), np.shape(sm), np.shape(cq), np.shape(cr))
        self.points = self.shape[-1]
        self.drift, self.sm, self.cq, self.cr = (_flat(np.broadcast_to(a, self.shape)) for a in (drift, sm, cq, cr))
        size = self.drift.shape[0]
        self.d, self.e, self.t = np.empty(2 * size), np.empty(2 * size), np.empty(2 * size)

    def __call__(self, Y: Any, M: Any, root_b: Any) -> tuple[np.ndarray, np.ndarray]:
        d, e, t, size = self.d, self.e, self.t, self.drift.shape[0]
        Y, M = (np.ascontiguousarray(a, dtype=np.float64) for a in (Y, M))
        _arguments(Y, M, _flat(root_b), self.drift, self.sm, self.points, t[:size], d[:size], d[size:], e[:size], e[size:])
        np.exp(e, out=e)
        _terms(d[:size], e[:size], self.cq, t[:size])
        _terms(d[size:], e[size:], self.cr, t[size:])
        sums = self.t.reshape((2, *self.shape)).sum(axis=-1)
        return sums[0], sums[1]


def alo_sums(drift: Any, sm: Any, cq: Any, cr: Any) -> AloSums | None:
    """The fused step for one boundary solve (arrays broadcastable to ``(rows, nodes, points)``), or
    None where it cannot run (no Numba, ``GPU_HEDGE_NUMBA=0``, not float64): the caller then runs
    its array code."""
    from ._ndtr import _loop

    if not _loop() or any(np.asarray(a).dtype != np.float64 for a in (drift, sm, cq, cr)):
        return None
    return AloSums(drift, sm, cq, cr)
