"""Implied volatility of American prices, vectorised: a safeguarded secant on the ALO price.

For each row the start is the European implied vol of the American price (Let's Be Rational,
``sigma_0``), and the second point removes the early-exercise premium it implies: since the
European price at ``sigma_0`` is the quoted price ``P``, the premium there is ``A(sigma_0) - P``,
and ``sigma_1`` is the European implied vol of ``P - (A(sigma_0) - P)``. From these two points a
secant on ``A(sigma) - P`` (``A``: the American price, increasing in ``sigma``), kept inside the
bracket the evaluations have established (a bisection step whenever the secant would leave it),
runs a fixed number of steps: no per-row Python, one American evaluation per step.

Statuses as for European prices (:class:`~gpu_hedge._pricing.implied_vol.IVStatus`): below the
intrinsic value (an American option is never worth less), above the bound (a call above the
spot, a put above the strike), not identifiable (zero time value: in the exercise region any
low enough vol gives the intrinsic value; a vega too small to pin the vol to 1e-8; no
convergence in the bracket ``[1e-4, 10]``).
"""

from __future__ import annotations

import math
from typing import Any

from .american_greeks import american_greeks

_LO, _HI = 1e-4, 10.0
_STEPS = 8
_TOL = 1e-9  # the accuracy claimed: |vol error| (the ALO price is accurate to ~1e-10 relative)


def american_implied_vol(
    bk: Any, arrays: list[Any], euro_iv: Any, dtype: Any, *, model: str, method: str, status_codes: Any, evaluate: Any = None
) -> tuple[Any, Any]:
    """``(vol, status)`` for validated backend ``arrays`` (spot, strike, expiry, price, rate, div, phi).

    ``euro_iv(price) -> vol`` is the European implied vol of a price array on the same rows (NaN
    where it has none); ``status_codes`` the IVStatus enum. ``evaluate(vol, names) -> {name: array}``
    prices the American options at ``vol`` (``names``: price, or price and vega); default ALO with
    ``method`` (cash dividends pass their Crank-Nicolson grid)."""
    xp = bk.xp
    S, K, T, P, r, q, phi = arrays
    shape = xp.broadcast_arrays(S, K, T, P, r, q, phi)[0].shape
    P = xp.broadcast_to(P, shape)
    call = phi > 0
    intrinsic = xp.maximum(xp.where(call, S - K, K - S), 0.0)
    bound = xp.where(call, S, K)
    eps = 4.0 * 2.220446049250313e-16 * xp.maximum(bound, 1e-300)

    if evaluate is None:

        def evaluate(vol: Any, names: tuple[str, ...]) -> Any:
            return american_greeks(bk, [S, K, T, vol, r, q, phi], names, dtype, model=model, method=method)

    def american(vol: Any) -> Any:
        return evaluate(vol, ("price",))["price"]

    def clip(v: Any) -> Any:
        return xp.clip(xp.where(xp.isfinite(v), v, 0.3), _LO, _HI)

    s0 = clip(euro_iv(P))
    a0 = american(s0)
    s1 = clip(euro_iv(xp.maximum(2.0 * P - a0, intrinsic)))
    lo = xp.full(shape, _LO, dtype=dtype)
    hi = xp.full(shape, _HI, dtype=dtype)
    f0 = a0 - P
    lo = xp.where(f0 < 0, s0, lo)
    hi = xp.where(f0 > 0, s0, hi)
    prev_s, prev_f, s = s0, f0, s1
    # the slope before any secant: the European vega at the start (close to the American one; a row
    # that starts on its root, as an option without early exercise does, has no secant to take)
    qe = r if model == "black76" else q
    vT = s0 * xp.sqrt(T)
    d1 = (xp.log(S / K) + (r - qe) * T) / xp.where(vT > 0, vT, 1.0) + 0.5 * vT
    vega = xp.where(vT > 0, S * xp.exp(-qe * T) * xp.sqrt(T) * xp.exp(-0.5 * d1 * d1) * 0.3989422804014327, 0.0)
    vega = xp.where(xp.isfinite(vega), vega, 0.0)
    tight = xp.maximum(eps, 1e-12 * P)
    for _ in range(_STEPS):
        f = american(s) - P
        lo = xp.where(f < 0, xp.maximum(lo, s), lo)
        hi = xp.where(f > 0, xp.minimum(hi, s), hi)
        moved = xp.abs(s - prev_s) > 1e-7 * s  # a secant over a wider step is rounding, not slope
        slope = xp.where(moved, (f - prev_f) / xp.where(moved, s - prev_s, 1.0), vega)
        vega = xp.where(moved | (vega == 0), slope, vega)
        step = xp.where((slope > 0) & xp.isfinite(slope), f / xp.where(slope > 0, slope, 1.0), math.nan)
        nxt = s - step
        inside = (nxt > lo) & (nxt < hi) & xp.isfinite(nxt)
        nxt = xp.where(xp.abs(f) <= tight, s, xp.where(inside, nxt, 0.5 * (lo + hi)))
        prev_s, prev_f, s = s, f, nxt
    final = evaluate(s, ("price", "vega"))
    f_final = final["price"] - P
    vega = xp.where(vega > 0, vega, xp.abs(final["vega"]))  # no secant slope where the start was already exact
    ok = xp.abs(f_final) <= tight + _TOL * vega
    identifiable = (4.0 * 2.220446049250313e-16 * P + 1e-300 <= 1e-8 * vega) & (P > intrinsic + eps)
    codes = status_codes
    status = xp.where(
        P < intrinsic - eps,
        float(codes.BELOW_INTRINSIC),
        xp.where(P > bound + eps, float(codes.ABOVE_MAX), xp.where(ok & identifiable, float(codes.OK), float(codes.NOT_IDENTIFIABLE))),
    )
    vol = xp.where(status == float(codes.OK), s, math.nan)
    return vol, status
