"""Self-test of the binomial reference (tests/american_reference.py) and the published tables
(tests/american_published.py). Needs only NumPy / SciPy: no gpu_hedge, no QuantLib.

* European mode against the Black-Scholes-Merton closed form written here (from ``scipy.special.ndtr``).
* American put against Andersen-Lake-Offengenden's high-precision early-exercise premia.
* American call with q = 0 equals the European call (Merton 1973: never exercised early).
* Put-call symmetry (McDonald and Schroder 1998): C(S, K, T, vol, r, q) = P(K, S, T, vol, q, r).
* American >= European and >= intrinsic; delta and gamma against central differences of the tree.
* The Barone-Adesi-Whaley, Bjerksund-Stensland 1993 and Ju (1999) approximations within their bands.
"""

import os
import sys

import numpy as np
import pytest
from scipy.special import ndtr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from american_published import ALO_2015, ALO_PREMIUM, HAUG_BAW, HAUG_BJS1993, JU_1999, as_arrays  # noqa: E402
from american_reference import lr_tree, tree  # noqa: E402


def black_scholes(S, K, T, vol, r, q, call):
    """Merton (1973) closed form, written independently of the module under test."""
    S, K, T, vol, r, q = (np.asarray(x, dtype=float) for x in (S, K, T, vol, r, q))
    sd = vol * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q) * T) / sd + 0.5 * sd
    d2 = d1 - sd
    call_v = S * np.exp(-q * T) * ndtr(d1) - K * np.exp(-r * T) * ndtr(d2)
    put_v = K * np.exp(-r * T) * ndtr(-d2) - S * np.exp(-q * T) * ndtr(-d1)
    return np.where(call, call_v, put_v)


def random_set(m: int, seed: int, sds: float = 3.0):
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 5 * 365, m) / 365.0
    vol = rng.uniform(0.05, 1.5, m)
    r = rng.uniform(0.0, 0.10, m)
    q = rng.uniform(0.0, 0.10, m)
    call = rng.random(m) < 0.5
    K = np.full(m, 100.0)
    S = K * np.exp(rng.uniform(-sds, sds, m) * vol * np.sqrt(T))
    return S, K, T, vol, r, q, call


def test_european_mode_matches_closed_form():
    S, K, T, vol, r, q, call = random_set(40, 1)
    got = tree(S, K, T, vol, r, q, call, american=False)["price"]
    want = black_scholes(S, K, T, vol, r, q, call)
    err = np.abs(got - want)
    assert np.all(err <= 1e-7 * S + 2e-6 * want), err.max()
    big = want > 1.0
    assert np.max(np.abs(got[big] / want[big] - 1.0)) < 1e-6


def test_european_closed_form_known_value():
    # Hull, Options, Futures and Other Derivatives, Example 15.6 (8th ed.): S = 42, K = 40, r = 10 %,
    # vol 20 %, T = 0.5: call 4.76, put 0.81
    c = black_scholes(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, True)
    p = black_scholes(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, False)
    assert abs(c - 4.76) < 5e-3 and abs(p - 0.81) < 5e-3
    t = tree(42.0, 40.0, 0.5, 0.2, 0.1, 0.0, [True, False], american=False)["price"]
    np.testing.assert_allclose(t, [c, p], rtol=1e-7)


@pytest.mark.parametrize("rec", ALO_PREMIUM, ids=lambda rec: f"r={rec['r']}")
def test_american_put_alo_premium(rec):
    S, K, T, vol, r, q, call = as_arrays([rec])
    premium = tree(S, K, T, vol, r, q, call)["price"][0] - black_scholes(S, K, T, vol, r, q, call)[0]
    # the tree's own accuracy (~1e-6 relative of a ~9 price) dominates the published precision
    assert abs(premium - rec["premium"]) < 1e-5, premium - rec["premium"]


def test_alo_tables_converge_to_the_quoted_premium():
    # the published scheme-by-scheme entries approach the converged premium as (l, m, n) grows
    for rec in ALO_PREMIUM:
        rows = [a for a in ALO_2015 if a["r"] == rec["r"]]
        errs = [abs(a["premium_fp_a"] - rec["premium"]) for a in rows]
        assert errs[-1] <= rec["tol"] and errs[0] > 1e-5
        assert rec["tol"] < 2e-7


def test_american_call_without_dividends_is_european():
    S, K, T, vol, r, _, _ = random_set(24, 2)
    q = np.zeros_like(S)
    am = tree(S, K, T, vol, r, q, True)["price"]
    eu = black_scholes(S, K, T, vol, r, q, True)
    assert np.all(np.abs(am - eu) <= 1e-7 * S + 2e-6 * eu), np.abs(am - eu).max()


def test_put_call_symmetry():
    S, K, T, vol, r, q, _ = random_set(16, 3)
    c = tree(S, K, T, vol, r, q, True)["price"]
    p = tree(K, S, T, vol, q, r, False)["price"]
    assert np.all(np.abs(c - p) <= 2e-5 * np.maximum(c, 1e-3 * K)), np.abs(c / p - 1).max()


def test_american_bounds():
    S, K, T, vol, r, q, call = random_set(30, 4, sds=4.0)
    am = tree(S, K, T, vol, r, q, call)["price"]
    eu = black_scholes(S, K, T, vol, r, q, call)
    intrinsic = np.maximum(np.where(call, S - K, K - S), 0.0)
    assert np.all(am >= eu - 1e-6 * K)
    assert np.all(am >= intrinsic - 1e-9 * K - 1e-12 * S)  # S reaches 1e7 at 4 sd, 150 % vol, 5 years
    # deep in-the-money put with a high rate: exercised now, worth exactly K - S
    v = float(tree(40.0, 100.0, 1.0, 0.2, 0.08, 0.0, False)["price"])
    assert v == pytest.approx(60.0, abs=1e-9)


def test_delta_gamma_against_bumped_tree():
    S, K, T, vol, r, q, call = (np.array([100.0, 95.0, 110.0]), 100.0, np.array([0.5, 2.0, 0.25]), np.array([0.3, 0.2, 0.6]),
                                0.06, np.array([0.02, 0.09, 0.0]), np.array([False, True, False]))  # fmt: skip
    out = tree(S, K, T, vol, r, q, call)
    h = 1e-2 * S
    up = tree(S + h, K, T, vol, r, q, call)["price"]
    dn = tree(S - h, K, T, vol, r, q, call)["price"]
    np.testing.assert_allclose(out["delta"], (up - dn) / (2 * h), atol=2e-4)
    np.testing.assert_allclose(out["gamma"], (up - 2 * out["price"] + dn) / h**2, rtol=2e-2)
    assert np.all(np.abs(out["delta"]) <= 1.0) and np.all(out["gamma"] >= 0.0)


def test_single_tree_converges_in_n():
    # one Leisen-Reimer tree: the American put error shrinks roughly as 1/n toward the extrapolated value
    args = (100.0, 100.0, 1.0, 0.25, 0.05, 0.05, False)
    ref = float(tree(*args)["price"])
    e = [abs(float(lr_tree(*args, n=n)["price"]) - ref) for n in (101, 401, 1601)]
    assert e[0] > e[1] > e[2] and e[2] < 3e-4


@pytest.mark.parametrize(("name", "records"), [("baw", HAUG_BAW), ("bjs1993", HAUG_BJS1993), ("ju", JU_1999)])
def test_published_approximations_within_band(name, records):
    S, K, T, vol, r, q, call = as_arrays(records)
    got = tree(S, K, T, vol, r, q, call)["price"]
    value, tol = as_arrays(records, ("value", "tol"))
    assert np.all(np.abs(got - value) <= tol), (name, np.abs(got - value).max())
    # the bands are sanity bands, not slack: the approximations are visibly off somewhere
    assert np.abs(got - value).max() > 0.1 * tol.max()
