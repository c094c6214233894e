"""Exact steps of Merton's jump-diffusion: a GBM step times a compound-Poisson log-normal jump."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import scipy.special as sc

from .._types import Array
from .gbm import LogNormalStep
from .models import Merton

#: Poisson counts stop where P(N > n) falls below this (far below any Monte Carlo error).
POISSON_TAIL = 1e-17


@cache
def poisson_survival(mean: float) -> tuple[float, ...]:
    """``(P(N > 0), P(N > 1), ...)`` for N ~ Poisson(``mean``), up to the first below :data:`POISSON_TAIL`."""
    out: list[float] = []
    n = 0
    while mean > 0:
        s = float(sc.pdtrc(n, mean))
        if s < POISSON_TAIL:
            break
        out.append(s)
        n += 1
    return tuple(out)


@dataclass(frozen=True)
class MertonStep(LogNormalStep):
    """One exact step of length ``dt`` (years):

    log S' = log S + (rate - div - intensity k - vol^2 / 2) dt + vol sqrt(dt) Z1 + N jump_mean
    + sqrt(N) jump_std Z2, with k = ``model.compensator`` and N ~ Poisson(intensity dt) by inversion,
    N = #{n : 1 - U < P(N > n)}, U = ndtr(Z3) (so the count is counter-based like every shock).
    State ``(spot,)``; shocks ``z`` = (Z1, Z2, Z3).
    """

    model: Merton
    dt: float
    n_normals: ClassVar[int] = 3

    def constants(self) -> tuple[float, ...]:
        """The step's numbers, as Python floats: ``(drift, scale, jump_mean, jump_std, P(N > 0),
        P(N > 1), ...)`` with drift the compensated log drift over dt and scale = vol sqrt(dt)."""
        m, dt = self.model, self.dt
        drift = (m.rate - m.div - m.jump_intensity * m.compensator - 0.5 * m.vol**2) * dt
        return (drift, m.vol * math.sqrt(dt), m.jump_mean, m.jump_std, *poisson_survival(m.jump_intensity * dt))

    @property
    def native(self) -> tuple[str, tuple[float, ...]]:
        """The name under which a backend may run this step natively (``Backend.elementwise``)."""
        return ("merton", self.constants())

    def log_step(self, xp: Any, special: Any, z: Array) -> tuple[Array, Any]:
        """``(center, scale)`` with log S' - log S = center + scale * z[0]: given the jumps (drawn from
        z[1], z[2]) the step is Gaussian in z[0]; center = drift + log of the jumps, scale = vol sqrt(dt)."""
        drift, scale, jump_mean, jump_std, *survival = self.constants()
        tail = special.ndtr(-z[2])  # 1 - U, exact in the far tail
        jumps = xp.zeros_like(z[2])
        for level in survival:
            jumps = jumps + xp.astype(tail < level, z.dtype)
        log_jump = jumps * jump_mean + xp.sqrt(jumps) * jump_std * z[1]
        return drift + log_jump, scale
