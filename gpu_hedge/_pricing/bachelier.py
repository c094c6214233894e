"""Bachelier (normal) model on the forward: prices and analytic Greeks.

``spot`` is the forward F (negative values allowed), ``vol`` the normal (absolute) vol, and
``div`` is ignored. With ``v = vol sqrt(T)`` and ``d = (F - K) / v``::

    V = e^{-rT} (phi (F - K) N(phi d) + v n(d))

Units as for the lognormal models: theta = -dV/dT per year, vega per 1.00 of (normal) vol,
rho = dV/dr with the forward fixed (= -T V), dividend_rho = 0.
"""

from __future__ import annotations

from typing import Any

from ._limits import heaviside, merge_limits, npdf


def bachelier_kernel(model: str, names: tuple[str, ...], regular_only: bool = False):
    """Return ``kernel(xp, special, F, K, T, vol, r, q, phi) -> {name: array}``.

    ``regular_only=True`` promises expiry and vol are all > 0 and skips the limit branch.
    """

    def kernel(xp: Any, sp: Any, F: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        if regular_only:
            regular, Ts, vols = None, T, vol
        else:
            regular = vol * T > 0
            Ts = xp.where(regular, T, 1.0)
            vols = xp.where(regular, vol, 1.0)
        sqrtT = xp.sqrt(Ts)
        v = vols * sqrtT
        D = xp.exp(-r * T)
        d = (F - K) / v
        Np = sp.ndtr(phi * d)
        nd = npdf(xp, d)
        price = xp.maximum(D * (phi * (F - K) * Np + v * nd), 0.0)
        gamma = D * nd / v  # cheap: d, nd and v are needed by the price anyway
        vega = D * sqrtT * nd
        reg: dict[str, Any] = {"price": price}
        for n in names:
            if n == "delta":
                reg[n] = phi * D * Np
            elif n in ("gamma", "dual_gamma"):
                reg[n] = gamma
            elif n == "vega":
                reg[n] = vega
            elif n == "theta":
                reg[n] = r * price - D * nd * vols / (2.0 * sqrtT)
            elif n == "rho":
                reg[n] = -Ts * price
            elif n == "dividend_rho":
                reg[n] = 0.0 * price
            elif n == "vanna":
                reg[n] = -D * nd * d / vols
            elif n == "volga":
                reg[n] = vega * d * d / vols
            elif n == "charm":
                reg[n] = r * phi * D * Np + D * nd * d / (2.0 * Ts)
            elif n == "veta":
                reg[n] = vega * (r - (1.0 + d * d) / (2.0 * Ts))
            elif n == "speed":
                reg[n] = -gamma * d / v
            elif n == "zomma":
                reg[n] = gamma * (d * d - 1.0) / vols
            elif n == "color":
                reg[n] = gamma * (r + (1.0 - d * d) / (2.0 * Ts))
            elif n == "ultima":
                reg[n] = vega * d * d * (d * d - 3.0) / (vols * vols)
            elif n == "dual_delta":
                reg[n] = -phi * D * Np
        if regular_only:
            return reg

        H = heaviside(xp, phi, F - K)
        intrinsic = D * phi * (F - K) * H
        lim = {
            "price": intrinsic,
            "delta": phi * D * H,
            "dual_delta": -phi * D * H,
            "theta": r * intrinsic,
            "rho": -T * intrinsic,
            "dividend_rho": 0.0 * intrinsic,
            "charm": r * phi * D * H,
        }
        return merge_limits(xp, names, regular, reg, lim, H, D * xp.sqrt(T), T, vol)

    return kernel
