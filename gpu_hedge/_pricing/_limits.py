"""Shared pieces of the closed forms: Greek names and the degenerate (zero-variance) limits."""

from __future__ import annotations

import math
from typing import Any

GREEK_NAMES: tuple[str, ...] = (
    "price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho",
    "vanna", "volga", "charm", "veta", "speed", "zomma", "color", "ultima",
    "dual_delta", "dual_gamma",
)  # fmt: skip

#: price and the first-order Greeks a risk report carries (the book job, quote tables, aggregates)
FIRST_ORDER: tuple[str, ...] = ("price", "delta", "gamma", "vega", "theta", "rho")

INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

#: Greeks that carry the normal density: zero away from the money once the variance is zero.
DENSITY_GREEKS = ("gamma", "vega", "vanna", "volga", "charm", "veta", "speed", "zomma", "color", "ultima", "dual_gamma")


def npdf(xp: Any, d: Any) -> Any:
    """Standard normal density."""
    return INV_SQRT_2PI * xp.exp(-0.5 * d * d)


def heaviside(xp: Any, phi: Any, moneyness: Any) -> Any:
    """Limit of N(phi d) as the total variance goes to zero: 1 in the money, 1/2 at it, 0 out of it."""
    m = phi * moneyness
    return xp.where(m > 0, 1.0, xp.where(m == 0, 0.5, 0.0))


def merge_limits(
    xp: Any, names: tuple[str, ...], regular: Any, reg: dict[str, Any], lim: dict[str, Any],
    H: Any, vega_scale: Any, T: Any, vol: Any,
) -> dict[str, Any]:
    """Where ``regular`` take the closed form, else the zero-variance limit.

    ``lim`` holds the limits of the non-density Greeks (``H`` is the limit of N(phi d)). Density
    Greeks are 0 away from the money; exactly at it (``H == 1/2``) gamma and dual_gamma are +inf,
    vega is ``vega_scale * n(0)`` (its sigma -> 0 limit), theta at expiry is -inf, and the Greeks
    whose limit depends on how expiry and vol reach zero are NaN.
    """
    inf = math.inf
    atm = (~regular) & (H == 0.5)
    atm_vals = {
        "gamma": inf,
        "dual_gamma": inf,
        "vega": vega_scale * INV_SQRT_2PI,
        "theta": xp.where((T == 0) & (vol > 0), -inf, lim["theta"]),
    }
    out = {}
    for n in names:
        if n in DENSITY_GREEKS or n == "theta":
            deg = xp.where(atm, atm_vals.get(n, math.nan), lim.get(n, 0.0))
        else:
            deg = lim[n]
        out[n] = xp.where(regular, reg[n], deg)
    return out
