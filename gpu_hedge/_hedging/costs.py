"""Transaction costs: a ticket per trade, per share, a minimum per trade, a half-spread proportional
to notional, and square-root market impact. Pure array code on any backend's namespace."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._types import Array
from ._checks import is_real

__all__ = ["Costs"]


def _check(name: str, value: float) -> None:
    if not (is_real(value) and math.isfinite(value) and value >= 0) and not (name == "adv" and value == math.inf):
        raise ValueError(f"Costs.{name} = {value!r} must be a finite number >= 0")


@dataclass(frozen=True)
class Costs:
    """Cost of trading ``q`` units at price ``S`` (currency):

    - commission ``max(per_trade + per_share |q|, min_per_trade)`` when ``q != 0`` (0 otherwise);
    - ``proportional * |q| S``: the half-spread (or slippage) as a fraction of notional;
    - ``impact * |q| S sqrt(|q| / adv)``: square-root market impact, ``adv`` the average daily volume
      in the same units as ``q`` (``impact`` of the order of the daily vol; 0 by default).

    ``Costs()`` is free trading. The same class prices trades in the underlying and in hedge options
    (for options ``S`` is the option's price times its multiplier, ``q`` the number of options).

    >>> Costs(per_trade=50.0)(None, 500.0, 20.0)
    50.0
    """

    per_trade: float = 0.0
    per_share: float = 0.0
    min_per_trade: float = 0.0
    proportional: float = 0.0
    impact: float = 0.0
    adv: float = math.inf

    def __post_init__(self) -> None:
        for name in ("per_trade", "per_share", "min_per_trade", "proportional", "impact", "adv"):
            _check(name, getattr(self, name))
        if self.impact > 0 and not self.adv > 0:
            raise ValueError("Costs.adv must be > 0 when impact is charged")

    @property
    def free(self) -> bool:
        """Whether every trade costs nothing."""
        return not (self.per_trade or self.per_share or self.min_per_trade or self.proportional or self.impact)

    def __call__(self, xp: Any, quantity: Array | float, price: Array | float) -> Array | float:
        """Cost (>= 0, currency) of trading ``quantity`` (signed) at ``price``; ``xp`` the array
        namespace (None for Python floats)."""
        if xp is None:
            a = abs(quantity)
            ticket = max(self.per_trade + self.per_share * a, self.min_per_trade) if a > 0 else 0.0
            impact = self.impact * a * price * math.sqrt(a / self.adv) if self.impact else 0.0
            return ticket + self.proportional * a * price + impact
        return self.of_size(xp, xp.abs(quantity), price)

    def of_size(self, xp: Any, size: Array, price: Array, notional: Array | None = None) -> Array:
        """:meth:`__call__` from ``size = |quantity|`` (and ``notional = size x price`` when the caller
        has it), so a loop that needs |trade| anyway computes it once."""
        a = size
        if notional is None:
            notional = a * price
        cost = self.proportional * notional if self.proportional else xp.zeros_like(notional)
        if self.per_trade or self.per_share or self.min_per_trade:
            ticket = xp.maximum(self.per_trade + self.per_share * a, self.min_per_trade)
            cost = cost + xp.where(a > 0, ticket, 0.0)
        if self.impact:
            cost = cost + self.impact * notional * xp.sqrt(a / self.adv)
        return cost
