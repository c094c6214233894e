"""Bad input: a ValueError naming the argument, the first offending index and value, or NaN per row."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge
from gpu_hedge import to_numpy

GOOD = dict(spot=[100.0, 101.0, 102.0], strike=100.0, expiry=1.0, vol=0.2, rate=0.01, div=0.0)


def call_with(bk, model="bsm", **over):
    a = {**GOOD, **over}
    return gpu_hedge.greeks(a["spot"], a["strike"], a["expiry"], a["vol"], a["rate"], a["div"],
                            model=model, backend=bk, greeks=["price", "delta"])  # fmt: skip


@pytest.mark.parametrize(
    ("arg", "values", "index", "value"),
    [
        ("vol", [0.2, 0.3, np.nan], "[2]", "nan"),
        ("vol", [0.2, -0.1, 0.3], "[1]", "-0.1"),
        ("expiry", [1.0, -1.0, 2.0], "[1]", "-1.0"),
        ("spot", [100.0, 0.0, 1.0], "[1]", "0.0"),
        ("spot", [100.0, 101.0, -5.0], "[2]", "-5.0"),
        ("strike", [-1.0, 100.0, 100.0], "[0]", "-1.0"),
        ("rate", [0.01, np.inf, 0.0], "[1]", "inf"),
        ("div", [np.nan, 0.0, 0.0], "[0]", "nan"),
        ("expiry", np.inf, "", "inf"),
    ],
)
def test_invalid_values_name_argument_index_and_value(bk, arg, values, index, value):
    with pytest.raises(ValueError) as info:
        call_with(bk, **{arg: values})
    msg = str(info.value)
    assert f"{arg}{index} = " in msg and value in msg and "model='bsm'" in msg, msg


def test_message_counts_all_bad_values(bk):
    with pytest.raises(ValueError, match=r"vol\[1\] = .*-0\.1.*\(2 invalid values in all\)"):
        call_with(bk, vol=[0.2, -0.1, -0.3])


def test_multidimensional_index_is_reported(bk):
    vol = np.full((2, 3), 0.2)
    vol[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"vol\[1, 2\]"):
        gpu_hedge.price(100.0, 100.0, 1.0, vol, backend=bk)


def test_bachelier_accepts_negative_spot_and_strike_but_not_negative_vol(bk):
    p = to_numpy(gpu_hedge.price(-1.0, -2.0, 1.0, 0.5, model="bachelier", backend=bk))
    assert p > 1.0
    with pytest.raises(ValueError, match=r"vol = -0\.5"):
        gpu_hedge.price(-1.0, -2.0, 1.0, -0.5, model="bachelier", backend=bk)


def test_div_is_not_checked_where_the_model_ignores_it(bk):
    p = gpu_hedge.price(100.0, 100.0, 1.0, 0.2, 0.0, np.nan, model="black76", backend=bk)
    assert np.isfinite(to_numpy(p))


def test_unknown_model(bk):
    with pytest.raises(ValueError, match="unknown model 'heston'.*bsm"):
        gpu_hedge.price(100.0, 100.0, 1.0, 0.2, model="heston", backend=bk)


@pytest.mark.parametrize("bad", ["straddle", ["call", "putt"], np.array([1.5, 2.0])])
def test_unknown_option_type(bk, bad):
    with pytest.raises(ValueError, match="call"):
        gpu_hedge.price([100.0, 100.0], 100.0, 1.0, 0.2, call=bad, backend=bk)


def test_option_type_words(bk):
    words = np.array(["call", "put", "C", "P", "Call", "PUT"])
    p = to_numpy(gpu_hedge.price(100.0, 100.0, 1.0, 0.2, call=words, backend=bk))
    b = to_numpy(gpu_hedge.price(100.0, 100.0, 1.0, 0.2, call=np.array([True, False] * 3), backend=bk))
    np.testing.assert_array_equal(p, b)


def test_shapes_that_do_not_broadcast(bk):
    with pytest.raises(ValueError, match=r"do not broadcast.*spot\(3,\).*strike\(2,\)"):
        gpu_hedge.price([1.0, 2.0, 3.0], [1.0, 2.0], 1.0, 0.2, backend=bk)


def test_unknown_greek_and_method_and_dtype(bk):
    with pytest.raises(ValueError, match="unknown greek.*'lambda'"):
        gpu_hedge.greeks(100.0, 100.0, 1.0, 0.2, greeks=["delta", "lambda"], backend=bk)
    with pytest.raises(ValueError, match="unknown method"):
        gpu_hedge.greeks(100.0, 100.0, 1.0, 0.2, method="bump", backend=bk)
    with pytest.raises(ValueError, match="float16"):
        gpu_hedge.price(100.0, 100.0, 1.0, 0.2, dtype="float16", backend=bk)


def test_on_invalid_nan_masks_only_the_bad_rows(bk):
    spot = np.array([100.0, -1.0, 102.0, 103.0])
    vol = np.array([0.2, 0.2, np.nan, 0.25])
    got = gpu_hedge.greeks(spot, 100.0, 1.0, vol, 0.01, on_invalid="nan", backend=bk)
    clean = gpu_hedge.greeks(spot[[0, 3]], 100.0, 1.0, vol[[0, 3]], 0.01, backend=bk)
    for name, arr in got.items():
        arr = to_numpy(arr)
        assert np.isnan(arr[1]) and np.isnan(arr[2]), name
        np.testing.assert_array_equal(arr[[0, 3]], to_numpy(clean[name]), err_msg=name)


def test_on_invalid_must_be_known(bk):
    with pytest.raises(ValueError, match="on_invalid"):
        gpu_hedge.price(100.0, 100.0, 1.0, 0.2, on_invalid="ignore", backend=bk)


def test_non_numeric_input(bk):
    with pytest.raises(ValueError, match="spot must be numeric"):
        gpu_hedge.price("abc", 100.0, 1.0, 0.2, backend=bk)


def test_device_arrays_are_accepted_and_checked(bk):
    b = gpu_hedge.get_backend(bk)
    vol = b.asarray([0.2, -0.2], dtype="float64")
    with pytest.raises(ValueError, match=r"vol\[1\]"):
        gpu_hedge.price(100.0, 100.0, 1.0, vol, backend=bk)
    call = b.asarray(np.array([True, False]))
    p = to_numpy(gpu_hedge.price(100.0, 90.0, 1.0, b.asarray([0.2, 0.2]), call=call, backend=bk))
    assert p[0] > p[1] > 0
