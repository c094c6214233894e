"""Market models for path simulation: frozen dataclasses of parameters; the maths lives in functions.

Units as everywhere in gpu_hedge: time in years, rates, yields and vols as decimals, continuously
compounded. Parameters are Python floats (one market per model instance).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


def _check(name: str, value: float, *, positive: bool = False, nonneg: bool = False) -> None:
    # bools and strings are not numbers here either (True is not a spot of 1.0)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {type(value).__name__} {value!r:.60}")
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value!r} must be finite")
    if positive and not value > 0:
        raise ValueError(f"{name} = {value!r} must be > 0")
    if nonneg and not value >= 0:
        raise ValueError(f"{name} = {value!r} must be >= 0")


@dataclass(frozen=True)
class GBM:
    """Geometric Brownian motion: dS/S = mu dt + vol dW, with mu = ``drift`` (real-world) or, when
    ``drift`` is None, the risk-neutral ``rate - div``. Simulated with exact log-normal steps."""

    spot: float
    vol: float
    rate: float = 0.0
    div: float = 0.0
    drift: float | None = None

    def __post_init__(self) -> None:
        _check("spot", self.spot, positive=True)
        _check("vol", self.vol, nonneg=True)
        _check("rate", self.rate)
        _check("div", self.div)
        if self.drift is not None:
            _check("drift", self.drift)

    @property
    def mu(self) -> float:
        """Drift of the spot per year: ``drift`` if given, else ``rate - div``."""
        return self.rate - self.div if self.drift is None else self.drift


@dataclass(frozen=True)
class Heston:
    """Heston stochastic volatility (risk-neutral): dS/S = (rate - div) dt + sqrt(v) dW1,
    dv = kappa (theta - v) dt + xi sqrt(v) dW2, d<W1, W2> = rho dt. ``v0`` and ``theta`` are
    variances (vol squared); Feller's condition 2 kappa theta >= xi^2 is NOT required."""

    spot: float
    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    rate: float = 0.0
    div: float = 0.0

    def __post_init__(self) -> None:
        _check("spot", self.spot, positive=True)
        _check("v0", self.v0, nonneg=True)
        _check("kappa", self.kappa, positive=True)
        _check("theta", self.theta, nonneg=True)
        _check("xi", self.xi, positive=True)
        _check("rho", self.rho)
        if not -1.0 <= self.rho <= 1.0:
            raise ValueError(f"rho = {self.rho!r} must lie in [-1, 1]")
        _check("rate", self.rate)
        _check("div", self.div)

    @property
    def feller(self) -> bool:
        """Whether 2 kappa theta >= xi^2 (the variance stays away from zero)."""
        return 2.0 * self.kappa * self.theta >= self.xi**2


@dataclass(frozen=True)
class Merton:
    """Merton jump-diffusion (risk-neutral): GBM with log-normal jumps. Jumps arrive at
    ``jump_intensity`` per year; the log of a jump factor J is normal with mean ``jump_mean`` and
    standard deviation ``jump_std``. The drift is compensated, rate - div - intensity * (E[J] - 1),
    so the discounted spot (with dividends) is a martingale."""

    spot: float
    vol: float
    jump_intensity: float
    jump_mean: float
    jump_std: float
    rate: float = 0.0
    div: float = 0.0

    def __post_init__(self) -> None:
        _check("spot", self.spot, positive=True)
        _check("vol", self.vol, nonneg=True)
        _check("jump_intensity", self.jump_intensity, nonneg=True)
        _check("jump_mean", self.jump_mean)
        _check("jump_std", self.jump_std, nonneg=True)
        _check("rate", self.rate)
        _check("div", self.div)

    @property
    def compensator(self) -> float:
        """E[J] - 1 = exp(jump_mean + jump_std^2 / 2) - 1."""
        return math.expm1(self.jump_mean + 0.5 * self.jump_std**2)


Model = GBM | Heston | Merton
