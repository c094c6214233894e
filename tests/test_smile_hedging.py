"""Hedging with a smile (issue 17, points 4 and 5): surface vols in ``gh.hedge``, the smile
(sticky-moneyness) and Hull-White minimum-variance deltas, ``fit_minimum_variance``, and the
real-marks gain study on the SPXW 2018 file.

References are independent: SciPy's normal CDF for Black-Scholes, a finite difference of the price
with the smile re-anchored to the bumped forward (the surface's own total variance at the moved
log-moneyness, not ``vol_and_slope``), synthetic data drawn from the Hull-White model, and for the
engine the two-date ledger identity ``pnl(model) - pnl(bs) = (delta_model - delta_bs) dS``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import gpu_hedge as gh
from gpu_hedge._hedging.loop import make_plan
from gpu_hedge._hedging.smile import (
    MinimumVariance,
    MVCoefficients,
    fit_minimum_variance,
    minimum_variance_delta,
    smile_delta,
    vol_and_slope,
)

surface_mod = pytest.importorskip("gpu_hedge._surface")
VolSurface = surface_mod.VolSurface

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "spxw_eod_chain_2018-01_2018-02_vendor_greeks.csv"


def _bs(S, K, T, vol, r=0.0, q=0.0, call=True):
    sq = vol * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * vol * vol) * T) / sq
    d2 = d1 - sq
    if call:
        price = S * np.exp(-q * T) * norm.cdf(d1) - K * np.exp(-r * T) * norm.cdf(d2)
        delta = np.exp(-q * T) * norm.cdf(d1)
    else:
        price = K * np.exp(-r * T) * norm.cdf(-d2) - S * np.exp(-q * T) * norm.cdf(-d1)
        delta = -np.exp(-q * T) * norm.cdf(-d1)
    vega = S * np.exp(-q * T) * norm.pdf(d1) * np.sqrt(T)
    return price, delta, vega


def _flat(vol=0.2):
    p = pd.DataFrame(dict(group=["g"], expiry_years=[1.0], forward=[100.0], a=[vol * vol], b=[0.0], rho=[0.0], m=[0.0], sigma=[0.1]))
    return VolSurface.from_params(p, model="svi")


def _skewed(forward=100.0):
    # two SVI slices with an equity-like skew (rho < 0), calendar-ordered
    p = pd.DataFrame(dict(group=["g", "g"], expiry_years=[0.25, 1.0], forward=[forward, forward], a=[0.006, 0.025],
                          b=[0.08, 0.12], rho=[-0.7, -0.6], m=[0.02, 0.03], sigma=[0.15, 0.25]))  # fmt: skip
    return VolSurface.from_params(p, model="svi")


# --- the smile delta ---------------------------------------------------------------------------------


def test_smile_delta_is_bs_delta_on_a_flat_surface():
    s = _flat(0.2)
    K, T, S = np.array([80.0, 100.0, 125.0]), np.array([0.3, 0.5, 0.9]), 100.0
    vol, slope = vol_and_slope(s, K, T)
    # one flat SVI slice; at other expiries w = w_1 T / T_1, so the vol is 0.2 to rounding
    assert np.allclose(vol, 0.2, rtol=1e-15, atol=0) and np.all(np.abs(slope) < 1e-11)
    _, d, v = _bs(S, K, T, 0.2)
    np.testing.assert_allclose(smile_delta(d, v, S, slope), d, rtol=0, atol=1e-11)
    # exactly 0 slope where the surface is exactly flat: the option's own vol
    assert np.array_equal(smile_delta(d, v, S, np.zeros(3)), d)


@pytest.mark.parametrize("call", [True, False])
@pytest.mark.parametrize("strike", [85.0, 100.0, 115.0])
def test_smile_delta_is_the_price_derivative_with_the_smile_moving_with_spot(call, strike):
    """delta_smile = d/dS BS(S, K, T, sigma(ln(K / F(S)))), F(S) = S e^{(r-q)T}: a central
    difference of the price, the smile re-read at the bumped forward (total variance at k)."""
    s, S0, T, r, q = _skewed(), 100.0, 0.5, 0.03, 0.01
    F0 = float(s.forward(T))  # the surface's forward, which the spot S0 maps to
    carry = F0 / S0

    def price(S):
        k = math.log(strike / (S * carry))  # the smile moves with the forward
        vol = math.sqrt(float(s.total_variance(k, T)) / T)
        return _bs(S, strike, T, vol, r, q, call)[0]

    h = 1e-3
    fd = (price(S0 + h) - price(S0 - h)) / (2 * h)
    vol, slope = vol_and_slope(s, strike, T)
    _, d, v = _bs(S0, strike, T, float(vol[0]), r, q, call)
    got = float(smile_delta(d, v, S0, float(slope[0])))
    assert abs(got - fd) < 2e-7
    assert abs(got - d) > 1e-3  # the skew matters here
    # the central difference of .vol agrees with the analytic SVI slope
    k0 = math.log(strike / F0)
    w, w1 = (float(x) for x in (s.total_variance(k0, T), (s.total_variance(k0 + 1e-6, T) - s.total_variance(k0 - 1e-6, T)) / 2e-6))
    assert abs(float(slope[0]) - w1 / (2 * math.sqrt(w * T))) < 5e-8  # h = 1e-4: O(h^2 sigma''')


# --- Hull-White ---------------------------------------------------------------------------------------


def test_fit_minimum_variance_recovers_known_coefficients():
    rng = np.random.default_rng(7)
    n = 20_000
    true = (-0.25, 0.45, -0.35)
    call = rng.random(n) < 0.5
    S = 2700.0 * np.exp(rng.normal(0, 0.05, n))
    K = S * np.exp(rng.normal(0, 0.08, n))
    T = rng.uniform(14, 90, n) / 365
    vol = rng.uniform(0.1, 0.3, n)
    _, d_c, vega = _bs(S, K, T, vol)
    delta = np.where(call, d_c, d_c - 1.0)  # q = 0: put delta = call delta - 1
    dS = S * rng.normal(0, 0.01, n)
    D = np.where(call, delta, delta + 1.0)
    signal = vega / np.sqrt(T) * dS / S * (true[0] + true[1] * D + true[2] * D * D)
    noise = rng.normal(0, 0.5 * np.std(signal), n)
    d_value = delta * dS + signal + noise
    fit = fit_minimum_variance(d_value, dS, S, delta, vega, T, call=call)
    assert isinstance(fit, MVCoefficients) and fit.n_obs == n
    for got, want, se in zip((fit.a, fit.b, fit.c), true, fit.stderr, strict=True):
        assert abs(got - want) < 4 * se and se < 0.02
    assert 0.7 < fit.r2 < 0.9  # signal variance / (signal + 0.25 signal)
    # without noise: exact
    exact = fit_minimum_variance(delta * dS + signal, dS, S, delta, vega, T, call=call)
    assert np.allclose((exact.a, exact.b, exact.c), true, atol=1e-10)


def test_minimum_variance_delta_formula_and_put_call_parity():
    mv = MVCoefficients(-0.25, 0.5, -0.4)
    S, K, T, vol, q = 100.0, 95.0, 0.4, 0.22, 0.02
    _, dc, v = _bs(S, K, T, vol, 0.01, q, True)
    _, dp, _ = _bs(S, K, T, vol, 0.01, q, False)
    want = dc + v / (S * math.sqrt(T)) * (-0.25 + 0.5 * dc - 0.4 * dc * dc)
    assert minimum_variance_delta(dc, v, S, T, mv, True, q) == pytest.approx(want, rel=1e-14)
    # a put with the same coefficients: D = delta_put + e^{-qT} = the call's delta, so parity holds
    assert minimum_variance_delta(dp, v, S, T, mv, False, q) == pytest.approx(want - math.exp(-q * T), rel=1e-13)


# --- the engine ---------------------------------------------------------------------------------------


def _paths(n_paths=400, n_steps=26, horizon=0.5, seed=11):
    p = gh.simulate(gh.GBM(100.0, 0.2), n_paths=n_paths, n_steps=n_steps, horizon=horizon, seed=seed, backend="numpy")
    return np.asarray(gh.to_numpy(p.spot)), np.asarray(gh.to_numpy(p.times))


def test_hedge_with_a_flat_surface_is_the_flat_vol_hedge_exactly(bk):
    spot, times = _paths()
    book = [gh.Option(100.0, 0.5, quantity=-1), gh.Option(110.0, 0.75, call=False, quantity=2)]
    kw = dict(strategy=gh.Periodic(), costs=gh.Costs(proportional=1e-3), backend=bk)
    flat = gh.hedge(spot, times, book, vol=0.2, **kw)
    for vol in (_flat(0.2), [_flat(0.2)] * times.size, lambda k: _flat(0.2)):
        for delta in ("bs", "smile"):
            res = gh.hedge(spot, times, book, vol=vol, delta=delta, **kw)
            assert np.array_equal(res.pnl, flat.pnl) and np.array_equal(res.costs, flat.costs)
    zero = gh.hedge(spot, times, book, vol=_flat(0.2), delta="minimum_variance", mv=(0.0, 0.0, 0.0), **kw)
    assert np.array_equal(zero.pnl, flat.pnl)


def _two_dates(bk, option, vol, delta, mv=None, rate=0.02):
    prices = np.array([[100.0, 100.0], [103.0, 97.0]])  # two paths: up and down
    times = np.array([0.0, 1.0 / 252])
    return gh.hedge(prices, times, option, vol=vol, rate=rate, delta=delta, mv=mv, strategy=gh.Periodic(), backend=bk)


@pytest.mark.parametrize("call", [True, False])
def test_hedge_follows_the_smile_and_minimum_variance_deltas(bk, call):
    """Two dates: pnl(model) - pnl(bs) = (delta_model - delta_bs) dS per path (the option's premium
    and final mark do not depend on the delta); the deltas computed here with SciPy."""
    s = _skewed()
    o = gh.Option(95.0, 0.5, call=call, quantity=-3)
    rate = 0.02
    bs = _two_dates(bk, o, s, "bs", rate=rate)
    vol, slope = vol_and_slope(s, 95.0, 0.5)
    _, d, v = _bs(100.0, 95.0, 0.5, float(vol[0]), rate, 0.0, call)
    dS = np.array([3.0, -3.0])
    growth = math.exp(rate / 252)  # the shares are bought with cash that accrues
    want_smile = d - v * float(slope[0]) / 100.0
    sm = _two_dates(bk, o, s, "smile", rate=rate)
    # short 3 options: the hedge holds +3 delta shares; its pnl is 3 delta (S1 - S0 e^{r dt})
    move = np.array([103.0, 97.0]) - 100.0 * growth
    np.testing.assert_allclose(sm.pnl - bs.pnl, 3 * (want_smile - d) * move, rtol=1e-9, atol=1e-12)
    mv = MinimumVariance(MVCoefficients(-0.25, 0.5, -0.4), MVCoefficients(-0.3, 0.6, -0.5))
    coef = mv.of(call)
    D = d if call else d + 1.0
    want_mv = d + v / (100.0 * math.sqrt(0.5)) * (coef.a + coef.b * D + coef.c * D * D)
    for arg in (dict(delta=mv), dict(delta="minimum_variance", mv=mv)):
        res = _two_dates(bk, o, s, rate=rate, **arg)
        np.testing.assert_allclose(res.pnl - bs.pnl, 3 * (want_mv - d) * move, rtol=1e-9, atol=1e-12)
    assert np.all(np.abs(dS) > 0)


def test_surface_vols_per_date_at_strike_and_remaining_expiry():
    times = np.array([0.0, 0.1, 0.2, 0.3])
    surfaces = [_skewed(forward=100.0 + k) for k in range(times.size)]
    book = [gh.Option(95.0, 0.3), gh.Option(105.0, 0.8, call=False)]
    plan = make_plan(times, times.size, book, vol=surfaces, rate=0.0, div=0.0, strategy=gh.Periodic(), costs=gh.Costs(),
                     option_costs=None, lot_size=None, max_position=None, marks=None, delta="smile")  # fmt: skip
    for k in range(times.size):
        for j, o in enumerate(book):
            tau = o.expiry - times[k]
            if tau <= 0:
                assert plan.vols[k, j] == plan.vols[k - 1, j]  # after expiry: carried, never priced
                continue
            vol, slope = vol_and_slope(surfaces[k], o.strike, tau)
            assert plan.vols[k, j] == vol[0] and plan.hedge_vols[k, j] == vol[0]
            assert plan.hedge_vols[k, len(book) + j] == slope[0]
    with pytest.raises(ValueError, match="4 dates"):
        make_plan(times, times.size, book, vol=surfaces[:3], rate=0.0, div=0.0, strategy=gh.Periodic(), costs=gh.Costs(),
                  option_costs=None, lot_size=None, max_position=None, marks=None)  # fmt: skip
    with pytest.raises(ValueError, match="needs mv="):
        gh.hedge(np.full(4, 100.0), times, book, vol=surfaces, delta="minimum_variance", strategy=gh.Periodic())
    with pytest.raises(ValueError, match="delta = 'sticky'"):
        gh.hedge(np.full(4, 100.0), times, book, vol=0.2, delta="sticky", strategy=gh.Periodic())


def test_hedge_simulated_takes_surfaces_and_smile_delta(bk):
    model = gh.GBM(100.0, 0.2)
    kw = dict(n_paths=256, n_steps=20, horizon=0.5, seed=5, strategy=gh.Periodic(), backend=bk)
    o = gh.Option(100.0, 0.5, quantity=-1)
    a = gh.hedge_simulated(model, o, vol=0.2, **kw)
    b = gh.hedge_simulated(model, o, vol=_flat(0.2), delta="smile", **kw)
    # the smile delta runs the generic step (NumPy's compiled step and the fused JAX program round
    # differently): equal to rounding
    np.testing.assert_allclose(a.pnl, b.pnl, rtol=0, atol=1e-12)
    c = gh.hedge_simulated(model, o, vol=_skewed(), delta="smile", **kw)
    # the same paths stored, then hedged (on JAX: device prices, the compiled scan over dates)
    p = gh.simulate(model, n_paths=256, n_steps=20, horizon=0.5, seed=5, backend=bk)
    d = gh.hedge(p.spot, np.asarray(gh.to_numpy(p.times)), o, vol=_skewed(), delta="smile", strategy=gh.Periodic(), backend=bk)
    np.testing.assert_allclose(c.pnl, d.pnl, rtol=1e-10, atol=1e-10)


# --- the real-marks study -----------------------------------------------------------------------------

needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present (shared vendor data)")


@pytest.fixture(scope="module")
def quotes():
    import gpu_hedge.io as gio

    return gio.read_quotes(DATA)


@needs_data
def test_gain_study_on_spxw_2018(quotes, tmp_path):
    from gpu_hedge._hedging.marks_study import hedge_gain_study

    res = hedge_gain_study(quotes, surfaces="fit")
    t = res.table
    assert list(t.index.get_level_values(0).unique()) == ["calls", "puts", "all"]
    assert len(t) == 27 and np.isfinite(t[["rms_bs", "gain_mv", "gain_mv_in", "gain_smile"]].to_numpy()).all()
    assert (t["n"] > 50).all() and t.loc[("all", "all"), "n"] == res.settings["n_pairs"] > 3000
    assert res.dropped["no_surface"] == 0
    # in sample, OLS cannot lose to delta_BS (beta = 0 is a candidate), per option type
    assert t.loc[("calls", "all"), "gain_mv_in"] > 0.5 and t.loc[("puts", "all"), "gain_mv_in"] > 0.3
    # out of sample by month (fit Jan -> test Feb and vice versa), the coefficients do not carry
    # over: January 2018 (calm rally with rising implied vols) and the February spike have
    # opposite-signed fits, and each month's coefficients make the other's hedge worse. This is
    # what the data say; the walk-forward split below is the out-of-sample test that holds up.
    assert t.loc[("all", "all"), "gain_mv"] < 0
    assert res.by_period.loc[("2018-01", "all"), "gain_mv"] < -1
    fit_on_feb, fit_on_jan = (res.coefficients[k].calls for k in ("fit 2018-02 -> test 2018-01", "fit 2018-01 -> test 2018-02"))
    # February: implied vol falls as spot rises (a + b/2 + c/4 < 0); January: the opposite
    assert fit_on_feb.quadratic(0.5) < -0.3 < 0 < fit_on_jan.quadratic(0.5)
    # sticky moneyness moves the delta the wrong way for an equity skew (it raises delta; the MV
    # fit lowers it): a loss against BS
    assert t.loc[("all", "all"), "gain_smile"] < 0
    assert (res.pairs["delta_smile"] - res.pairs["delta"]).mean() > 0 > (res.pairs["delta_mv_in"] - res.pairs["delta"]).mean()
    walk = hedge_gain_study(quotes, split="expanding")
    assert walk.table.loc[("all", "all"), "gain_mv"] > 0.1 and walk.table.loc[("calls", "all"), "gain_mv"] > 0.3
    assert np.isfinite(walk.table[["gain_mv", "gain_mv_in"]].to_numpy()).all()
    pytest.importorskip("matplotlib")
    res.plot(tmp_path / "gain.png")
    assert (tmp_path / "gain.png").stat().st_size > 10_000


@needs_data
def test_study_errors_are_the_engines_one_day_hedge(quotes):
    """A pair's e_bs is gh.hedge's P&L of a one-day hedge of that contract at its real marks, with
    the study's rate and the pair's own IV and expiry, less the day's financing of the position."""
    from gpu_hedge._hedging.marks_study import hedge_pairs

    pairs, _ = hedge_pairs(quotes)
    r = pairs.attrs["rate"]
    dt = 1 / 365
    for _, p in pairs.sample(8, random_state=1).iterrows():
        o = gh.Option(float(p["strike"]), float(p["expiry_years"]), call=bool(p["call"]), quantity=1.0)
        res = gh.hedge(np.array([p["spot"], p["spot_1"]]), np.array([0.0, dt]), o, vol=float(p["iv_used"]), rate=r,
                       strategy=gh.Periodic(), marks=np.array([p["mid"], p["mid_1"]]), backend="numpy")  # fmt: skip
        # long 1 option, short delta shares: cash (delta S0 - f0) accrues for a day
        financing = (p["delta"] * p["spot"] - p["mid"]) * math.expm1(r * dt)
        assert float(res.pnl[0]) == pytest.approx(p["e_bs"] + financing, abs=1e-9)
