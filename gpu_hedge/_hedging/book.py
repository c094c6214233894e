"""The book's values and Greeks along a run: what the hedging step, the drivers and the ledger price.

Black-Scholes-Merton closed forms (:func:`gpu_hedge._pricing.black_scholes.black_kernel`) at each
date, summed over the options still alive, in shares (delta), shares per unit of price (gamma) and
currency (price, vega per unit of vol, theta per year); the decisions' delta may be the smile's or
the minimum-variance delta (:mod:`gpu_hedge._hedging.smile`). Settlement at intrinsic value.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .._pricing.black_scholes import black_kernel
from .._types import Array
from .engine import Option
from .smile import minimum_variance_delta, smile_delta

__all__ = ["ALL", "KERNEL", "book_greeks", "book_value", "kernel", "settle"]

#: every Greek the book is priced for
ALL = ("price", "delta", "gamma", "vega", "theta")
#: the kernel of all of them, any region (the ledger and the final unwind of a hedge option)
KERNEL = black_kernel("bsm", ALL)


@lru_cache(maxsize=64)
def kernel(names: tuple[str, ...]) -> Callable[..., dict]:
    """The Black-Scholes-Merton kernel for ``names``, regular region only (expiry, vol, strike > 0:
    the loop prices options strictly before their expiry, with vols checked > 0)."""
    return black_kernel("bsm", names, regular_only=True)


def book_greeks(
    xp: Any, sp: Any, plan: Any, live: tuple[int, ...], spot: Array, t: Any, vols: Any, names: tuple[str, ...] = ALL,
    hedge: bool = False,
) -> dict[str, Array]:  # fmt: skip
    """Sums over the live options of units x Greeks ``names`` at ``vols`` (per option), at dates before
    expiry: the package's Black-Scholes-Merton kernel (regular region only; with the date's expiry and
    vol as scalars, what is common to all paths is computed once, and only what ``names`` need).

    ``hedge``: the Greeks a decision hedges, whose delta is the plan's delta model
    (:mod:`gpu_hedge._hedging.smile`): ``"smile"`` reads each option's slope d sigma / dk at
    ``vols[n_options + j]`` (the plan's hedge vols carry them after the vols), ``MinimumVariance``
    the Hull-White correction; both need the options' vegas (computed, not returned)."""
    model = getattr(plan, "delta", "bs") if hedge and "delta" in names else "bs"
    fn = kernel(names if model == "bs" else tuple(dict.fromkeys((*names, "vega"))))
    n_opt = len(plan.options)
    total: dict[str, Array] = {}
    for j in live:
        o = plan.options[j]
        g = fn(xp, sp, spot, o.strike, o.expiry - t, vols[j], plan.rate, plan.div, 1.0 if o.call else -1.0)
        if model == "smile":
            g = {**g, "delta": smile_delta(g["delta"], g["vega"], spot, vols[n_opt + j])}
        elif model != "bs":
            d = minimum_variance_delta(g["delta"], g["vega"], spot, o.expiry - t, model.of(o.call), bool(o.call), plan.div, xp)
            g = {**g, "delta": d}
        for name in names:
            term = g[name] if o.units == 1 else o.units * g[name]
            total[name] = total[name] + term if name in total else term
    if not total:
        total = dict.fromkeys(names, xp.zeros_like(spot))
    return total


def book_value(xp: Any, sp: Any, plan: Any, live: tuple[int, ...], spot: Array, t: Any, vols: Any, marks: Any = None) -> Array:
    """The live options' value per path (currency): ``marks`` (that date's row of real values per
    option) when given, else the model at ``vols``."""
    if marks is not None:
        return sum(plan.options[j].units * float(marks[j]) for j in live) + xp.zeros_like(spot)
    return book_greeks(xp, sp, plan, live, spot, t, vols)["price"]


def settle(xp: Any, o: Option, spot: Array) -> Array:
    """What option ``o`` pays at its expiry per path: ``units x max(phi (S - K), 0)`` (currency)."""
    phi = 1.0 if o.call else -1.0
    return o.units * xp.maximum(phi * (spot - o.strike), 0.0)
