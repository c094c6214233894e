"""Hedging with a smile: vols from a volatility surface, and the delta a hedge follows.

**Vols from a surface.** :func:`gpu_hedge.hedge` takes ``vol=`` a surface (any object with
``.vol(strike, expiry_years[, group=...])``, e.g. :class:`gpu_hedge._surface.VolSurface`), a
sequence of one surface per date, or a callable ``date_index -> surface`` (a backtest refitting the
surface every day). An item may be ``(surface, group)`` to pick one group of a multi-group surface.
At date ``t_k`` option ``j`` is priced at ``surface_k.vol(K_j, T_j - t_k)``: the surface of that
date at the option's strike and remaining time to expiry (dates on or after the option's expiry take
the last vol before it, never used for pricing). Within a date the vol is one number per option for
every path (the surface as given for that date: a simulated path away from the surface's forward
keeps the surface's vol at its strike; per-date surfaces refitted on a historical series are
anchored to that day's spot).

**The delta a hedge follows** (``delta=``):

- ``"bs"``: Black-Scholes-Merton delta at the option's vol (the surface's, or the flat vol).
- ``"smile"``: sticky-moneyness delta. The smile is taken to move with the forward,
  ``sigma(K, T; S) = sigma_surface(k)`` with ``k = ln(K / F)``, ``F = S e^{(r-q)T}``, so
  ``d sigma / dS = -(d sigma / dk) / S`` and ::

      delta_smile = delta_BS + vega_BS * d sigma / dS = delta_BS - vega_BS * (d sigma / dk) / S

  with ``d sigma / dk`` the surface's slope in log-strike at (K, T): analytic where the surface
  offers ``dvol_dk(strike, expiry_years[, group])``, else a central difference of ``.vol`` at
  ``K e^{+-h}``, ``h = 1e-4`` (:func:`vol_and_slope`). Puts and calls alike (the same vega and
  slope). For a flat vol the slope is 0 and this is the BS delta.
- ``"minimum_variance"`` (with ``mv=``) or a :class:`MinimumVariance` / :class:`MVCoefficients`:
  Hull & White (2017), "Optimal delta hedging for options", J. Banking & Finance 82, 180-190::

      delta_MV = delta_BS + vega_BS / (S sqrt(T)) * (a + b D + c D^2)

  where ``D`` is the option's **call** delta: ``D = delta_BS`` for a call and ``D = delta_BS +
  e^{-qT}`` for a put (the call of the same strike by put-call parity; ``delta_BS + 1`` with
  ``q = 0``, as Hull and White do). With one set of coefficients for calls and puts, the put's MV
  delta is the call's MV delta minus ``e^{-qT}``: put-call parity keeps holding. Hull and White fit
  calls and puts separately; :class:`MinimumVariance` carries one set for each.

Only the delta changes: gamma (Whalley-Wilmott), the hedge option's Greeks (DeltaGamma/DeltaVega)
and every price stay Black-Scholes-Merton at the option's vol.

:func:`fit_minimum_variance` fits ``(a, b, c)`` by least squares on observed one-period changes
(Hull and White's equation)::

    df - delta_BS dS = vega_BS / sqrt(T) * (dS / S) * (a + b D + c D^2) + e

over (contract, day) pairs, ``D`` the call delta as above.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DELTA_MODELS",
    "MVCoefficients",
    "MinimumVariance",
    "fit_minimum_variance",
    "is_surface",
    "minimum_variance_delta",
    "resolve_delta",
    "smile_delta",
    "surface_vols",
    "vol_and_slope",
]

DELTA_MODELS = ("bs", "smile", "minimum_variance")
#: log-strike step of the central difference for d sigma / dk
SLOPE_STEP = 1e-4


@dataclass(frozen=True)
class MVCoefficients:
    """Hull-White minimum-variance coefficients: ``E[d sigma] sqrt(T) / (dS / S) = a + b D + c D^2``
    (``D`` the call delta). From :func:`fit_minimum_variance`: ``n_obs`` pairs fitted, ``stderr``
    (OLS standard errors of a, b, c) and ``r2`` (of the regression of the BS hedging error)."""

    a: float
    b: float
    c: float
    n_obs: int = 0
    stderr: tuple[float, float, float] | None = None
    r2: float | None = None

    def __post_init__(self) -> None:
        for name in ("a", "b", "c"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or not math.isfinite(v):
                raise ValueError(f"MVCoefficients.{name} = {v!r} must be a finite number")
            object.__setattr__(self, name, float(v))

    def quadratic(self, call_delta: Any) -> Any:
        """``a + b D + c D^2``."""
        return self.a + call_delta * (self.b + self.c * call_delta)


@dataclass(frozen=True)
class MinimumVariance:
    """The minimum-variance delta as an engine ``delta=``: ``calls``' coefficients for calls,
    ``puts``' for puts (None: the calls' for both)."""

    calls: MVCoefficients
    puts: MVCoefficients | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "puts"):
            v = getattr(self, name)
            if v is None and name == "puts":
                continue
            if isinstance(v, tuple | list) and len(v) == 3:
                object.__setattr__(self, name, MVCoefficients(*v))
            elif not isinstance(v, MVCoefficients):
                raise ValueError(f"MinimumVariance.{name} = {v!r} must be MVCoefficients or (a, b, c)")

    def of(self, call: bool) -> MVCoefficients:
        return self.calls if call or self.puts is None else self.puts


def resolve_delta(delta: Any, mv: Any = None) -> str | MinimumVariance:
    """``delta=`` / ``mv=`` of the engine as ``"bs"``, ``"smile"`` or a :class:`MinimumVariance`."""
    if isinstance(delta, MinimumVariance):
        return delta
    if isinstance(delta, MVCoefficients):
        return MinimumVariance(delta)
    if not isinstance(delta, str) or delta not in DELTA_MODELS:
        raise ValueError(f"delta = {delta!r} must be one of {DELTA_MODELS}, a MinimumVariance or MVCoefficients")
    if delta == "minimum_variance":
        if mv is None:
            raise ValueError(
                "delta = 'minimum_variance' needs mv= (MVCoefficients, MinimumVariance or (a, b, c)); fit them with fit_minimum_variance"
            )
        return resolve_delta(mv if isinstance(mv, MinimumVariance | MVCoefficients) else MVCoefficients(*mv))
    if mv is not None:
        raise ValueError(f"mv= is only used with delta = 'minimum_variance', not delta = {delta!r}")
    return delta


# --- closed forms (any array namespace: NumPy arrays, JAX tracers, floats) --------------------------------


def smile_delta(delta_bs: Any, vega: Any, spot: Any, dvol_dk: Any) -> Any:
    """Sticky-moneyness delta: ``delta_BS - vega * (d sigma / dk) / S`` (vega per 1.00 of vol)."""
    return delta_bs - vega * dvol_dk / spot


def minimum_variance_delta(
    delta_bs: Any, vega: Any, spot: Any, tau: Any, coeffs: MVCoefficients, call: Any, div: float = 0.0, xp: Any = np
) -> Any:
    """Hull-White: ``delta_BS + vega / (S sqrt(T)) (a + b D + c D^2)``, ``D`` the call delta
    (``delta_BS`` for calls, ``delta_BS + e^{-q T}`` for puts); ``call`` bool or boolean array;
    ``xp`` the array namespace of ``tau`` (a traced JAX scalar in the compiled loop)."""
    call_delta = _call_delta(delta_bs, tau, call, div, xp)
    return delta_bs + vega / (spot * tau**0.5) * coeffs.quadratic(call_delta)


def _call_delta(delta_bs: Any, tau: Any, call: Any, div: float, xp: Any = np) -> Any:
    carry = 1.0 if div == 0 else xp.exp(-div * tau)
    if isinstance(call, bool | np.bool_):
        return delta_bs if call else delta_bs + carry
    return xp.where(xp.asarray(call), delta_bs, delta_bs + carry)


# --- the fit ------------------------------------------------------------------------------------------------


def fit_minimum_variance(
    d_value: Any, d_spot: Any, spot: Any, delta: Any, vega: Any, expiry: Any, *, call: Any = True, div: float = 0.0,
    weights: Any = None,
) -> MVCoefficients:  # fmt: skip
    """Least-squares ``(a, b, c)`` of Hull and White's regression over (contract, day) pairs::

        d_value - delta dS = vega / sqrt(T) * (dS / S) * (a + b D + c D^2) + e

    ``d_value``: the option's value change over the period (f_{t+1} - f_t), ``d_spot`` the
    underlying's (S_{t+1} - S_t); ``spot``, ``delta`` (BS delta of the option itself, a put's
    negative), ``vega`` (per 1.00 of vol) and ``expiry`` (years to expiry) at the start of the
    period; ``call``: bool or one per pair (puts enter with ``D = delta + e^{-q T}``). ``weights``:
    optional per-pair weights (weighted least squares). Rows with any non-finite input are dropped.
    Returns :class:`MVCoefficients` with OLS standard errors and the R^2 of the regression.
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in (d_value, d_spot, spot, delta, vega, expiry)]
    n = max(a.size for a in arrays)
    dv, ds, s, d, v, tau = (np.broadcast_to(a, (n,)) if a.ndim == 0 else a.ravel() for a in arrays)
    if not all(a.shape == (n,) for a in (dv, ds, s, d, v, tau)):
        raise ValueError("d_value, d_spot, spot, delta, vega and expiry must have one value per pair (or be scalars)")
    c_flags = np.broadcast_to(np.asarray(call, dtype=bool), (n,))
    w = np.ones(n) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), (n,))
    ok = np.isfinite(dv) & np.isfinite(ds) & np.isfinite(s) & np.isfinite(d) & np.isfinite(v) & np.isfinite(tau) & np.isfinite(w)
    ok &= (s > 0) & (tau > 0) & (w > 0)
    dv, ds, s, d, v, tau, c_flags, w = (a[ok] for a in (dv, ds, s, d, v, tau, c_flags, w))
    if dv.size < 3:
        raise ValueError(f"fit_minimum_variance needs at least 3 usable pairs, got {dv.size}")
    D = _call_delta(d, tau, c_flags, div)
    y = dv - d * ds
    base = v / np.sqrt(tau) * (ds / s)
    X = np.stack([base, base * D, base * D * D], axis=1)
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    resid = y - X @ coef
    dof = max(dv.size - 3, 1)
    sigma2 = float(np.sum(w * resid**2) / dof)
    try:
        cov = sigma2 * np.linalg.inv((X * w[:, None]).T @ X)
        se = tuple(float(x) for x in np.sqrt(np.clip(np.diag(cov), 0.0, None)))
    except np.linalg.LinAlgError:
        se = None
    sst = float(np.sum(w * (y - np.average(y, weights=w)) ** 2))
    r2 = 1.0 - float(np.sum(w * resid**2)) / sst if sst > 0 else None
    return MVCoefficients(float(coef[0]), float(coef[1]), float(coef[2]), int(dv.size), se, r2)  # type: ignore[arg-type]


# --- surfaces -----------------------------------------------------------------------------------------------


def is_surface(vol: Any) -> bool:
    """A surface, a (surface, group) pair, a sequence of them or a callable ``date_index -> surface``."""
    if callable(vol) and not hasattr(vol, "vol"):
        return True
    if _surface_item(vol) is not None:
        return True
    if isinstance(vol, Sequence) and not isinstance(vol, str | bytes) and len(vol) > 0:
        return _surface_item(vol[0]) is not None
    return False


def _surface_item(item: Any) -> tuple[Any, Any] | None:
    if hasattr(item, "vol") and callable(item.vol):
        return item, None
    if isinstance(item, tuple) and len(item) == 2 and hasattr(item[0], "vol") and callable(item[0].vol):
        return item
    return None


def _call_surface(fn: Callable[..., Any], group: Any, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
    out = fn(strike, tau) if group is None else fn(strike, tau, group=group)
    return np.asarray(out, dtype=np.float64).reshape(strike.shape)


def vol_and_slope(surface: Any, strike: Any, expiry_years: Any, group: Any = None, h: float = SLOPE_STEP) -> tuple[np.ndarray, np.ndarray]:
    """``(sigma, d sigma / dk)`` of ``surface`` at ``(strike, expiry_years)``, ``k = ln(K / F)``
    (at a fixed forward, ``d/dk = d/d ln K``): the surface's own ``dvol_dk`` where it has one, else
    ``(sigma(K e^h) - sigma(K e^-h)) / (2 h)`` (error h^2 sigma''' / 6: below 1e-7 for h = 1e-4 on a
    steep short-dated SVI skew, ~2e-8 in the tests)."""
    item = _surface_item(surface)
    if item is None:
        raise ValueError(f"{surface!r} is not a volatility surface (no .vol(strike, expiry_years) method)")
    s, g = item
    if group is not None:
        g = group
    K = np.atleast_1d(np.asarray(strike, dtype=np.float64))
    T = np.broadcast_to(np.asarray(expiry_years, dtype=np.float64), K.shape)
    K = np.broadcast_to(K, T.shape)
    vol = _call_surface(s.vol, g, K, T)
    if hasattr(s, "dvol_dk") and callable(s.dvol_dk):
        slope = _call_surface(s.dvol_dk, g, K, T)
    else:
        slope = (_call_surface(s.vol, g, K * math.exp(h), T) - _call_surface(s.vol, g, K * math.exp(-h), T)) / (2.0 * h)
    return vol, slope


def surface_vols(vol: Any, times: np.ndarray, strikes: Sequence[float], expiries: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(vols, slopes)``, each ``(n_times, n_options)``: per date ``k`` the surface of that date at
    every option's ``(strike, expiry - times[k])``, for dates before the option's expiry; later
    dates repeat the last one (they are never priced). Raises ValueError naming date and option
    where a vol is not finite and > 0 or a slope is not finite."""
    n_times, n_opt = times.size, len(strikes)
    if callable(vol) and not hasattr(vol, "vol"):
        get = vol
    elif _surface_item(vol) is not None:
        get = lambda k: vol  # noqa: E731
    else:
        if len(vol) != n_times:
            raise ValueError(f"vol is a sequence of {len(vol)} surfaces; the run has {n_times} dates (one surface per date)")
        get = vol.__getitem__
    K = np.asarray(strikes, dtype=np.float64)
    E = np.asarray(expiries, dtype=np.float64)
    vols = np.full((n_times, n_opt), np.nan)
    slopes = np.zeros((n_times, n_opt))
    for k in range(n_times):
        tau = E - times[k]
        alive = tau > 1e-12
        if not alive.any():
            continue
        surf = get(k)
        if _surface_item(surf) is None:
            raise ValueError(f"vol(date {k}) returned {surf!r}, not a volatility surface")
        v, sl = vol_and_slope(surf, K[alive], tau[alive])
        vols[k, alive], slopes[k, alive] = v, sl
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)) | ~np.isfinite(sl))
        if bad.size:
            j = int(np.flatnonzero(alive)[bad[0]])
            raise ValueError(
                f"the surface of date {k} gives vol {v[bad[0]]!r} (slope {sl[bad[0]]!r}) for options[{j}] at strike {K[j]!r}, "
                f"{tau[j]!r} years to expiry: a vol must be finite and > 0"
            )
    for j in range(n_opt):  # dates on or after expiry: carry the last vol (not priced)
        col = vols[:, j]
        last = np.nan
        for k in range(n_times):
            if np.isfinite(col[k]):
                last = col[k]
            else:
                col[k] = last if np.isfinite(last) else 1.0
                slopes[k, j] = 0.0
    return vols, slopes
