"""Published textbook values (Hull; Haug) and an independent Bachelier check.

Each published number is compared at its published rounding (half a unit of
the last printed digit).  Every case is also checked against the mpmath
reference (tests/reference.py) so a wrong transcription shows up as a
reference failure rather than as a package failure.

Sources:
  [Hull]  J.C. Hull, "Options, Futures, and Other Derivatives" (BSM pricing
          example S=42, K=40; Greeks chapter example S=49, K=50, 20 weeks).
  [Haug]  E.G. Haug, "The Complete Guide to Option Pricing Formulas"
          (2nd ed. 2007, ch. 1 / ch. 2; same numbers as the 1998 1st edition
          pp. 2-16, which QuantLib's europeanoption test suite also uses).
"""

import math
import os
import sys

import numpy as np
import pytest
from scipy import integrate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference import ref_greeks  # noqa: E402

# (id, model, S, K, T, sigma, r, q, call, quantity, published, abs_tol)
PUBLISHED = [
    # [Hull] BSM example: S=42, K=40, r=10%, sigma=20%, T=0.5 -> c=4.76, p=0.81
    ("hull-bsm-call", "bsm", 42.0, 40.0, 0.5, 0.20, 0.10, 0.0, True, "price", 4.76, 5e-3),
    ("hull-bsm-put", "bsm", 42.0, 40.0, 0.5, 0.20, 0.10, 0.0, False, "price", 0.81, 5e-3),
    # [Hull] Greeks chapter: S=49, K=50, r=5%, sigma=20%, T=20 weeks=0.3846
    # (call price 2.40, delta 0.522, gamma 0.066, theta -4.31/yr, vega 12.1, rho 8.91)
    ("hull-greeks-price", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "price", 2.40, 5e-3),
    ("hull-greeks-delta", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "delta", 0.522, 5e-4),
    ("hull-greeks-gamma", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "gamma", 0.066, 5e-4),
    ("hull-greeks-theta", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "theta", -4.31, 5e-3),
    ("hull-greeks-vega", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "vega", 12.1, 5e-2),
    ("hull-greeks-rho", "bsm", 49.0, 50.0, 0.3846, 0.20, 0.05, 0.0, True, "rho", 8.91, 5e-3),
    # [Haug] 1.1.1 Black-Scholes call: S=60, K=65, T=0.25, r=8%, sigma=30% -> 2.1334
    ("haug-bs-call", "bsm", 60.0, 65.0, 0.25, 0.30, 0.08, 0.0, True, "price", 2.1334, 5e-5),
    # [Haug] 1.1.2 Merton (dividend yield) put: S=100, K=95, T=0.5, r=10%, q=5%, sigma=20% -> 2.4648
    ("haug-merton-put", "bsm", 100.0, 95.0, 0.5, 0.20, 0.10, 0.05, False, "price", 2.4648, 5e-5),
    # [Haug] 1.1.3 Black-76: F=19, K=19, T=0.75, r=10%, sigma=28% -> call = put = 1.7011
    ("haug-b76-call", "black76", 19.0, 19.0, 0.75, 0.28, 0.10, 0.0, True, "price", 1.7011, 5e-5),
    ("haug-b76-put", "black76", 19.0, 19.0, 0.75, 0.28, 0.10, 0.0, False, "price", 1.7011, 5e-5),
    # [Haug] 1.1.6 generalized BSM put: S=75, K=70, T=0.5, r=10%, b=5% (q=5%), sigma=35% -> 4.0870
    ("haug-gbs-put", "bsm", 75.0, 70.0, 0.5, 0.35, 0.10, 0.05, False, "price", 4.0870, 5e-5),
    # [Haug] futures option delta: F=105, K=100, T=0.5, r=10%, sigma=36% -> 0.5946 / -0.3566
    ("haug-fut-delta-call", "black76", 105.0, 100.0, 0.5, 0.36, 0.10, 0.0, True, "delta", 0.5946, 5e-5),
    ("haug-fut-delta-put", "black76", 105.0, 100.0, 0.5, 0.36, 0.10, 0.0, False, "delta", -0.3566, 5e-5),
    # same example as BSM with q = r (b = 0), as in QuantLib's transcription
    ("haug-fut-delta-bsm", "bsm", 105.0, 100.0, 0.5, 0.36, 0.10, 0.10, True, "delta", 0.5946, 5e-5),
    # [Haug] gamma: S=55, K=60, T=0.75, r=10%, b=10% (q=0), sigma=30% -> 0.0278 (call and put)
    ("haug-gamma-call", "bsm", 55.0, 60.0, 0.75, 0.30, 0.10, 0.0, True, "gamma", 0.0278, 5e-5),
    ("haug-gamma-put", "bsm", 55.0, 60.0, 0.75, 0.30, 0.10, 0.0, False, "gamma", 0.0278, 5e-5),
    # [Haug] vega: S=55, K=60, T=0.75, r=10%, b=10% (q=0), sigma=30% -> 18.9358 (call and put).
    # NB: with r=10.5%, b=6.95% (q=3.55%) the value is 18.5027, not 18.9358; the
    # 18.9358 example uses the gamma example's inputs (as in QuantLib's test data).
    ("haug-vega-call", "bsm", 55.0, 60.0, 0.75, 0.30, 0.10, 0.0, True, "vega", 18.9358, 5e-5),
    ("haug-vega-put", "bsm", 55.0, 60.0, 0.75, 0.30, 0.10, 0.0, False, "vega", 18.9358, 5e-5),
    # [Haug] put theta: S=430, K=405, T=0.0833, r=7%, b=2% (q=5%), sigma=20% -> -31.1924 / yr
    ("haug-theta-put", "bsm", 430.0, 405.0, 0.0833, 0.20, 0.07, 0.05, False, "theta", -31.1924, 5e-5),
    ("haug-theta-put-1/12", "bsm", 430.0, 405.0, 1.0 / 12.0, 0.20, 0.07, 0.05, False, "theta", -31.1924, 5e-5),
    # [Haug] call rho: S=72, K=75, T=1, r=9%, b=9% (q=0), sigma=19% -> 38.7325
    ("haug-rho-call", "bsm", 72.0, 75.0, 1.0, 0.19, 0.09, 0.0, True, "rho", 38.7325, 5e-5),
    # [Haug] cost-of-carry / dividend sensitivity: put S=500, K=490, T=0.25, r=8%, q=5%,
    # sigma=15% -> dV/dq = 42.2254 (QuantLib's "dividendRho" transcription)
    ("haug-divrho-put", "bsm", 500.0, 490.0, 0.25, 0.15, 0.08, 0.05, False, "dividend_rho", 42.2254, 5e-5),
]
PUB_IDS = [c[0] for c in PUBLISHED]


@pytest.mark.parametrize("case", PUBLISHED, ids=PUB_IDS)
def test_reference_matches_published(case):
    _, model, S, K, T, sigma, r, q, call, name, published, tol = case
    value = ref_greeks(model, S, K, T, sigma, r, q, call)[name]
    assert abs(value - published) <= tol, (value, published)


def _scalar(x):
    import gpu_hedge

    a = np.asarray(gpu_hedge.to_numpy(x), dtype=np.float64).reshape(-1)
    assert a.size == 1
    return float(a[0])


def _api_args(S, K, T, sigma, r, q):
    return tuple(np.array([v], dtype=np.float64) for v in (S, K, T, sigma, r, q))


@pytest.mark.parametrize("case", PUBLISHED, ids=PUB_IDS)
def test_api_matches_published(bk, case):
    import gpu_hedge

    _, model, S, K, T, sigma, r, q, call, name, published, tol = case
    args = _api_args(S, K, T, sigma, r, q)
    ref = ref_greeks(model, S, K, T, sigma, r, q, call)[name]
    g = gpu_hedge.greeks(*args, call=call, model=model, backend=bk, dtype="float64")
    value = _scalar(g[name])
    assert abs(value - published) <= tol, (value, published)
    # and far tighter against the mpmath reference (well-conditioned inputs)
    assert value == pytest.approx(ref, rel=1e-11, abs=1e-13)
    if name == "price":
        p = _scalar(gpu_hedge.price(*args, call=call, model=model, backend=bk, dtype="float64"))
        assert abs(p - published) <= tol
        assert p == pytest.approx(ref, rel=1e-12, abs=1e-13)


# ---------------------------------------------------------------------------
# Bachelier: independent reference by numerical integration of the discounted
# payoff against the normal density of F_T ~ N(F, sigma^2 T).
# ---------------------------------------------------------------------------

# (F, K, T, sigma_normal, r, call)
BACHELIER = [
    (100.0, 100.0, 1.0, 20.0, 0.05, True),
    (100.0, 110.0, 0.5, 15.0, 0.03, False),
    (-1.5, -1.2, 2.0, 0.8, 0.01, True),       # negative forward and strike
    (-0.5, 0.25, 0.75, 0.6, 0.02, False),      # negative forward, positive strike
    (0.02, -0.01, 5.0, 0.01, -0.005, True),    # negative strike, negative rate
    (3.0, 2.0, 0.1, 2.5, 0.07, False),
    (-40.0, -55.0, 3.0, 9.0, 0.04, False),
    (-40.0, -55.0, 3.0, 9.0, 0.04, True),
]


def bachelier_quad(F, K, T, sigma, r, call):
    w = sigma * math.sqrt(T)

    def integrand(x):
        payoff = max(x - K, 0.0) if call else max(K - x, 0.0)
        return payoff * math.exp(-0.5 * ((x - F) / w) ** 2) / (w * math.sqrt(2.0 * math.pi))

    # payoff is zero on one side of K; the density is negligible beyond 40 w
    lo, hi = (K, max(K, F) + 40.0 * w) if call else (min(K, F) - 40.0 * w, K)
    val, err = integrate.quad(integrand, lo, hi, points=[F] if lo < F < hi else None,
                              epsabs=0.0, epsrel=1e-13, limit=500)
    assert err <= 1e-11 * abs(val)
    return math.exp(-r * T) * val


@pytest.mark.parametrize("case", BACHELIER)
def test_bachelier_reference_vs_quadrature(case):
    F, K, T, sigma, r, call = case
    ref = ref_greeks("bachelier", F, K, T, sigma, r, 0.0, call)["price"]
    assert ref == pytest.approx(bachelier_quad(F, K, T, sigma, r, call), rel=1e-10)


@pytest.mark.parametrize("case", BACHELIER)
def test_bachelier_api_vs_quadrature(bk, case):
    import gpu_hedge

    F, K, T, sigma, r, call = case
    expected = bachelier_quad(F, K, T, sigma, r, call)
    args = _api_args(F, K, T, sigma, r, 0.0)
    p = _scalar(gpu_hedge.price(*args, call=call, model="bachelier", backend=bk, dtype="float64"))
    assert p == pytest.approx(expected, rel=1e-10)
    g = gpu_hedge.greeks(*args, call=call, model="bachelier", backend=bk, dtype="float64")
    assert _scalar(g["price"]) == pytest.approx(expected, rel=1e-10)
