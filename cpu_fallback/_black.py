"""The NumPy backend's native Black kernel: price, delta, gamma, vega, theta and rho of the
generalised Black formula (``bsm``: spot with yield; ``black76``: forward) in two Numba passes, and
the risk job's scenario ladder (:func:`black_ladder`) the same way.

The arithmetic is not written here: each pass loops over a chunk calling the scalar element
functions of :mod:`cpu_fallback._black_element` (the one definition, also compiled for CUDA by the
CuPy backend), which follow ``gpu_hedge._pricing.black_scholes`` (the reference, which every other
backend runs): theta per year, vega and rho per 1.00. Regular region only (expiry, vol and strike
> 0): callers use it where the inputs were checked to be regular.

Why it is faster than the generic kernel on NumPy (about 60 array passes per chunk): the
transcendentals that NumPy vectorises (``log``, ``sqrt``, ``exp``) stay NumPy calls over the whole
chunk, between two vectorised Numba loops (the element functions are inlined into them): the first
writes the exponents (:func:`~cpu_fallback._black_element.black_exponents`), one ``np.exp`` call
takes them all, the second writes the outputs (:func:`~cpu_fallback._black_element.black_element`,
whose normal CDFs reuse ``exp(-d^2/2)`` for the density too).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._black_element import NAMES, black_element, black_exponents, ladder_exponents, ladder_price, ladder_shock
from ._jit import njit
from ._ndtr_kernel import JIT

__all__ = ["NAMES", "black_greeks", "black_ladder"]


@njit(nogil=True, **JIT)
def _pass_d(lnm: Any, T: Any, vol: Any, r: Any, q: Any, forward: bool, sqrtT: Any, d1: Any, w: Any) -> None:  # pragma: no cover
    """sqrt(T), d1, and in ``w`` (4 n) the exponents -d1^2/2, -d2^2/2, -r T, -q T (one ``exp`` call after)."""
    n = d1.shape[0]
    for i in range(n):
        st, x, w1, w2, wD, wDq = black_exponents(lnm[i], T[i], vol[i], r[i], q[i], forward)
        sqrtT[i] = st
        d1[i] = x
        w[i] = w1
        w[n + i] = w2
        w[2 * n + i] = wD
        w[3 * n + i] = wDq


@njit(nogil=True, **JIT)
def _pass_greeks(  # pragma: no cover - compiled
    S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, forward: bool, sqrtT: Any, d1: Any, e: Any,
    price: Any, delta: Any, gamma: Any, vega: Any, theta: Any, rho: Any,
) -> None:  # fmt: skip
    """The six outputs from d1 and ``e`` = exp of :func:`_pass_d`'s exponents (e^-d1^2/2, e^-d2^2/2, D, Dq)."""
    n = d1.shape[0]
    for i in range(n):
        price[i], delta[i], gamma[i], vega[i], theta[i], rho[i] = black_element(
            S[i], K[i], T[i], vol[i], r[i], q[i], phi[i], forward, sqrtT[i], d1[i], e[i], e[n + i], e[2 * n + i], e[3 * n + i]
        )


def _full(a: Any, n: int) -> np.ndarray:
    """A chunk input (slice or 0-d) as a contiguous float64 array of length ``n``, copied only when needed."""
    if isinstance(a, np.ndarray) and a.shape == (n,) and a.dtype == np.float64 and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(np.broadcast_to(np.asarray(a, dtype=np.float64), (n,)))


def black_greeks(forward: bool) -> Any:
    """``kernel(S, K, T, vol, r, q, phi, out=...)`` for :func:`cpu_fallback.run_chunked` with
    ``into=True``: writes the requested ``out`` arrays (any subset of :data:`NAMES`) of one chunk.
    Inputs are chunk slices or 0-d arrays; ``phi`` is +1 (call) or -1 (put)."""

    def kernel(S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, out: Mapping[str, np.ndarray]) -> None:
        n = next(iter(out.values())).shape[0]

        S, K, T, vol, r, q, phi = (_full(a, n) for a in (S, K, T, vol, r, q, phi))
        lnm = np.divide(S, K)
        np.log(lnm, out=lnm)
        sqrtT, d1, e = np.empty(n), np.empty(n), np.empty(4 * n)
        _pass_d(lnm, T, vol, r, q, forward, sqrtT, d1, e)
        np.exp(e, out=e)
        res = [out[name] if name in out else np.empty(n) for name in NAMES]
        _pass_greeks(S, K, T, vol, r, q, phi, forward, sqrtT, d1, e, *res)

    return kernel


@njit(nogil=True, **JIT)
def _ladder_exponents(  # pragma: no cover - compiled
    lnsk: Any, T: Any, vol: Any, b: Any, sqrtT: Any, log1p_ds: Any, dv: Any, e: Any,
) -> None:  # fmt: skip
    """For the base (row pair 0) and each scenario j (pair j + 1): -d1^2/2 and -d2^2/2 into ``e``
    (2 (m + 1), n), NumPy's ``exp`` next."""
    n = lnsk.shape[0]
    for j in range(log1p_ds.shape[0] + 1):
        for i in range(n):
            if j == 0:
                lm, v = lnsk[i], vol[i]
            else:
                _, lm, v = ladder_shock(1.0, lnsk[i], vol[i], 0.0, log1p_ds[j - 1], dv[j - 1])
            e[2 * j, i], e[2 * j + 1, i] = ladder_exponents(lm, v, b[i], T[i], sqrtT[i])


@njit(nogil=True, **JIT)
def _ladder_pnl(  # pragma: no cover - compiled
    S: Any, lnsk: Any, T: Any, vol: Any, b: Any, sqrtT: Any, k_disc: Any, s_disc: Any, phi: Any, w: Any,
    ds: Any, log1p_ds: Any, dv: Any, e: Any, pnl: Any,
) -> None:  # fmt: skip
    """``pnl[j] = w (V(S (1 + ds_j), vol + dv_j) - V(S, vol))``, with ``e`` the exponentials."""
    n = S.shape[0]
    m = ds.shape[0]
    base = np.empty(n)
    for i in range(n):
        base[i] = ladder_price(S[i], lnsk[i], vol[i], b[i], T[i], sqrtT[i], k_disc[i], s_disc[i], phi[i], e[0, i], e[1, i])
    for j in range(m):
        for i in range(n):
            s, lm, v = ladder_shock(S[i], lnsk[i], vol[i], ds[j], log1p_ds[j], dv[j])
            p = ladder_price(s, lm, v, b[i], T[i], sqrtT[i], k_disc[i], s_disc[i], phi[i], e[2 * j + 2, i], e[2 * j + 3, i])
            pnl[j, i] = (p - base[i]) * w[i]


def black_ladder(forward: bool, pairs: tuple[tuple[float, float], ...]) -> Any:
    """``kernel(S, K, T, vol, r, q, phi, w, out=...)`` for :func:`cpu_fallback.run_chunked` with
    ``into=True``: the ladder of ``gpu_hedge._book.risk.ladder_kernel`` (outputs ``s0 ... s<m-1>``,
    the weighted P&L of each (spot shock, vol shock) pair), the exponentials of its 2 (m + 1) normal
    CDFs in one NumPy ``exp`` call and the rest in two compiled passes."""
    ds = np.array([p[0] for p in pairs], dtype=np.float64)
    log1p_ds = np.array([math.log1p(d) for d in ds], dtype=np.float64)  # math.log1p, as the generic kernel
    dv = np.array([p[1] for p in pairs], dtype=np.float64)
    names = [f"s{j}" for j in range(len(pairs))]

    def kernel(S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, w: Any, out: Mapping[str, np.ndarray]) -> None:
        n = next(iter(out.values())).shape[0]

        S, K, T, vol, r, q, phi, w = (_full(a, n) for a in (S, K, T, vol, r, q, phi, w))
        sqrtT = np.sqrt(T)
        disc = np.exp(-r * T)
        s_disc, b = (disc, np.zeros(n)) if forward else (np.exp(-q * T), r - q)
        k_disc = K * disc
        lnsk = np.log(S / K)
        e = np.empty((2 * (len(pairs) + 1), n))
        _ladder_exponents(lnsk, T, vol, b, sqrtT, log1p_ds, dv, e)
        np.exp(e, out=e)
        pnl = np.empty((len(pairs), n))
        _ladder_pnl(S, lnsk, T, vol, b, sqrtT, k_disc, s_disc, phi, w, ds, log1p_ds, dv, e, pnl)
        for j, name in enumerate(names):
            out[name][:] = pnl[j]

    # 2 (m + 1) exponentials per row: 4,096 rows keep them (3 MB for the 9 x 5 ladder) near the cache
    kernel.chunk = 4096  # type: ignore[attr-defined]
    return kernel
