"""Arbitrary valid inputs (hypothesis): finite Greeks, no-arbitrage bounds, signs that cannot flip."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gpu_hedge
from gpu_hedge import GREEK_NAMES, to_numpy

pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
expiry = st.floats(min_value=1e-6, max_value=100.0)
vol = st.floats(min_value=1e-4, max_value=5.0)
rate = st.floats(min_value=-0.05, max_value=0.25)
div = st.floats(min_value=0.0, max_value=0.2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(S=pos, K=pos, T=expiry, v=vol, r=rate, q=div, call=st.booleans(), model=st.sampled_from(["bsm", "black76"]))
def test_lognormal_models_stay_finite_and_within_bounds(bk, S, K, T, v, r, q, call, model):
    g = {k: float(to_numpy(x)) for k, x in gpu_hedge.greeks(S, K, T, v, r, q, call=call, model=model, backend=bk).items()}
    for name in GREEK_NAMES:
        assert np.isfinite(g[name]), (name, g[name])
    D = np.exp(-r * T)
    Dq = np.exp(-q * T) if model == "bsm" else D
    slack = 1e-12 * (S * Dq + K * D)
    intrinsic = max((S * Dq - K * D) if call else (K * D - S * Dq), 0.0)
    assert intrinsic - slack <= g["price"] <= (S * Dq if call else K * D) + slack
    assert g["gamma"] >= 0 and g["vega"] >= 0 and g["dual_gamma"] >= 0
    assert (0 <= g["delta"] <= Dq * (1 + 1e-15)) if call else (-Dq * (1 + 1e-15) <= g["delta"] <= 0)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    F=st.floats(min_value=-1e4, max_value=1e4), K=st.floats(min_value=-1e4, max_value=1e4),
    T=expiry, v=st.floats(min_value=1e-4, max_value=1e3), r=rate, call=st.booleans(),
)  # fmt: skip
def test_bachelier_stays_finite_and_within_bounds(bk, F, K, T, v, r, call):
    g = {k: float(to_numpy(x)) for k, x in gpu_hedge.greeks(F, K, T, v, r, call=call, model="bachelier", backend=bk).items()}
    for name in GREEK_NAMES:
        assert np.isfinite(g[name]), (name, g[name])
    D = np.exp(-r * T)
    intrinsic = D * max((F - K) if call else (K - F), 0.0)
    assert g["price"] >= intrinsic - 1e-12 * D * (abs(F) + abs(K))
    assert g["gamma"] >= 0 and g["vega"] >= 0
