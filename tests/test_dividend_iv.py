"""``gh.implied_vol(..., dividends=)``: the vol that gh.price with the same dividends takes back to the price.

References: gh.price with dividends (checked against Hull and QuantLib in tests/test_dividends*.py)
is inverted here, so the round trip is the test; the European inversion is also checked against
the closed form of the vol adjustment (vol* = k vol, k independent of vol) and against plain
implied_vol on the escrowed spot, which is a different code path.
"""

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge import IVStatus

HULL_DIVS = [(60 / 360, 0.5), (150 / 360, 0.5)]


def _np(x):
    return np.asarray(gh.to_numpy(x), dtype=float)


@pytest.mark.parametrize("vol_adjust", ["none", "simple", "beneder_vorst"])
def test_european_round_trip(bk, vol_adjust):
    S = np.array([40.0, 40.0, 38.0, 44.0, 40.0])
    K = np.array([40.0, 36.0, 40.0, 40.0, 40.0])
    vol = np.array([0.30, 0.15, 0.55, 0.25, 1.2])
    call = np.array([True, False, True, False, False])
    p = gh.price(S, K, 0.5, vol, 0.09, call=call, dividends=HULL_DIVS, vol_adjust=vol_adjust, backend=bk)
    got, status = gh.implied_vol(p, S, K, 0.5, 0.09, call=call, dividends=HULL_DIVS, vol_adjust=vol_adjust, backend=bk, return_status=True)
    assert (_np(status) == IVStatus.OK).all()
    np.testing.assert_allclose(_np(got), vol, rtol=0, atol=1e-10)


def test_european_without_adjustment_is_plain_iv_on_the_escrowed_spot(bk):
    # Hull's escrowed model: the price is BSM on S - PV, so its IV is the plain IV there
    S, K, T, r = 40.0, 40.0, 0.5, 0.09
    pv = sum(a * np.exp(-r * t) for t, a in HULL_DIVS)
    p = np.array([3.67, 2.5, 5.0])
    got = _np(gh.implied_vol(p, S, K, T, r, dividends=HULL_DIVS, vol_adjust="none", backend=bk))
    want = _np(gh.implied_vol(p, S - pv, K, T, r, backend=bk))
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert abs(got[0] - 0.30) < 2e-3  # Hull's 3.67 is at vol 30 %


def test_rows_without_a_dividend_are_the_plain_inversion(bk):
    p = np.array([10.45, 5.57])
    divs = [[(0.0, 1.0)], [(2.0, 1.0)]]  # one already paid, one after expiry
    got = _np(gh.implied_vol(p, 100.0, 100.0, 1.0, 0.05, call=np.array([True, False]), dividends=divs, backend=bk))
    want = _np(gh.implied_vol(p, 100.0, 100.0, 1.0, 0.05, call=np.array([True, False]), backend=bk))
    np.testing.assert_array_equal(got, want)


def test_american_round_trip_and_mixed_rows():
    # the Crank-Nicolson American price with dividends, inverted by the secant; European rows and a
    # row without dividends in the same call (NumPy: the grid's secant is 10 grid solves per row)
    S = np.array([40.0, 40.0, 40.0, 100.0])
    K = np.array([40.0, 44.0, 38.0, 100.0])
    vol = np.array([0.30, 0.25, 0.40, 0.20])
    call = np.array([True, False, True, False])
    ex = np.array(["american", "american", "european", "american"])
    divs = [HULL_DIVS, HULL_DIVS, HULL_DIVS, []]
    p = gh.price(S, K, 0.5, vol, 0.09, call=call, exercise=ex, dividends=divs, backend="numpy")
    euro = gh.price(S, K, 0.5, vol, 0.09, call=call, dividends=divs, backend="numpy")
    assert _np(p)[0] > _np(euro)[0] + 1e-3  # the call is exercised before a dividend: a real premium
    got, status = gh.implied_vol(p, S, K, 0.5, 0.09, call=call, exercise=ex, dividends=divs, backend="numpy", return_status=True)
    assert (_np(status) == IVStatus.OK).all()
    np.testing.assert_allclose(_np(got), vol, rtol=0, atol=1e-7)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="model='bsm'"):
        gh.implied_vol(5.0, 100.0, 100.0, 1.0, 0.05, model="black76", dividends=[(0.5, 1.0)], backend="numpy")
    with pytest.raises(ValueError, match="vol_adjust"):
        gh.implied_vol(5.0, 100.0, 100.0, 1.0, 0.05, dividends=[(0.5, 1.0)], vol_adjust="hull", backend="numpy")
    with pytest.raises(ValueError, match="dividend"):
        gh.implied_vol(5.0, 100.0, 100.0, 1.0, 0.05, dividends=[(0.5, -1.0)], backend="numpy")
