"""The book's values and Greeks along a run: what the hedging step, the drivers and the ledger price.

Black-Scholes-Merton closed forms (:func:`gpu_hedge._pricing.black_scholes.black_kernel`) at each
date, summed over the options still alive, in shares (delta), shares per unit of price (gamma) and
currency (price, vega per unit of vol, theta per year); the decisions' delta may be the smile's or
the minimum-variance delta (:mod:`gpu_hedge._hedging.smile`). Settlement at intrinsic value.

American options (``Option(exercise="american")``) are priced by the package's American pricer
(:func:`american_terms`, the batched ALO scheme of :func:`gpu_hedge._pricing.american_greeks.american_greeks`,
one call per option and date over the paths), so these need the backend (``bk``), and only count
on the paths where they are still alive (``alive``, the state's per-path mask: 0 once exercised or
assigned). A plan holding one runs the generic per-date loop (:func:`gpu_hedge._hedging.drivers.run`).

Cash dividends (``hedge(dividends=)``): an option with a dividend still to go ex before its expiry
(after the date, on the run's clock) is priced by the escrowed-dividend model on the backend
(:func:`gpu_hedge._pricing.dividends.dividend_greeks`: closed form European, Crank-Nicolson American),
Greeks in the quoted spot; one without is priced as above.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from .._pricing.american_greeks import american_greeks
from .._pricing.black_scholes import black_kernel
from .._pricing.cn_grid import exercised_now
from .._pricing.dividends import DividendSchedule, dividend_greeks
from .._types import Array
from .engine import Option
from .smile import minimum_variance_delta, smile_delta

__all__ = ["ALL", "KERNEL", "american_terms", "book_greeks", "book_value", "kernel", "settle"]

#: every Greek the book is priced for
ALL = ("price", "delta", "gamma", "vega", "theta")
#: the kernel of all of them, any region (the ledger and the final unwind of a hedge option)
KERNEL = black_kernel("bsm", ALL)
#: the American outputs of one pricer pass (what :func:`american_terms` always asks for)
_AMERICAN_BASE = ("price", "delta", "gamma", "early_exercise")


@lru_cache(maxsize=64)
def kernel(names: tuple[str, ...]) -> Callable[..., dict]:
    """The Black-Scholes-Merton kernel for ``names``, regular region only (expiry, vol, strike > 0:
    the loop prices options strictly before their expiry, with vols checked > 0)."""
    return black_kernel("bsm", names, regular_only=True)


def remaining(plan: Any, o: Option, t: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The plan's cash dividends going ex in ``(t, expiry]`` of option ``o`` as (years from ``t``,
    amounts), or None when there is none (the option is then priced without dividends)."""
    divs = getattr(plan, "dividends", None)
    if divs is None:
        return None
    times, amounts = divs
    sel = (times > t) & (times <= o.expiry)
    return (times[sel] - t, amounts[sel]) if sel.any() else None


def american_terms(
    bk: Any, o: Option, spot: Array, tau: Any, vol: Any, rate: float, div: float, names: tuple[str, ...],
    dividends: tuple[np.ndarray, np.ndarray] | None = None, vol_adjust: str = "beneder_vorst",
) -> dict[str, Array]:  # fmt: skip
    """American outputs ``names`` (Greeks per option, ``early_exercise``, ``boundary``) of option
    ``o`` per path at remaining expiry ``tau`` (> 0) and ``vol``: the package's American pricer on
    the backend (module-level, so a test may swap it, e.g. for European deltas). Price, delta, gamma
    and the exercise flag come from one pricer pass, so they are always asked for together: one
    compiled kernel serves every call of a run on a compiling backend (the bumped Greeks, vega and
    theta, only when ``names`` has them: the ledger). ``dividends`` (:func:`remaining`): the option
    (American or European) is priced by the escrowed-dividend model with ``vol_adjust``;
    ``early_exercise`` is then where an American option's price is its intrinsic value."""
    wanted = tuple(dict.fromkeys((*_AMERICAN_BASE, *names)))
    if dividends is not None:
        return _dividend_terms(bk, o, spot, tau, vol, rate, div, wanted, dividends, vol_adjust)
    return american_greeks(bk, [spot, o.strike, tau, vol, rate, div, 1.0 if o.call else -1.0], wanted, spot.dtype)


def _dividend_terms(bk: Any, o: Option, spot: Array, tau: Any, vol: Any, rate: float, div: float, wanted: tuple[str, ...],
                    dividends: tuple[np.ndarray, np.ndarray], vol_adjust: str) -> dict[str, Array]:  # fmt: skip
    n = int(spot.shape[0])
    times, amounts = (np.broadcast_to(np.asarray(a, dtype=np.float64), (n, a.size)) for a in dividends)
    phi = 1.0 if o.call else -1.0
    names = tuple(k for k in wanted if k != "early_exercise")
    g = dict(dividend_greeks(bk, spot, o.strike, tau, vol, rate, div, phi, names, DividendSchedule(times, amounts),
                             american=o.american, vol_adjust=vol_adjust, dtype=spot.dtype))  # fmt: skip
    if "early_exercise" in wanted:
        g["early_exercise"] = exercised_now(bk.xp, spot, o.strike, phi, g["price"], bool(o.american))
    return g


def book_greeks(
    xp: Any, sp: Any, plan: Any, live: tuple[int, ...], spot: Array, t: Any, vols: Any, names: tuple[str, ...] = ALL,
    hedge: bool = False, *, bk: Any = None, alive: Array | None = None, pre: dict[int, dict[str, Array]] | None = None,
) -> dict[str, Array]:  # fmt: skip
    """Sums over the live options of units x Greeks ``names`` at ``vols`` (per option), at dates before
    expiry: the package's Black-Scholes-Merton kernel (regular region only; with the date's expiry and
    vol as scalars, what is common to all paths is computed once, and only what ``names`` need).

    ``hedge``: the Greeks a decision hedges, whose delta is the plan's delta model
    (:mod:`gpu_hedge._hedging.smile`): ``"smile"`` reads each option's slope d sigma / dk at
    ``vols[n_options + j]`` (the plan's hedge vols carry them after the vols), ``MinimumVariance``
    the Hull-White correction; both need the options' vegas (computed, not returned).

    American options: :func:`american_terms` on ``bk`` (``pre[j]``, when given, holds option j's
    outputs already computed at this spot, date and vol), each term times ``alive[:, j]`` (the
    per-path mask of options not yet exercised; None: alive everywhere). European terms are as
    without these arguments."""
    model = getattr(plan, "delta", "bs") if hedge and "delta" in names else "bs"
    fn = kernel(names if model == "bs" else tuple(dict.fromkeys((*names, "vega"))))
    n_opt = len(plan.options)
    total: dict[str, Array] = {}
    for j in live:
        o = plan.options[j]
        divs = remaining(plan, o, float(t)) if getattr(plan, "dividends", None) is not None else None
        if o.american or divs is not None:  # the plan refuses smile / minimum-variance deltas with American options and dividends
            extra = (divs, plan.vol_adjust) if divs is not None else ()  # (a test may swap american_terms for 8 arguments)
            g = pre[j] if pre is not None and j in pre else american_terms(bk, o, spot, o.expiry - t, vols[j], plan.rate, plan.div, names,
                                                                            *extra)  # fmt: skip
            if alive is not None and o.american:
                g = {name: g[name] * alive[:, j] for name in names}
        else:
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


def book_value(
    xp: Any, sp: Any, plan: Any, live: tuple[int, ...], spot: Array, t: Any, vols: Any, marks: Any = None, *, bk: Any = None,
    alive: Array | None = None,
) -> Array:  # fmt: skip
    """The live options' value per path (currency): ``marks`` (that date's row of real values per
    option) when given, else the model at ``vols``; ``bk`` and ``alive`` as in :func:`book_greeks`."""
    if marks is not None:
        if alive is not None:
            return sum(
                plan.options[j].units * float(marks[j]) * (alive[:, j] if plan.options[j].american else 1.0) for j in live
            ) + xp.zeros_like(spot)
        return sum(plan.options[j].units * float(marks[j]) for j in live) + xp.zeros_like(spot)
    slow = any(plan.options[j].american for j in live) or getattr(plan, "dividends", None) is not None
    names = ("price",) if slow else ALL  # no bumped American / grid Greeks for a value
    return book_greeks(xp, sp, plan, live, spot, t, vols, names, bk=bk, alive=alive)["price"]


def settle(xp: Any, o: Option, spot: Array) -> Array:
    """What option ``o`` pays at its expiry per path: ``units x max(phi (S - K), 0)`` (currency)."""
    phi = 1.0 if o.call else -1.0
    return o.units * xp.maximum(phi * (spot - o.strike), 0.0)
