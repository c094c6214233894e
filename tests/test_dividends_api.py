"""``dividends=`` on gh.price / gh.greeks: discrete cash dividends through the public functions.

References: Hull's textbook value; the no-dividend functions (rows without a dividend before expiry
must be exactly what they give); ``dividends.dividend_greeks`` (checked in tests/test_dividends.py
against QuantLib) row by row; finite differences of gh.price in the quoted spot; American >= European.
"""

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge._pricing.dividends import check_dividends, dividend_greeks

HULL = dict(spot=40.0, strike=40.0, expiry=180 / 360, vol=0.30, rate=0.09)
HULL_DIVS = [(60 / 360, 0.5), (150 / 360, 0.5)]
NAMES = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


def _names(bk):
    """All dividend Greeks; on a compiling backend price, delta and gamma only (the American bumped
    Greeks compile for ~30 s there and are checked against NumPy in tests/test_american.py)."""
    return ("price", "delta", "gamma") if "jit" in gh.get_backend(bk).capabilities else NAMES


def _np(x):
    return np.asarray(gh.to_numpy(x), dtype=float)


def test_hull_known_value(bk):
    # Hull, Options, Futures and Other Derivatives ("known dividends"): c = 3.67 (escrowed model, no vol adjustment)
    c = float(_np(gh.price(*HULL.values(), call=True, dividends=HULL_DIVS, vol_adjust="none", backend=bk)))
    assert round(c, 2) == 3.67
    # the default adjustment keeps vol the stock's own: a larger vol on the escrowed spot, a larger value
    assert float(_np(gh.price(*HULL.values(), call=True, dividends=HULL_DIVS, backend=bk))) > c


def test_no_dividends_is_the_plain_call_exactly(bk):
    S = np.array([90.0, 100.0, 110.0])
    names = _names(bk)
    for ex in ("european", "american"):
        want = gh.greeks(S, 100.0, 0.5, 0.2, 0.03, 0.01, call=False, exercise=ex, greeks=names, backend=bk)
        for divs in ([], [(0.75, 1.0)], [(0.0, 2.0)]):  # none, one after expiry, one already paid
            got = gh.greeks(S, 100.0, 0.5, 0.2, 0.03, 0.01, call=False, exercise=ex, greeks=names, dividends=divs, backend=bk)
            for n in names:
                np.testing.assert_array_equal(_np(got[n]), _np(want[n]), err_msg=f"{ex} {divs} {n}")


def test_mixed_rows_equal_their_own_pricers(bk):
    # rows with and without dividends, European and American, in one call
    S = np.array([40.0, 40.0, 100.0, 100.0, 95.0, 105.0])
    K = np.array([40.0, 42.0, 100.0, 100.0, 100.0, 100.0])
    call = np.array([True, False, True, False, False, True])
    ex = np.array(["european", "american", "american", "european", "american", "american"])
    divs = [HULL_DIVS, HULL_DIVS, [], [(0.25, 1.5)], [(0.1, 1.0), (0.35, 1.0)], [(0.3, 3.0)]]
    names = _names(bk)
    got = gh.greeks(S, K, 0.5, 0.3, 0.06, 0.0, call=call, exercise=ex, dividends=divs, greeks=names, backend=bk)
    am = ex == "american"
    b = gh.get_backend(bk)
    paying = np.array([True, True, False, True, True, True])
    idx = np.flatnonzero(paying)
    sched = check_dividends([divs[i] for i in idx], len(idx))
    ref = dividend_greeks(b, b.asarray(S[idx]), b.asarray(K[idx]), b.asarray(np.full(len(idx), 0.5)), b.asarray(np.full(len(idx), 0.3)),
                          b.asarray(np.full(len(idx), 0.06)), b.asarray(np.zeros(len(idx))), b.asarray(np.where(call[idx], 1.0, -1.0)),
                          names, sched, american=am[idx])  # fmt: skip
    plain = gh.greeks(S[2], K[2], 0.5, 0.3, 0.06, 0.0, call=True, exercise="american", greeks=names, backend=bk)
    for n in names:
        np.testing.assert_allclose(_np(got[n])[idx], _np(ref[n]), rtol=1e-12, atol=1e-13, err_msg=n)
        assert _np(got[n])[2] == float(_np(plain[n])), n


def test_american_put_with_dividends_is_worth_at_least_the_european(bk):
    S = np.array([80.0, 100.0, 120.0])
    kw = dict(call=False, dividends=[(0.2, 2.0), (0.45, 2.0)], backend=bk)
    a = _np(gh.price(S, 100.0, 0.6, 0.25, 0.08, **kw, exercise="american"))
    e = _np(gh.price(S, 100.0, 0.6, 0.25, 0.08, **kw))
    assert np.all(a >= e - 1e-10) and a[0] > e[0] + 0.1
    assert a[0] >= 20.0 - 1e-9  # never below intrinsic


def test_american_call_before_a_large_dividend_is_worth_more_than_the_european(bk):
    kw = dict(call=True, dividends=[(0.4, 6.0)], backend=bk)
    a = float(_np(gh.price(120.0, 100.0, 0.5, 0.2, 0.03, **kw, exercise="american")))
    e = float(_np(gh.price(120.0, 100.0, 0.5, 0.2, 0.03, **kw)))
    assert a > e + 0.5 and a >= 20.0 - 1e-9


@pytest.mark.parametrize("exercise", ["european", "american"])
def test_delta_and_gamma_are_derivatives_in_the_quoted_spot(bk, exercise):
    S = np.array([36.0, 40.0, 44.0])
    g = gh.greeks(S, 40.0, 0.5, 0.3, 0.09, call=False, dividends=HULL_DIVS, exercise=exercise, greeks=("delta", "gamma"), backend=bk)
    h = 0.05 if exercise == "american" else 1e-3
    p = lambda s: _np(gh.price(s, 40.0, 0.5, 0.3, 0.09, call=False, dividends=HULL_DIVS, exercise=exercise, backend=bk))  # noqa: E731
    fd_delta = (p(S + h) - p(S - h)) / (2 * h)
    fd_gamma = (p(S + h) - 2 * p(S) + p(S - h)) / h**2
    tol = 2e-3 if exercise == "american" else 1e-6  # the grid's own truncation against a closed form's
    np.testing.assert_allclose(_np(g["delta"]), fd_delta, rtol=tol, atol=tol)
    np.testing.assert_allclose(_np(g["gamma"]), fd_gamma, rtol=10 * tol, atol=10 * tol)


def test_bad_dividend_input_is_a_clear_error():
    with pytest.raises(ValueError, match="model='bsm'"):
        gh.price(100.0, 100.0, 1.0, 0.2, model="black76", dividends=[(0.5, 1.0)], backend="numpy")
    with pytest.raises(ValueError, match="amount must be >= 0"):
        gh.price(100.0, 100.0, 1.0, 0.2, dividends=[(0.5, -1.0)], backend="numpy")
    with pytest.raises(ValueError, match="finite"):
        gh.price(100.0, 100.0, 1.0, 0.2, dividends=[(float("nan"), 1.0)], backend="numpy")
    with pytest.raises(ValueError, match="one schedule per row"):
        gh.price([100.0, 101.0, 102.0], 100.0, 1.0, 0.2, dividends=[[(0.5, 1.0)], [(0.5, 1.0)]], backend="numpy")
    with pytest.raises(ValueError, match="not available with dividends"):
        gh.greeks(100.0, 100.0, 1.0, 0.2, greeks=("speed",), dividends=[(0.5, 1.0)], backend="numpy")
    with pytest.raises(ValueError, match="vol_adjust"):
        gh.price(100.0, 100.0, 1.0, 0.2, dividends=[(0.5, 1.0)], vol_adjust="guess", backend="numpy")
