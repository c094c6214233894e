"""Prices and every Greek against an independent 50-digit mpmath reference (tests/reference.py).

Acceptance per value: |got - ref| <= 1e-12 * max(|ref|, 1e-8) + U * noise, where ``noise`` is how
far the exact value moves when one input changes by one ulp (relative 2**-52). The second term only
matters where the problem itself is ill-conditioned (a Greek crossing zero between large terms,
far out of the money at tiny total vol): there no float64 algorithm can do better than the inputs'
own rounding, and U ulps of it is the backward-stability allowance. Measured on these cases: the
analytic Greeks need it for 0-7 of 5,100 values per model (at most 13 ulps; U = 32); autodiff,
which differentiates through the price's cancellations, for up to 144 (at most 64 ulps; U = 256).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from reference import random_cases, ref_table

import gpu_hedge
from gpu_hedge import GREEK_NAMES, to_numpy

MODELS = ("bsm", "black76", "bachelier")
N_CASES = 300
RTOL, FLOOR = 1e-12, 1e-8
NOISE_ULPS = {"analytic": 32.0, "autodiff": 256.0}


@cache
def reference(model: str):
    cases = random_cases(N_CASES, seed=2026, model=model)
    return cases, ref_table(cases, model)


def compute(model: str, bk: str, method: str = "analytic") -> dict[str, np.ndarray]:
    c, _ = reference(model)
    g = gpu_hedge.greeks(c["S"], c["K"], c["T"], c["sigma"], c["r"], c["q"], call=c["call"],
                         model=model, backend=bk, method=method)  # fmt: skip
    return {k: to_numpy(v) for k, v in g.items()}


def assert_matches_reference(got: dict[str, np.ndarray], model: str, label: str, method: str = "analytic") -> None:
    c, table = reference(model)
    failures = []
    for name in GREEK_NAMES:
        ref, noise = table[name]
        err = np.abs(got[name] - ref)
        tol = RTOL * np.maximum(np.abs(ref), FLOOR) + NOISE_ULPS[method] * noise
        bad = ~(err <= tol)  # NaN fails
        if bad.any():
            i = int(np.argmax(np.where(bad, err / tol, 0)))
            failures.append(f"{name}: {bad.sum()} bad, worst #{i} got {got[name][i]!r} ref {ref[i]!r} tol {tol[i]:.3g}")
    assert not failures, f"{label} {model}:\n" + "\n".join(failures)


@pytest.mark.parametrize("model", MODELS)
def test_analytic_greeks_match_mpmath(bk, model):
    assert_matches_reference(compute(model, bk), model, f"analytic on {bk}")


@pytest.mark.parametrize("model", MODELS)
def test_autodiff_greeks_match_mpmath(model):
    if "jax" not in gpu_hedge.available_backends():
        pytest.skip("JAX not installed")
    assert_matches_reference(compute(model, "jax", "autodiff"), model, "autodiff on jax", "autodiff")


@pytest.mark.parametrize("model", MODELS)
def test_autodiff_equals_analytic(model):
    if "jax" not in gpu_hedge.available_backends():
        pytest.skip("JAX not installed")
    _, table = reference(model)
    ad, an = compute(model, "jax", "autodiff"), compute(model, "jax")
    for name in GREEK_NAMES:
        ref, noise = table[name]
        tol = RTOL * np.maximum(np.abs(an[name]), FLOOR) + NOISE_ULPS["autodiff"] * noise
        assert np.all(np.abs(ad[name] - an[name]) <= tol), name


@pytest.mark.parametrize("model", MODELS)
def test_prices_never_negative_and_within_bounds(bk, model):
    c, _ = reference(model)
    g = compute(model, bk)
    p = g["price"]
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    D = np.exp(-c["r"] * c["T"])
    F = c["S"] * np.exp((c["r"] - c["q"]) * c["T"]) if model == "bsm" else c["S"]
    intrinsic = D * np.maximum(np.where(c["call"], F - c["K"], c["K"] - F), 0.0)
    assert np.all(p >= intrinsic * (1 - 1e-14) - 1e-14 * D * np.abs(F))  # European lower bound
    if model != "bachelier":
        upper = D * np.where(c["call"], F, c["K"])  # a call is worth less than the forward, a put than K
        assert np.all(p <= upper * (1 + 1e-14))
    for name in GREEK_NAMES:
        assert np.all(np.isfinite(g[name])), name
