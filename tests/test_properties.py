"""Model-free relations every price and Greek must satisfy: parity, homogeneity, finite differences,
agreement between backends and between float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge
from gpu_hedge import GREEK_NAMES, to_numpy

MODELS = ("bsm", "black76", "bachelier")


def moderate_cases(model: str, n: int = 400, seed: int = 7) -> dict[str, np.ndarray]:
    """Well-conditioned options: moneyness within 2.5 sd, T in [0.05, 5] y, vol 5 %-100 %."""
    rng = np.random.default_rng(seed)
    T = np.exp(rng.uniform(np.log(0.05), np.log(5.0), n))
    r = rng.uniform(-0.01, 0.08, n)
    q = rng.uniform(0.0, 0.06, n) if model == "bsm" else np.zeros(n)
    z = rng.uniform(-2.5, 2.5, n)
    if model == "bachelier":
        F = rng.uniform(-50.0, 150.0, n)
        vol = rng.uniform(5.0, 40.0, n)
        K = F + z * vol * np.sqrt(T)
        return dict(S=F, K=K, T=T, vol=vol, r=r, q=q, call=rng.random(n) < 0.5)
    S = np.exp(rng.uniform(np.log(5.0), np.log(5000.0), n))
    vol = np.exp(rng.uniform(np.log(0.05), np.log(1.0), n))
    F = S * np.exp((r - q) * T) if model == "bsm" else S
    K = F * np.exp(-z * vol * np.sqrt(T))
    return dict(S=S, K=K, T=T, vol=vol, r=r, q=q, call=rng.random(n) < 0.5)


def run(c: dict, bk: str, model: str, call=None, method: str = "analytic", dtype: str = "float64", **over):
    a = {**c, **over}
    g = gpu_hedge.greeks(
        a["S"], a["K"], a["T"], a["vol"], a["r"], a["q"], call=a["call"] if call is None else call,
        model=model, backend=bk, method=method, dtype=dtype,
    )  # fmt: skip
    return {k: to_numpy(v) for k, v in g.items()}


@pytest.mark.parametrize("model", MODELS)
def test_put_call_parity(bk, model):
    c = moderate_cases(model)
    C, P = run(c, bk, model, call=True), run(c, bk, model, call=False)
    D = np.exp(-c["r"] * c["T"])
    Dq = np.exp(-c["q"] * c["T"]) if model == "bsm" else D
    fwd = c["S"] * Dq - c["K"] * D  # discounted forward minus discounted strike
    scale = np.abs(c["S"] * Dq) + np.abs(c["K"] * D)
    assert np.max(np.abs(C["price"] - P["price"] - fwd) / scale) < 1e-15
    np.testing.assert_allclose(C["delta"] - P["delta"], Dq, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(C["dual_delta"] - P["dual_delta"], -D, rtol=1e-14, atol=1e-15)
    for g in ("gamma", "vega", "vanna", "volga", "speed", "zomma", "ultima", "veta", "color", "dual_gamma"):
        np.testing.assert_allclose(C[g], P[g], rtol=1e-11, atol=1e-12 * np.max(np.abs(C[g])), err_msg=g)


@pytest.mark.parametrize("model", ("bsm", "black76"))
def test_homogeneity_in_spot_and_strike(bk, model):
    c = moderate_cases(model, n=200)
    lam = 3.7
    a = run(c, bk, model)
    b = run(c, bk, model, S=c["S"] * lam, K=c["K"] * lam)
    # V and the greeks scale with lambda^(1 - order in S or K)
    power = {"price": 1, "delta": 0, "gamma": -1, "vega": 1, "theta": 1, "rho": 1, "dividend_rho": 1,
             "vanna": 0, "volga": 1, "charm": 0, "veta": 1, "speed": -2, "zomma": -1, "color": -1,
             "ultima": 1, "dual_delta": 0, "dual_gamma": -1}  # fmt: skip
    for g, p in power.items():
        np.testing.assert_allclose(b[g], a[g] * lam**p, rtol=1e-10, atol=1e-12 * np.max(np.abs(a[g])), err_msg=g)


def test_bachelier_translation_invariance(bk):
    c = moderate_cases("bachelier", n=200)
    a = run(c, bk, "bachelier")
    b = run(c, bk, "bachelier", S=c["S"] - 123.25, K=c["K"] - 123.25)
    for g in GREEK_NAMES:
        np.testing.assert_allclose(b[g], a[g], rtol=1e-9, atol=1e-10 * np.max(np.abs(a[g])), err_msg=g)


# Each Greek is the derivative of a lower one: (greek, from, variable, sign).
FD_CHAIN = [
    ("delta", "price", "S", 1), ("gamma", "delta", "S", 1), ("speed", "gamma", "S", 1),
    ("vega", "price", "vol", 1), ("volga", "vega", "vol", 1), ("ultima", "volga", "vol", 1),
    ("vanna", "delta", "vol", 1), ("zomma", "gamma", "vol", 1),
    ("theta", "price", "T", -1), ("charm", "delta", "T", -1), ("veta", "vega", "T", -1),
    ("color", "gamma", "T", -1), ("rho", "price", "r", 1), ("dividend_rho", "price", "q", 1),
    ("dual_delta", "price", "K", 1), ("dual_gamma", "dual_delta", "K", 1),
]  # fmt: skip


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("greek", "base", "var", "sign"), FD_CHAIN, ids=[f[0] for f in FD_CHAIN])
def test_finite_difference_consistency(bk, model, greek, base, var, sign):
    c = moderate_cases(model, n=100, seed=11)
    x = c[var]
    sd = c["vol"] * np.sqrt(c["T"])  # one standard deviation of the underlying, in its own units
    step = {"S": sd * (1.0 if model == "bachelier" else c["S"]), "K": sd * (1.0 if model == "bachelier" else c["K"])}
    h = 1e-3 * step.get(var, np.maximum(np.abs(x), 1e-2))
    f = {k: run(c, bk, model, **{var: x + k * h})[base] for k in (-2, -1, 1, 2)}
    fd = sign * (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)  # fourth-order central difference
    an = run(c, bk, model)[greek]
    rounding = 1e3 * np.finfo(float).eps * np.max([np.abs(v) for v in f.values()], axis=0) / h
    err = np.abs(an - fd)
    bad = err > 2e-6 * np.abs(fd) + rounding
    assert not bad.any(), f"{greek}: {np.flatnonzero(bad)[:5]} analytic {an[bad][:3]} vs FD {fd[bad][:3]}"


@pytest.mark.parametrize("model", MODELS)
def test_backends_agree(model):
    backends = gpu_hedge.available_backends()
    if len(backends) < 2:
        pytest.skip("only one backend here")
    c = moderate_cases(model)
    ref = run(c, "numpy", model)
    for other in backends[1:]:
        got = run(c, other, model)
        for g in GREEK_NAMES:
            scale = np.max(np.abs(ref[g]))
            np.testing.assert_allclose(got[g], ref[g], rtol=1e-12, atol=1e-14 * scale, err_msg=f"{other} {g}")


@pytest.mark.parametrize("model", MODELS)
def test_float32_prices_close_to_float64(bk, model):
    """float32 within 1e-5 relative of float64 for moderate options: within 1 sd of the forward, total
    vol sigma*sqrt(T) in [0.1, 1.5]. Further out of the money the closed form cancels (the price is a
    small difference of two N() terms), so single precision loses about |z|/(sigma sqrt T) ulps more;
    measured worst 4e-5 at 2 sd and sigma sqrt T = 0.04."""
    rng = np.random.default_rng(5)
    n = 2000
    T = np.exp(rng.uniform(np.log(0.1), np.log(5.0), n))
    v = rng.uniform(0.1, 1.5, n)
    z = rng.uniform(-1.0, 1.0, n)
    r, q = rng.uniform(-0.01, 0.08, n), rng.uniform(0.0, 0.06, n)
    call = rng.random(n) < 0.5
    if model == "bachelier":
        v = v * 100.0
        S = rng.uniform(-50.0, 150.0, n)
        K = S + z * v
    else:
        S = np.exp(rng.uniform(np.log(5.0), np.log(5000.0), n))
        K = S * np.exp(-z * v)
    vol = v / np.sqrt(T)
    kw = dict(call=call, model=model, backend=bk)
    p64 = to_numpy(gpu_hedge.price(S, K, T, vol, r, q, **kw))
    g32 = gpu_hedge.greeks(S, K, T, vol, r, q, greeks=["price", "delta"], dtype="float32", **kw)
    p32 = to_numpy(g32["price"])
    assert p32.dtype == np.float32 and to_numpy(g32["delta"]).dtype == np.float32
    assert np.max(np.abs(p32 - p64) / np.abs(p64)) < 1e-5
