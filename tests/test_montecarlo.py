"""Monte Carlo prices (European, arithmetic Asian, discrete up-and-out) and pathwise Greeks.

References: Black-Scholes Greeks (the closed forms, tested elsewhere against mpmath), the semi-analytic
model prices (tested against mpmath quadrature and the Merton series), an independent closed form
for the continuously monitored up-and-out call (Merton 1973 / Reiner-Rubinstein 1991, as in Haug's
book) with the Broadie-Glasserman-Kou continuity correction, exact zero-vol limits, and finite
differences of Monte Carlo prices under common random numbers (same seed, same shocks).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import norm

import gpu_hedge
from gpu_hedge import GBM, Heston, Merton, mc_greeks, mc_price, model_price

GBM_RN = GBM(100.0, 0.25, rate=0.04, div=0.01)
HESTON = Heston(100.0, 0.04, 1.5, 0.04, 0.5, -0.7, rate=0.03, div=0.01)
MERTON = Merton(100.0, 0.2, 0.5, -0.1, 0.15, rate=0.03, div=0.01)
STRIKES = np.array([85.0, 100.0, 115.0])
N = 100_000

needs_jax = pytest.mark.skipif("jax" not in gpu_hedge.available_backends(), reason="JAX not installed")


def _within(estimate, se, target, k=3.0, extra=0.0):
    estimate, se, target = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (estimate, se, target)))
    gap = np.abs(estimate - target)
    assert np.all(gap <= k * se + extra), f"{estimate} vs {target}: {gap / se} s.e."


def up_and_out_call(s, k, h, t, vol, r, q):
    """Continuously monitored up-and-out call, no rebate, K < H (Haug 2007, 'standard barrier options':
    A - B + C - D with phi = 1, eta = -1), written independently of the package."""
    b = r - q
    srt = vol * math.sqrt(t)
    mu = (b - 0.5 * vol**2) / vol**2
    x1 = math.log(s / k) / srt + (1 + mu) * srt
    x2 = math.log(s / h) / srt + (1 + mu) * srt
    y1 = math.log(h * h / (s * k)) / srt + (1 + mu) * srt
    y2 = math.log(h / s) / srt + (1 + mu) * srt
    fwd, disc = s * math.exp((b - r) * t), k * math.exp(-r * t)
    a_ = fwd * norm.cdf(x1) - disc * norm.cdf(x1 - srt)
    b_ = fwd * norm.cdf(x2) - disc * norm.cdf(x2 - srt)
    c_ = fwd * (h / s) ** (2 * (mu + 1)) * norm.cdf(-y1) - disc * (h / s) ** (2 * mu) * norm.cdf(-y1 + srt)
    d_ = fwd * (h / s) ** (2 * (mu + 1)) * norm.cdf(-y2) - disc * (h / s) ** (2 * mu) * norm.cdf(-y2 + srt)
    return a_ - b_ + c_ - d_


# --- prices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "n_steps", "call"), [(GBM_RN, 1, True), (GBM_RN, 1, False), (MERTON, 2, True), (HESTON, 25, False)])
def test_european_prices_match_the_model_pricers(bk, model, n_steps, call):
    r = mc_price(model, strike=STRIKES, expiry=1.0, call=call, n_paths=N, n_steps=n_steps, seed=21, backend=bk)
    assert r.price.shape == r.stderr.shape == STRIKES.shape and r.n_paths == N
    _within(r.price, r.stderr, model_price(model, STRIKES, 1.0, call=call))
    assert np.all(r.stderr < 0.01 * model.spot * 0.1)  # ~1e5 paths: errors of a few cents


def test_antithetic_standard_error_counts_pairs_and_shrinks(bk):
    plain = mc_price(GBM_RN, strike=100.0, expiry=1.0, n_paths=N, n_steps=1, seed=3, backend=bk)
    anti = mc_price(GBM_RN, strike=100.0, expiry=1.0, n_paths=N, n_steps=1, seed=3, backend=bk, antithetic=True)
    exact = float(model_price(GBM_RN, 100.0, 1.0))
    _within(anti.price, anti.stderr, exact)
    assert isinstance(anti.price, float) and 0.5 * plain.stderr < anti.stderr < 0.9 * plain.stderr


def test_asian_with_one_fixing_is_the_european(bk):
    kw = dict(strike=STRIKES, expiry=0.5, n_paths=5000, n_steps=1, seed=8, backend=bk)
    np.testing.assert_array_equal(mc_price(MERTON, payoff="asian", **kw).price, mc_price(MERTON, **kw).price)


@pytest.mark.parametrize("call", [True, False])
def test_asian_at_zero_vol_is_the_payoff_of_the_average_forward(bk, call):
    m, t, n = GBM(100.0, 0.0, rate=0.05, div=0.01), 2.0, 8
    r = mc_price(m, strike=STRIKES, expiry=t, call=call, payoff="asian", n_paths=16, n_steps=n, seed=1, backend=bk)
    average = np.mean([m.spot * math.exp((m.rate - m.div) * t * (k + 1) / n) for k in range(n)])
    phi = 1.0 if call else -1.0
    np.testing.assert_allclose(r.price, np.maximum(phi * (average - STRIKES), 0.0) * math.exp(-m.rate * t), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(r.stderr, 0.0, atol=1e-14)  # every path the same, up to the mean's rounding


def test_asian_put_call_parity_holds_path_by_path(bk):
    kw = dict(strike=STRIKES, expiry=1.0, payoff="asian", n_paths=20_000, n_steps=12, seed=4, backend=bk)
    c, p = mc_price(HESTON, call=True, **kw), mc_price(HESTON, call=False, **kw)
    t = np.arange(1, 13) / 12
    average_forward = np.mean(HESTON.spot * np.exp((HESTON.rate - HESTON.div) * t))
    parity = (average_forward - STRIKES) * math.exp(-HESTON.rate)
    # C - P is the discounted average minus K on every path: its error is the average's (<= either leg's)
    _within(c.price - p.price, np.maximum(c.stderr, p.stderr), parity)


def test_up_and_out_with_an_unreachable_barrier_is_the_european(bk):
    kw = dict(strike=STRIKES, expiry=1.0, n_paths=5000, n_steps=10, seed=2, backend=bk)
    np.testing.assert_array_equal(mc_price(HESTON, payoff="up_and_out", barrier=1e12, **kw).price, mc_price(HESTON, **kw).price)
    knocked = mc_price(HESTON, payoff="up_and_out", barrier=HESTON.spot, **kw)  # at the barrier today: out
    np.testing.assert_array_equal(knocked.price, 0.0)


def test_discrete_up_and_out_matches_the_corrected_continuous_formula(bk):
    m, k, h, t, n = GBM_RN, 100.0, 130.0, 1.0, 50
    r = mc_price(m, strike=k, expiry=t, payoff="up_and_out", barrier=h, n_paths=N, n_steps=n, seed=5, backend=bk)
    shifted = h * math.exp(0.5826 * m.vol * math.sqrt(t / n))  # Broadie, Glasserman & Kou (1997)
    corrected = up_and_out_call(m.spot, k, shifted, t, m.vol, m.rate, m.div)
    continuous = up_and_out_call(m.spot, k, h, t, m.vol, m.rate, m.div)
    assert r.price > continuous + 10 * r.stderr  # discrete monitoring knocks out less often
    _within(r.price, r.stderr, corrected, extra=0.01 * corrected)  # the correction is O(1/n) accurate


# --- pathwise Greeks ---------------------------------------------------------------------------


@needs_jax
@pytest.mark.parametrize("call", [True, False])
def test_pathwise_european_greeks_match_black_scholes(call):
    m = GBM_RN
    g = mc_greeks(m, strike=STRIKES, expiry=1.0, call=call, n_paths=N, n_steps=2, seed=9)
    exact = gpu_hedge.greeks(m.spot, STRIKES, 1.0, m.vol, m.rate, m.div, call=call, backend="numpy")
    for name in ("price", "delta", "vega"):
        _within(g.__getattribute__(name), g.stderr[name], np.asarray(exact[name]))
    # gamma: a central difference of pathwise deltas, bias ~ bump^2 x (third derivative) << its s.e.
    _within(g.gamma, g.stderr["gamma"], np.asarray(exact["gamma"]), k=4)
    assert g.method == "pathwise" and np.all(g.stderr["delta"] < 0.005)


def _fd(price_of, base, h):
    """Central difference of a Monte Carlo price in one parameter, common random numbers (same seed)."""
    return (price_of(base + h) - price_of(base - h)) / (2 * h)


@needs_jax
@pytest.mark.parametrize("model", [GBM_RN, MERTON], ids=["gbm", "merton"])
def test_pathwise_asian_greeks_equal_finite_differences_on_the_same_shocks(model):
    kw = dict(strike=STRIKES, expiry=1.0, payoff="asian", n_paths=50_000, n_steps=12, seed=13, backend="jax")
    g = mc_greeks(model, **kw)

    def price_at(field):
        return lambda x: mc_price(dataclasses.replace(model, **{field: x}), **kw).price

    # common random numbers: per path FD and pathwise derivatives differ only near the strike kink
    _within(g.delta, g.stderr["delta"], _fd(price_at("spot"), model.spot, 0.005 * model.spot), k=0.2)
    _within(g.vega, g.stderr["vega"], _fd(price_at("vol"), model.vol, 0.001), k=0.2)


@needs_jax
@pytest.mark.parametrize("model", [GBM_RN, MERTON], ids=["gbm", "merton"])
def test_up_and_out_one_step_survival_greeks_match_finite_differences(model):
    kw = dict(strike=100.0, expiry=1.0, payoff="up_and_out", barrier=130.0, n_paths=20_000, n_steps=8, seed=17, backend="jax")
    g = mc_greeks(model, **kw)
    assert g.method == "pathwise, one-step survival"
    plain = mc_price(model, **kw)  # the knock-out estimator, on the same backend's stream
    _within(g.price, np.hypot(g.stderr["price"], plain.stderr), plain.price)

    def oss_price(field):
        return lambda x: mc_greeks(dataclasses.replace(model, **{field: x}), greeks=(), **kw).price

    # the one-step-survival estimator is smooth in spot and vol: FD on the same shocks is tight
    _within(g.delta, g.stderr["delta"], _fd(oss_price("spot"), model.spot, 0.002 * model.spot), k=0.1)
    _within(g.vega, g.stderr["vega"], _fd(oss_price("vol"), model.vol, 0.0005), k=0.1)
    assert g.vega < 0  # the barrier makes an up-and-out call short vol here


@needs_jax
def test_up_and_out_greeks_match_the_corrected_continuous_formula():
    m, k, h, t, n = GBM_RN, 100.0, 130.0, 1.0, 50
    g = mc_greeks(m, strike=k, expiry=t, payoff="up_and_out", barrier=h, n_paths=N, n_steps=n, seed=23)
    shifted = h * math.exp(0.5826 * m.vol * math.sqrt(t / n))  # Broadie, Glasserman & Kou (1997)

    def corrected(s=m.spot, vol=m.vol):
        return up_and_out_call(s, k, h * math.exp(0.5826 * vol * math.sqrt(t / n)), t, vol, m.rate, m.div)

    delta = (corrected(s=m.spot + 1e-3) - corrected(s=m.spot - 1e-3)) / 2e-3
    vega = (corrected(vol=m.vol + 1e-5) - corrected(vol=m.vol - 1e-5)) / 2e-5
    assert shifted > h
    # the correction is accurate to a few per cent of these Greeks at 50 fixings
    _within(g.price, g.stderr["price"], corrected(), extra=0.01 * corrected())
    _within(g.delta, g.stderr["delta"], delta, extra=0.05 * abs(delta))
    _within(g.vega, g.stderr["vega"], vega, extra=0.05 * abs(vega))


@needs_jax
def test_heston_pathwise_delta_matches_the_pricer():
    g = mc_greeks(HESTON, strike=STRIKES, expiry=1.0, n_paths=N, n_steps=25, seed=29)
    h = 1e-3 * HESTON.spot
    up = model_price(dataclasses.replace(HESTON, spot=HESTON.spot + h), STRIKES, 1.0)
    down = model_price(dataclasses.replace(HESTON, spot=HESTON.spot - h), STRIKES, 1.0)
    _within(g.delta, g.stderr["delta"], (up - down) / (2 * h))
    assert g.vega is None and g.stderr["vega"] is None


# --- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"payoff": "lookback"}, "payoff"),
        ({"payoff": "up_and_out"}, "needs a barrier"),
        ({"payoff": "asian", "barrier": 120.0}, "only used with payoff"),
        ({"payoff": "up_and_out", "barrier": -1.0}, "barrier"),
        ({"strike": [[100.0]]}, "1-D"),
        ({"strike": [100.0, float("nan")]}, r"strike\[1\]"),
        ({"expiry": 0.0}, "expiry"),
        ({"n_steps": 0}, "n_steps"),
        ({"n_paths": 3, "antithetic": True}, "even"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"strike": 100.0, "expiry": 1.0, "n_paths": 4, "n_steps": 2, "seed": 0, "backend": "numpy", **kwargs}
    with pytest.raises(ValueError, match=match):
        mc_price(GBM_RN, **args)


def test_mc_greeks_needs_an_autodiff_backend_and_says_so():
    with pytest.raises(ValueError, match="autodiff"):
        mc_greeks(GBM_RN, strike=100.0, expiry=1.0, n_paths=4, n_steps=1, seed=0, backend="numpy")


@needs_jax
def test_pathwise_heston_barrier_is_refused_with_the_alternative():
    with pytest.raises(ValueError, match="finite differences of mc_price"):
        mc_greeks(HESTON, strike=100.0, expiry=1.0, payoff="up_and_out", barrier=120.0, n_paths=4, n_steps=1, seed=0)


def test_docstring_examples_run():
    import doctest

    import gpu_hedge._simulation.montecarlo as mod

    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
