"""The per-path state of a hedging run: explicit immutable data, replaced date by date.

A :class:`HedgeState` is a NamedTuple of per-path arrays (shape ``(n_paths,)``, the run's dtype), so
a date's update is a new value (``state._replace(cash=...)``), never a write into the old one; being
a tuple it is also a pytree, the carry of a compiled :meth:`Backend.scan` as it is. Units: shares
(``holding``), hedge options held (``hedge_units``), currency (``cash``, ``costs``, ``turnover``,
``unhedged``, ``premium``), counts as floats (``n_trades``, ``limited``).

``alive`` is None unless the book holds an American option; then it is ``(n_paths, n_options)``
in the run's dtype, 1 where option j has not been exercised (or assigned) on that path, 0 from the
date it was (see :func:`gpu_hedge._hedging.step.exercise`). European options keep 1 throughout (an
option settled at its expiry leaves the live set instead).
"""

from __future__ import annotations

from typing import NamedTuple

from .._types import Array

__all__ = ["STATE", "HedgeState", "opened"]


class HedgeState(NamedTuple):
    """Per-path running arrays of a hedging run (see the module notes for units)."""

    holding: Array  # shares of the underlying held after the date's trade
    hedge_units: Array  # hedge options held (DeltaGamma / DeltaVega), 0 otherwise
    cash: Array  # the cash account (premium, trades, costs, interest, dividends, settlements)
    costs: Array  # transaction costs paid so far
    n_trades: Array  # trades in the underlying so far
    turnover: Array  # traded notional in the underlying so far
    limited: Array  # dates where max_position cut a trade
    unhedged: Array  # the same book's cash with no hedge
    premium: Array  # the book's value at t_0 (positive = the book cost money)
    alive: Array | None = None  # (n_paths, n_options) 1 / 0: not yet exercised; None: no American option


#: the per-path running arrays a decision date updates, in this order (the first fields of HedgeState)
STATE = HedgeState._fields[:7]


def opened(value0: Array, zeros: Array, alive: Array | None = None) -> HedgeState:
    """The state at t_0, before the first decision: the book bought at ``value0`` (per path,
    currency), nothing held, nothing paid; ``alive``: every option alive (American books), else None."""
    return HedgeState(
        holding=zeros, hedge_units=zeros, cash=-value0, costs=zeros, n_trades=zeros, turnover=zeros, limited=zeros,
        unhedged=-value0, premium=value0, alive=alive,
    )  # fmt: skip
