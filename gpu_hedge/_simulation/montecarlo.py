"""Monte Carlo prices and pathwise Greeks of European, arithmetic-Asian and up-and-out options.

Conventions (all payoffs): the monitoring dates are the ``n_steps`` equally spaced simulation dates
t_1 ... t_n = ``expiry`` (today's spot is not a fixing); prices are discounted at the model's
``rate``; ``strike`` may be a scalar or a 1-D array (every strike priced on the same paths).

- ``"european"``: max(phi (S(T) - K), 0), phi = +1 call, -1 put.
- ``"asian"``: arithmetic average, max(phi (mean_k S(t_k) - K), 0).
- ``"up_and_out"``: the European payoff, paid only if S(t_k) < ``barrier`` at every monitoring date
  (discretely monitored, no rebate); a spot already at or above the barrier is knocked out.

Standard errors are the sample standard deviation over independent draws divided by their square
root; with ``antithetic=True`` a draw is a pair's average, so the error counts the pairing honestly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .._backends import Backend, backend_with, get_backend
from .._pricing._inputs import host_numbers
from .._types import Array
from .gbm import LogNormalStep
from .models import GBM, Heston, Merton
from .paths import _count, _stepper, check_run, iter_paths

__all__ = ["MCGreeks", "MCResult", "mc_greeks", "mc_price"]

PAYOFFS = ("european", "asian", "up_and_out")


@dataclass(frozen=True)
class MCResult:
    """A Monte Carlo price: ``price`` and ``stderr`` (floats, or NumPy arrays shaped like ``strike``),
    with the run's ``n_paths``, ``n_steps`` and ``payoff``."""

    price: Any
    stderr: Any
    n_paths: int
    n_steps: int
    payoff: str


@dataclass(frozen=True)
class MCGreeks:
    """Monte Carlo price and Greeks, each a float or a NumPy array shaped like ``strike``, and their
    standard errors in ``stderr`` (a dict keyed ``"price"``, ``"delta"``, ``"vega"``, ``"gamma"``).

    ``delta`` per 1.00 of spot, ``vega`` per 1.00 of the model's ``vol`` (None for Heston, which has
    none), ``gamma`` per 1.00 of spot squared. Delta and vega are pathwise (forward-mode autodiff through
    the simulation); gamma is the central difference of pathwise deltas at spot +- ``gamma_bump`` x spot
    under common random numbers (a kinked payoff has no pathwise second derivative). ``method`` says
    how the barrier was handled (``"pathwise"`` or ``"pathwise, one-step survival"``).
    """

    price: Any
    delta: Any
    vega: Any
    gamma: Any
    stderr: dict[str, Any]
    n_paths: int
    n_steps: int
    payoff: str
    method: str


# --- arguments ---------------------------------------------------------------------------------


def _check_args(model: Any, strike: Any, expiry: Any, payoff: str, barrier: Any) -> tuple[np.ndarray, float, float | None]:
    if not isinstance(model, GBM | Heston | Merton):
        raise ValueError(f"model must be one of GBM, Heston, Merton, got {type(model).__name__}")
    k = host_numbers("strike", strike).astype(np.float64, copy=False)  # no bools, strings or dates
    if k.ndim > 1:
        raise ValueError(f"strike must be a scalar or a 1-D array, got shape {k.shape}")
    bad = np.flatnonzero(~(np.isfinite(k) & (k >= 0)).ravel())
    if bad.size:
        raise ValueError(f"strike[{bad[0]}] = {k.ravel()[bad[0]]!r} must be finite and >= 0")
    t_arr = host_numbers("expiry", expiry)  # a timedelta is years, ACT/365
    if t_arr.size != 1:
        raise ValueError(f"expiry must be one number of years (or a timedelta), got shape {t_arr.shape}")
    t = float(t_arr.reshape(()))
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"expiry = {expiry!r} must be a finite number of years > 0")
    if payoff not in PAYOFFS:
        raise ValueError(f"payoff = {payoff!r} must be one of {', '.join(map(repr, PAYOFFS))}")
    if payoff == "up_and_out":
        if barrier is None:
            raise ValueError("payoff = 'up_and_out' needs a barrier")
        barrier = float(barrier)
        if not (math.isfinite(barrier) and barrier > 0):
            raise ValueError(f"barrier = {barrier!r} must be finite and > 0")
    elif barrier is not None:
        raise ValueError(f"barrier = {barrier!r} is only used with payoff = 'up_and_out', not {payoff!r}")
    return k, t, barrier


def _stats(xp: Any, values: Array, antithetic: bool) -> tuple[Array, Array]:
    """Mean and standard error over the last axis (pairs averaged first when ``antithetic``)."""
    if antithetic:
        values = 0.5 * (values[..., 0::2] + values[..., 1::2])
    n = values.shape[-1]
    mean = xp.mean(values, axis=-1)
    if n < 2:
        return mean, xp.full_like(mean, math.nan)
    return mean, xp.std(values, axis=-1, correction=1) / math.sqrt(n)


def _out(x: Any, scalar: bool) -> Any:
    a = np.asarray(x, dtype=np.float64)
    return float(a.reshape(())) if scalar else a


# --- payoffs ------------------------------------------------------------------------------------


def _vanilla(xp: Any, underlying: Array, strikes: Array, phi: float) -> Array:
    """``(n_strikes, n_paths)`` payoffs max(phi (underlying - K), 0)."""
    return xp.maximum(phi * (underlying[None, :] - strikes[:, None]), 0.0)


# --- prices (any backend, streamed) -------------------------------------------------------------


def mc_price(
    model: GBM | Heston | Merton,
    *,
    strike: Any,
    expiry: float,
    call: bool = True,
    payoff: str = "european",
    barrier: float | None = None,
    n_paths: int,
    n_steps: int,
    seed: int,
    backend: Any = "auto",
    dtype: str = "float64",
    antithetic: bool = False,
    scheme: str | None = None,
    first_path: int = 0,
) -> MCResult:
    """Monte Carlo price of a European, arithmetic-Asian or discretely monitored up-and-out option.

    Paths come from :func:`gpu_hedge.iter_paths` (same ``seed``/``antithetic``/``scheme``/``first_path``
    meaning), streamed: memory O(``n_paths`` x strikes) whatever ``n_steps`` is. See the module notes
    for the payoffs and monitoring dates.

    >>> from gpu_hedge import GBM, mc_price
    >>> r = mc_price(GBM(100.0, 0.2), strike=100.0, expiry=1.0, n_paths=20_000, n_steps=1, seed=1, backend="numpy")
    >>> abs(r.price - 7.9656) < 3 * r.stderr
    True
    """
    strikes, expiry, barrier = _check_args(model, strike, expiry, payoff, barrier)
    n_steps = _count("n_steps", n_steps)
    bk = get_backend(backend)
    xp = bk.xp
    phi = 1.0 if call else -1.0
    steps = iter_paths(
        model, n_paths=n_paths, n_steps=n_steps, horizon=expiry, seed=seed, backend=bk, dtype=dtype,
        antithetic=antithetic, scheme=scheme, first_path=first_path,
    )  # fmt: skip
    start = next(steps)
    acc = xp.zeros_like(start.spot) if payoff == "asian" else None
    alive = xp.astype(start.spot < barrier, start.spot.dtype) if payoff == "up_and_out" else None
    spot = start.spot
    for s in steps:
        spot = s.spot
        if acc is not None:
            acc = acc + spot
        if alive is not None:
            alive = alive * xp.astype(spot < barrier, spot.dtype)
    k = bk.asarray(strikes.reshape(-1), dtype=spot.dtype)
    values = _vanilla(xp, acc / n_steps if acc is not None else spot, k, phi)
    if alive is not None:
        values = values * alive[None, :]
    mean, se = _stats(xp, values * math.exp(-model.rate * expiry), antithetic)
    scalar = strikes.ndim == 0
    return MCResult(_out(bk.to_numpy(mean), scalar), _out(bk.to_numpy(se), scalar), int(spot.shape[0]), n_steps, payoff)


# --- pathwise Greeks (JAX) ----------------------------------------------------------------------


def _with_params(model: Any, **values: Any) -> Any:
    """A copy of ``model`` with some fields replaced by (possibly traced) arrays, skipping validation
    (the values were validated as the user's floats)."""
    out = object.__new__(type(model))
    for f in dataclasses.fields(model):
        object.__setattr__(out, f.name, values.get(f.name, getattr(model, f.name)))
    return out


def _autodiff_backend(backend: Any) -> Backend:
    bk = backend_with("autodiff") if backend == "auto" else get_backend(backend)
    if "autodiff" not in bk.capabilities:
        raise ValueError(f"mc_greeks differentiates through the simulation and needs an autodiff backend (jax); got {bk.name!r}")
    return bk


def _conditional_step(special: Any, xp: Any, spot: Array, center: Array, scale: Any, z: Array, log_barrier: float) -> tuple[Array, Array]:
    """One step conditioned to end below the barrier (Glasserman & Staum 2001): the Gaussian shock
    ``z`` is mapped to the same quantile of the normal truncated at c = (log B - log S - center) / scale,
    Z' = ndtri(U p) with U = ndtr(z), p = ndtr(c) the one-step survival probability. Returns
    (next spot, p). Both tails are kept accurate: 1 - U p = ndtr(-z) + ndtr(z) ndtr(-c)."""
    c = (log_barrier - xp.log(spot) - center) / scale
    p = special.ndtr(c)
    lower = special.ndtr(z) * p
    upper = special.ndtr(-z) + special.ndtr(z) * special.ndtr(-c)
    use_lower = lower < 0.5
    # keep the unused branch finite so its (discarded) derivative cannot turn into NaN
    tiny = float(np.finfo(np.dtype(str(spot.dtype))).tiny)
    z_low = special.ndtri(xp.maximum(xp.where(use_lower, lower, 0.25), tiny))
    z_up = -special.ndtri(xp.maximum(xp.where(use_lower, 0.25, upper), tiny))
    shock = xp.where(use_lower, z_low, z_up)
    return spot * xp.exp(center + scale * shock), p


def _discounted_payoffs(
    bk: Backend,
    model: Any,
    params: dict[str, Array],
    *,
    strikes: Array,
    expiry: float,
    phi: float,
    payoff: str,
    barrier: float | None,
    n_paths: int,
    n_steps: int,
    seed: int,
    dtype: Any,
    antithetic: bool,
    scheme: str | None,
    first_path: int,
) -> Array:
    """``(n_strikes, n_paths)`` discounted payoffs as a function of the traced ``params`` (a
    :meth:`Backend.scan` over the steps, shocks drawn inside it from the backend's stream)."""
    xp, special = bk.xp, bk.special
    stepper = _stepper(_with_params(model, **params), scheme, expiry / n_steps)
    survival = payoff == "up_and_out"
    state0 = stepper.init(xp, n_paths, dtype)
    spot0 = stepper.observe(xp, state0)[0]
    log_barrier = math.log(barrier) if survival else 0.0

    def body(carry: tuple, x: tuple) -> tuple:
        (k,) = x
        state, acc, weight = carry
        z = bk.normals(seed, k, stepper.n_normals, n_paths, dtype, antithetic=antithetic, first_path=first_path)
        if survival:
            center, scale = stepper.log_step(xp, special, z)
            spot, p = _conditional_step(special, xp, state[0], center, scale, z[0], log_barrier)
            state, weight = (spot,), weight * p
        else:
            state = stepper.advance(xp, special, state, z)
        spot = stepper.observe(xp, state)[0]
        return state, acc + spot if payoff == "asian" else acc, weight

    weight0 = xp.astype(spot0 < barrier, dtype) if survival else xp.ones_like(spot0)
    state, acc, weight = bk.scan(body, (state0, xp.zeros_like(spot0), weight0), (xp.arange(n_steps, dtype=xp.uint32),))
    spot = stepper.observe(xp, state)[0]
    values = _vanilla(xp, acc / n_steps if payoff == "asian" else spot, strikes, phi) * weight[None, :]
    return values * math.exp(-model.rate * expiry)


def mc_greeks(
    model: GBM | Heston | Merton,
    *,
    strike: Any,
    expiry: float,
    call: bool = True,
    payoff: str = "european",
    barrier: float | None = None,
    n_paths: int,
    n_steps: int,
    seed: int,
    backend: Any = "auto",
    dtype: str = "float64",
    antithetic: bool = False,
    scheme: str | None = None,
    first_path: int = 0,
    gamma_bump: float = 0.01,
    greeks: tuple[str, ...] = ("delta", "vega", "gamma"),
) -> MCGreeks:
    """Monte Carlo price, delta, vega and gamma by pathwise differentiation through the simulation
    (JAX backend; ``backend="auto"`` picks JAX). Same arguments and payoffs as :func:`mc_price`.

    The derivatives are forward-mode (``jax.jvp``) through a ``lax.scan`` over the steps, so memory
    stays O(``n_paths``) for any ``n_steps`` (reverse mode would keep every step). Delta and vega of
    the European and Asian payoffs are unbiased (their payoffs are Lipschitz). A knock-out indicator
    has no useful pathwise derivative, so for ``"up_and_out"`` each step is conditioned to survive and
    the path weighted by the survival probability (one-step survival, Glasserman & Staum 2001): the
    estimator is smooth in spot and vol and has the same expectation as the plain one; it is
    implemented for GBM and Merton (whose steps are Gaussian given the jumps), not for Heston.

    Heston has no single vol: ``vega`` is None there. ``gamma`` is the central difference of pathwise
    deltas at spot x (1 +- ``gamma_bump``) with the same shocks (bias O(bump^2)). ``greeks`` picks
    which to compute (each costs about one more pass over the paths, gamma two); the others are None.
    """

    strikes_np, expiry, barrier = _check_args(model, strike, expiry, payoff, barrier)
    n_paths, n_steps, _, seed, first_path, _ = check_run(model, n_paths, n_steps, expiry, seed, antithetic, first_path, dtype, scheme)
    if payoff == "up_and_out" and not isinstance(_stepper(model, scheme, 1.0), LogNormalStep):
        raise ValueError(
            "pathwise up-and-out Greeks are implemented for GBM and Merton (one-step survival); for Heston use "
            "finite differences of mc_price with the same seed (common random numbers)"
        )
    unknown = set(greeks) - {"delta", "vega", "gamma"}
    if unknown or isinstance(greeks, str):
        raise ValueError(f"greeks = {greeks!r} must be a tuple of 'delta', 'vega', 'gamma'")
    if not (math.isfinite(gamma_bump) and 0 < gamma_bump < 0.5):
        raise ValueError(f"gamma_bump = {gamma_bump!r} must lie in (0, 0.5)")
    bk = _autodiff_backend(backend)
    dt = getattr(bk.xp, dtype)
    has_vol = not isinstance(model, Heston)
    names = ("spot", "vol") if has_vol else ("spot",)
    compiled = _compiled_payoffs(
        bk, _with_params(model, **dict.fromkeys(names)), names, expiry, 1.0 if call else -1.0, payoff, barrier,
        n_paths, n_steps, seed, str(np.dtype(dtype)), antithetic, scheme, first_path,
    )  # fmt: skip
    strikes_dev = bk.asarray(strikes_np.reshape(-1), dtype=dt)

    def fn(*values: Array) -> Array:
        return compiled(strikes_dev, *values)

    primal = tuple(bk.asarray(getattr(model, n), dtype=dt) for n in names)

    def tangent(i: int) -> tuple:
        return tuple(bk.xp.asarray(1.0 if j == i else 0.0, dtype=dt) for j in range(len(names)))

    if "delta" in greeks:
        values, d_spot = bk.jvp(fn, primal, tangent(0))
    else:
        values, d_spot = fn(*primal), None
    d_vol = bk.jvp(fn, primal, tangent(1))[1] if has_vol and "vega" in greeks else None
    gammas = None
    if "gamma" in greeks:
        h = gamma_bump * model.spot
        d_up = bk.jvp(fn, (primal[0] + h, *primal[1:]), tangent(0))[1]
        d_down = bk.jvp(fn, (primal[0] - h, *primal[1:]), tangent(0))[1]
        gammas = (d_up - d_down) / (2.0 * h)

    scalar = strikes_np.ndim == 0
    out, se = {}, {}
    for name, v in (("price", values), ("delta", d_spot), ("vega", d_vol), ("gamma", gammas)):
        if v is None:
            out[name], se[name] = None, None
            continue
        m, s = _stats(bk.xp, v, antithetic)
        out[name], se[name] = _out(bk.to_numpy(m), scalar), _out(bk.to_numpy(s), scalar)
    method = "pathwise, one-step survival" if payoff == "up_and_out" else "pathwise"
    return MCGreeks(out["price"], out["delta"], out["vega"], out["gamma"], se, n_paths, n_steps, payoff, method)


@lru_cache(maxsize=32)
def _compiled_payoffs(bk: Backend, template: Any, names: tuple[str, ...], *args: Any) -> Callable[..., Array]:
    """The jitted discounted payoffs as a function of (strikes, *model fields ``names``); ``template``
    is the model with those fields blanked, so runs that differ only in them (bumped spot or vol,
    other strikes of the same count) share one compilation."""
    keys = ("expiry", "phi", "payoff", "barrier", "n_paths", "n_steps", "seed", "dtype", "antithetic", "scheme", "first_path")
    kwargs = dict(zip(keys, args, strict=True))
    kwargs["dtype"] = getattr(bk.xp, kwargs["dtype"])

    def fn(strikes: Array, *values: Array) -> Array:
        return _discounted_payoffs(bk, template, dict(zip(names, values, strict=True)), strikes=strikes, **kwargs)

    return bk.jit(fn)
