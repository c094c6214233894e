"""The NumPy backend's tridiagonal solve with an obstacle, for the batched Crank-Nicolson grid of
``gpu_hedge._pricing.cn_grid`` (American options with cash dividends).

Each time step of the grid solves, for every row (option) at once, ``A u = rhs`` with ``A``
tridiagonal and constant along the row (``sub``, ``dg``, ``sup``), Dirichlet ends ``bc0``/``bc1``,
by the Thomas algorithm whose back substitution takes ``max(u, ex)`` (Brennan-Schwartz). As array
code that is a Python loop over the space nodes (401 by default) of small NumPy operations on the
rows, twice per step: dominated by the interpreter for a few rows (the hedging engine prices one
option on a few paths per date). Here the same recurrences run in one compiled pass, in the same
order and with the same operations, so the results are the array code's to the last bit or
within a rounding (``tests/test_cn_native.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._jit import njit
from ._ndtr_kernel import JIT


@njit(nogil=True, **JIT)
def _sweep(sub: Any, dg: Any, sup: Any, rhs: Any, bc0: Any, bc1: Any, ex: Any, cp: Any, dp: Any, out: Any) -> None:  # pragma: no cover
    ns, n = out.shape
    for j in range(n):
        cp[0, j] = 0.0
        dp[0, j] = bc0[j]
    for i in range(1, ns - 1):  # forward elimination, rows inner (contiguous)
        for j in range(n):
            m = dg[j] - sub[j] * cp[i - 1, j]
            cp[i, j] = sup[j] / m
            dp[i, j] = (rhs[i - 1, j] - sub[j] * dp[i - 1, j]) / m
    for j in range(n):
        out[0, j] = bc0[j]
        out[ns - 1, j] = bc1[j]
    for i in range(ns - 2, 0, -1):  # back substitution against the obstacle
        for j in range(n):
            u = dp[i, j] - cp[i, j] * out[i + 1, j]
            e = ex[i, j]
            out[i, j] = u if u >= e else e


def tridiag_obstacle(sub: Any, dg: Any, sup: Any, rhs: Any, bc0: Any, bc1: Any, ex: Any) -> np.ndarray | None:
    """``u`` of shape ``(n_space, n)``: the solve above (``sub``, ``dg``, ``sup``, ``bc0``, ``bc1``:
    ``(n,)``; ``rhs``: ``(n_space - 2, n)``; ``ex``: ``(n_space, n)``, ``-inf`` for no obstacle), or
    None where it cannot run (no Numba, ``GPU_HEDGE_NUMBA=0``, not float64): the caller then runs
    its array code."""
    from ._ndtr import _loop

    arrays = [np.asarray(a) for a in (sub, dg, sup, rhs, bc0, bc1, ex)]
    if not _loop() or any(a.dtype != np.float64 for a in arrays):
        return None
    n_space, n = arrays[6].shape
    sub, dg, sup, bc0, bc1 = (np.ascontiguousarray(np.broadcast_to(arrays[k], (n,))) for k in (0, 1, 2, 4, 5))
    rhs, ex = np.ascontiguousarray(arrays[3]), np.ascontiguousarray(arrays[6])
    cp, dp, out = np.empty((n_space, n)), np.empty((n_space, n)), np.empty((n_space, n))
    _sweep(sub, dg, sup, rhs, bc0, bc1, ex, cp, dp, out)
    return out
