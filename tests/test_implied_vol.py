"""Implied volatility: accurate where the price pins the vol down, NaN with a reason everywhere else.

References are prices computed in 40-digit mpmath from the true vol and rounded once to float64, so
the vol that reproduces each price exactly is the true vol to within half an ulp of the price.
"Identifiable" is the rule in ``gpu_hedge._pricing.implied_vol``: a 4-ulp relative change in the
price moves the vol by at most 1e-11 (absolute for bsm/black76, relative for bachelier); here it
is evaluated from the reference vega, independently of the solver.
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
from scipy.optimize import brentq

import gpu_hedge as gh
from gpu_hedge import IVStatus

EPS = 2.0**-52
TINY = 2.2250738585072014e-308
RATE, DIV = 0.03, 0.01
EXPIRIES = (1 / 365, 0.02, 0.1, 0.5, 1.0, 3.0, 10.0, 30.0)


def _mp_lognormal(model, S, K, T, vol, call):
    S, K, T, vol, r, q = map(mpmath.mpf, (S, K, T, vol, RATE, DIV if model == "bsm" else 0.0))
    F = S * mpmath.exp((r - q) * T) if model == "bsm" else S
    D = mpmath.exp(-r * T)
    sd = vol * mpmath.sqrt(T)
    d1 = mpmath.log(F / K) / sd + sd / 2
    d2 = d1 - sd
    if call:
        p = D * (F * mpmath.ncdf(d1) - K * mpmath.ncdf(d2))
    else:
        p = D * (K * mpmath.ncdf(-d2) - F * mpmath.ncdf(-d1))
    return float(p), float(D * F * mpmath.npdf(d1) * mpmath.sqrt(T))


def _mp_bachelier(F, K, T, vol, call):
    F, K, T, vol, r = map(mpmath.mpf, (F, K, T, vol, RATE))
    D = mpmath.exp(-r * T)
    sd = vol * mpmath.sqrt(T)
    d = (F - K) / sd
    w = 1 if call else -1
    p = D * (w * (F - K) * mpmath.ncdf(w * d) + sd * mpmath.npdf(d))
    return float(p), float(D * mpmath.sqrt(T) * mpmath.npdf(d))


@functools.cache
def lognormal_grid(model):
    """8 expiries (1 day..30 y) x 8 vols (1 %..500 %) x 29 moneyness levels (-12..12 sd, +-20, +-35 sd,
    |ln F/K| capped at 300) x call/put: 3712 options, prices from mpmath."""
    vols = (0.01, 0.03, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    sds = np.concatenate([np.linspace(-12, 12, 25), [-35, -20, 20, 35]])
    T, V, Z, C = (a.ravel() for a in np.meshgrid(EXPIRIES, vols, sds, [True, False], indexing="ij"))
    S = 100.0
    F = S * np.exp((RATE - DIV) * T) if model == "bsm" else np.full_like(T, S)
    K = F * np.exp(np.clip(Z * V * np.sqrt(T), -300, 300))
    mpmath.mp.dps = 40
    P, vega = np.array([_mp_lognormal(model, S, k, t, v, c) for k, t, v, c in zip(K, T, V, C, strict=True)]).T
    return S, K, T, V, C, P, 4 * EPS * P + TINY <= 1e-11 * vega


@functools.cache
def bachelier_grid():
    """8 expiries x 7 normal vols (1e-4..50) x 29 moneyness levels x call/put x forwards -0.5, 0, 2: 9744 options."""
    vols = (1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0, 50.0)
    sds = np.concatenate([np.linspace(-12, 12, 25), [-35, -20, 20, 35]])
    T, V, Z, C, F = (a.ravel() for a in np.meshgrid(EXPIRIES, vols, sds, [True, False], [-0.5, 0.0, 2.0], indexing="ij"))
    K = F - Z * V * np.sqrt(T)
    mpmath.mp.dps = 40
    P, vega = np.array([_mp_bachelier(f, k, t, v, c) for f, k, t, v, c in zip(F, K, T, V, C, strict=True)]).T
    return F, K, T, V, C, P, 4 * EPS * P + TINY <= 1e-11 * V * vega


def _solve(bk, P, S, K, T, C, model, **kw):
    rate, div = (RATE, DIV) if model == "bsm" else (RATE, 0.0)
    vol, status = gh.implied_vol(P, S, K, T, rate, div, call=C, model=model, backend=bk, return_status=True, **kw)
    return gh.to_numpy(vol), gh.to_numpy(status)


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_lognormal_grid_is_accurate_or_not_identifiable(bk, model):
    """All 2288 identifiable grid points within 1e-10 of the true vol (worst seen: 1.5e-11); the
    other 1424 (deep in the money, vol -> infinity, underflowing prices) NaN + NOT_IDENTIFIABLE."""
    S, K, T, V, C, P, identifiable = lognormal_grid(model)
    vol, status = _solve(bk, P, S, K, T, C, model)
    ok = status == IVStatus.OK
    assert np.all(np.abs(vol[ok] - V[ok]) <= 1e-10)
    assert np.all(np.isnan(vol[~ok])) and np.all(status[~ok] == IVStatus.NOT_IDENTIFIABLE)
    assert np.array_equal(ok, identifiable)
    assert (int(ok.sum()), int((~ok).sum())) == (2288, 1424)


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_lognormal_round_trip_reprices(bk, model):
    """price -> vol -> price within 6 sd of the forward (further out gpu_hedge.price itself, a difference
    of two tiny legs, is only accurate relative to the spot, not to the price)."""
    S, K, T, V, C, P, _ = lognormal_grid(model)
    vol, status = _solve(bk, P, S, K, T, C, model)
    div = DIV if model == "bsm" else 0.0
    F = S * np.exp((RATE - div) * T) if model == "bsm" else S
    near = (status == IVStatus.OK) & (np.abs(np.log(F / K)) <= 6 * V * np.sqrt(T))
    again = gh.to_numpy(gh.price(S, K[near], T[near], vol[near], RATE, div, call=C[near], model=model, backend=bk))
    greeks = gh.greeks(S, K[near], T[near], V[near], RATE, div, call=C[near], model=model, greeks="vega", backend="numpy")
    assert near.sum() > 1000
    assert np.all(np.abs(again - P[near]) <= 1e-10 * gh.to_numpy(greeks["vega"]) + 64 * EPS * P[near])


def test_bachelier_grid_is_accurate_or_not_identifiable(bk):
    """Normal vols 1e-4..50, forwards -0.5, 0 and 2: all 6048 identifiable points within 1e-10
    relative (worst seen: 1.5e-13); the other 3696 NaN + NOT_IDENTIFIABLE."""
    F, K, T, V, C, P, identifiable = bachelier_grid()
    vol, status = _solve(bk, P, F, K, T, C, "bachelier")
    ok = status == IVStatus.OK
    assert np.all(np.abs(vol[ok] / V[ok] - 1) <= 1e-10)
    assert np.all(np.isnan(vol[~ok])) and np.all(status[~ok] == IVStatus.NOT_IDENTIFIABLE)
    assert np.array_equal(ok, identifiable)
    assert (int(ok.sum()), int((~ok).sum())) == (6048, 3696)


@pytest.mark.parametrize(
    ("S", "K", "T", "vol", "call"),
    [(100.0, 100.0, 1.0, 0.2, True), (100.0, 80.0, 0.25, 0.35, False), (50.0, 70.0, 2.0, 0.6, True), (100.0, 110.0, 0.05, 0.15, False)],
)
def test_matches_brentq_on_price(bk, S, K, T, vol, call):
    p = float(gh.price(S, K, T, vol, RATE, DIV, call=call, backend="numpy"))
    ref = brentq(lambda v: float(gh.price(S, K, T, v, RATE, DIV, call=call, backend="numpy")) - p, 1e-3, 5.0, xtol=1e-15, rtol=1e-15)
    assert abs(float(gh.implied_vol(p, S, K, T, RATE, DIV, call=call, backend=bk)) - ref) <= 1e-10


def test_bachelier_matches_brentq_with_negative_forward(bk):
    F, K, T = -0.25, -0.5, 2.0
    p = float(gh.price(F, K, T, 0.4, RATE, model="bachelier", call=False, backend="numpy"))
    ref = brentq(lambda v: float(gh.price(F, K, T, v, RATE, model="bachelier", call=False, backend="numpy")) - p, 1e-3, 5.0, xtol=1e-15)
    got = float(gh.implied_vol(p, F, K, T, RATE, model="bachelier", call=False, backend=bk))
    assert abs(got / ref - 1) <= 1e-10


def _status_of(bk, price, S, K, T, call=True, model="bsm", **kw):
    # Rows are padded to 8 with a plain option so that every status test shares one JAX compilation.
    args = np.broadcast_arrays(np.asarray(price, float), np.asarray(S, float), np.asarray(K, float), np.asarray(T, float), np.asarray(call))
    n = args[0].size
    pad = (10.0, 100.0, 100.0, 1.0, True)
    price, S, K, T, call = (np.concatenate([a.ravel(), np.full(8 - n, p, dtype=a.dtype)]) for a, p in zip(args, pad, strict=True))
    vol, status = gh.implied_vol(price, S, K, T, 0.05, call=call, model=model, backend=bk, return_status=True, **kw)
    vol, status = gh.to_numpy(vol), gh.to_numpy(status)
    assert status.dtype == np.int8
    return [IVStatus(int(c)) for c in status[:n]], vol[:n]


def test_status_below_intrinsic_and_negative_price(bk):
    intrinsic = 120.0 - 100.0 * math.exp(-0.05)
    codes, vol = _status_of(bk, [intrinsic - 1e-6, -1e-12, -1.0], 120.0, 100.0, 1.0, call=[True, False, True])
    assert codes == [IVStatus.BELOW_INTRINSIC] * 3 and np.all(np.isnan(vol))


def test_status_above_max(bk):
    # A call is worth at most the discounted forward (here S), a put the discounted strike.
    codes, vol = _status_of(bk, [100.5, 100.0 * math.exp(-0.05) + 1e-9], 100.0, 100.0, 1.0, call=[True, False])
    assert codes == [IVStatus.ABOVE_MAX] * 2 and np.all(np.isnan(vol))


def test_status_at_intrinsic_expiry_zero_and_upper_bound_not_identifiable(bk):
    intrinsic = 120.0 - 100.0 * math.exp(-0.05)
    # exactly intrinsic; expiry 0 (above intrinsic 20); at the upper bound S; OTM at 0; strike 0 at S; strike 0 below S
    prices = [intrinsic, 25.0, 120.0, 0.0, 120.0, 3.0]
    codes, vol = _status_of(bk, prices, 120.0, [100.0, 100.0, 90.0, 150.0, 0.0, 0.0], [1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    assert codes == [IVStatus.NOT_IDENTIFIABLE] * 5 + [IVStatus.BELOW_INTRINSIC]
    assert np.all(np.isnan(vol))


def test_status_bachelier_has_no_upper_bound(bk):
    codes, vol = _status_of(bk, [1e6, 0.1, 0.2], -0.5, [0.0, 0.0, -1.0], 1.0, call=[True, True, True], model="bachelier")
    assert codes == [IVStatus.OK, IVStatus.OK, IVStatus.BELOW_INTRINSIC]
    assert np.isfinite(vol[:2]).all() and np.isnan(vol[2])


def test_invalid_rows_nan_or_raise(bk):
    codes, vol = _status_of(bk, [float("nan"), 10.0, 10.0], [100.0, -1.0, 100.0], 100.0, 1.0, on_invalid="nan")
    assert codes == [IVStatus.INVALID_INPUT, IVStatus.INVALID_INPUT, IVStatus.OK]
    assert np.isnan(vol[:2]).all() and np.isfinite(vol[2])
    with pytest.raises(ValueError, match=r"price\[1\] = nan .*finite"):
        gh.implied_vol([10.0, float("nan")], 100.0, 100.0, 1.0, backend=bk)


def test_backends_agree(bk):
    """To 1e-13 where the vol is well conditioned; near the identifiability limit the backends' special
    functions differ by ulps, which the conditioning magnifies, so there within 10x the 4-ulp sensitivity."""
    rng = np.random.default_rng(7)
    n = 4000
    T = np.exp(rng.uniform(np.log(1 / 365), np.log(30), n))
    V = np.exp(rng.uniform(np.log(0.01), np.log(5), n))
    K = 100.0 * np.exp(rng.uniform(-8, 8, n) * V * np.sqrt(T))
    C = rng.random(n) < 0.5
    P = gh.to_numpy(gh.price(100.0, K, T, V, RATE, DIV, call=C, backend="numpy"))
    vega = gh.to_numpy(gh.greeks(100.0, K, T, V, RATE, DIV, call=C, greeks="vega", backend="numpy")["vega"])
    sensitivity = 4 * EPS * P / np.maximum(vega, 1e-300)
    ref_vol, ref_status = _solve("numpy", P, 100.0, K, T, C, "bsm")
    vol, status = _solve(bk, P, 100.0, K, T, C, "bsm")
    assert np.array_equal(status, ref_status)
    ok = status == IVStatus.OK
    assert np.all(np.abs(vol[ok] - ref_vol[ok]) <= np.maximum(1e-13, 10 * sensitivity[ok]))
    assert np.isnan(vol[~ok]).all() and np.isnan(ref_vol[~ok]).all()


def test_float32_is_sane(bk):
    K = np.array([80.0, 100.0, 120.0])
    P = gh.to_numpy(gh.price(100.0, K, 1.0, 0.25, RATE, DIV, backend="numpy"))
    vol, status = gh.implied_vol(P, 100.0, K, 1.0, RATE, DIV, backend=bk, dtype="float32", return_status=True)
    vol = gh.to_numpy(vol)
    assert vol.dtype == np.float32 and np.all(gh.to_numpy(status) == IVStatus.OK)
    assert np.allclose(vol, 0.25, rtol=1e-3)


def test_put_and_call_give_the_same_vol(bk):
    K = np.linspace(60.0, 170.0, 8)
    calls = gh.price(100.0, K, 2.0, 0.3, RATE, DIV, call=True, backend="numpy")
    puts = gh.price(100.0, K, 2.0, 0.3, RATE, DIV, call=False, backend="numpy")
    vc = gh.to_numpy(gh.implied_vol(calls, 100.0, K, 2.0, RATE, DIV, call=True, backend=bk))
    vp = gh.to_numpy(gh.implied_vol(puts, 100.0, K, 2.0, RATE, DIV, call="put", backend=bk))
    assert np.allclose(vc, 0.3, atol=1e-12) and np.allclose(vp, 0.3, atol=1e-12)


def test_broadcasts_and_returns_vol_only_by_default(bk):
    P = gh.price(100.0, [[90.0], [110.0]], [0.5, 1.0, 2.0], 0.2, backend="numpy")
    vol = gh.implied_vol(P, 100.0, [[90.0], [110.0]], [0.5, 1.0, 2.0], backend=bk)
    assert gh.to_numpy(vol).shape == (2, 3) and np.allclose(gh.to_numpy(vol), 0.2, atol=1e-12)
