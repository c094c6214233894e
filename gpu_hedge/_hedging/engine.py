"""The book's :class:`Option` and the standalone decision step :func:`rebalance` (the trades a strategy
sends now for given exposures and holdings, and their costs), vectorised on any backend.

The hedging run itself (ledger, drivers) is :mod:`gpu_hedge._hedging.loop` and the modules it names;
this module's ``_round_and_limit`` (lot rounding and position cap) is shared by both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backends import get_backend, to_numpy
from .._types import Array
from ._checks import is_real
from .costs import Costs
from .strategies import Context, Strategy

__all__ = ["EXERCISES", "Option", "has_american", "per_date", "rebalance"]

#: the exercise styles an :class:`Option` may have
EXERCISES = ("european", "american")


@dataclass(frozen=True)
class Option:
    """An option in the book: ``strike``, ``expiry`` (years, on the same clock as the engine's
    ``times``), ``call``, signed ``quantity`` (negative = short) and ``multiplier`` (shares per
    option). ``vol`` overrides the engine's pricing vol for this option. ``exercise``:
    ``"european"`` (the default) or ``"american"``: priced and hedged with American Greeks
    (:func:`gpu_hedge._pricing.american_greeks.american_greeks`) and, on each path, exercised (long)
    or assigned (short) at intrinsic value on the first hedge date where immediate exercise is
    optimal for the holder (see :mod:`gpu_hedge._hedging.loop`)."""

    strike: float
    expiry: float
    call: bool = True
    quantity: float = 1.0
    multiplier: float = 1.0
    vol: float | None = None
    exercise: str = "european"

    def __post_init__(self) -> None:
        for name in ("strike", "expiry", "quantity", "multiplier"):
            v = getattr(self, name)
            if not (is_real(v) and math.isfinite(v)):
                raise ValueError(f"Option.{name} = {v!r} must be a finite number")
        if self.strike <= 0:
            raise ValueError(f"Option.strike = {self.strike!r} must be > 0")
        if self.multiplier <= 0:
            raise ValueError(f"Option.multiplier = {self.multiplier!r} must be > 0")
        if self.vol is not None and not (is_real(self.vol) and math.isfinite(self.vol) and self.vol > 0):
            raise ValueError(f"Option.vol = {self.vol!r} must be a finite number > 0")
        if not isinstance(self.call, bool | np.bool_):
            raise ValueError(f"Option.call = {self.call!r} must be True (call) or False (put)")
        if not (isinstance(self.exercise, str) and self.exercise in EXERCISES):
            raise ValueError(f"Option.exercise = {self.exercise!r} must be one of {', '.join(map(repr, EXERCISES))}")

    @property
    def american(self) -> bool:
        """Whether the option may be exercised before its expiry (``exercise="american"``)."""
        return self.exercise == "american"

    @property
    def units(self) -> float:
        """Signed shares per unit of option value: ``quantity x multiplier``."""
        return self.quantity * self.multiplier


def has_american(plan: Any) -> bool:
    """Whether a plan's book holds an American option (such plans run the generic per-date loop)."""
    return any(o.american for o in plan.options)


def per_date(plan: Any) -> bool:
    """Whether a plan runs the generic per-date loop with the package's pricers on the backend: its
    book holds an American option or its underlying pays cash dividends (``hedge(dividends=)``)."""
    return has_american(plan) or getattr(plan, "dividends", None) is not None


class Decision(tuple):
    """``(trades, costs)`` of :func:`rebalance`, with ``.limited``: where a position limit cut the trade."""

    limited: Any

    def __new__(cls, trades: Any, costs: Any, limited: Any) -> Decision:
        self = super().__new__(cls, (trades, costs))
        self.limited = limited
        return self

    @property
    def trades(self) -> Any:
        return self[0]

    @property
    def costs(self) -> Any:
        return self[1]


def _round_and_limit(xp: Any, new: Array, holding: Array, lot_size: float | None, max_position: float | None) -> tuple[Array, Array]:
    """Round the trade to whole lots (``lot_size`` None: fractional shares) and cap the position."""
    if lot_size is None and max_position is None:
        return new, False
    trade = new - holding if lot_size is None else xp.round((new - holding) / lot_size) * lot_size
    new = holding + trade
    if max_position is None:
        return new, False
    clipped = xp.clip(new, -max_position, max_position)
    # a limit never forces a trade the strategy did not ask for, only cuts one
    clipped = xp.where(trade == 0, holding, clipped)
    return clipped, clipped != new


def check_limits(lot_size: Any, max_position: Any) -> None:
    if lot_size is not None and not (is_real(lot_size) and math.isfinite(lot_size) and lot_size > 0):
        raise ValueError(f"lot_size = {lot_size!r} must be None or a finite number > 0")
    if max_position is not None and not (is_real(max_position) and math.isfinite(max_position) and max_position >= 0):
        raise ValueError(f"max_position = {max_position!r} must be None or a finite number >= 0")


def rebalance(
    exposure: Any,
    holding: Any,
    *,
    price: Any,
    strategy: Strategy,
    costs: Costs = Costs(),  # noqa: B008 - frozen, immutable default
    lot_size: float | None = 1,
    max_position: float | None = None,
    step: int = 0,
    gamma: Any = 0.0,
    tau: float = 0.0,
    rate: float = 0.0,
    backend: Any = "auto",
) -> Decision:
    """The trades to send now and what they cost, vectorised over paths or underlyings.

    ``exposure`` is the book's delta in shares (10,000 calls of delta 0.6 -> 6,000), ``holding`` the
    current hedge in shares; the strategy's target is ``-exposure``. Trades are rounded to whole
    ``lot_size`` lots (None: fractional shares); the resulting position is capped at +- ``max_position`` shares (a cap only cuts
    trades, and ``.limited`` says where it did). ``step`` (the decision index), ``gamma`` (book gamma,
    shares per unit of price), ``tau`` (years to expiry) and ``rate`` feed the strategies that use them
    (Periodic, WhalleyWilmott). Returns ``(trades, costs)`` as arrays on the backend.

    >>> from gpu_hedge import Costs, Periodic, rebalance
    >>> trades, cost = rebalance(6000.0, 0.0, price=50.0, strategy=Periodic(), costs=Costs(per_trade=50.0), backend="numpy")
    >>> float(trades), float(cost)
    (-6000.0, 50.0)
    """
    if not isinstance(strategy, Strategy):
        raise ValueError(f"strategy must be a gpu_hedge strategy (Periodic, DeltaBand, ...), got {type(strategy).__name__}")
    check_limits(lot_size, max_position)
    bk = get_backend(backend)
    xp = bk.xp
    arrays = {}
    for name, value in (("exposure", exposure), ("holding", holding), ("price", price), ("gamma", gamma)):
        a = bk.asarray(np.asarray(to_numpy(value), dtype=np.float64))
        bad = ~np.isfinite(to_numpy(a))
        if name == "price":
            bad |= to_numpy(a) <= 0
        if np.any(bad):
            i = int(np.flatnonzero(np.ravel(bad))[0])
            raise ValueError(f"{name}[{i}] = {np.ravel(to_numpy(a))[i]!r} must be finite{' and > 0' if name == 'price' else ''}")
        arrays[name] = a
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
        raise ValueError(f"rebalance inputs do not broadcast: {shapes}") from None
    h = xp.broadcast_to(arrays["holding"], shape)
    ctx = Context(step, xp.broadcast_to(arrays["exposure"], shape), h, arrays["price"], arrays["gamma"], tau, rate, costs.proportional)
    new, limited = _round_and_limit(xp, strategy.decide(xp, ctx), h, lot_size, max_position)
    trades = new - h
    if limited is False:
        limited = xp.zeros(trades.shape, dtype=xp.bool)
    return Decision(trades, costs(xp, trades, arrays["price"]), limited)
