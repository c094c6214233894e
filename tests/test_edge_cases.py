"""Zero variance, zero strike, extreme moneyness and long expiries: limits, never NaN or overflow."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

import gpu_hedge
from gpu_hedge import GREEK_NAMES, to_numpy

LOGNORMAL = ("bsm", "black76")


def G(bk, *args, **kw):
    return {k: to_numpy(v) for k, v in gpu_hedge.greeks(*args, backend=bk, **kw).items()}


@pytest.mark.parametrize("model", LOGNORMAL + ("bachelier",))
def test_expiry_zero_is_intrinsic_with_limiting_greeks(bk, model):
    S = np.array([80.0, 120.0, 80.0, 120.0])
    call = np.array([True, True, False, False])
    g = G(bk, S, 100.0, 0.0, 0.3, 0.05, 0.02, call=call, model=model)
    np.testing.assert_array_equal(g["price"], [0.0, 20.0, 20.0, 0.0])
    np.testing.assert_array_equal(g["delta"], [0.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(g["dual_delta"], [0.0, -1.0, 1.0, 0.0])
    for name in ("gamma", "vega", "vanna", "volga", "speed", "zomma", "color", "ultima", "veta", "dual_gamma"):
        np.testing.assert_array_equal(g[name], 0.0, err_msg=name)
    for name in GREEK_NAMES:
        assert np.all(np.isfinite(g[name])), name
    # T -> 0 continuity: a minute before expiry the Greeks are already at their limits
    near = G(bk, S, 100.0, 1e-10, 0.3, 0.05, 0.02, call=call, model=model)
    for name in ("price", "delta", "gamma", "vega", "dual_delta"):
        np.testing.assert_allclose(near[name], g[name], atol=1e-8, err_msg=name)


@pytest.mark.parametrize("model", LOGNORMAL)
def test_vol_zero_is_discounted_forward_intrinsic(bk, model):
    S, K, T, r, q = np.array([90.0, 110.0]), 100.0, 2.0, 0.05, 0.01
    g = G(bk, S, K, T, 0.0, r, q, call=True, model=model, greeks=["price", "delta", "gamma", "theta", "rho"])
    Dq = np.exp(-q * T) if model == "bsm" else np.exp(-r * T)
    D = np.exp(-r * T)
    F = S * Dq / D
    np.testing.assert_allclose(g["price"], np.maximum(S * Dq - K * D, 0.0), rtol=1e-15)
    itm = F > K
    np.testing.assert_array_equal(g["delta"], np.where(itm, Dq, 0.0))
    np.testing.assert_array_equal(g["gamma"], 0.0)
    # theta of the discounted forward: d/dt (S Dq - K D) = q S Dq - r K D (bsm)
    if model == "bsm":
        np.testing.assert_allclose(g["theta"], np.where(itm, q * S * Dq - r * K * D, 0.0), rtol=1e-14)
        np.testing.assert_allclose(g["rho"], np.where(itm, K * T * D, 0.0), rtol=1e-14)
    # small-vol continuity
    small = G(bk, S, K, T, 1e-6, r, q, call=True, model=model, greeks=["price", "delta"])
    np.testing.assert_allclose(small["price"], g["price"], atol=1e-10)


def test_exactly_at_the_money_with_zero_variance(bk):
    g = G(bk, 100.0, 100.0, 0.0, 0.2, 0.0, call=True)
    assert g["price"] == 0.0 and g["delta"] == 0.5 and g["gamma"] == np.inf and g["vega"] == 0.0
    assert g["theta"] == -np.inf
    assert np.isnan(g["speed"])  # the limit depends on the path: documented NaN
    g = G(bk, 100.0, 100.0, 1.0, 0.0, 0.0, call=True)  # vol 0, T > 0: vega has a finite limit
    np.testing.assert_allclose(g["vega"], 100.0 / np.sqrt(2 * np.pi), rtol=1e-15)


@pytest.mark.parametrize("model", LOGNORMAL)
def test_strike_zero(bk, model):
    g = G(bk, 100.0, 0.0, 1.5, 0.3, 0.04, 0.01, call=np.array([True, False]), model=model)
    Dq = np.exp(-0.01 * 1.5) if model == "bsm" else np.exp(-0.04 * 1.5)
    np.testing.assert_allclose(g["price"], [100.0 * Dq, 0.0], rtol=1e-15)
    np.testing.assert_allclose(g["delta"], [Dq, 0.0], rtol=1e-15)
    for name in GREEK_NAMES:
        assert np.all(np.isfinite(g[name])), name


@pytest.mark.parametrize("model", LOGNORMAL)
def test_fifty_standard_deviations_either_way(bk, model):
    v = 0.2
    z = np.array([-50.0, -30.0, -10.0, 10.0, 30.0, 50.0])
    K = 100.0 * np.exp(z * v)  # T = 1: z standard deviations
    for call in (True, False):
        g = G(bk, 100.0, K, 1.0, v, 0.0, call=call, model=model)
        for name in GREEK_NAMES:
            assert np.all(np.isfinite(g[name])), (name, call)
        p = g["price"]
        assert np.all(p >= 0)
        intrinsic = np.maximum((100.0 - K) if call else (K - 100.0), 0.0)
        np.testing.assert_allclose(p, np.maximum(p, intrinsic), rtol=1e-15)
        itm = (K < 100.0) if call else (K > 100.0)
        np.testing.assert_allclose(p[itm], intrinsic[itm], rtol=1e-12)
        np.testing.assert_array_less(p[~itm], 1e-20)


def test_bachelier_negative_forward_and_strike(bk):
    F, K, T, vol = -0.5, -0.25, 2.0, 0.4
    g = G(bk, F, K, T, vol, 0.0, call=np.array([True, False]), model="bachelier")
    d = (F - K) / (vol * np.sqrt(T))
    expect_call = (F - K) * ndtr(d) + vol * np.sqrt(T) * np.exp(-0.5 * d * d) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(g["price"], [expect_call, expect_call - (F - K)], rtol=1e-14)


@pytest.mark.parametrize("model", LOGNORMAL + ("bachelier",))
def test_very_long_expiries(bk, model):
    T = np.array([50.0, 100.0, 1000.0])
    vol = 0.3 if model != "bachelier" else 30.0
    g = G(bk, 100.0, 100.0, T, vol, 0.01, 0.0, call=True, model=model)
    for name in GREEK_NAMES:
        assert np.all(np.isfinite(g[name])), name
    if model == "bsm":  # with q = 0 a call tends to the spot as T grows (K e^{-rT} N(d2) -> 0)
        assert 100.0 * (1 - 1e-6) < g["price"][-1] < 100.0


@pytest.mark.parametrize("model", LOGNORMAL + ("bachelier",))
def test_broadcasting(bk, model):
    S = np.array([[90.0], [100.0], [110.0]])
    K = np.array([95.0, 105.0])
    p = to_numpy(gpu_hedge.price(S, K, 1.0, 0.25 if model != "bachelier" else 20.0, 0.02, model=model, backend=bk))
    assert p.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            one = gpu_hedge.price(S[i, 0], K[j], 1.0, 0.25 if model != "bachelier" else 20.0, 0.02, model=model, backend=bk)
            np.testing.assert_allclose(p[i, j], to_numpy(one), rtol=4e-15)


@pytest.mark.parametrize("model", LOGNORMAL + ("bachelier",))
def test_one_degenerate_row_does_not_change_the_others(bk, model):
    """The zero-variance branch (taken when any row needs it) agrees exactly with the fast path."""
    rng = np.random.default_rng(4)
    S = rng.uniform(50.0, 150.0, 64)
    T = rng.uniform(0.1, 2.0, 64)
    vol = 0.3 if model != "bachelier" else 30.0
    fast = G(bk, S, 100.0, T, vol, 0.02, 0.01, model=model)
    T_mixed = T.copy()
    T_mixed[5] = 0.0
    mixed = G(bk, S, 100.0, T_mixed, vol, 0.02, 0.01, model=model)
    keep = np.arange(64) != 5
    rtol = 0.0 if bk == "numpy" else 1e-12  # XLA may fuse and reassociate the two programs differently
    for name in GREEK_NAMES:
        np.testing.assert_allclose(mixed[name][keep], fast[name][keep], rtol=rtol, atol=0, err_msg=name)
