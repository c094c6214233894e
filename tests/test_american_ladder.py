"""American prices at several spots on one boundary per row (``_pricing/american_ladder``), the risk
job's ladder path: equal to ``gh.price(..., exercise="american")`` at each shifted spot.

On JAX the reference is the NumPy ladder (itself checked against ``gh.price``): one compilation."""

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge._pricing.american_ladder import american_spot_ladder

FACTORS = (0.8, 1.0, 1.15)


def _rows(n=48, seed=5):
    rng = np.random.default_rng(seed)
    S = 100.0 * np.exp(rng.normal(0.0, 0.3, n))
    K = np.full(n, 100.0)
    T = rng.uniform(0.02, 3.0, n)
    vol = rng.uniform(0.08, 0.9, n)
    r, q = rng.uniform(0.0, 0.1, n), rng.uniform(0.0, 0.1, n)
    call = rng.random(n) < 0.5
    # degenerate and no-early-exercise rows: zero expiry, zero vol, a put at r = 0, a call at q = 0
    T[0], vol[1], r[2], call[2], q[3], call[3] = 0.0, 0.0, 0.0, False, 0.0, True
    return S, K, T, vol, r, q, call


def _ladder(bk, model, rows):
    S, K, T, vol, r, q, call = rows
    b = gh.get_backend(bk)
    arrays = [b.asarray(a, dtype="float64") for a in (S, K, T, vol, r, q, np.where(call, 1.0, -1.0))]
    return [np.asarray(gh.to_numpy(p)) for p in american_spot_ladder(b, arrays, FACTORS, "float64", model=model)]


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_spot_ladder_equals_american_prices_at_the_shifted_spots(model):
    rows = _rows()
    S, K, T, vol, r, q, call = rows
    got = _ladder("numpy", model, rows)
    for f, p in zip(FACTORS, got, strict=True):
        want = np.asarray(gh.price(S * f, K, T, vol, r, q, call=call, model=model, exercise="american", backend="numpy"))
        np.testing.assert_allclose(p, want, rtol=1e-13, atol=1e-13)


def test_spot_ladder_on_every_backend(bk):
    rows = _rows(n=16)
    for p, want in zip(_ladder(bk, "bsm", rows), _ladder("numpy", "bsm", rows), strict=True):
        np.testing.assert_allclose(p, want, rtol=1e-12, atol=1e-12)


def test_spot_ladder_refuses_bachelier():
    b = gh.get_backend("numpy")
    with pytest.raises(ValueError, match="bachelier"):
        american_spot_ladder(b, [np.ones(2)] * 7, FACTORS, "float64", model="bachelier")
