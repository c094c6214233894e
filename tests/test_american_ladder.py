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


# --- shared boundaries (_pricing/american_shared): rows of one (T, vol, r, q) solve one boundary ---------------

from gpu_hedge._pricing.american_greeks import american_greeks  # noqa: E402
from gpu_hedge._pricing.american_shared import (  # noqa: E402
    SHARED_GREEKS,
    american_greeks_shared,
    shared_american_greeks,
    shared_spot_ladder,
    sharing_rows,
)


def _book_rows(n=1200, seed=11):
    """Listed-style rows: a few expiries, vols and rates, many strikes; a put at (r, q) = (a, b) beside a call
    at (b, a) of the same expiry and vol (the same unit put, different rate bumps); degenerate rows."""
    rng = np.random.default_rng(seed)
    T = rng.choice([0.0, 0.02, 0.25, 1.0, 3.0], n)
    vol = rng.choice([0.0, 0.2, 0.45], n)
    a, b = rng.choice([0.0, 0.05], n), rng.choice([0.0, 0.03, 0.08], n)
    call = rng.random(n) < 0.5
    r, q = np.where(call, b, a), np.where(call, a, b)
    S = 100.0 * np.exp(rng.normal(0.0, 0.3, n))
    K = np.round(100.0 * np.exp(rng.normal(0.0, 0.3, n)))
    return S, K, T, vol, r, q, call


def _dev(bk, rows):
    b = gh.get_backend(bk)
    S, K, T, vol, r, q, call = rows
    return b, [b.asarray(x, dtype="float64") for x in (S, K, T, vol, r, q, np.where(call, 1.0, -1.0))]


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_shared_boundaries_give_the_per_row_values(model):
    b, arrays = _dev("numpy", _book_rows())
    assert len(sharing_rows(model, arrays)) > 0.9 * len(arrays[0])  # the rest: groups of fewer than 4
    with np.errstate(all="ignore"):  # zero-vol rows: NaN vega either way
        got = shared_american_greeks(b, arrays, SHARED_GREEKS, "float64", model=model)
        want = american_greeks(b, arrays, SHARED_GREEKS, "float64", model=model)
    for name in SHARED_GREEKS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-13, atol=1e-300, equal_nan=True, err_msg=name)
        f = (0.8, 1.0, 1.2)
        ladders = shared_spot_ladder(b, arrays, f, "float64", model=model), american_spot_ladder(b, arrays, f, "float64", model=model)
    for x, y in zip(*ladders, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-300)


def test_shared_boundaries_on_every_backend(bk):
    rows = _book_rows(n=128)
    rows = (*rows[:3], np.maximum(rows[3], 0.2), *rows[4:])  # no zero vols: finite Greeks everywhere
    b, arrays = _dev(bk, rows)
    got = shared_american_greeks(b, arrays, SHARED_GREEKS, "float64")
    nb, narrays = _dev("numpy", rows)
    want = american_greeks(nb, narrays, SHARED_GREEKS, "float64")
    for name in SHARED_GREEKS:
        w = np.asarray(want[name], dtype=float)
        exact = ("price", "delta", "gamma", "boundary", "dual_delta", "dual_gamma", "early_exercise")
        rel = 1e-12 if name in exact else 1e-5 if name == "volga" else 1e-7  # differences of bumps amplify rounding
        top = np.max(np.abs(w[np.isfinite(w)]))
        np.testing.assert_allclose(np.asarray(gh.to_numpy(got[name]), dtype=float), w, rtol=rel, atol=rel * top, err_msg=name)


def test_rows_that_share_and_rows_that_do_not_in_one_call():
    # half the rows in groups of a listed book, half each with its own vol: the split call must give
    # the per-row values in row order (and a book where no two rows share takes the per-row path)
    S, K, T, vol, r, q, call = _book_rows(n=600)
    vol = np.maximum(vol, 0.2)
    own = np.arange(600) % 2 == 1
    vol = np.where(own, 0.2 + 0.3 * np.linspace(0.0, 1.0, 600), vol)
    b, arrays = _dev("numpy", (S, K, T, vol, r, q, call))
    shared = sharing_rows("bsm", arrays)
    assert shared is not None and not np.isin(shared, np.flatnonzero(own)).any() and len(shared) > 100
    got = american_greeks_shared(b, arrays, SHARED_GREEKS, "float64")
    want = american_greeks(b, arrays, SHARED_GREEKS, "float64")
    for name in SHARED_GREEKS:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-13, atol=1e-300, equal_nan=True, err_msg=name)
    distinct = np.linspace(0.1, 2.0, len(T))  # every row its own expiry: nothing to share
    assert sharing_rows("bsm", [b.asarray(x) for x in (S, K, distinct, vol, r, q, np.where(call, 1.0, -1.0))]) is None
