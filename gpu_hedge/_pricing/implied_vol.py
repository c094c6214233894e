"""Implied volatility for bsm / black76 (lognormal) and bachelier (normal), vectorised and branch-free.

Lognormal models: P. Jäckel, "Let's Be Rational", Wilmott 2015 (see ``_normalised_black.py``).
Normal model: P. Jäckel, "Implied Normal Volatility", Wilmott 2017: a rational approximation of
the inverse of ``Phi~(x) = Phi(x) + phi(x)/x`` followed by two Householder(3) steps.

The kernels here are the reference every backend runs. A backend may run its own implementation
instead (``native=``:func:`native_request`; the NumPy backend's, float64 with Numba, is
``cpu_fallback._iv``): the same branches and status rules, option by option, each evaluating only its
own branch, with the constants, coefficient tables and status codes defined here and in
``_normalised_black`` handed over in the request; same status codes, vols equal to rounding.

Every result is either accurate or NaN with a status saying why (:class:`IVStatus`). A price is
*identifiable* when its vol is pinned down in the working precision: a relative change of 4 ulps
(``4 eps``) in the price moves the vol by at most ``VOL_TOL`` (1e-11 absolute for the lognormal
models, 1e-11 relative for bachelier, in float64; 1e-4 in float32), i.e.::

    4 eps * price + tiny <= VOL_TOL * vega          (lognormal;  bachelier: VOL_TOL * vol * vega)

with ``vega = dPrice/dvol`` at the solution and ``tiny`` the smallest normal number, so that
underflowing prices never count as identifiable. Identifiable prices come back to within about
ten times ``VOL_TOL`` (1e-10 in float64).
"""

from __future__ import annotations

import math
from enum import IntEnum
from functools import cache
from typing import Any

import numpy as np

from .._types import Array, ArrayLike, Model, OnInvalid
from . import _normalised_black as nb
from ._normalised_black import INV_SQRT2, INV_SQRT_2PI, SQRT_2PI, SQRT_PI_OVER_2, horner, implied_total_vol, limits
from .american_iv import american_implied_vol
from .api import _scatter, check_exercise, checked_inputs, take_rows
from .dividend_iv import dividend_implied_vol
from .dividends import DEFAULT_VOL_ADJUST, VOL_ADJUSTS, DividendSchedule, check_dividends, dividend_rows


class IVStatus(IntEnum):
    """Why :func:`implied_vol` returned what it did (the ``status`` array holds these as int8).

    - ``OK``: the vol is accurate (|error| <= 1e-10, relative for bachelier, in float64).
    - ``BELOW_INTRINSIC``: the price is below the discounted intrinsic value by more than 4 ulps of
      ``D * max(F, K)`` (below 0 when the intrinsic value is 0); no vol gives it. Vol is NaN.
    - ``ABOVE_MAX``: (bsm, black76) the price is above the no-arbitrage bound, the discounted
      forward for a call or the discounted strike for a put, by more than a few ulps. Vol is NaN.
    - ``NOT_IDENTIFIABLE``: the price is attainable but does not pin the vol down: zero time value
      (price within the tolerance of intrinsic), expiry 0, strike 0 (lognormal), a price at the upper
      bound, a vega too small for the identifiability rule in the module docstring (deep in the
      money, vol near infinity, prices that underflow), ``|ln(F/K)|`` beyond the dtype's exponent
      range, or (a safeguard) a last Householder step too large to certify convergence. Vol is NaN.
    - ``INVALID_INPUT``: with ``on_invalid="nan"``, a row whose inputs fail validation. Vol is NaN.
    """

    OK = 0
    BELOW_INTRINSIC = 1
    ABOVE_MAX = 2
    NOT_IDENTIFIABLE = 3
    INVALID_INPUT = 4


#: Last Householder step, relative, above which a result is not trusted (observed: < 1e-4).
CONVERGED = 1e-3


def vol_tol(eps: float) -> float:
    """Vol change allowed for a 4-ulp price change (the identifiability rule): 1e-11 in float64, 1e-4 in float32."""
    return 1e-11 if eps < 1e-10 else 1e-4


def _status(xp: Any, below: Any, above: Any, ok: Any) -> Any:
    return xp.where(
        below, float(IVStatus.BELOW_INTRINSIC),
        xp.where(above, float(IVStatus.ABOVE_MAX), xp.where(ok, float(IVStatus.OK), float(IVStatus.NOT_IDENTIFIABLE))),
    )  # fmt: skip


def lognormal_kernel(model: str):
    """``kernel(xp, special, S, K, T, price, r, q, phi) -> {"vol", "status"}`` for bsm or black76."""
    forward_input = model == "black76"

    def kernel(xp: Any, sp: Any, S: Any, K: Any, T: Any, P: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        fi = xp.finfo(P.dtype)
        eps, tiny = float(fi.eps), float(fi.tiny)
        x_max = limits(xp, P.dtype)[0]
        carry = 0.0 if forward_input else r - q
        F = S * xp.exp(carry * T)
        D = xp.exp(-r * T)
        # Bounds in price space: [D * intrinsic, D * (F for a call, K for a put)].
        itm = phi * (F - K) > 0
        slack = xp.where(itm, 4.0 * eps * D * xp.maximum(F, K), 0.0)  # rounding of F - K
        below = P < D * xp.where(itm, phi * (F - K), 0.0) - slack
        cap = D * xp.where(phi > 0, F, K)
        above = P > cap * (1.0 + 8.0 * eps) + slack
        # Normalised out-of-the-money problem: x = ln(F/K) <= 0, beta = time value / (D sqrt(F K)).
        Ks = xp.where(K > 0, K, 1.0)
        x = xp.log(S / Ks) + carry * T
        ax = xp.abs(x)
        norm = xp.exp(r * T - 0.5 * carry * T) / (xp.sqrt(S) * xp.sqrt(Ks))  # 1 / (D sqrt(F K))
        beta = P * norm
        intrinsic = xp.expm1(0.5 * ax) - xp.expm1(-0.5 * ax)  # 2 sinh(|x|/2), accurate near the money
        beta_otm = xp.where(phi * x > 0, beta - intrinsic, beta)
        solvable = (T > 0) & (K > 0) & (ax <= x_max) & (beta_otm > 0) & (beta_otm < xp.exp(-0.5 * ax))
        solvable = solvable & ~below & ~above
        xs = xp.where(solvable, -ax, -1.0)  # stand-ins keep the other lanes finite
        s, ds, vega = implied_total_vol(xp, sp, xp.where(solvable, beta_otm, 0.1), xs)
        sqrtT = xp.sqrt(xp.where(T > 0, T, 1.0))
        vol = s / sqrtT
        identifiable = (4.0 * eps * P + tiny) * norm <= vol_tol(eps) * sqrtT * vega
        ok = solvable & identifiable & (xp.abs(ds) <= CONVERGED * s) & xp.isfinite(vol)
        return {"vol": xp.where(ok, vol, math.nan), "status": _status(xp, below, above, ok)}

    return kernel


# Jäckel (2017), Implied Normal Volatility: x_bar ~ Phi~^{-1}(-ratio) in two regions, split at ratio = -_NEAR:
# far, g (1/sqrt(2 pi) + g^2 FAR_NUM(g^2) / FAR_DEN(g^2)) with g = 1 / (-ratio - 1/2); near, NEAR_NUM(hq) /
# NEAR_DEN(hq) with hq = sqrt(-ln ratio); coefficients lowest order first.
_NEAR = -0.001882039271
FAR_NUM = (0.032114372355, -0.016969777977, 2.6207332461e-3, -9.6066952861e-5)
FAR_DEN = (1.0, -0.6635646938, 0.14528712196, -0.010472855461)
NEAR_NUM = (9.4883409779, -9.6320903635, 0.58556997323, 2.1464093351)
NEAR_DEN = (1.0, -0.65174820867, -1.5120247828, -6.6437847132e-5)


def bachelier_kernel(model: str):
    """``kernel(xp, special, F, K, T, price, r, q, phi) -> {"vol", "status"}`` for the normal model."""

    def kernel(xp: Any, sp: Any, F: Any, K: Any, T: Any, P: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        fi = xp.finfo(P.dtype)
        eps, tiny = float(fi.eps), float(fi.tiny)
        Pf = P * xp.exp(r * T)  # undiscounted
        delta = F - K
        ad = xp.abs(delta)
        itm = phi * delta > 0
        slack = xp.where(itm, 4.0 * eps * xp.maximum(xp.abs(F), xp.abs(K)), 0.0)
        tv = Pf - xp.where(itm, ad, 0.0)
        below = tv < -slack
        solvable = (T > 0) & (tv > 0) & ~below
        atm = ad == 0
        # ratio = time value / |F - K| = -Phi~(x*), x* = -|F - K| / v < 0.
        ratio = xp.where(solvable & ~atm, tv, 0.1) / xp.where(solvable & ~atm, ad, 1.0)
        far = ratio > -_NEAR
        g = 1.0 / (-xp.where(far, ratio, 1.0) - 0.5)
        g2 = g * g
        x_far = g * (INV_SQRT_2PI + horner(FAR_NUM, g2) / horner(FAR_DEN, g2) * g2)
        hq = xp.sqrt(-xp.log(xp.where(far, 1e-3, ratio)))
        x_near = horner(NEAR_NUM, hq) / horner(NEAR_DEN, hq)
        xb = xp.minimum(xp.where(far, x_far, x_near), -tiny)
        ln_ratio = xp.log(ratio)
        step = xp.zeros_like(xb)
        for _ in range(2):
            # q = (Phi~(xb) + ratio) / phi(xb), each term scaled by 1/phi(xb) so nothing under- or overflows.
            q = SQRT_PI_OVER_2 * sp.erfcx(-INV_SQRT2 * xb) + 1.0 / xb
            q = q + SQRT_2PI * xp.exp(xp.minimum(ln_ratio + 0.5 * xb * xb, 700.0))
            x2 = xb * xb
            step = (
                3.0 * q * x2 * (2.0 - q * xb * (2.0 + x2)) / (6.0 + q * xb * (-12.0 + xb * (6.0 * q + xb * (-6.0 + q * xb * (3.0 + x2)))))
            )
            xb = xp.minimum(xb + step, -tiny)
        v = xp.where(atm, SQRT_2PI * tv, ad / -xb)
        sqrtT = xp.sqrt(xp.where(T > 0, T, 1.0))
        vol = v / sqrtT
        d = xp.where(atm, 0.0, xb)
        identifiable = 4.0 * eps * xp.abs(Pf) + tiny <= vol_tol(eps) * v * INV_SQRT_2PI * xp.exp(-0.5 * d * d)
        converged = atm | (xp.abs(step) <= CONVERGED * -xb)
        ok = solvable & identifiable & converged & xp.isfinite(vol) & (vol > 0)
        return {"vol": xp.where(ok, vol, math.nan), "status": _status(xp, below, xp.zeros_like(below), ok)}

    return kernel


@cache
def native_request(model: str) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
    """``Backend.elementwise``'s ``native=`` for ``model``'s kernel: ``("implied_vol", model, constants)``.

    ``constants`` are ``(name, value)`` pairs (floats, or tuples of floats for coefficient tables), for
    float64: everything the kernel's formulas take from this module and ``_normalised_black`` (the status
    codes, the convergence and identifiability thresholds, the solver's limits, region bounds and
    series coefficients), so that a backend's own kernel defines none of them again.
    """
    status = {f"status_{c.name.lower()}": float(c) for c in IVStatus}
    roots = {"sqrt_2pi": SQRT_2PI, "inv_sqrt_2pi": INV_SQRT_2PI, "sqrt_pi_over_2": SQRT_PI_OVER_2, "inv_sqrt2": INV_SQRT2}
    common = {**status, **roots, "converged": CONVERGED, "vol_tol": vol_tol(float(np.finfo(np.float64).eps))}
    if model == "bachelier":
        own = {"near": _NEAR, "far_num": FAR_NUM, "far_den": FAR_DEN, "near_num": NEAR_NUM, "near_den": NEAR_DEN}
    else:
        x_max, s_min, s_max = limits(np, np.float64)
        own = {
            "x_max": x_max, "s_min": s_min, "s_max": s_max, "eta": nb.ETA, "tau": nb.TAU, "rc_min": nb.RC_MIN,
            "rc_max": nb.RC_MAX, "sqrt3": nb.SQRT3, "two_pi_over_sqrt27": nb.TWO_PI_OVER_SQRT27,
            "asymptotic": tuple(tuple(row) for row in nb.ASYMPTOTIC), "small_t": nb.SMALL_T,
        }  # fmt: skip
    return ("implied_vol", model, tuple({**common, **own}.items()))


def implied_vol(
    price: ArrayLike, spot: ArrayLike, strike: ArrayLike, expiry: ArrayLike, rate: ArrayLike = 0.0, div: ArrayLike = 0.0, *,
    call: Any = True, model: Model = "bsm", backend: Any = "auto", dtype: Any = "float64", return_status: bool = False,
    on_invalid: OnInvalid = "raise", exercise: Any = "european", method: str = "alo", dividends: Any = None,
    vol_adjust: str = DEFAULT_VOL_ADJUST,
) -> Array | tuple[Array, Array]:  # fmt: skip
    """Implied volatility of European or American option prices, as an array on the chosen backend.

    Inverts :func:`gpu_hedge.price` in ``vol`` with the same models and conventions: ``"bsm"``
    (``spot`` with continuous yield ``div``), ``"black76"`` (``spot`` is the forward), ``"bachelier"``
    (``spot`` is the forward, the result is the normal vol; negative forwards and strikes allowed).
    ``price`` is the discounted option price in currency; inputs broadcast; ``expiry`` in years,
    rates as decimals. Method: Jäckel's "Let's Be Rational" (lognormal) and "Implied Normal
    Volatility" (bachelier), vectorised and branch-free with a fixed number of steps.

    Where the vol cannot be recovered accurately the result is NaN, never a wrong number:
    ``return_status=True`` also returns an int8 array of :class:`IVStatus` codes saying why.
    Identifiable prices (a 4-ulp price change moves the vol by < 1e-11; see :class:`IVStatus`)
    come back to 1e-10 (absolute, or relative for bachelier) in float64. Invalid inputs raise
    ValueError naming argument, index and value, or with ``on_invalid="nan"`` give NaN and
    ``INVALID_INPUT`` in those rows. Inputs are taken as stated or refused as for :func:`gpu_hedge.greeks`
    (no bools or strings as numbers; a timedelta ``expiry`` is years ACT/365, a date is refused).

    ``exercise="american"`` (or a per-row array of "european" / "american"; bsm and black76) inverts
    the American price (Andersen-Lake-Offengelt, ``method="alo"``, ``"alo-fast"`` or ``"alo-reference"``) by a
    safeguarded secant started from the European implied vol (:mod:`.american_iv`): OK rows are
    accurate to about 1e-9; a price at its intrinsic value (no time value) is ``NOT_IDENTIFIABLE``.

    ``dividends`` (bsm; the schedule forms of :func:`gpu_hedge.greeks`) inverts the escrowed-dividend
    price with the same ``vol_adjust``: the returned vol is the one :func:`gpu_hedge.price` with
    these ``dividends`` takes back to ``price`` (European rows exactly, American rows by the secant
    on the Crank-Nicolson price, :mod:`.dividend_iv`); rows without a dividend before expiry as above.

    >>> p = 10.450583572185565  # bsm call, S = K = 100, T = 1, vol = 0.2, r = 0.05
    >>> vol, status = implied_vol([p, 1.0], 100.0, 100.0, 1.0, 0.05, backend="numpy", return_status=True)
    >>> round(float(vol[0]), 12), [IVStatus(int(c)).name for c in status]
    (0.2, ['OK', 'BELOW_INTRINSIC'])
    """
    bk, dt, chk = checked_inputs(model, dtype, backend, (spot, strike, expiry, price, rate, div), call, on_invalid, quote="price")
    ex = check_exercise(exercise, chk.shape, model)
    make = bachelier_kernel if model == "bachelier" else lognormal_kernel
    key = ("implied_vol", model, str(dt))

    def european(arrays: list[Any]) -> dict[str, Any]:
        return bk.elementwise(make(model), arrays, ("vol", "status"), dt, key=key, native=native_request(model))

    out = european(chk.arrays)
    xp = bk.xp
    vol, status = out["vol"], out["status"]
    paying = None
    if dividends is not None:
        schedule, paying = _paying(bk, chk, dividends, vol_adjust, model)
        if ex is not None and paying.any():  # American rows with a dividend: the grid's secant below, not ALO's here
            am = np.broadcast_to(np.asarray(ex, dtype=bool), chk.shape) & ~paying.reshape(chk.shape)
            ex_alo = am if am.any() else None
        else:
            ex_alo = ex
    else:
        ex_alo = ex
    if ex_alo is not None:
        a = chk.arrays

        def euro_iv(p: Any) -> Any:
            return european([a[0], a[1], a[2], p, a[4], a[5], a[6]])["vol"]

        am_vol, am_status = american_implied_vol(bk, chk.arrays[:7], euro_iv, dt, model=model, method=method, status_codes=IVStatus)
        if ex_alo is True:
            vol, status = am_vol, am_status
        else:
            mask = bk.asarray(ex_alo)
            vol, status = xp.where(mask, am_vol, vol), xp.where(mask, am_status, status)
    if paying is not None and paying.any():
        vol, status = _with_dividends(bk, chk, european, ex, schedule, paying, vol_adjust, dt, vol, status)
    if chk.invalid is not None:
        vol = xp.where(chk.invalid, math.nan, vol)
        status = xp.where(chk.invalid, float(IVStatus.INVALID_INPUT), status)
    status = xp.astype(status, xp.int8)
    return (vol, status) if return_status else vol


def _paying(bk: Any, chk: Any, dividends: Any, vol_adjust: str, model: str) -> tuple[DividendSchedule | None, np.ndarray]:
    """The checked schedule and the host mask (flat) of the rows that pay a dividend before expiry."""
    if model != "bsm":
        raise ValueError(f"dividends= needs model='bsm' (a spot price with cash dividends); got model={model!r}")
    if vol_adjust not in VOL_ADJUSTS:
        raise ValueError(f"unknown vol_adjust {vol_adjust!r}; expected one of {', '.join(VOL_ADJUSTS)}")
    schedule = check_dividends(dividends, chk.shape)
    T = np.broadcast_to(np.asarray(bk.to_numpy(chk.arrays[2]), dtype=np.float64), chk.shape).reshape(-1)
    return schedule, dividend_rows(T, schedule)


def _with_dividends(
    bk: Any, chk: Any, european: Any, ex: Any, schedule: DividendSchedule, paying: np.ndarray, vol_adjust: str, dt: Any,
    vol: Any, status: Any,
) -> tuple[Any, Any]:  # fmt: skip
    """``(vol, status)`` with the rows that pay a dividend before expiry inverted on the escrowed model."""
    size = int(np.prod(chk.shape))
    american = np.zeros(size, dtype=bool) if ex is None else np.broadcast_to(np.asarray(ex, dtype=bool), chk.shape).reshape(-1)
    idx = np.flatnonzero(paying)
    take = bk.asarray(idx)
    flat = take_rows(bk, chk.arrays[:7], chk.shape, take)
    got_vol, got_status = dividend_implied_vol(
        bk, flat, schedule.take(idx), american[idx], european, dt, vol_adjust=vol_adjust, status_codes=IVStatus
    )
    return _scatter(bk, vol, take, got_vol, chk.shape, dt), _scatter(bk, status, take, got_status, chk.shape, status.dtype)
