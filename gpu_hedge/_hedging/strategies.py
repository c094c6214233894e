"""Hedging strategies: frozen dataclasses that turn the book's exposure into a new hedge holding.

Every strategy answers one question per decision date, vectorised over paths (or underlyings):
given the book's delta ``exposure`` (shares; the hedge's target is ``-exposure``) and the current
``holding``, what should the holding be now? Decisions are pure array code on any backend.

Published rules:

- Whalley & Wilmott (1997), asymptotic optimal no-trade band for proportional cost ``c`` and
  absolute risk aversion ``gamma_ra``: trade back to the nearer band edge when the hedge is more than
  ``H = (3 c S Gamma^2 e^{-r tau} / (2 gamma_ra))^(1/3)`` shares from the delta target
  (:func:`whalley_wilmott_band`).
- Leland (1985): hedge every ``dt`` at the cost-adjusted vol ``sigma^2 (1 + s A)`` with the Leland
  number ``A = sqrt(2 / pi) k / (sigma sqrt(dt))``, ``k = 2 c`` the round-trip proportional cost, and
  ``s = +1`` for a short option position, ``-1`` for a long one (:func:`leland_vol`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._types import Array
from ._checks import is_real

__all__ = [
    "DeltaBand",
    "DeltaGamma",
    "DeltaVega",
    "Leland",
    "NoHedge",
    "Periodic",
    "StaticHedge",
    "Strategy",
    "WhalleyWilmott",
    "leland_vol",
    "whalley_wilmott_band",
]


class Context(NamedTuple):
    """What a decision may look at, arrays of shape (n,) or scalars: ``step`` (0-based decision
    index), ``exposure`` (book delta, shares, hedge options included), ``holding`` (shares held),
    ``price`` (underlying), ``gamma`` (book gamma, shares per unit of price), ``tau`` (years to the
    book's last expiry), ``rate``, ``proportional`` (the underlying's proportional cost)."""

    step: Any
    exposure: Array
    holding: Array
    price: Array
    gamma: Array | float
    tau: Any
    rate: float
    proportional: float


def whalley_wilmott_band(
    gamma: Any, price: Any, proportional: float, risk_aversion: float, rate: float = 0.0, tau: Any = 0.0, xp: Any = None
) -> Any:
    """Half-width (shares) of Whalley & Wilmott's no-trade band around the delta target:
    ``(3 c S Gamma^2 e^{-r tau} / (2 risk_aversion))^(1/3)``, ``Gamma`` the book's gamma in shares
    per unit of price, ``c`` the proportional cost, ``risk_aversion`` absolute (per currency unit)."""
    if xp is None:
        return (1.5 * proportional * price * gamma**2 * math.exp(-rate * tau) / risk_aversion) ** (1.0 / 3.0)
    return (1.5 * proportional * price * gamma**2 * xp.exp(-rate * tau) / risk_aversion) ** (1.0 / 3.0)


def leland_vol(vol: float, proportional: float, dt: float, short: bool = True) -> float:
    """Leland's (1985) cost-adjusted vol for hedging every ``dt`` years with one-way proportional cost
    ``proportional`` (round trip ``k = 2 c``): ``vol sqrt(1 +- sqrt(2/pi) k / (vol sqrt(dt)))``,
    ``+`` for a short option position. Raises if a long position's adjusted variance is <= 0."""
    if not (vol > 0 and dt > 0 and proportional >= 0):
        raise ValueError(f"leland_vol needs vol > 0, dt > 0 and proportional >= 0 (got {vol}, {dt}, {proportional})")
    a = math.sqrt(2.0 / math.pi) * 2.0 * proportional / (vol * math.sqrt(dt))
    var = vol**2 * (1.0 + (a if short else -a))
    if var <= 0:
        raise ValueError(f"Leland number {a:.3g} >= 1: a long option cannot be hedged this often at this cost (adjusted variance <= 0)")
    return math.sqrt(var)


def _neutral_if(xp: Any, cond: Any, ctx: Context) -> Any:
    """Back to delta-neutral where ``cond``, else hold; a Python/NumPy bool (the step known on the
    host) decides without a pass over the paths."""
    if isinstance(cond, bool | np.bool_):
        return -ctx.exposure if cond else ctx.holding
    return xp.where(cond, -ctx.exposure, ctx.holding)


class Strategy:
    """Base of the strategies: ``decide(xp, ctx) -> new holding`` (shares, before lot rounding)."""

    #: a second listed option that neutralises gamma or vega first (DeltaGamma, DeltaVega)
    hedge_option: Any = None
    #: which Greek the hedge option neutralises ("gamma" or "vega")
    neutralise: str | None = None

    def decide(self, xp: Any, ctx: Context) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def trades_at(self, xp: Any, step: Any) -> Any:
        """Whether the option leg (DeltaGamma/DeltaVega) rebalances at ``step``."""
        return True


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else is_real(value) and math.isfinite(value)
    if not ok or not value > 0:
        raise ValueError(f"{name} = {value!r} must be {'an integer' if integer else 'a finite number'} > 0")


@dataclass(frozen=True)
class NoHedge(Strategy):
    """Never trade: the unhedged book."""

    def decide(self, xp: Any, ctx: Context) -> Array:
        return ctx.holding


@dataclass(frozen=True)
class StaticHedge(Strategy):
    """Delta-hedge once at inception, then hold."""

    def decide(self, xp: Any, ctx: Context) -> Array:
        return _neutral_if(xp, ctx.step == 0, ctx)


@dataclass(frozen=True)
class Periodic(Strategy):
    """Back to delta-neutral every ``every`` decision dates (``every=1``: every step)."""

    every: int = 1

    def __post_init__(self) -> None:
        _check_positive("Periodic.every", self.every, integer=True)

    def decide(self, xp: Any, ctx: Context) -> Array:
        return _neutral_if(xp, ctx.step % self.every == 0, ctx)


@dataclass(frozen=True)
class DeltaBand(Strategy):
    """Trade when the hedge is more than ``width`` shares from delta-neutral (``relative=True``:
    ``width`` x |exposure|), back to the target, or with ``to_edge=True`` only to the band's edge."""

    width: float
    relative: bool = False
    to_edge: bool = False

    def __post_init__(self) -> None:
        if not (is_real(self.width) and math.isfinite(self.width) and self.width >= 0):
            raise ValueError(f"DeltaBand.width = {self.width!r} must be a finite number >= 0")

    def decide(self, xp: Any, ctx: Context) -> Array:
        target = -ctx.exposure
        band = self.width * xp.abs(ctx.exposure) if self.relative else self.width
        return _band_decision(xp, target, ctx.holding, band, self.to_edge)


def _band_decision(xp: Any, target: Array, holding: Array, band: Any, to_edge: bool) -> Array:
    gap = target - holding
    outside = xp.abs(gap) > band
    new = target - xp.sign(gap) * band if to_edge else target
    return xp.where(outside, new, holding)


@dataclass(frozen=True)
class WhalleyWilmott(Strategy):
    """Whalley & Wilmott's (1997) no-trade band (see :func:`whalley_wilmott_band`), trading to the
    band's edge; ``risk_aversion`` is the absolute risk aversion (per currency unit)."""

    risk_aversion: float

    def __post_init__(self) -> None:
        _check_positive("WhalleyWilmott.risk_aversion", self.risk_aversion)

    def decide(self, xp: Any, ctx: Context) -> Array:
        band = whalley_wilmott_band(ctx.gamma, ctx.price, ctx.proportional, self.risk_aversion, ctx.rate, ctx.tau, xp=xp)
        return _band_decision(xp, -ctx.exposure, ctx.holding, band, True)


@dataclass(frozen=True)
class Leland(Strategy):
    """Delta-hedge every ``every`` steps with deltas at Leland's cost-adjusted vol
    (:func:`leland_vol`; the engine adjusts each option's vol by the sign of its quantity)."""

    every: int = 1

    def __post_init__(self) -> None:
        _check_positive("Leland.every", self.every, integer=True)

    def decide(self, xp: Any, ctx: Context) -> Array:
        return _neutral_if(xp, ctx.step % self.every == 0, ctx)


@dataclass(frozen=True)
class DeltaGamma(Strategy):
    """Every ``every`` steps: buy or sell ``hedge_option`` (a :class:`gpu_hedge.Option`; its
    quantity is ignored) to neutralise the book's gamma, then the underlying to neutralise delta."""

    hedge_option: Any
    every: int = 1
    neutralise = "gamma"

    def __post_init__(self) -> None:
        _check_positive("DeltaGamma.every", self.every, integer=True)

    def trades_at(self, xp: Any, step: Any) -> Any:
        return step % self.every == 0

    def decide(self, xp: Any, ctx: Context) -> Array:
        return _neutral_if(xp, ctx.step % self.every == 0, ctx)


@dataclass(frozen=True)
class DeltaVega(DeltaGamma):
    """As :class:`DeltaGamma`, neutralising vega instead of gamma."""

    neutralise = "vega"
