"""The per-element arithmetic of the generalised Black formula and of the scenario ladder: the one
definition every fast path compiles.

Scalar functions of floats, regular region (expiry, vol and strike > 0), ``bsm`` (``b = r - q``,
spot with yield) or ``black76`` (``forward=True``: ``b = 0``, ``S`` is the forward); ``phi`` is +1
(call) or -1 (put); theta per year, vega and rho per 1.00. Same formulas and order of operations as
the generic array kernels (``gpu_hedge._pricing.black_scholes.black_kernel(regular_only=True)`` and
``gpu_hedge._book.risk.ladder_kernel``, the reference, which JAX runs). The transcendentals are
split off: each function takes the exponentials it needs precomputed (``e1 = exp(-d1^2 / 2)``,
``D = exp(-r T)`` ...) and the ``*_exponents`` functions return their arguments, so

- the NumPy backend's Numba passes (:mod:`cpu_fallback._black`) call them between NumPy's
  vectorised ``log`` / ``exp`` over whole chunks (Numba inlines them: ``inline="always"``);
- the CuPy backend's CUDA kernels (:mod:`gpu_hedge._backends._cuda_black`) compile the very same
  Python functions (their ``.py_func``) as CUDA device functions and feed them ``math.exp``.

The normal CDF is :func:`cpu_fallback._ndtr_kernel.ndtr_from_exp` (N(x) from ``exp(-x^2 / 2)``),
shared the same way.
"""

from __future__ import annotations

import math

from ._jit import njit
from ._ndtr_kernel import JIT, ndtr_from_exp

#: the outputs of :func:`black_element`, in this order
NAMES = ("price", "delta", "gamma", "vega", "theta", "rho")
#: the models these functions know: ``bsm`` (b = r - q) and ``black76`` (b = 0, ``forward=True``)
MODELS = ("bsm", "black76")
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

_INLINE = {**JIT, "inline": "always"}


@njit(**_INLINE)
def black_exponents(lnm: float, T: float, vol: float, r: float, q: float, forward: bool) -> tuple[float, float, float, float, float, float]:
    """``(sqrt(T), d1, -d1^2/2, -d2^2/2, -r T, -q T)`` from ``lnm = log(S / K)`` (black76: the last
    is ``-r T`` again); the four exponents go through ``exp`` before :func:`black_element`."""
    st = math.sqrt(T)
    v = vol * st
    b = 0.0 if forward else r - q
    d1 = (lnm + (b + 0.5 * vol * vol) * T) / v
    d2 = d1 - v
    wD = -r * T
    return st, d1, -0.5 * d1 * d1, -0.5 * d2 * d2, wD, wD if forward else -q * T


@njit(**_INLINE)
def black_element(
    S: float, K: float, T: float, vol: float, r: float, q: float, phi: float, forward: bool,
    sqrtT: float, d1: float, e1: float, e2: float, D: float, Dq: float,
) -> tuple[float, float, float, float, float, float]:  # fmt: skip
    """``(price, delta, gamma, vega, theta, rho)`` (theta per year, vega and rho per 1.00) given
    :func:`black_exponents`' ``sqrtT`` and ``d1`` and the exponentials of its exponents:
    ``e1 = exp(-d1^2/2)``, ``e2 = exp(-d2^2/2)``, ``D = exp(-r T)``, ``Dq = exp(-q T)``."""
    v = vol * sqrtT
    b = 0.0 if forward else r - q
    N1 = ndtr_from_exp(phi * d1, e1)
    N2 = ndtr_from_exp(phi * (d1 - v), e2)
    n1 = e1 * INV_SQRT_2PI  # the density at d1
    SDq = S * Dq
    A = phi * SDq * N1  # the two legs of the price
    B = phi * (K * D) * N2
    price = max(A - B, 0.0)
    delta = phi * Dq * N1
    gamma = Dq * n1 / (S * v)
    vega = SDq * n1 * sqrtT
    theta = (r - b) * A - r * B - SDq * n1 * vol / (2.0 * sqrtT)
    rho = -T * price if forward else T * B
    return price, delta, gamma, vega, theta, rho


@njit(**_INLINE)
def ladder_shock(S: float, lnsk: float, vol: float, ds: float, log1p_ds: float, dv: float) -> tuple[float, float, float]:
    """The shocked ``(spot, log(spot / K), vol)`` of scenario ``(ds, dv)``: ``S (1 + ds)``,
    ``lnsk + log1p(ds)`` (``log1p_ds`` given: ``math.log1p``, as the generic kernel), ``max(vol + dv, 0)``."""
    return S * (1.0 + ds), lnsk + log1p_ds, max(vol + dv, 0.0)


@njit(**_INLINE)
def ladder_exponents(lm: float, v: float, b: float, T: float, sqrtT: float) -> tuple[float, float]:
    """``(-d1^2/2, -d2^2/2)`` of a ladder price at log-moneyness ``lm`` and vol ``v`` (``b``: the
    carry, ``r - q`` or 0). A total deviation ``v sqrt(T) <= 0`` gives a placeholder (unused)."""
    sv = v * sqrtT
    d1 = (lm + (b + 0.5 * v * v) * T) / (sv if sv > 0.0 else 1.0)
    d2 = d1 - sv
    return -0.5 * d1 * d1, -0.5 * d2 * d2


@njit(**_INLINE)
def ladder_price(
    s: float, lm: float, v: float, b: float, T: float, sqrtT: float, k_disc: float, s_disc: float, phi: float,
    e1: float, e2: float,
) -> float:  # fmt: skip
    """The Black price at spot ``s`` (``lm = log(s / K)``) and vol ``v``, ``k_disc = K exp(-r T)``,
    ``s_disc = exp(-q T)`` (black76: ``exp(-r T)``), ``e1``/``e2`` the exponentials of
    :func:`ladder_exponents`; a total deviation ``v sqrt(T) <= 0`` gives the discounted intrinsic value."""
    sv = v * sqrtT
    if sv > 0.0:
        d1 = (lm + (b + 0.5 * v * v) * T) / sv
        N1 = ndtr_from_exp(phi * d1, e1)
        N2 = ndtr_from_exp(phi * (d1 - sv), e2)
        return max(phi * (s * s_disc * N1 - k_disc * N2), 0.0)
    return max(phi * (s * s_disc - k_disc), 0.0)
