"""Semi-analytic reference prices of European options under the simulation models (NumPy, float64).

These are the yardsticks Monte Carlo prices are judged against: Black-Scholes-Merton for
:class:`GBM`, Fourier inversion of the characteristic function for :class:`Heston`, and Merton's
Poisson series for :class:`Merton`. Units as everywhere: ``expiry`` in years, rates and vols as
decimals, continuously compounded.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import pdtrc, xlogy

from .._backends import host_backend
from .._pricing._inputs import _first_bad, host_numbers, to_phi
from .._pricing.api import price as bs_price
from .._types import ArrayLike
from .models import GBM, Heston, Merton

#: Gauss-Legendre points per panel of the Heston quadrature.
_GL_ORDER = 16
#: The Heston integrand is cut where its tail integral is below this, relative to sqrt(F K).
_TAIL_TOL = 1e-17
#: Most panels one expiry may use (a cap for degenerate |rho| = 1 models, whose integrand decays slowly).
_MAX_PANELS = 20_000
#: Merton's series stops when the Poisson tail probability is below this.
_POISSON_TAIL = 1e-16
#: Elements of one (nodes x strikes) block, to bound memory for large strike arrays.
_BLOCK = 1 << 22


def _contract(model: Any, strike: ArrayLike, expiry: ArrayLike, call: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """Strike and expiry as broadcast float64 arrays (checked finite and >= 0), and call as +1 / -1."""
    name = type(model).__name__
    arrays = []
    for label, x in (("strike", strike), ("expiry", expiry)):
        x = host_numbers(label, x).astype(np.float64, copy=False)  # no bools, strings or dates; timedelta: ACT/365
        bad = ~(x >= 0.0)  # NaN fails the comparison
        if bad.any():
            raise _first_bad(label, x, bad, f"{label} must be finite and >= 0", name)
        if np.isinf(x).any():
            raise _first_bad(label, x, np.isinf(x), f"{label} must be finite and >= 0", name)
        arrays.append(x)
    phi = to_phi(call, np.dtype(np.float64), host_backend())  # the pricers run on the host
    try:
        shape = np.broadcast_shapes(arrays[0].shape, arrays[1].shape, np.shape(phi))
    except ValueError:
        raise ValueError(
            f"input shapes do not broadcast together: strike{arrays[0].shape}, expiry{arrays[1].shape}, call{np.shape(phi)}"
        ) from None
    strike_b, expiry_b = (np.broadcast_to(a, shape) for a in arrays)
    return strike_b, expiry_b, phi


def _from_call(model: Heston | Merton, strike: np.ndarray, expiry: np.ndarray, call_price: np.ndarray, phi: Any) -> np.ndarray:
    """Calls as they are, puts by parity: P = C - S exp(-q T) + K exp(-r T)."""
    put = call_price - model.spot * np.exp(-model.div * expiry) + strike * np.exp(-model.rate * expiry)
    return np.where(np.asarray(phi) > 0, call_price, put)


# ---------------------------------------------------------------------------------------------- Heston


def _log1p(z: np.ndarray) -> np.ndarray:
    """Complex log(1 + z), accurate for small |z| (NumPy's complex log1p is log(1 + z) computed naively)."""
    x, y = z.real, z.imag
    return 0.5 * np.log1p(x * (2.0 + x) + y * y) + 1j * np.arctan2(y, 1.0 + x)


def heston_cf(model: Heston, u: np.ndarray, expiry: float) -> np.ndarray:
    """Characteristic function E[exp(i u X)] of X = log(S_T / F_T) under Heston, for complex ``u``.

    The "little Heston trap" form (Albrecher, Mayer, Schoutens, Tistaert 2007), continuous in ``u``
    for every expiry, with beta = kappa - rho xi i u, d = sqrt(beta^2 + xi^2 (i u + u^2)),
    r = (beta - d) / xi^2 = -(i u + u^2) / (beta + d), g = (beta - d) / (beta + d):

        D = r (1 - exp(-d T)) / (1 - g exp(-d T)),
        C = kappa theta (r T - 2 / xi^2 log(1 + g (1 - exp(-d T)) / (1 - g))),  phi = exp(C + D v0).

    ``r`` and ``g / xi^2`` are written without the subtraction beta - d, so small ``xi`` (the
    Black-Scholes limit) loses no digits.
    """
    iu = 1j * u
    beta = model.kappa - model.rho * model.xi * iu
    a = iu + u * u
    d = np.sqrt(beta * beta + model.xi**2 * a)
    r_minus = -a / (beta + d)
    g_over_xi2 = r_minus / (beta + d)
    g = g_over_xi2 * model.xi**2
    one_minus_e = -np.expm1(-d * expiry)
    dd = r_minus * one_minus_e / (1.0 - g * (1.0 - one_minus_e))
    log_term = _log1p(g * one_minus_e / (1.0 - g))
    cc = model.kappa * model.theta * (r_minus * expiry - 2.0 * log_term / model.xi**2)
    return np.exp(cc + dd * model.v0)


@lru_cache(maxsize=1)
def _gauss_legendre() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(_GL_ORDER)


def _lewis_integrand_bound(model: Heston, expiry: float, u: np.ndarray) -> np.ndarray:
    return np.abs(heston_cf(model, u - 0.5j, expiry)) / (u * u + 0.25)


def _panel_edges(upper: float, width: float) -> np.ndarray:
    """Panel edges on [0, upper]: 0.5 wide up to 1, then doubling (the integrand has poles at
    u = +-i/2, and the characteristic function its singularities on the imaginary axis, so panels
    near 0 must be short), then ``width`` wide; at most ``_MAX_PANELS``."""
    if width < upper / _MAX_PANELS:
        warnings.warn(
            f"Heston quadrature capped at {_MAX_PANELS} panels on [0, {upper:.3g}]: the price may be off by more "
            "than 1e-8 (an integrand decaying slowly, as for |rho| = 1, and a strike far from the forward)",
            RuntimeWarning,
            stacklevel=5,
        )
        width = upper / _MAX_PANELS
    edges = [0.0]
    while edges[-1] < upper:
        edges.append(edges[-1] + min(width, max(0.5, edges[-1])))
    edges[-1] = upper
    return np.asarray(edges)


def _heston_nodes(model: Heston, expiry: float, max_abs_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes and weights on [0, U] for the Lewis integral of one expiry.

    U: the integrand is bounded by b(u) = |phi(u - i/2)| / (u^2 + 1/4), which falls at least like
    1 / u^2, so the tail beyond U is at most about U b(U); U is the first point of a log-spaced scan
    after which that stays below ``_TAIL_TOL``. Panels of ``_GL_ORDER`` points are narrow enough for
    the oscillation exp(i u x) (width <= 4 / (1 + |x|)) and at least 32 across [0, U].
    """
    scan = np.geomspace(1e-2, 1e7, 900)
    tail = scan * _lewis_integrand_bound(model, expiry, scan)
    above = np.flatnonzero(~(tail < _TAIL_TOL))  # NaN counts as not yet small
    upper = scan[min(above[-1] + 1, scan.size - 1)] if above.size else scan[0]
    if above.size and above[-1] == scan.size - 1:
        warnings.warn(
            f"Heston integrand still above {_TAIL_TOL:g} at u = {upper:.3g} (expiry {expiry:g}): the price may be off "
            "by more than 1e-8 (a characteristic function decaying slowly, as for |rho| = 1)",
            RuntimeWarning,
            stacklevel=4,
        )
    width = min(upper / 32.0, 4.0 / (1.0 + max_abs_x))
    edges = _panel_edges(upper, width)
    t, w = _gauss_legendre()
    half = 0.5 * np.diff(edges)[:, None]
    nodes = (0.5 * (edges[:-1] + edges[1:])[:, None] + half * t).reshape(-1)
    weights = (half * w).reshape(-1)
    return nodes, weights


def _heston_call_one_expiry(model: Heston, strike: np.ndarray, expiry: float) -> np.ndarray:
    """Lewis (2001): C = exp(-rT) [F - sqrt(F K) / pi int_0^inf Re(exp(i u x) phi(u - i/2)) / (u^2 + 1/4) du],
    x = log(F / K), for strikes > 0 and expiry > 0."""
    forward = model.spot * np.exp((model.rate - model.div) * expiry)
    x = np.log(forward / strike)
    nodes, weights = _heston_nodes(model, expiry, float(np.max(np.abs(x))))
    kernel = heston_cf(model, nodes - 0.5j, expiry) * (weights / (nodes * nodes + 0.25))
    integral = np.empty_like(x)
    step = max(1, _BLOCK // nodes.size)
    for lo in range(0, x.size, step):
        xs = x[lo : lo + step]
        integral[lo : lo + step] = (np.exp(1j * np.outer(xs, nodes)) @ kernel).real
    return np.exp(-model.rate * expiry) * (forward - np.sqrt(forward * strike) / np.pi * integral)


def heston_price(model: Heston, strike: ArrayLike, expiry: ArrayLike, call: Any = True) -> np.ndarray:
    """European option prices under the Heston model, by Fourier inversion (float64 NumPy array).

    Calls by the single-integral formula of Lewis (2001) with the "little Heston trap"
    characteristic function (Albrecher et al. 2007; see :func:`heston_cf`), integrated by composite
    Gauss-Legendre quadrature on a truncated range chosen per expiry; puts by put-call parity.
    Accurate to about 1e-12 absolute for S = 100 (Feller's condition not needed), expiries from a
    day to decades; for |rho| = 1, whose integrand decays slowly, a RuntimeWarning says when the
    quadrature hit its limits. Prices of one contract may differ in the last digits (1e-13) between
    batches, as the grid adapts to the batch's strike range. ``strike`` (>= 0) and ``expiry`` (years, >= 0) broadcast against each other and
    ``call`` (bool, array of bools, or "call"/"put"); the result has the broadcast shape. Expiry 0
    gives the intrinsic value, strike 0 the discounted forward (call) or 0 (put).

    >>> m = Heston(spot=100.0, v0=0.0175, kappa=1.5768, theta=0.0398, xi=0.5751, rho=-0.5711)
    >>> round(float(heston_price(m, 100.0, 1.0)), 8)  # Fang & Oosterlee (2008) publish 5.785155450
    5.78515543
    """
    if not isinstance(model, Heston):
        raise ValueError(f"heston_price needs a Heston model; got {type(model).__name__}")
    strike, expiry, phi = _contract(model, strike, expiry, call)
    disc_spot = model.spot * np.exp(-model.div * expiry)
    call_price = np.where(strike == 0.0, disc_spot, np.maximum(model.spot - strike, 0.0))
    regular = (strike > 0.0) & (expiry > 0.0)
    if model.v0 == 0.0 and model.theta == 0.0:  # variance stays 0: the forward is certain
        forward = model.spot * np.exp((model.rate - model.div) * expiry)
        call_price = np.exp(-model.rate * expiry) * np.maximum(forward - strike, 0.0)
        regular = np.zeros_like(regular)
    for t in np.unique(expiry[regular]):
        at = regular & (expiry == t)
        call_price[at] = _heston_call_one_expiry(model, strike[at], float(t))
    return _from_call(model, strike, expiry, call_price, phi)


# ---------------------------------------------------------------------------------------------- Merton


def merton_price(model: Merton, strike: ArrayLike, expiry: ArrayLike, call: Any = True) -> np.ndarray:
    """European option prices under Merton's jump-diffusion, by his series (float64 NumPy array).

    With k = E[J] - 1 (:attr:`Merton.compensator`) and lambda' = lambda (1 + k) (Merton 1976;
    Hull, Options, Futures and Other Derivatives, ch. "Jumps"):

        V = sum_n exp(-lambda' T) (lambda' T)^n / n! * BS(S, K, T, vol_n, r_n, q),
        vol_n^2 = vol^2 + n jump_std^2 / T,  r_n = r - lambda k + n (jump_mean + jump_std^2 / 2) / T,

    summed until the Poisson tail probability beyond the last term is below 1e-16 (for the longest
    expiry). Shapes and conventions as :func:`heston_price`.

    >>> m = Merton(spot=100.0, vol=0.2, jump_intensity=0.0, jump_mean=-0.1, jump_std=0.15, rate=0.05)
    >>> round(float(merton_price(m, 100.0, 1.0)), 6)  # no jumps: Black-Scholes
    10.450584
    """
    if not isinstance(model, Merton):
        raise ValueError(f"merton_price needs a Merton model; got {type(model).__name__}")
    strike, expiry, phi = _contract(model, strike, expiry, call)
    k = model.compensator
    lam_t = model.jump_intensity * (1.0 + k) * expiry
    mean_max = float(lam_t.max(initial=0.0))
    n_terms = 1
    while mean_max > 0.0 and pdtrc(n_terms - 1, mean_max) >= _POISSON_TAIL:
        n_terms += 1
    n = np.arange(n_terms, dtype=np.float64).reshape((n_terms,) + (1,) * strike.ndim)
    weights = np.exp(xlogy(n, lam_t) - lam_t - np.cumsum(np.log(np.maximum(n, 1.0)), axis=0))
    safe_t = np.where(expiry > 0.0, expiry, 1.0)  # expiry 0 keeps only n = 0 (weight 1): intrinsic value
    vol_n = np.sqrt(model.vol**2 + n * model.jump_std**2 / safe_t)
    rate_n = model.rate - model.jump_intensity * k + n * (model.jump_mean + 0.5 * model.jump_std**2) / safe_t
    terms = bs_price(model.spot, strike, expiry, vol_n, rate_n, model.div, call=True, backend="numpy")
    call_price = np.sum(weights * np.asarray(terms), axis=0)
    return _from_call(model, strike, expiry, call_price, phi)


# ---------------------------------------------------------------------------------------------- dispatch


def model_price(model: GBM | Heston | Merton, strike: ArrayLike, expiry: ArrayLike, *, call: Any = True) -> np.ndarray:
    """Reference European option prices under a simulation model, as a float64 NumPy array.

    :class:`GBM`: Black-Scholes-Merton (:func:`gpu_hedge.price`, NumPy backend) with the model's
    ``rate``, ``div`` and ``vol``; the real-world ``drift`` does not enter risk-neutral prices and is
    ignored. :class:`Heston`: :func:`heston_price`. :class:`Merton`: :func:`merton_price`.
    ``strike`` (>= 0) and ``expiry`` (years >= 0, or a timedelta: ACT/365) broadcast against each other and ``call``.

    >>> round(float(model_price(GBM(spot=100.0, vol=0.2, rate=0.05, drift=0.3), 100.0, 1.0)), 6)
    10.450584
    """
    if isinstance(model, GBM):
        strike, expiry, phi = _contract(model, strike, expiry, call)
        return np.asarray(bs_price(model.spot, strike, expiry, model.vol, model.rate, model.div, call=phi > 0, backend="numpy"))
    if isinstance(model, Heston):
        return heston_price(model, strike, expiry, call)
    if isinstance(model, Merton):
        return merton_price(model, strike, expiry, call)
    raise ValueError(f"model must be a GBM, Heston or Merton instance; got {type(model).__name__}")
