"""Heston discretisations: Andersen's quadratic-exponential (QE) scheme and full-truncation Euler.

Both carry state ``(spot, variance)`` and take shocks ``z`` = (Z, Zv): ``Zv`` drives the variance,
``Z`` is independent of it and drives the part of the spot not explained by the variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from .._types import Array
from .models import Heston

#: Andersen's switching level between the quadratic and the exponential branch.
PSI_C = 1.5
#: Andersen's central weights for integrating the variance over a step.
GAMMA1 = GAMMA2 = 0.5


@dataclass(frozen=True)
class _HestonStep:
    """What both schemes share: the model, the step length (years) and the (spot, v0) start."""

    model: Heston
    dt: float
    n_normals: ClassVar[int] = 2

    def init(self, xp: Any, n_paths: int, dtype: Any) -> tuple[Array, ...]:
        m = self.model
        return xp.full((n_paths,), m.spot, dtype=dtype), xp.full((n_paths,), m.v0, dtype=dtype)


@dataclass(frozen=True)
class HestonQEStep(_HestonStep):
    """One QE step of length ``dt`` (years): L. Andersen, "Simple and efficient simulation of the
    Heston stochastic volatility model", J. Comp. Finance 11(3), 2008, with psi_c = 1.5,
    gamma1 = gamma2 = 1/2 and the martingale correction of his section 4.3.3.

    Variance: with m, s^2 the conditional mean and variance of v(t + dt) and psi = s^2 / m^2,
    V = a (b + Zv)^2 if psi <= psi_c, else the exponential branch by inversion of U = ndtr(Zv).
    Spot: log S' = log S + (rate - div) dt + K0* + K1 v + K2 V + sqrt(K3 v + K4 V) Z, where K0* makes
    E[S' | S, v] = S exp((rate - div) dt) exactly; where K0* does not exist (A >= 1 / (2a) or
    A >= beta, possible only for rho > 0 with large steps) the uncorrected K0 is used.
    """

    def constants(self) -> tuple[float, ...]:
        """The step's numbers, as Python floats: ``(decay, theta, var1, var2, PSI_C, A, K0, K1, K2,
        K3, K4, drift)`` with decay = e^(-kappa dt), the conditional variance ``v var1 + var2``,
        Andersen's A = K2 + K4 / 2 and K0 ... K4, and drift = (rate - div) dt."""
        md, dt = self.model, self.dt
        kappa, theta, xi, rho = md.kappa, md.theta, md.xi, md.rho
        decay = math.exp(-kappa * dt)
        var1 = xi**2 * decay * (1.0 - decay) / kappa
        var2 = theta * xi**2 * (1.0 - decay) ** 2 / (2.0 * kappa)
        k0 = -rho * kappa * theta * dt / xi
        k1 = GAMMA1 * dt * (kappa * rho / xi - 0.5) - rho / xi
        k2 = GAMMA2 * dt * (kappa * rho / xi - 0.5) + rho / xi
        k3 = GAMMA1 * dt * (1.0 - rho**2)
        k4 = GAMMA2 * dt * (1.0 - rho**2)
        return decay, theta, var1, var2, PSI_C, k2 + 0.5 * k4, k0, k1, k2, k3, k4, (md.rate - md.div) * dt

    @property
    def native(self) -> tuple[str, tuple[float, ...]]:
        """The name under which a backend may run this step natively (``Backend.elementwise``)."""
        return ("heston_qe", self.constants())

    def advance(self, xp: Any, special: Any, state: tuple[Array, ...], z: Array) -> tuple[Array, ...]:
        decay, theta, var1, var2, _, big_a, k0, k1, k2, k3, k4, drift = self.constants()
        spot, v = state
        mean = theta + (v - theta) * decay
        var = v * var1 + var2
        alive = mean > 0  # mean == 0 only when v == theta == 0: the variance stays at 0
        mean_s = xp.where(alive, mean, 1.0)
        psi = xp.where(alive, var / mean_s**2, PSI_C)
        quadratic = psi <= PSI_C

        # Quadratic branch, on psi clipped to where it is defined.
        two_over_psi = 2.0 / xp.clip(psi, 1e-300, PSI_C)
        b2 = two_over_psi - 1.0 + xp.sqrt(two_over_psi) * xp.sqrt(two_over_psi - 1.0)
        a = mean_s / (1.0 + b2)
        v_quad = a * (xp.sqrt(b2) + z[1]) ** 2
        # Exponential branch, likewise: p = P(V = 0), beta the rate of the exponential part.
        psi_e = xp.maximum(psi, PSI_C)
        p = (psi_e - 1.0) / (psi_e + 1.0)
        beta = (1.0 - p) / mean_s
        tail = special.ndtr(-z[1])  # 1 - U, exact in the far tail
        v_exp = xp.where(tail < 1.0 - p, xp.log((1.0 - p) / tail) / beta, 0.0)
        v_next = xp.where(alive, xp.where(quadratic, v_quad, v_exp), 0.0)

        # log E[exp(A V(t + dt))] in each branch, where it is finite.
        arg = 1.0 - 2.0 * big_a * a
        ok_quad = arg > 0
        arg_s = xp.where(ok_quad, arg, 1.0)
        log_mgf_quad = big_a * b2 * a / arg_s - 0.5 * xp.log(arg_s)
        ok_exp = beta > big_a
        den_s = xp.where(ok_exp, beta - big_a, 1.0)
        log_mgf_exp = xp.log(p + beta * (1.0 - p) / den_s)
        log_mgf = xp.where(alive, xp.where(quadratic, log_mgf_quad, log_mgf_exp), 0.0)
        ok = xp.where(quadratic, ok_quad, ok_exp)
        k0_star = xp.where(ok, -log_mgf - (k1 + 0.5 * k3) * v, k0)

        log_step = drift + k0_star + k1 * v + k2 * v_next + xp.sqrt(k3 * v + k4 * v_next) * z[0]
        return spot * xp.exp(log_step), v_next

    @staticmethod
    def observe(xp: Any, state: tuple[Array, ...]) -> tuple[Array, Array]:
        return state


@dataclass(frozen=True)
class HestonEulerStep(_HestonStep):
    """One full-truncation Euler step of length ``dt`` (years) (Lord, Koekkoek and van Dijk 2010):
    with v+ = max(v, 0),
    v' = v + kappa (theta - v+) dt + xi sqrt(v+ dt) Zv,
    log S' = log S + (rate - div - v+ / 2) dt + sqrt(v+ dt) (rho Zv + sqrt(1 - rho^2) Z).
    The state's variance may go negative; the observed variance is its positive part.
    """

    def constants(self) -> tuple[float, ...]:
        """``(kappa, theta, xi, rho, sqrt(1 - rho^2), rate - div, dt)`` as Python floats."""
        m = self.model
        return m.kappa, m.theta, m.xi, m.rho, math.sqrt(1.0 - m.rho**2), m.rate - m.div, self.dt

    @property
    def native(self) -> tuple[str, tuple[float, ...]]:
        """The name under which a backend may run this step natively (``Backend.elementwise``)."""
        return ("heston_euler", self.constants())

    def advance(self, xp: Any, special: Any, state: tuple[Array, ...], z: Array) -> tuple[Array, ...]:
        kappa, theta, xi, rho, rho_bar, carry, dt = self.constants()
        spot, v = state
        v_pos = xp.maximum(v, 0.0)
        root = xp.sqrt(v_pos * dt)
        v_next = v + kappa * (theta - v_pos) * dt + xi * root * z[1]
        shock = rho * z[1] + rho_bar * z[0]
        return spot * xp.exp((carry - 0.5 * v_pos) * dt + root * shock), v_next

    @staticmethod
    def observe(xp: Any, state: tuple[Array, ...]) -> tuple[Array, Array]:
        return state[0], xp.maximum(state[1], 0.0)
