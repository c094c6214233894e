"""The NumPy backend's native delta-hedging step: one decision date for a block of paths in three
Numba passes plus NumPy's ``log`` and ``exp``, instead of about 25 NumPy calls.

It computes exactly what ``gpu_hedge._hedging.step``'s generic step (``decision_core``) computes for
the rules it covers (the domain decides when it applies, ``step.native_step``, and reaches it through
the backend's ``"native_hedge"`` capability, :meth:`NumpyBackend.native_hedge`): the book's Black-Scholes-Merton
delta summed over the live options (``units x phi e^{-q tau} N(phi d1)``), the target ``-exposure``,
either every decision (Periodic, Leland, StaticHedge) or outside a no-trade band (DeltaBand), and
the trade's costs (:class:`gpu_hedge.Costs`: proportional, ticket with a minimum, impact), cash,
costs, trade count and turnover. The generic step stays the reference: results agree to rounding
(FMA contraction in the compiled loops), tested in ``tests/test_hedging_native.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._jit import njit
from ._ndtr_kernel import JIT, ndtr_from_exp

#: no FMA contraction: the trade and ledger arithmetic rounds as the NumPy step does
_PLAIN = {"error_model": "numpy", "cache": True}


@njit(nogil=True, **_PLAIN)
def _signed_d1(lnm: Any, c: float, v: float, phi: float, x: Any, w: Any) -> None:  # pragma: no cover - compiled
    """x = phi d1 = phi (lnm + c) / v and w = -x^2/2 (exponentiated by NumPy next)."""
    for i in range(x.shape[0]):
        d = phi * ((lnm[i] + c) / v)
        x[i] = d
        w[i] = (d * d) * -0.5


@njit(nogil=True, **JIT)
def _add_delta(x: Any, e: Any, scale: float, units: float, first: bool, exposure: Any) -> None:  # pragma: no cover - compiled
    """exposure (+)= units x (scale x N(x)), scale = phi e^{-q tau}."""
    for i in range(x.shape[0]):
        term = units * (scale * ndtr_from_exp(x[i], e[i]))
        exposure[i] = term if first else exposure[i] + term


@njit(nogil=True, **_PLAIN)
def _trade(  # pragma: no cover - compiled
    exposure: Any, spot: Any, holding: Any, cash: Any, paid: Any, n_trades: Any, turnover: Any,
    band: float, relative: bool, to_edge: bool, banded: bool,
    proportional: float, per_trade: float, per_share: float, min_per_trade: float, impact: float, adv: float, ticket: bool,
    new_holding: Any, new_cash: Any, new_paid: Any, new_n_trades: Any, new_turnover: Any,
) -> None:  # fmt: skip
    for i in range(spot.shape[0]):
        target = -exposure[i]
        h = holding[i]
        new = target
        if banded:
            width = band * abs(exposure[i]) if relative else band
            gap = target - h
            if abs(gap) > width:
                if to_edge:
                    new = target - (1.0 if gap > 0.0 else -1.0) * width
            else:
                new = h
        trade = new - h
        size = abs(trade)
        s = spot[i]
        notional = size * s
        cost = proportional * notional
        if ticket:
            cost = cost + (max(per_trade + per_share * size, min_per_trade) if size > 0.0 else 0.0)
        if impact != 0.0:
            cost = cost + impact * notional * math.sqrt(size / adv)
        new_holding[i] = new
        new_cash[i] = cash[i] - (trade * s + cost)
        new_paid[i] = paid[i] + cost
        new_n_trades[i] = n_trades[i] + (1.0 if size > 0.0 else 0.0)
        new_turnover[i] = turnover[i] + notional


def book_delta(spot: np.ndarray, legs: list[tuple[float, ...]]) -> np.ndarray:
    """Sum over ``legs`` of ``units x phi e^{-q tau} N(phi d1)`` at ``spot`` (a block of paths);
    a leg is ``(strike, c, v, phi, scale, units)`` with ``d1 = (ln(S/K) + c) / v`` and ``scale = phi
    e^{-q tau}``, all Python floats computed as the generic kernel does."""
    n = spot.shape[0]
    if not legs:
        return np.zeros(n)  # an empty book (every option settled) has no delta
    exposure, x, w = np.empty(n), np.empty(n), np.empty(n)
    for j, (strike, c, v, phi, scale, units) in enumerate(legs):
        lnm = np.divide(spot, strike)
        np.log(lnm, out=lnm)
        _signed_d1(lnm, c, v, phi, x, w)
        np.exp(w, out=w)
        _add_delta(x, w, scale, units, j == 0, exposure)
    return exposure


def make_step(band: tuple[float, bool, bool] | None, costs: Any) -> Callable[..., tuple[np.ndarray, ...]]:
    """One decision date for a block of paths, the rule's numbers bound once per run:
    ``step(spot, legs, holding, cash, costs, n_trades, turnover) -> (holding, cash, costs, n_trades,
    turnover)`` (new float64 arrays; the inputs are not changed): the book's delta over ``legs``
    (:func:`book_delta`; no legs, every option settled: 0) and the trades towards ``-delta`` (inside
    ``band = (width, relative, to_edge)``: hold) with ``costs`` (a ``gpu_hedge.Costs``) charged.
    A few Python operations per date only: the blocks run on threads, and the GIL-held work is what
    two threads share."""
    width, relative, to_edge = band if band is not None else (0.0, False, False)
    numbers = (
        float(width), bool(relative), bool(to_edge), band is not None,
        float(costs.proportional), float(costs.per_trade), float(costs.per_share), float(costs.min_per_trade),
        float(costs.impact), float(costs.adv), bool(costs.per_trade or costs.per_share or costs.min_per_trade),
    )  # fmt: skip
    empty = np.empty

    def step(spot: np.ndarray, legs: list[tuple[float, ...]], holding: np.ndarray, cash: np.ndarray, paid: np.ndarray,
             n_trades: np.ndarray, turnover: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
        n = spot.shape[0]
        exposure = book_delta(spot, legs)
        out = (empty(n), empty(n), empty(n), empty(n), empty(n))
        _trade(exposure, spot, holding, cash, paid, n_trades, turnover, *numbers, *out)
        return out

    return step
