"""Inputs taken as stated or refused (issue 14, point 3) by price, greeks, implied_vol and model_price.

Each test here failed before the change: NaN/inf results from valid-looking inputs came back with only a
RuntimeWarning, a one-day ``timedelta64`` was priced as one year, ``True`` and ``"100"`` were taken as
numbers, and a float32 overflow was reported as ``spot = inf``.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge import GBM
from gpu_hedge._backends import to_numpy

ARGS = ("spot", "strike", "expiry", "vol", "rate", "div")
BASE = {"spot": 100.0, "strike": 100.0, "expiry": 1.0, "vol": 0.2, "rate": 0.05, "div": 0.01}


def _price(bk: str, **changes: object) -> np.ndarray:
    kw = {**BASE, **changes}
    args = [kw.pop(a) for a in ARGS]
    return to_numpy(gh.price(*args, backend=bk, **kw))


# ------------------------------------------------------------- 1. results that are not finite


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflowing_result_raises_naming_the_row_and_inputs(bk):
    with pytest.raises(ValueError) as err:
        gh.price(100.0, 100.0, 1.0, 0.2, rate=-1e3, call=[True, False], backend=bk)
    msg = str(err.value)
    assert msg.startswith("price[0] is not finite (nan)")
    for part in ("spot=100.0", "strike=100.0", "expiry=1.0", "vol=0.2", "rate=-1000.0", "div=0.0", "call=True"):
        assert part in msg
    assert "exp(-rate*expiry)" in msg and "2 values of price" in msg


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflowing_row_is_found_among_good_rows(bk):
    with pytest.raises(ValueError, match=r"^price\[2\] is not finite \(inf\) .*rate=-1000\.0.*call=False"):
        gh.price(100.0, 100.0, 1.0, 0.2, rate=[0.05, 0.0, -1e3], call=False, backend=bk)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_greek_overflow_at_a_tiny_valid_vol_names_the_greek(bk):
    # gamma = n(0) / (S vol sqrt(T)) is ~4e317 at vol = 1e-320: valid input, result beyond float64
    # (XLA flushes the subnormal vol to 0, and the price is NaN first)
    with pytest.raises(ValueError, match=r"^(gamma is not finite \(inf\)|price is not finite \(nan\)) for .*vol=1e-320"):
        gh.greeks(100.0, 100.0, 1.0, 1e-320, greeks=("price", "gamma"), backend=bk)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_overflowing_result_is_nan_under_on_invalid_nan(bk):
    p = to_numpy(gh.price(100.0, 100.0, 1.0, 0.2, rate=[-1e3, 0.05], call=False, backend=bk, on_invalid="nan"))
    assert np.isnan(p[0])  # the put was +inf before: never a stray inf
    assert p[1] == pytest.approx(_price("numpy", rate=0.05, div=0.0, call=False), rel=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_finite_outputs_of_an_overflowing_row_are_kept(bk):
    g = gh.greeks(100.0, 100.0, 1.0, 0.2, rate=-1e3, greeks=("delta", "price"), backend=bk, on_invalid="nan")
    assert float(to_numpy(g["delta"])) == 0.0 and np.isnan(float(to_numpy(g["price"])))
    # delta alone is finite (0): no error under "raise" either
    assert float(to_numpy(gh.greeks(100.0, 100.0, 1.0, 0.2, rate=-1e3, greeks="delta", backend=bk)["delta"])) == 0.0


def test_documented_zero_variance_limits_are_not_errors(bk):
    # rows 0 and 1 at the money with zero variance: gamma +inf, theta -inf at expiry, speed NaN, as documented
    g = {k: to_numpy(v) for k, v in gh.greeks([100.0, 100.0, 100.0], 100.0, [0.0, 1.0, 1.0], [0.2, 0.0, 0.2], backend=bk).items()}
    assert g["gamma"][0] == np.inf and g["theta"][0] == -np.inf and np.isnan(g["speed"][0])
    assert g["gamma"][1] == np.inf and np.isnan(g["vanna"][1])
    assert all(np.isfinite(v[2]) for v in g.values())


# ------------------------------------------------------------- 2. timedelta and datetime expiries


@pytest.mark.parametrize(
    ("span", "years"),
    [
        (np.timedelta64(1, "D"), 1 / 365),
        (np.timedelta64(36, "h"), 1.5 / 365),
        (np.array([1, 30], dtype="timedelta64[D]"), np.array([1 / 365, 30 / 365])),
        (dt.timedelta(days=1), 1 / 365),
        (dt.timedelta(days=90), 90 / 365),
        ([dt.timedelta(days=1), dt.timedelta(days=2)], np.array([1 / 365, 2 / 365])),
    ],
    ids=["td64-1D", "td64-36h", "td64-array", "timedelta-1d", "timedelta-90d", "timedelta-list"],
)
def test_timedelta_expiry_is_years_act_365(bk, span, years):
    np.testing.assert_allclose(_price(bk, expiry=span), _price(bk, expiry=years), rtol=1e-14)
    g_span = gh.greeks(100.0, 100.0, span, 0.2, greeks=("delta", "theta"), backend=bk)
    g_years = gh.greeks(100.0, 100.0, years, 0.2, greeks=("delta", "theta"), backend=bk)
    for name in ("delta", "theta"):
        np.testing.assert_allclose(to_numpy(g_span[name]), to_numpy(g_years[name]), rtol=1e-14)


def test_pandas_timedelta_expiry_is_years_act_365(bk):
    pd = pytest.importorskip("pandas")
    assert _price(bk, expiry=pd.Timedelta(days=7)) == pytest.approx(_price(bk, expiry=7 / 365), rel=1e-14)
    series = pd.Series(pd.to_timedelta([1, 10], unit="D"))
    np.testing.assert_allclose(_price(bk, expiry=series), _price(bk, expiry=np.array([1 / 365, 10 / 365])), rtol=1e-14)


def test_implied_vol_takes_a_timedelta_expiry(bk):
    p = _price("numpy", expiry=30 / 365)
    vol = to_numpy(gh.implied_vol(p, 100.0, 100.0, np.timedelta64(30, "D"), 0.05, 0.01, backend=bk))
    assert float(vol) == pytest.approx(0.2, abs=1e-10)


@pytest.mark.parametrize(
    "date",
    [np.datetime64("2030-01-01"), np.array(["2030-01-01"], dtype="datetime64[D]"), dt.datetime(2030, 1, 1), dt.date(2030, 1, 1)],
    ids=["datetime64", "datetime64-array", "datetime", "date"],
)
def test_date_expiry_is_refused(bk, date):
    with pytest.raises(ValueError, match=r"^expiry must be a time to expiry in years or a timedelta.*valuation date"):
        _price(bk, expiry=date)


@pytest.mark.parametrize("span", [np.timedelta64(1, "Y"), np.timedelta64(2, "M"), np.timedelta64(5)], ids=["Y", "M", "generic"])
def test_timedelta_without_a_fixed_length_is_refused(bk, span):
    with pytest.raises(ValueError, match=r"^expiry is a timedelta64"):
        _price(bk, expiry=span)


@pytest.mark.parametrize("arg", ["spot", "strike", "vol", "rate", "div"])
def test_timedelta_outside_expiry_is_refused(bk, arg):
    with pytest.raises(ValueError, match=rf"^{arg} must be numeric.*only expiry takes"):
        _price(bk, **{arg: np.timedelta64(1, "D")})


# ------------------------------------------------------------- 3. bools and strings are not numbers

NOT_NUMBERS = {
    "bool": True,
    "numpy-bool": np.bool_(False),
    "str": "100",
    "bytes": b"100",
    "bool-array": np.array([True, False]),
    "str-array": np.array(["1", "2"]),
    "object-array-with-str": np.array([1.0, "2"], dtype=object),
    "object-array-with-bool": np.array([1.0, True], dtype=object),
    "list-with-bool": [1.0, True],
    "nested-list-with-str": [[1.0], ["2"]],
    "complex": 1 + 2j,
    "none": None,
}


@pytest.mark.parametrize("arg", ARGS)
@pytest.mark.parametrize("value", list(NOT_NUMBERS.values()), ids=list(NOT_NUMBERS))
def test_bools_and_strings_are_refused_naming_the_argument(bk, arg, value):
    with pytest.raises(ValueError, match=rf"^{arg}(\[[0-9, ]+\])? must be numeric"):
        _price(bk, **{arg: value})


def test_refusal_says_what_was_given(bk):
    with pytest.raises(ValueError, match=r"^spot must be numeric: a number or a numeric array; got bool True$"):
        gh.price(True, 100.0, 1.0, 0.2, backend=bk)
    with pytest.raises(ValueError, match=r"^spot must be numeric: .*got str '100'$"):
        gh.price("100", 100.0, 1.0, 0.2, backend=bk)
    with pytest.raises(ValueError, match=r"^strike\[1\] must be numeric: .*got bool True$"):
        gh.price(100.0, [100.0, True], 1.0, 0.2, backend=bk)


def test_device_bool_arrays_are_refused(bk):
    xp = gh.get_backend(bk).xp
    with pytest.raises(ValueError, match=r"^vol must be numeric"):
        gh.price(100.0, 100.0, 1.0, xp.asarray([True, False]), backend=bk)


@pytest.mark.parametrize("value", [True, "1.5", np.array([True])], ids=["bool", "str", "bool-array"])
def test_implied_vol_refuses_bools_and_strings(bk, value):
    with pytest.raises(ValueError, match=r"^price must be numeric"):
        gh.implied_vol(value, 100.0, 100.0, 1.0, backend=bk)
    with pytest.raises(ValueError, match=r"^expiry must be numeric"):
        gh.implied_vol(10.0, 100.0, 100.0, value, backend=bk)


def test_call_still_takes_bools_and_strings(bk):
    put = _price(bk, call=False)
    assert _price(bk, call="put") == put
    assert _price(bk, call=np.array(["P"]))[0] == pytest.approx(float(put), rel=1e-15)
    assert _price(bk, call=True) == _price(bk, call="C")


def test_plain_numbers_ints_and_object_numbers_are_taken(bk):
    ref = _price(bk)
    assert _price(bk, spot=100, strike=np.int32(100)) == ref
    assert _price(bk, spot=np.array([100.0], dtype=object))[0] == pytest.approx(float(ref), rel=1e-15)


@pytest.mark.parametrize("value", [True, "100", np.array([True])], ids=["bool", "str", "bool-array"])
def test_model_price_and_mc_price_refuse_bools_and_strings(value):
    model = GBM(spot=100.0, vol=0.2)
    with pytest.raises(ValueError, match=r"^strike must be numeric"):
        gh.model_price(model, value, 1.0)
    with pytest.raises(ValueError, match=r"^expiry must be numeric"):
        gh.model_price(model, 100.0, value)
    with pytest.raises(ValueError, match=r"^strike must be numeric"):
        gh.mc_price(model, strike=value, expiry=1.0, n_paths=16, n_steps=1, seed=1, backend="numpy")


def test_model_price_takes_a_timedelta_expiry():
    model = GBM(spot=100.0, vol=0.2, rate=0.05)
    assert float(gh.model_price(model, 100.0, np.timedelta64(30, "D"))) == pytest.approx(
        float(gh.model_price(model, 100.0, 30 / 365)), rel=1e-14
    )
    with pytest.raises(ValueError, match=r"^expiry must be a time to expiry"):
        gh.model_price(model, 100.0, np.datetime64("2030-01-01"))


# ------------------------------------------------------------- 4. the argument and value as given


@pytest.mark.parametrize("arg", ["spot", "strike", "vol", "rate"])
def test_float32_cast_overflow_names_the_value_given(bk, arg):
    with pytest.raises(ValueError, match=rf"^{arg} = 1e\+39 overflows float32"):
        _price(bk, dtype="float32", **{arg: 1e39})


def test_float32_cast_overflow_in_an_array_names_the_index(bk):
    with pytest.raises(ValueError, match=r"^spot\[1\] = -1e\+300 overflows float32"):
        gh.price([100.0, -1e300], 100.0, 1.0, 0.2, model="bachelier", dtype="float32", backend=bk)


def test_invalid_float32_value_is_shown_as_given(bk):
    # -0.1 in float32 is -0.10000000149011612: the message shows what the user wrote
    with pytest.raises(ValueError, match=re.escape("vol[1] = -0.1 is invalid")):
        gh.price(100.0, 100.0, 1.0, [0.2, -0.1], dtype="float32", backend=bk)


def test_huge_python_int_overflows_float64(bk):
    with pytest.raises(ValueError, match=r"^spot = 1000+ overflows float64"):
        gh.price(10**400, 100.0, 1.0, 0.2, backend=bk)


def test_invalid_timedelta_is_shown_as_given(bk):
    with pytest.raises(ValueError, match=re.escape("expiry[1] = np.timedelta64(-1,'D') (-0.0027397260273972603 years, ACT/365)")):
        gh.price(100.0, 100.0, np.array([1, -1], dtype="timedelta64[D]"), 0.2, backend=bk)


@pytest.mark.parametrize("value", [True, "100", None])
def test_model_parameters_are_numbers(value):
    with pytest.raises(ValueError, match="spot must be a real number"):
        gh.GBM(spot=value, vol=0.2)
    assert gh.GBM(spot=np.float64(100.0), vol=np.int64(0)).spot == 100.0  # NumPy scalars are numbers


@pytest.mark.parametrize("horizon", [True, "1.0"])
def test_simulation_horizon_is_a_number(horizon):
    with pytest.raises(ValueError, match="horizon must be a number of years"):
        gh.simulate(gh.GBM(spot=100.0, vol=0.2), n_paths=4, n_steps=2, horizon=horizon, seed=0)


def test_native_book_delta_of_an_empty_book_is_zero():
    from cpu_fallback._hedge import book_delta

    assert np.array_equal(book_delta(np.full(1000, 100.0), []), np.zeros(1000))
