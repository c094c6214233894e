"""Smile formulas: raw SVI, SSVI and Durrleman's butterfly function, as pure array functions.

Conventions: log-moneyness ``k = ln(K / F)`` with ``F`` the forward of the slice's expiry; total
implied variance ``w = vol**2 * T`` with ``T`` in years. Every function works on NumPy, JAX or CuPy
arrays (``xp`` is inferred from the arguments when not given) and broadcasts its inputs.

- Raw SVI (Gatheral 2004): ``w(k) = a + b (rho (k - m) + sqrt((k - m)**2 + sigma**2))``.
- SSVI (Gatheral and Jacquier 2014): ``w(k, theta) = theta / 2 (1 + rho phi k + sqrt((phi k + rho)**2
  + 1 - rho**2))`` with the power-law ``phi(theta) = eta / (theta**gamma (1 + theta)**(1 - gamma))``.
- Durrleman's condition: a slice is free of butterfly arbitrage iff
  ``g(k) = (1 - k w' / (2 w))**2 - w'**2 / 4 (1 / w + 1 / 4) + w'' / 2 >= 0`` for all ``k``
  (and ``d_+`` tends to minus infinity, which holds when Lee's wing bound ``b (1 + |rho|) <= 2``
  holds with ``w`` growing at most linearly).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "durrleman_g",
    "durrleman_g_from_w",
    "raw_svi_derivatives",
    "raw_svi_total_variance",
    "ssvi_derivatives",
    "ssvi_phi",
    "ssvi_total_variance",
]


def namespace(*arrays: Any) -> Any:
    """The array namespace of the arguments: their backend's (JAX, CuPy) when one is a device array, else NumPy."""
    from gpu_hedge._backends import device_array_kind, get_backend

    for x in arrays:
        kind = device_array_kind(x)
        if kind is not None:
            return get_backend(kind).xp
    return np


def raw_svi_total_variance(k: Any, a: Any, b: Any, rho: Any, m: Any, sigma: Any, *, xp: Any = None) -> Any:
    """Raw SVI total variance ``w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2))``."""
    xp = xp or namespace(k, a, b, rho, m, sigma)
    x = k - m
    return a + b * (rho * x + xp.sqrt(x * x + sigma * sigma))


def raw_svi_derivatives(k: Any, a: Any, b: Any, rho: Any, m: Any, sigma: Any, *, xp: Any = None) -> tuple[Any, Any, Any]:
    """``(w, dw/dk, d2w/dk2)`` of raw SVI, analytic: ``w' = b (rho + x / s)``, ``w'' = b sigma^2 / s^3``
    with ``x = k - m``, ``s = sqrt(x^2 + sigma^2)``."""
    xp = xp or namespace(k, a, b, rho, m, sigma)
    x = k - m
    s = xp.sqrt(x * x + sigma * sigma)
    w = a + b * (rho * x + s)
    return w, b * (rho + x / s), b * sigma * sigma / (s * s * s)


def durrleman_g_from_w(k: Any, w: Any, w1: Any, w2: Any) -> Any:
    """Durrleman's ``g(k) = (1 - k w'/(2w))^2 - (w'^2/4)(1/w + 1/4) + w''/2`` from ``w, w', w''``."""
    u = 1.0 - k * w1 / (2.0 * w)
    return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


def durrleman_g(k: Any, a: Any, b: Any, rho: Any, m: Any, sigma: Any, *, xp: Any = None) -> Any:
    """Durrleman's butterfly function ``g(k)`` of a raw SVI slice (``g >= 0`` everywhere: no butterfly arbitrage)."""
    w, w1, w2 = raw_svi_derivatives(k, a, b, rho, m, sigma, xp=xp)
    return durrleman_g_from_w(k, w, w1, w2)


def ssvi_phi(theta: Any, eta: Any, gamma: Any, *, xp: Any = None) -> Any:
    """Power-law SSVI curvature ``phi(theta) = eta / (theta^gamma (1 + theta)^(1 - gamma))``."""
    xp = xp or namespace(theta, eta, gamma)
    return eta * xp.exp(-gamma * xp.log(theta) + (gamma - 1.0) * xp.log1p(theta))


def ssvi_total_variance(k: Any, theta: Any, rho: Any, eta: Any, gamma: Any, *, xp: Any = None) -> Any:
    """SSVI total variance ``theta/2 (1 + rho phi k + sqrt((phi k + rho)^2 + 1 - rho^2))``; ``theta`` is the ATM total variance."""
    xp = xp or namespace(k, theta, rho, eta, gamma)
    phi = ssvi_phi(theta, eta, gamma, xp=xp)
    z = phi * k + rho
    return 0.5 * theta * (1.0 + rho * phi * k + xp.sqrt(z * z + 1.0 - rho * rho))


def ssvi_derivatives(k: Any, theta: Any, rho: Any, eta: Any, gamma: Any, *, xp: Any = None) -> tuple[Any, Any, Any]:
    """``(w, dw/dk, d2w/dk2)`` of an SSVI slice: ``w' = theta phi / 2 (rho + z / R)``,
    ``w'' = theta phi^2 (1 - rho^2) / (2 R^3)`` with ``z = phi k + rho``, ``R = sqrt(z^2 + 1 - rho^2)``."""
    xp = xp or namespace(k, theta, rho, eta, gamma)
    phi = ssvi_phi(theta, eta, gamma, xp=xp)
    z = phi * k + rho
    r = xp.sqrt(z * z + 1.0 - rho * rho)
    w = 0.5 * theta * (1.0 + rho * phi * k + r)
    w1 = 0.5 * theta * phi * (rho + z / r)
    w2 = 0.5 * theta * phi * phi * (1.0 - rho * rho) / (r * r * r)
    return w, w1, w2
