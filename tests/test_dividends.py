"""Discrete cash dividends (gpu_hedge._pricing.dividends): Hull's value, quoted-spot Greeks, American rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import gpu_hedge
from gpu_hedge._pricing.black_scholes import black_kernel
from gpu_hedge._pricing.dividends import DividendSchedule, check_dividends, dividend_greeks, dividend_rows

NAMES = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")

# four rows: Hull's call; a put with three dividends and a yield; a call with three; no dividend
S = np.array([40.0, 100.0, 100.0, 50.0])
K = np.array([40.0, 110.0, 90.0, 55.0])
T = np.array([0.5, 1.0, 1.5, 0.8])
V = np.array([0.3, 0.25, 0.4, 0.2])
R = np.array([0.09, 0.05, 0.03, 0.04])
Q = np.array([0.0, 0.01, 0.0, 0.02])
CALL = np.array([True, False, True, True])
DIVS = [[(60 / 360, 0.5), (150 / 360, 0.5)], [(0.25, 2.0), (0.75, 2.0), (1.25, 2.0)], [(0.1, 1.5), (0.6, 1.5), (1.1, 1.5)], []]


def _run(bk, american=False, vol_adjust="beneder_vorst", names=NAMES, S=S, T=T, V=V, R=R, Q=Q, sched=None, **kw):
    sched = check_dividends(DIVS, 4) if sched is None else sched
    out = dividend_greeks(bk, S, K, T, V, R, Q, CALL, names, sched, american=american, vol_adjust=vol_adjust, **kw)
    return {k: bk.to_numpy(v) for k, v in out.items()}


def test_hull_known_value(bk):
    """Hull, Options, Futures and Other Derivatives: S=40, K=40, r=9 %, vol 30 %, 180 days (Actual/360),
    0.50 at days 60 and 150, escrowed model without a vol adjustment: c = 3.67."""
    b = gpu_hedge.get_backend(bk)
    sched = check_dividends([(60 / 360, 0.5), (150 / 360, 0.5)], 1)
    c = float(dividend_greeks(b, 40.0, 40.0, 0.5, 0.3, 0.09, 0.0, True, ("price",), sched, american=False, vol_adjust="none")["price"])
    assert round(c, 2) == 3.67
    s = 40.0 - 0.5 * math.exp(-0.09 * 2 / 12) - 0.5 * math.exp(-0.09 * 5 / 12)
    assert abs(s - 39.0259) < 1e-4  # Hull rounds to 39.0259
    d1 = (math.log(s / 40.0) + (0.09 + 0.045) * 0.5) / (0.3 * math.sqrt(0.5))
    ref = s * norm.cdf(d1) - 40.0 * math.exp(-0.045) * norm.cdf(d1 - 0.3 * math.sqrt(0.5))
    assert abs(c - ref) < 1e-12


def _fd(bk, american, vol_adjust, **kw):
    """Central finite differences of the price: in the quoted spot, vol, r, q, and valuation time
    (expiry and the dividend dates move together)."""
    f = lambda **a: _run(bk, american, vol_adjust, ("price",), **kw, **a)["price"]  # noqa: E731
    hS = (2e-2 if american else 1e-4) * S
    up, mid, dn = f(S=S + hS), f(), f(S=S - hS)
    sched = check_dividends(DIVS, 4)
    ht = 1e-2 if american else 1e-4
    later = DividendSchedule(sched.times - ht, sched.amounts)
    earlier = DividendSchedule(sched.times + ht, sched.amounts)
    return {
        "delta": (up - dn) / (2 * hS),
        "gamma": (up - 2 * mid + dn) / hS**2,
        "vega": (f(V=V + 1e-4) - f(V=V - 1e-4)) / 2e-4,
        "rho": (f(R=R + 1e-5) - f(R=R - 1e-5)) / 2e-5,
        "dividend_rho": (f(Q=Q + 1e-5) - f(Q=Q - 1e-5)) / 2e-5,
        "theta": (f(T=T - ht, sched=later) - f(T=T + ht, sched=earlier)) / (2 * ht),
    }


@pytest.mark.parametrize("vol_adjust", ["none", "simple", "beneder_vorst"])
def test_european_greeks_are_derivatives_in_the_quoted_spot(bk, vol_adjust):
    """QuantLib #203's trap: delta is d/dS of the price as a function of the quoted spot (through the
    escrowed spot and, for the adjusted vols, through vol*(S)); theta moves the valuation date with
    the dividends fixed in calendar time."""
    b = gpu_hedge.get_backend(bk)
    got, fd = _run(b, False, vol_adjust), _fd(b, False, vol_adjust)
    tol = {"delta": 1e-7, "gamma": 1e-5, "vega": 1e-7, "rho": 1e-7, "dividend_rho": 1e-7, "theta": 1e-6}
    for k, ref in fd.items():
        np.testing.assert_allclose(got[k], ref, rtol=tol[k], atol=1e-9, err_msg=k)


def test_american_greeks_are_derivatives_of_the_grid_price(bk):
    b = gpu_hedge.get_backend(bk)
    kw = {"n_space": 201, "n_time": 100}
    got, fd = _run(b, True, "beneder_vorst", **kw), _fd(b, True, "beneder_vorst", **kw)
    tol = {"delta": 2e-3, "gamma": 1e-2, "vega": 2e-3, "rho": 2e-3, "dividend_rho": 2e-3, "theta": 1e-2}
    for k, ref in fd.items():
        np.testing.assert_allclose(got[k], ref, rtol=tol[k], err_msg=k)


def test_american_above_european_and_intrinsic_before_each_ex_date(bk):
    b = gpu_hedge.get_backend(bk)
    kw = {"n_space": 201, "n_time": 100}
    am, eu = _run(b, True, names=("price",), **kw), _run(b, False, names=("price",), **kw)
    assert np.all(am["price"] >= eu["price"] - 1e-12)
    sched = check_dividends(DIVS, 4)
    intrinsic = np.where(CALL, S - K, K - S)
    for j in range(3):  # valuation moved to just before each row's j-th ex-date
        t = sched.times[:, j] if sched.times.shape[1] > j else np.zeros(4)
        shift = np.where((sched.amounts[:, j] > 0) & (t < T), t - 1e-4, 0.0)
        moved = sched.times - shift[:, None]
        later = DividendSchedule(np.maximum(moved, 0.0), np.where(moved > 0, sched.amounts, 0.0))
        p = _run(b, True, names=("price",), T=T - shift, sched=later, **kw)["price"]
        keep = shift > 0
        assert keep.any()
        assert np.all(p[keep] >= intrinsic[keep] - 1e-12)


#: QuantLib 1.44, FdBlackScholesVanillaEngine(process, dividends, tGrid=2000, xGrid=2000,
#: dampingSteps=4, CrankNicolson, cashDividendModel=Escrowed / Spot), computed once offline:
#: S=100, r=5 %, q=0, T=365 days and dividends at days 91 and 273 on Actual/365 Fixed.
#: (call, K, vol, dividend, American escrowed, European escrowed, European spot-jump)
QUANTLIB = [
    (True, 100.0, 0.25, 2.0, 10.12310964, 10.00651185, 10.19932031),
    (True, 95.0, 0.30, 3.0, 13.41772456, 12.99227330, 13.33514728),
    (False, 105.0, 0.25, 2.0, 12.25052429, 11.75329679, 11.94573125),
]


def _ql_case(b, american, vol_adjust):
    call = np.array([c[0] for c in QUANTLIB])
    k, v, d = (np.array([c[i] for c in QUANTLIB]) for i in (1, 2, 3))
    t = np.array([91 / 365, 273 / 365])
    sched = check_dividends((np.stack([t] * 3), np.stack([d, d], axis=1)), 3)
    out = dividend_greeks(b, 100.0, k, 1.0, v, 0.05, 0.0, call, ("price",), sched, american=american, vol_adjust=vol_adjust)
    return b.to_numpy(out["price"])


def test_against_quantlib_escrowed_fd(bk):
    """The same model as QuantLib's Escrowed cash-dividend FD engine: European to its grid error,
    American to 2e-5 relative at the default grid (the grid's own convergence: cn_grid's docstring)."""
    b = gpu_hedge.get_backend(bk)
    np.testing.assert_allclose(_ql_case(b, False, "none"), [c[5] for c in QUANTLIB], rtol=3e-6)
    np.testing.assert_allclose(_ql_case(b, True, "none"), [c[4] for c in QUANTLIB], rtol=2e-5)


def test_default_vol_adjustment_approximates_the_spot_jump_model(bk):
    """Beneder-Vorst's adjusted vol brings the escrowed closed form within 0.1 % of the spot-jump
    model's value (QuantLib's Spot FD engine), much closer than no adjustment or the simple one."""
    b = gpu_hedge.get_backend(bk)
    spot = np.array([c[6] for c in QUANTLIB])
    err = {a: np.abs(_ql_case(b, False, a) / spot - 1) for a in ("none", "simple", "beneder_vorst")}
    assert np.all(err["beneder_vorst"] < 1e-3)
    assert np.all(err["beneder_vorst"] < err["none"]) and np.all(err["beneder_vorst"] < err["simple"])


@pytest.mark.parametrize("vol_adjust", ["none", "simple", "beneder_vorst"])
def test_rows_without_a_dividend_are_the_plain_values_exactly(bk, vol_adjust):
    b = gpu_hedge.get_backend(bk)
    divs = [[], [(0.0, 1.0), (2.0, 1.0)], [(0.5, 0.0)], [(0.3, 1.0)]]  # none, paid / after expiry, zero, one
    sched = check_dividends(divs, 4)
    assert dividend_rows(T, sched).tolist() == [False, False, False, True]
    got = _run(b, False, vol_adjust, sched=sched)
    phi = np.where(CALL, 1.0, -1.0)
    arrays = [b.asarray(a, dtype="float64") for a in (S, K, T, V, R, Q, phi)]
    plain = b.elementwise(black_kernel("bsm", NAMES), arrays, NAMES, np.float64, key=("test-plain", NAMES))
    for k in NAMES:
        np.testing.assert_array_equal(got[k][:3], b.to_numpy(plain[k])[:3], err_msg=k)
        assert got[k][3] != b.to_numpy(plain[k])[3]
    if vol_adjust != "beneder_vorst":
        return
    # American: a call without dividends (q = 0) is the European value exactly
    am = dividend_greeks(b, 40.0, 40.0, 0.5, 0.3, 0.09, 0.0, True, NAMES, None, american=True, vol_adjust=vol_adjust)
    eu = b.elementwise(
        black_kernel("bsm", NAMES), [b.asarray(x, dtype="float64") for x in (40.0, 40.0, 0.5, 0.3, 0.09, 0.0, 1.0)], NAMES, np.float64
    )
    for k in NAMES:
        assert float(am[k]) == float(eu[k]), k


def test_schedule_forms_agree():
    one = [(0.25, 1.0), (0.75, 1.0)]
    forms = [one, dict(one), np.array(one), [one, one], (np.array([[0.25, 0.75]] * 2), np.array([[1.0, 1.0]] * 2))]
    for f in forms:
        s = check_dividends(f, 2)
        assert s.times.shape == (2, 2)
        np.testing.assert_array_equal(s.times, [[0.25, 0.75]] * 2)
        np.testing.assert_array_equal(s.amounts, 1.0)
    s = check_dividends([[(0.75, 2.0), (0.25, 1.0)], []], (2,))  # sorted by time, padded with amount 0
    np.testing.assert_array_equal(s.times, [[0.25, 0.75], [0.0, 0.0]])
    np.testing.assert_array_equal(s.amounts, [[1.0, 2.0], [0.0, 0.0]])
    assert check_dividends(None, 3) is None
    assert check_dividends([], 3).times.shape == (3, 0)


@pytest.mark.parametrize(
    ("dividends", "match"),
    [
        ([(0.5, float("nan"))], "entry 0 .*finite"),
        ([[(0.5, 1.0)], [(0.2, 1.0), (-0.1, 1.0)]], "row 1: entry 1 .*time must be >= 0"),
        ([[(0.5, 1.0)], [(0.2, -1.0)]], "row 1: entry 0 .*amount must be >= 0"),
        ([[(0.5, 1.0)]] * 3, "one schedule per row \\(2\\); got 3"),
        ((np.zeros((2, 2)), np.zeros((2, 3))), "two 2-D arrays of one shape"),
        ((np.zeros((3, 2)), np.zeros((3, 2))), "3 rows; the inputs have 2"),
        ([[(0.5, 1.0, 2.0)], []], "row 0: expected \\(time_years, amount\\) pairs"),
        ("quarterly", "expected None"),
    ],
)
def test_bad_schedules_are_clear_errors(dividends, match):
    with pytest.raises(ValueError, match=match):
        check_dividends(dividends, 2)


def test_bad_calls_are_clear_errors(bk):
    b = gpu_hedge.get_backend(bk)
    sched = check_dividends([[(0.1, 30.0)], [(0.1, 80.0), (0.2, 30.0)]], 2)
    with pytest.raises(ValueError, match="row 1: the present value of the dividends"):
        dividend_greeks(b, np.array([50.0, 100.0]), 100.0, 1.0, 0.2, 0.0, 0.0, True, ("price",), sched, american=False)
    with pytest.raises(ValueError, match="unknown vol_adjust"):
        dividend_greeks(b, 100.0, 100.0, 1.0, 0.2, 0.0, 0.0, True, ("price",), None, american=False, vol_adjust="hull")
    with pytest.raises(ValueError, match="need model='bsm'"):
        dividend_greeks(b, 100.0, 100.0, 1.0, 0.2, 0.0, 0.0, True, ("price",), None, american=False, model="black76")
    with pytest.raises(ValueError, match="not offered with discrete dividends"):
        dividend_greeks(b, 100.0, 100.0, 1.0, 0.2, 0.0, 0.0, True, ("speed",), None, american=False)


def test_mixed_exercise_rows_are_the_all_european_and_all_american_values(bk):
    b = gpu_hedge.get_backend(bk)
    kw = {"n_space": 101, "n_time": 50}
    mixed = np.array([True, False, False, True])
    got = _run(b, mixed, names=("price", "delta"), **kw)
    am, eu = _run(b, True, names=("price", "delta"), **kw), _run(b, False, names=("price", "delta"), **kw)
    for k in ("price", "delta"):
        np.testing.assert_array_equal(got[k], np.where(mixed, am[k], eu[k]), err_msg=k)
