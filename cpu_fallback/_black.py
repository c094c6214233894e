"""The NumPy backend's native Black kernel: price, delta, gamma, vega, theta and rho of the
generalised Black formula (``bsm``: spot with yield; ``black76``: forward) in two Numba passes.

Same formulas, order of operations and conventions as ``gpu_hedge._pricing.black_scholes`` (the
reference, which every other backend runs): theta per year, vega and rho per 1.00. Regular region
only (expiry, vol and strike > 0): callers use it where the inputs were checked to be regular.

Why it is faster than the generic kernel on NumPy (about 60 array passes per chunk): the
transcendentals that NumPy vectorises (``log``, ``sqrt``, ``exp``) stay NumPy calls, everything
else (the two normal CDFs through :func:`cpu_fallback._ndtr_kernel.ndtr_from_exp`, and the
arithmetic of all six outputs) runs in two vectorised Numba loops writing straight into the
outputs, and ``exp(-d^2/2)`` is computed once for the density and the CDF of each of d1 and d2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._jit import njit
from ._ndtr_kernel import JIT, ndtr_from_exp

#: the outputs of :func:`black_greeks`, in this order
NAMES = ("price", "delta", "gamma", "vega", "theta", "rho")
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(nogil=True, **JIT)
def _pass_d(lnm: Any, T: Any, vol: Any, r: Any, q: Any, forward: bool, sqrtT: Any, d1: Any, w: Any) -> None:  # pragma: no cover
    """sqrt(T), d1, and in ``w`` (4 n) the exponents -d1^2/2, -d2^2/2, -r T, -q T (one ``exp`` call after)."""
    n = d1.shape[0]
    for i in range(n):
        st = math.sqrt(T[i])
        v = vol[i] * st
        b = 0.0 if forward else r[i] - q[i]
        x = (lnm[i] + (b + 0.5 * vol[i] * vol[i]) * T[i]) / v
        y = x - v
        sqrtT[i] = st
        d1[i] = x
        w[i] = -0.5 * x * x
        w[n + i] = -0.5 * y * y
        w[2 * n + i] = -r[i] * T[i]
        w[3 * n + i] = w[2 * n + i] if forward else -q[i] * T[i]


@njit(nogil=True, **JIT)
def _pass_greeks(  # pragma: no cover - compiled
    S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, forward: bool, sqrtT: Any, d1: Any, e: Any,
    price: Any, delta: Any, gamma: Any, vega: Any, theta: Any, rho: Any,
) -> None:  # fmt: skip
    """The six outputs from d1 and ``e`` = exp of :func:`_pass_d`'s exponents (e^-d1^2/2, e^-d2^2/2, D, Dq)."""
    n = d1.shape[0]
    for i in range(n):
        p = phi[i]
        sq = sqrtT[i]
        v = vol[i] * sq
        b = 0.0 if forward else r[i] - q[i]
        D = e[2 * n + i]
        Dq = e[3 * n + i]
        x1 = d1[i]
        N1 = ndtr_from_exp(p * x1, e[i])
        N2 = ndtr_from_exp(p * (x1 - v), e[n + i])
        n1 = e[i] * _INV_SQRT_2PI
        SDq = S[i] * Dq
        A = p * SDq * N1
        B = p * (K[i] * D) * N2
        pr = max(A - B, 0.0)
        price[i] = pr
        delta[i] = p * Dq * N1
        gamma[i] = Dq * n1 / (S[i] * v)
        vega[i] = SDq * n1 * sq
        theta[i] = (r[i] - b) * A - r[i] * B - SDq * n1 * vol[i] / (2.0 * sq)
        rho[i] = -T[i] * pr if forward else T[i] * B


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
    (2 (m + 1), n), NumPy's ``exp`` next. A vol shocked to <= 0 gives a placeholder (unused)."""
    n = lnsk.shape[0]
    for j in range(log1p_ds.shape[0] + 1):
        for i in range(n):
            v = vol[i] if j == 0 else max(vol[i] + dv[j - 1], 0.0)
            sv = v * sqrtT[i]
            lm = lnsk[i] if j == 0 else lnsk[i] + log1p_ds[j - 1]
            d1 = (lm + (b[i] + 0.5 * v * v) * T[i]) / (sv if sv > 0.0 else 1.0)
            d2 = d1 - sv
            e[2 * j, i] = -0.5 * d1 * d1
            e[2 * j + 1, i] = -0.5 * d2 * d2


@njit(nogil=True, **JIT)
def _ladder_pnl(  # pragma: no cover - compiled
    S: Any, lnsk: Any, T: Any, vol: Any, b: Any, sqrtT: Any, k_disc: Any, s_disc: Any, phi: Any, w: Any,
    ds: Any, log1p_ds: Any, dv: Any, e: Any, pnl: Any,
) -> None:  # fmt: skip
    """``pnl[j] = w (V(S (1 + ds_j), vol + dv_j) - V(S, vol))``, with ``e`` the exponentials."""
    n = S.shape[0]
    m = ds.shape[0]
    base = np.empty(n)
    for j in range(m + 1):
        for i in range(n):
            v = vol[i] if j == 0 else max(vol[i] + dv[j - 1], 0.0)
            sv = v * sqrtT[i]
            s = S[i] if j == 0 else S[i] * (1.0 + ds[j - 1])
            lm = lnsk[i] if j == 0 else lnsk[i] + log1p_ds[j - 1]
            p = phi[i]
            if sv > 0.0:
                d1 = (lm + (b[i] + 0.5 * v * v) * T[i]) / sv
                N1 = ndtr_from_exp(p * d1, e[2 * j, i])
                N2 = ndtr_from_exp(p * (d1 - sv), e[2 * j + 1, i])
                price = max(p * (s * s_disc[i] * N1 - k_disc[i] * N2), 0.0)
            else:
                price = max(p * (s * s_disc[i] - k_disc[i]), 0.0)
            if j == 0:
                base[i] = price
            else:
                pnl[j - 1, i] = (price - base[i]) * w[i]


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
