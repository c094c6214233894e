"""Self-validation of tests/reference.py (needs only mpmath / numpy).

Every closed-form Greek of ``ref_greeks`` must equal the corresponding
(mixed) partial derivative of ``mp_price`` obtained by high-precision
numerical differentiation (``mpmath.diff``); prices must satisfy put-call
parity; ``ref_noise`` / ``ref_table`` / ``random_cases`` must be sane.
"""

import os
import sys

import mpmath
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference import (  # noqa: E402
    GREEK_NAMES,
    MODELS,
    _mp_greeks,
    mp_price,
    random_cases,
    ref_greeks,
    ref_noise,
    ref_table,
)

# derivative orders in (S, K, T, sigma, r, q) and sign for each Greek
ORDERS = {
    "delta": ((1, 0, 0, 0, 0, 0), 1),
    "gamma": ((2, 0, 0, 0, 0, 0), 1),
    "vega": ((0, 0, 0, 1, 0, 0), 1),
    "theta": ((0, 0, 1, 0, 0, 0), -1),
    "rho": ((0, 0, 0, 0, 1, 0), 1),
    "dividend_rho": ((0, 0, 0, 0, 0, 1), 1),
    "vanna": ((1, 0, 0, 1, 0, 0), 1),
    "volga": ((0, 0, 0, 2, 0, 0), 1),
    "charm": ((1, 0, 1, 0, 0, 0), -1),
    "veta": ((0, 0, 1, 1, 0, 0), -1),
    "speed": ((3, 0, 0, 0, 0, 0), 1),
    "zomma": ((2, 0, 0, 1, 0, 0), 1),
    "color": ((2, 0, 1, 0, 0, 0), -1),
    "ultima": ((0, 0, 0, 3, 0, 0), 1),
    "dual_delta": ((0, 1, 0, 0, 0, 0), 1),
    "dual_gamma": ((0, 2, 0, 0, 0, 0), 1),
}
assert set(ORDERS) | {"price"} == set(GREEK_NAMES)

# moderate, non-degenerate cases: (S, K, T, sigma, r, q, call)
BASE_CASES = [
    (100.0, 100.0, 1.0, 0.2, 0.05, 0.02, True),
    (100.0, 110.0, 0.5, 0.3, 0.03, 0.0, False),
    (42.0, 40.0, 0.5, 0.2, 0.10, 0.0, True),
    (49.0, 50.0, 0.3846, 0.2, 0.05, 0.0, False),
    (1500.0, 1200.0, 2.5, 0.45, -0.01, 0.03, True),
    (3.7, 4.2, 0.1, 0.8, 0.07, 0.05, False),
    (250.0, 180.0, 7.0, 0.15, 0.02, 0.04, False),
    (80.0, 95.0, 0.04, 0.35, 0.0, 0.01, True),
    (60.0, 65.0, 0.25, 0.30, 0.08, 0.0, True),
    (430.0, 405.0, 0.0833, 0.2, 0.07, 0.05, False),
]
BACHELIER_CASES = [
    (100.0, 100.0, 1.0, 20.0, 0.05, 0.02, True),
    (100.0, 110.0, 0.5, 15.0, 0.03, 0.0, False),
    (-1.5, -1.2, 2.0, 0.8, 0.01, 0.0, True),
    (-0.5, 0.25, 0.75, 0.6, 0.02, 0.03, False),
    (0.02, -0.01, 5.0, 0.01, -0.005, 0.0, True),
    (3.0, 2.0, 0.1, 2.5, 0.07, 0.05, False),
    (-40.0, -55.0, 3.0, 9.0, 0.04, 0.0, False),
    (12.0, 12.5, 0.02, 4.0, 0.0, 0.0, True),
    (0.0, 1.0, 1.0, 1.5, 0.03, 0.0, True),
    (250.0, 180.0, 7.0, 30.0, 0.02, 0.04, False),
]


def _cases(model):
    return BACHELIER_CASES if model == "bachelier" else BASE_CASES


PARAMS = [(m, c) for m in MODELS for c in _cases(m)]
IDS = [f"{m}-{i}" for m in MODELS for i in range(len(_cases(m)))]

DIFF_DPS = 50
RTOL = mpmath.mpf("1e-30")  # observed agreement ~1e-49 at dps=50


@pytest.mark.parametrize("model,case", PARAMS, ids=IDS)
def test_closed_forms_match_numerical_derivatives(model, case):
    S, K, T, sigma, r, q, call = case
    ref = ref_greeks(model, S, K, T, sigma, r, q, call)
    with mpmath.workdps(DIFF_DPS):
        x0 = [mpmath.mpf(v) for v in (S, K, T, sigma, r, q)]
        exact = _mp_greeks(model, *x0, call)

        def f(*a):
            return mp_price(model, *a, call, dps=DIFF_DPS)

        price = f(*x0)
        assert abs(exact["price"] - price) <= RTOL * abs(price) + mpmath.mpf("1e-40")
        assert ref["price"] == float(price)
        # scale for greeks that happen to be ~0 (e.g. dividend_rho off bsm)
        floor = mpmath.mpf("1e-30") * max(abs(x0[0]), abs(x0[1]), 1)
        bad = []
        for name, (orders, sign) in ORDERS.items():
            num = sign * mpmath.diff(f, x0, orders)
            cf = exact[name]
            err = abs(cf - num)
            if not err <= RTOL * abs(num) + floor:
                bad.append((name, mpmath.nstr(cf, 20), mpmath.nstr(num, 20),
                            mpmath.nstr(err, 3)))
            # the float we hand out is the correctly rounded closed form
            assert ref[name] == float(cf), name
        assert not bad, bad


@pytest.mark.parametrize("model,case", PARAMS, ids=IDS)
def test_put_call_parity(model, case):
    S, K, T, sigma, r, q, _ = case
    with mpmath.workdps(DIFF_DPS):
        c = mp_price(model, S, K, T, sigma, r, q, True)
        p = mp_price(model, S, K, T, sigma, r, q, False)
        Sm, Km, Tm, rm, qm = (mpmath.mpf(v) for v in (S, K, T, r, q))
        if model == "bsm":
            fwd = Sm * mpmath.exp(-qm * Tm) - Km * mpmath.exp(-rm * Tm)
        else:
            fwd = mpmath.exp(-rm * Tm) * (Sm - Km)
        assert abs(c - p - fwd) <= mpmath.mpf("1e-40") * (abs(Sm) + abs(Km))
    gc = ref_greeks(model, S, K, T, sigma, r, q, True)
    gp = ref_greeks(model, S, K, T, sigma, r, q, False)
    scale = abs(S) + abs(K)
    assert gc["price"] - gp["price"] == pytest.approx(float(fwd), abs=4e-16 * scale)
    # second-and-higher-order Greeks in S / sigma / K are identical for calls and puts
    for name in ("gamma", "vega", "volga", "speed", "zomma", "ultima", "dual_gamma", "veta"):
        assert gc[name] == pytest.approx(gp[name], rel=1e-14, abs=1e-300), name


@pytest.mark.parametrize("model", ["black76", "bachelier"])
def test_q_ignored_off_bsm(model):
    S, K, T, sigma, r, _, call = _cases(model)[0]
    assert ref_greeks(model, S, K, T, sigma, r, 0.0, call) == ref_greeks(model, S, K, T, sigma, r, 0.07, call)


def test_global_precision_untouched():
    before = mpmath.mp.dps
    ref_greeks("bsm", 100.0, 90.0, 1.0, 0.2, 0.01, 0.0, True)
    ref_noise("bachelier", 1.0, 0.5, 1.0, 0.2, 0.01, 0.0, False)
    ref_table(random_cases(3, 0, "black76"), "black76")
    mp_price("bsm", 100.0, 90.0, 1.0, 0.2, 0.01, 0.0, True)
    assert mpmath.mp.dps == before


@pytest.mark.parametrize("model", MODELS)
def test_random_cases_and_table(model):
    c1 = random_cases(40, 7, model)
    c2 = random_cases(40, 7, model)
    for k in ("S", "K", "T", "sigma", "r", "q", "call"):
        assert np.array_equal(c1[k], c2[k])
        assert c1[k].shape == (40,)
    assert c1["call"].dtype == bool and 0 < c1["call"].sum() < 40
    assert np.all((c1["T"] >= 1 / 365 * (1 - 1e-12)) & (c1["T"] <= 30 * (1 + 1e-12)))
    assert np.all(c1["sigma"] > 0) and np.all(np.isfinite(c1["K"]))
    if model == "bachelier":
        assert np.all(np.abs(c1["S"]) >= 1) and (c1["S"] < 0).any() and (c1["K"] < 0).any()
    else:
        assert np.all(c1["K"] > 0) and np.all(c1["S"] >= 1)

    tab = ref_table(c1, model)
    assert set(tab) == set(GREEK_NAMES)
    for ref, noise in tab.values():
        assert ref.shape == noise.shape == (40,)
        assert np.all(np.isfinite(ref)) and np.all(np.isfinite(noise)) and np.all(noise >= 0)
    # table entries agree with the scalar functions
    for i in (0, 17, 39):
        args = [c1[k][i] for k in ("S", "K", "T", "sigma", "r", "q", "call")]
        g = ref_greeks(model, *args)
        nz = ref_noise(model, *args)
        for name in GREEK_NAMES:
            assert tab[name][0][i] == g[name] and tab[name][1][i] == nz[name]
    # the price noise is of order ulp-level relative sensitivity, not zero, not huge
    price, pn = tab["price"]
    assert np.all(pn > 0)
    assert np.all(pn <= 1e-9 * np.maximum(np.abs(price), 1e-300) + 1e-12 * (np.abs(c1["S"]) + np.abs(c1["K"])))


def test_noise_matches_finite_bumps():
    # noise of the price ~ max_x |dV/dx * x| * 2**-52
    S, K, T, sigma, r, q = 100.0, 110.0, 0.5, 0.3, 0.03, 0.01
    g = ref_greeks("bsm", S, K, T, sigma, r, q, True)
    nz = ref_noise("bsm", S, K, T, sigma, r, q, True)
    lin = max(abs(g["delta"] * S), abs(g["dual_delta"] * K), abs(g["theta"] * T),
              abs(g["vega"] * sigma), abs(g["rho"] * r), abs(g["dividend_rho"] * q)) * 2.0 ** -52
    assert nz["price"] == pytest.approx(lin, rel=1e-6)
