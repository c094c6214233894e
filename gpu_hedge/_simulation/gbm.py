"""Exact log-normal steps of geometric Brownian motion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .._types import Array
from .models import GBM


class LogNormalStep:
    """Base of the steps whose log-spot move is Gaussian in the first shock given the others:
    log S' - log S = center + scale z[0], ``(center, scale) = log_step(xp, special, z)``. State
    ``(spot,)``. Subclasses are frozen dataclasses with ``model`` and ``dt`` and define ``log_step``
    (which is also what the Monte Carlo barrier conditioning uses)."""

    model: Any
    dt: float

    def log_step(self, xp: Any, special: Any, z: Array) -> tuple[Any, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def init(self, xp: Any, n_paths: int, dtype: Any) -> tuple[Array, ...]:
        return (xp.full((n_paths,), self.model.spot, dtype=dtype),)

    def advance(self, xp: Any, special: Any, state: tuple[Array, ...], z: Array) -> tuple[Array, ...]:
        (spot,) = state
        center, scale = self.log_step(xp, special, z)
        return (spot * xp.exp(center + scale * z[0]),)

    @staticmethod
    def observe(xp: Any, state: tuple[Array, ...]) -> tuple[Array, None]:
        return state[0], None


@dataclass(frozen=True)
class GBMStep(LogNormalStep):
    """One exact step of length ``dt`` (years): S' = S exp((mu - vol^2 / 2) dt + vol sqrt(dt) Z),
    mu = ``model.mu``. State ``(spot,)``; shocks ``z[0]`` = Z."""

    model: GBM
    dt: float
    n_normals: ClassVar[int] = 1

    def log_step(self, xp: Any, special: Any, z: Array) -> tuple[Any, Any]:
        """``(center, scale)`` with log S' - log S = center + scale * z[0] (center: the drift; scale: vol sqrt(dt))."""
        m, dt = self.model, self.dt
        return (m.mu - 0.5 * m.vol**2) * dt, m.vol * math.sqrt(dt)
