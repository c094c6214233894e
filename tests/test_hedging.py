"""The delta-hedging engine: ``rebalance`` (one decision), ``hedge`` (the loop), the strategies, costs,
and ``HedgeResult.summary()`` / ``ledger()``.

References: the market-maker arithmetic of a textbook delta hedge; the Derman-Kamal rule for the
error of discrete hedging (std ~ sqrt(pi/4) sigma vega / sqrt(N)); Hull's table of the delta-hedging
performance measure (Options, Futures and Other Derivatives); Leland (1985) and Whalley-Wilmott
(1997) closed forms written out by hand; the gamma-scalping identity E[P&L] = E[sum Gamma S^2
(sigma_real^2 - sigma_impl^2) dt / 2]; an independent NumPy/SciPy delta-hedging loop; a three-date
ledger reconciled by hand to the cent.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import gpu_hedge as gh

needs_jax = pytest.mark.skipif("jax" not in gh.available_backends(), reason="JAX not installed")


def _paths(model, n_paths, n_steps, horizon, seed):
    p = gh.simulate(model, n_paths=n_paths, n_steps=n_steps, horizon=horizon, seed=seed, backend="numpy")
    return np.asarray(gh.to_numpy(p.spot)), np.asarray(gh.to_numpy(p.times))


def _greek(name, spot, strike, expiry, vol, rate=0.0, call=True):
    return np.asarray(gh.greeks(spot, strike, expiry, vol, rate, 0.0, call=call, greeks=(name,), backend="numpy")[name], dtype=float)


def _independent_short_call_hedge(spot, times, strike, expiry, vol, rate):
    """Write one call at its Black-Scholes price and delta-hedge it at every date but the last
    (SciPy's normal CDF, not the package): the cash at the last date, per path."""

    def bs(s, tau):
        d1 = (np.log(s / strike) + (rate + 0.5 * vol * vol) * tau) / (vol * np.sqrt(tau))
        return s * norm.cdf(d1) - strike * math.exp(-rate * tau) * norm.cdf(d1 - vol * math.sqrt(tau)), norm.cdf(d1)

    premium, held = bs(spot[0], expiry - times[0])
    cash = premium - held * spot[0]
    for k in range(1, len(times) - 1):
        cash = cash * math.exp(rate * (times[k] - times[k - 1]))
        _, delta = bs(spot[k], expiry - times[k])
        cash -= (delta - held) * spot[k]
        held = delta
    cash = cash * math.exp(rate * (times[-1] - times[-2]))
    return cash + held * spot[-1] - np.maximum(spot[-1] - strike, 0.0)


# --- 1. rebalance: the market maker's arithmetic, lots and limits ----------------------------------------------------------------


def test_market_maker_example(bk):
    # 10,000 calls with delta 0.6: the book is long 6,000 deltas, so sell 6,000 shares
    d = gh.rebalance(10_000 * 0.6, 0.0, price=50.0, strategy=gh.Periodic(), costs=gh.Costs(per_trade=50.0), backend=bk)
    assert float(d.trades) == -6000.0
    assert float(d.costs) == 50.0
    assert not bool(d.limited)
    # the stock rises $2 and delta becomes 0.65: sell 500 more
    d = gh.rebalance(10_000 * 0.65, -6000.0, price=52.0, strategy=gh.Periodic(), costs=gh.Costs(per_trade=50.0), backend=bk)
    assert float(d.trades) == -500.0
    assert float(d.costs) == 50.0


def test_forty_adjustments_cost_two_thousand(bk):
    costs = gh.Costs(per_trade=50.0)
    rng = np.random.default_rng(0)
    deltas = np.clip(0.6 + np.cumsum(rng.normal(0.0, 0.03, 40)), 0.05, 0.95)
    deltas[1:][np.diff(deltas) == 0] += 0.01  # every adjustment moves the hedge
    holding, total, n_trades, price = 0.0, 0.0, 0, 50.0
    for step, delta in enumerate(deltas):
        price *= 1.0 + 0.01 * (-1) ** step
        d = gh.rebalance(10_000 * delta, holding, price=price, strategy=gh.Periodic(), costs=costs, step=step, backend=bk)
        holding += float(d.trades)
        total += float(d.costs)
        n_trades += float(d.trades) != 0
        assert holding == -round(10_000 * delta)  # lot_size=1: whole shares
    assert n_trades == 40
    assert total == 2000.0
    # no trade, no ticket
    d = gh.rebalance(6000.0, -6000.0, price=50.0, strategy=gh.Periodic(), costs=costs, backend=bk)
    assert float(d.trades) == 0.0 and float(d.costs) == 0.0


def test_costs_components_by_hand():
    c = gh.Costs(per_trade=5.0, per_share=0.01, min_per_trade=8.0, proportional=0.0005, impact=0.1, adv=1e6)
    q, s = 2000.0, 40.0
    expected = max(5.0 + 0.01 * q, 8.0) + 0.0005 * q * s + 0.1 * q * s * math.sqrt(q / 1e6)
    assert c(None, -q, s) == pytest.approx(expected, rel=1e-14)
    assert float(c(np, np.array([-q]), np.array([s]))[0]) == pytest.approx(expected, rel=1e-14)
    assert c(None, 100.0, s) == pytest.approx(8.0 + 0.0005 * 100 * s + 0.1 * 100 * s * math.sqrt(1e-4), rel=1e-14)  # minimum ticket
    assert c(None, 0.0, s) == 0.0
    assert gh.Costs().free and not c.free


def test_lot_rounding_and_position_limit(bk):
    exposure = np.array([6537.0, 6549.0, 6551.0, 20.0, 6000.0])
    d = gh.rebalance(exposure, 0.0, price=50.0, strategy=gh.Periodic(), lot_size=100, backend=bk)
    np.testing.assert_array_equal(gh.to_numpy(d.trades), [-6500.0, -6500.0, -6600.0, 0.0, -6000.0])
    # the cap cuts the trade and says so; a holding already beyond the cap is not forced to trade
    d = gh.rebalance(np.array([6000.0, 3000.0, 7000.0, 7000.0]), np.array([0.0, 0.0, -7000.0, -4000.0]), price=50.0,
                     strategy=gh.Periodic(), max_position=5000, backend=bk)  # fmt: skip
    np.testing.assert_array_equal(gh.to_numpy(d.trades), [-5000.0, -3000.0, 0.0, -1000.0])
    np.testing.assert_array_equal(gh.to_numpy(d.limited), [True, False, False, True])
    # lots and cap together, and the cap counted per date in a hedging run
    d = gh.rebalance(6537.0, 0.0, price=50.0, strategy=gh.Periodic(), lot_size=100, max_position=5000, backend=bk)
    assert float(d.trades) == -5000.0 and bool(d.limited)
    res = gh.hedge(np.array([100.0, 101.0, 102.0, 103.0]), np.array([0.0, 0.01, 0.02, 0.03]), gh.Option(100.0, 0.5, quantity=-100),
                   vol=0.2, strategy=gh.Periodic(), max_position=40, backend="numpy")  # fmt: skip
    assert int(res.limited[0]) == 3  # delta ~ 0.53-0.6 x 100 > 40 at every decision date
    assert res.ledger(0)["holding"].iloc[:3].tolist() == [40.0, 40.0, 40.0]


# --- 2. Derman-Kamal ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_dates", [21, 52, 252])
def test_derman_kamal_rule(n_dates):
    """std of the zero-cost hedging error of an ATM call ~ sqrt(pi/4) sigma vega / sqrt(N).

    The rule is the N -> infinity limit: the gamma of an ATM option blows up like 1/sqrt(T - t), and
    a left Riemann sum over N dates misses part of that integrable singularity, so at finite N the
    std is low by O(1/sqrt(N)). Measured (20,000 paths, std ratio's own noise ~0.5 %): 0.95-0.967 for
    N = 21 over several seeds, 0.973 for N = 52, 0.993 for N = 252. The 3 % tolerance holds for 52
    and 252; N = 21 gets 6 % and must be below the rule. The engine itself is checked against an
    independent hedging loop to 1e-9, so the gap is the rule's, not the engine's.
    """
    sigma, n = 0.2, 20_000
    expiry = n_dates / 252  # one rebalancing a trading day
    spot, times = _paths(gh.GBM(100.0, sigma), n, n_dates, expiry, seed=7)
    res = gh.hedge(spot, times, gh.Option(100.0, expiry, quantity=-1), vol=sigma, strategy=gh.Periodic(), backend="numpy")
    np.testing.assert_allclose(res.pnl, _independent_short_call_hedge(spot, times, 100.0, expiry, sigma, 0.0), rtol=0, atol=1e-9)
    vega = float(_greek("vega", 100.0, 100.0, expiry, sigma))
    rule = math.sqrt(math.pi / 4) * sigma * vega / math.sqrt(n_dates)
    std = float(np.std(res.pnl, ddof=1))
    ratio = std / rule
    if n_dates >= 52:
        assert abs(ratio - 1) < 0.03, ratio
    else:
        assert 0.94 < ratio < 0.995, ratio
    assert abs(float(np.mean(res.pnl))) < 3 * std / math.sqrt(n)
    assert res.summary()["std"] == pytest.approx(std, rel=1e-12)


# --- 3. Hull's performance-measure table -------------------------------------------------------------------------------------------

HULL_TABLE = {5: 0.42, 4: 0.38, 2: 0.28, 1: 0.21, 0.5: 0.16, 0.25: 0.13}
#: What 20,000 paths (seed 1) give: the coarse entries match the table; the fine ones come out lower.
HULL_MEASURED = {5: 0.41, 4: 0.37, 2: 0.265, 1: 0.19, 0.5: 0.137, 0.25: 0.097}


@pytest.mark.parametrize("weeks", list(HULL_TABLE))
def test_hull_performance_measure(weeks):
    """S0 = 49, K = 50, r = 5 %, sigma = 20 %, 20 weeks, mu = 13 %, short 100,000 calls; std of the
    discounted cost of writing and hedging over the Black-Scholes price.

    Reproducible to the table's printed precision (within 0.02): 5, 4 and 2 weeks (measured 0.41,
    0.37, 0.265; the 5-week entry has only 4 decision dates, 0/5/10/15 weeks, and is the noisiest).
    Not reproducible: 1, 0.5 and 0.25 weeks. Discrete hedging error scales like 1/sqrt(N) (see the
    Derman-Kamal test; this engine matches an independent loop to 1e-9 with rate and drift), so each
    halving of the interval divides the measure by ~sqrt(2): 0.19 -> 0.137 -> 0.097 here, whereas the
    printed 0.21 -> 0.16 -> 0.13 falls by only 0.76 and 0.81 per halving. The fine entries are checked
    for that scaling from the 1-week value and for being below the table.
    """
    s0, strike, rate, sigma, expiry, mu = 49.0, 50.0, 0.05, 0.20, 20 / 52, 0.13
    n_dates = round(20 / weeks)
    spot, times = _paths(gh.GBM(s0, sigma, rate, 0.0, drift=mu), 20_000, n_dates, expiry, seed=1)
    res = gh.hedge(spot, times, gh.Option(strike, expiry, quantity=-100_000), vol=sigma, rate=rate, strategy=gh.Periodic(),
                   backend="numpy")  # fmt: skip
    s = res.summary()
    bs = float(_greek("price", s0, strike, expiry, sigma, rate))
    assert s["premium"] == pytest.approx(-100_000 * bs, rel=1e-12)  # the book is short: premium < 0
    if weeks == 1:
        ours = _independent_short_call_hedge(spot, times, strike, expiry, sigma, rate) * 100_000
        np.testing.assert_allclose(res.pnl, ours, rtol=0, atol=1e-6)
    hull = s["hull_ratio"]
    assert hull == pytest.approx(np.std(res.pnl * math.exp(-rate * expiry), ddof=1) / (100_000 * bs), rel=1e-12)
    assert hull == pytest.approx(HULL_MEASURED[weeks], rel=0.03)
    if weeks >= 2:
        assert abs(hull - HULL_TABLE[weeks]) <= 0.02, hull
    else:
        assert hull < HULL_TABLE[weeks]
        assert hull == pytest.approx(HULL_MEASURED[1] * math.sqrt(weeks), rel=0.05)


# --- 4. Leland, Whalley-Wilmott, bands ----------------------------------------------------------------------------------------------


def test_leland_vol_closed_form():
    vol, c, dt = 0.2, 0.005, 1 / 52
    a = math.sqrt(2 / math.pi) * (2 * c) / (vol * math.sqrt(dt))  # Leland number, round-trip cost 2c
    assert a == pytest.approx(0.2877, abs=1e-4)
    assert gh.leland_vol(vol, c, dt) == pytest.approx(vol * math.sqrt(1 + a), rel=1e-14)
    assert gh.leland_vol(vol, c, dt, short=False) == pytest.approx(vol * math.sqrt(1 - a), rel=1e-14)
    assert gh.leland_vol(vol, 0.0, dt) == vol
    with pytest.raises(ValueError, match="Leland number"):
        gh.leland_vol(vol, 0.02, dt, short=False)  # A = 1.15 > 1
    with pytest.raises(ValueError, match="leland_vol"):
        gh.leland_vol(vol, c, 0.0)


def test_leland_strategy_hedges_at_the_adjusted_vol():
    times = np.linspace(0.0, 0.25, 14)
    prices = np.array([100.0, 101.0, 99.5, 100.5, 102.0, 101.0, 100.0, 98.0, 99.0, 100.0, 101.5, 103.0, 102.0, 102.5])
    c = 0.002
    res = gh.hedge(prices, times, gh.Option(100.0, 0.25, quantity=-1), vol=0.2, strategy=gh.Leland(), costs=gh.Costs(proportional=c),
                   backend="numpy")  # fmt: skip
    adjusted = gh.leland_vol(0.2, c, 0.25 / 13)
    assert adjusted > 0.2
    led = res.ledger(0)
    for k in (0, 5, 12):
        expected = float(_greek("delta", prices[k], 100.0, 0.25 - times[k], adjusted))
        assert led["holding"].iloc[k] == pytest.approx(expected, rel=1e-12)


def test_whalley_wilmott_band_formula():
    gamma, s, c, ra, r, tau = 250.0, 60.0, 0.003, 0.01, 0.04, 0.5
    hand = (3 * c * s * gamma**2 * math.exp(-r * tau) / (2 * ra)) ** (1 / 3)
    assert gh.whalley_wilmott_band(gamma, s, c, ra, r, tau) == pytest.approx(hand, rel=1e-14)
    arr = gh.whalley_wilmott_band(np.array([gamma, 2 * gamma]), np.array([s, s]), c, ra, r, np.array([tau, tau]), xp=np)
    np.testing.assert_allclose(arr, [hand, hand * 2 ** (2 / 3)], rtol=1e-14)


def test_whalley_wilmott_trades_to_the_band_edge(bk):
    gamma, s, c, ra = 250.0, 60.0, 0.003, 0.01
    band = (3 * c * s * gamma**2 / (2 * ra)) ** (1 / 3)  # ~ 37.7 shares
    ww = gh.WhalleyWilmott(ra)
    kw = dict(price=s, strategy=ww, costs=gh.Costs(proportional=c), gamma=gamma, lot_size=None, backend=bk)
    # target -1000: under-hedged by 500 -> to the near edge -1000 + band; over-hedged -> -1000 - band
    assert float(gh.rebalance(1000.0, -500.0, **kw).trades) == pytest.approx(-500.0 + band, rel=1e-12)
    assert float(gh.rebalance(1000.0, -1500.0, **kw).trades) == pytest.approx(500.0 - band, rel=1e-12)
    # inside the band: no trade, no cost
    d = gh.rebalance(1000.0, -1000.0 + 0.9 * band, **kw)
    assert float(d.trades) == 0.0 and float(d.costs) == 0.0
    # inside a hedging run: after each trade the hedge sits on the band edge
    times = np.linspace(0.0, 0.1, 6)
    prices = np.array([100.0, 104.0, 97.0, 103.0, 95.0, 100.0])
    res = gh.hedge(prices, times, gh.Option(100.0, 0.25, quantity=-100), vol=0.2, strategy=gh.WhalleyWilmott(0.05),
                   costs=gh.Costs(proportional=0.01), backend="numpy")  # fmt: skip
    led = res.ledger(0)
    traded = 0
    for k in range(5):
        g = float(led["gamma"].iloc[k])
        h = gh.whalley_wilmott_band(abs(g), prices[k], 0.01, 0.05, 0.0, 0.25 - times[k])
        gap = -float(led["delta"].iloc[k]) - float(led["holding"].iloc[k])
        if led["trade"].iloc[k] != 0:
            traded += 1
            assert abs(gap) == pytest.approx(h, rel=1e-9)
        else:
            assert abs(gap) <= h
    assert traded >= 3


def test_delta_band(bk):
    kw = dict(price=50.0, lot_size=None, backend=bk)
    exposure, holding = np.array([1000.0, 1000.0, 1000.0, 1000.0]), np.array([-950.0, -1060.0, -800.0, -1300.0])
    # absolute band of 100 shares: no trade inside, back to the target (or to the edge) outside
    t = gh.to_numpy(gh.rebalance(exposure, holding, strategy=gh.DeltaBand(100.0), **kw).trades)
    np.testing.assert_allclose(t, [0.0, 0.0, -200.0, 300.0])
    t = gh.to_numpy(gh.rebalance(exposure, holding, strategy=gh.DeltaBand(100.0, to_edge=True), **kw).trades)
    np.testing.assert_allclose(t, [0.0, 0.0, -100.0, 200.0])
    # relative band: 10 % of |exposure| = 100 shares here, 10 shares for an exposure of 100
    t = gh.to_numpy(
        gh.rebalance(np.array([1000.0, 100.0]), np.array([-950.0, -50.0]), strategy=gh.DeltaBand(0.1, relative=True), **kw).trades
    )
    np.testing.assert_allclose(t, [0.0, -50.0])


# --- 5. gamma scalping -------------------------------------------------------------------------------------------------------------


def test_gamma_scalping_earns_the_variance_spread():
    """A long call hedged at implied 0.2 on paths of realised vol 0.3: E[P&L] = E[sum Gamma S^2
    (0.3^2 - 0.2^2) dt / 2], Gamma at the implied vol (measured: 1.985 vs 1.992, difference 1.3 s.e.)."""
    expiry, n_dates, n = 0.25, 63, 20_000
    spot, times = _paths(gh.GBM(100.0, 0.3), n, n_dates, expiry, seed=5)
    res = gh.hedge(spot, times, gh.Option(100.0, expiry), vol=0.2, strategy=gh.Periodic(), backend="numpy")
    gamma = _greek("gamma", spot[:-1], 100.0, expiry - times[:-1, None], 0.2)
    predicted = (0.5 * gamma * spot[:-1] ** 2 * (0.3**2 - 0.2**2) * np.diff(times)[:, None]).sum(axis=0)
    gap = res.pnl - predicted
    se = float(np.std(gap, ddof=1)) / math.sqrt(n)
    assert float(np.mean(res.pnl)) > 1.5  # positive and large: ~ 25 standard errors
    assert abs(float(np.mean(gap))) < 3 * se + 0.01 * float(np.mean(predicted))
    # the same trade at matching vols earns nothing
    flat = gh.hedge(spot, times, gh.Option(100.0, expiry), vol=0.3, strategy=gh.Periodic(), backend="numpy")
    assert abs(float(np.mean(flat.pnl))) < 3 * float(np.std(flat.pnl, ddof=1)) / math.sqrt(n)


# --- 6. jumps ----------------------------------------------------------------------------------------------------------------------


def test_merton_jumps_fatten_the_left_tail():
    vol, lam, mu_j, sigma_j = 0.15, 1.0, -0.1, 0.1
    vol_gbm = math.sqrt(vol**2 + lam * (mu_j**2 + sigma_j**2))  # equal total variance
    expiry, n_dates, n = 0.25, 63, 20_000
    out = {}
    for name, model in (("gbm", gh.GBM(100.0, vol_gbm)), ("merton", gh.Merton(100.0, vol, lam, mu_j, sigma_j))):
        spot, times = _paths(model, n, n_dates, expiry, seed=9)
        res = gh.hedge(spot, times, gh.Option(100.0, expiry, quantity=-1), vol=vol_gbm, strategy=gh.Periodic(), backend="numpy")
        x = res.pnl
        s = res.summary()
        losses = np.sort(-x)
        es = losses[losses >= np.quantile(losses, 0.99)].mean()
        assert s["es_99"] == pytest.approx(es, rel=1e-12)
        out[name] = (s["es_99"], float(np.quantile(x, 0.01)), float(np.mean((x - x.mean()) ** 4) / np.var(x) ** 2 - 3))
    # measured: ES99 1.54 vs 13.9, 1 % quantile -1.24 vs -10.7, excess kurtosis 1.7 vs 17
    assert out["merton"][0] > 4 * out["gbm"][0]
    assert out["merton"][1] < 4 * out["gbm"][1] < 0
    assert out["merton"][2] > 5 * out["gbm"][2] > 0


# --- 7. synthetic put (portfolio insurance) ----------------------------------------------------------------------------------------


def test_synthetic_put_replication_converges():
    n, rate = 20_000, 0.05
    stds = {}
    for n_dates in (12, 52, 252):
        spot, times = _paths(gh.GBM(100.0, 0.2, rate), n, n_dates, 1.0, seed=3)
        res = gh.hedge(spot, times, gh.Option(100.0, 1.0, call=False, quantity=-1), vol=0.2, rate=rate, strategy=gh.Periodic(),
                       backend="numpy")  # fmt: skip
        stds[n_dates] = float(np.std(res.pnl, ddof=1))
        assert abs(float(np.mean(res.pnl))) < 3 * stds[n_dates] / math.sqrt(n) + 1e-3
        # every decision date plus the unwind, less the dates where a saturated delta (0 or -1 in floating point) did not move
        assert np.all(res.n_trades <= n_dates + 1) and float(np.mean(res.n_trades)) > 0.98 * (n_dates + 1)
    # measured: 1.90, 0.948, 0.437 -> ratios 2.005 (sqrt(52/12) = 2.08) and 2.17 (sqrt(252/52) = 2.20)
    assert stds[12] / stds[52] == pytest.approx(math.sqrt(52 / 12), rel=0.06)
    assert stds[52] / stds[252] == pytest.approx(math.sqrt(252 / 52), rel=0.06)


# --- 8. ledger ---------------------------------------------------------------------------------------------------------------------


def test_ledger_reconciles_to_the_cent_by_hand():
    prices, times = np.array([100.0, 102.0, 99.0]), np.array([0.0, 1 / 52, 2 / 52])
    k, vol, r, expiry = 100.0, 0.2, 0.05, 2 / 52
    costs = gh.Costs(per_trade=1.0, proportional=0.001)
    res = gh.hedge(prices, times, gh.Option(k, expiry, quantity=-1), vol=vol, rate=r, strategy=gh.Periodic(), costs=costs, backend="numpy")
    # by hand
    premium = float(_greek("price", 100.0, k, expiry, vol, r))
    d0 = float(_greek("delta", 100.0, k, expiry, vol, r))
    d1 = float(_greek("delta", 102.0, k, expiry - times[1], vol, r))
    c0 = 1.0 + 0.001 * d0 * 100.0
    cash0 = premium - d0 * 100.0 - c0  # sell the call, buy d0 shares
    c1 = 1.0 + 0.001 * abs(d1 - d0) * 102.0
    cash1 = cash0 * math.exp(r / 52) - (d1 - d0) * 102.0 - c1
    c2 = 1.0 + 0.001 * d1 * 99.0
    cash2 = cash1 * math.exp(r / 52) - max(99.0 - k, 0.0) + d1 * 99.0 - c2  # the call expires worthless; unwind
    assert res.pnl[0] == pytest.approx(cash2, abs=1e-9)
    assert res.costs[0] == pytest.approx(c0 + c1 + c2, abs=1e-12)
    assert res.hedging_error[0] == pytest.approx(cash2 + c0 + c1 + c2, abs=1e-9)
    assert res.unhedged[0] == pytest.approx(premium * math.exp(r * expiry), abs=1e-9)
    assert int(res.n_trades[0]) == 3
    assert res.turnover[0] == pytest.approx(d0 * 100 + abs(d1 - d0) * 102 + d1 * 99, rel=1e-13)
    led = res.ledger(0)
    np.testing.assert_allclose(led["cash"].to_numpy(), [cash0, cash1, cash2], rtol=0, atol=1e-9)
    np.testing.assert_allclose(led["holding"].to_numpy(), [d0, d1, 0.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(led["cost"].to_numpy(), [c0, c1, c2], rtol=0, atol=1e-12)
    assert led["pnl"].iloc[0] == pytest.approx(-c0, abs=1e-12)  # at t_0 only the ticket and spread are lost
    s = res.summary()
    assert s["mean_cost"] == pytest.approx(c0 + c1 + c2, abs=1e-12)
    assert s["mean_trades"] == 3.0


def test_ledger_identities_and_attribution():
    spot, times = _paths(gh.GBM(100.0, 0.2, 0.03), 40, 252, 1.0, seed=4)
    res = gh.hedge(spot, times, gh.Option(100.0, 1.0, quantity=-1), vol=0.2, rate=0.03, strategy=gh.Periodic(),
                   costs=gh.Costs(proportional=0.0005), backend="numpy")  # fmt: skip
    for path in (0, 7, 39):
        led = res.ledger(path)
        assert led["step_pnl"].sum() == pytest.approx(res.pnl[path], abs=1e-9)
        assert led["pnl"].iloc[-1] == pytest.approx(res.pnl[path], abs=1e-9)
        assert led["cost"].sum() == pytest.approx(res.costs[path], abs=1e-12)
        np.testing.assert_allclose(led["spot"].to_numpy(), spot[:, path], rtol=0, atol=0)
        # fine steps: the Greeks explain the step P&L; the residual is third order (measured ~5 %)
        assert led["residual"].abs().sum() < 0.1 * led["step_pnl"].abs().sum()
    with pytest.raises(IndexError):
        res.ledger(40)


# --- 9. delta-gamma and delta-vega -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cls", "greek", "hedge_option", "max_ratio"), [
    (gh.DeltaGamma, "gamma", gh.Option(105.0, 0.5), 0.35),  # measured 0.234 / 0.930 = 0.25
    (gh.DeltaVega, "vega", gh.Option(100.0, 0.26), 0.3),  # measured 0.202 / 0.930 = 0.22
])  # fmt: skip
def test_two_instrument_hedges(cls, greek, hedge_option, max_ratio):
    expiry, n = 0.25, 20_000
    spot, times = _paths(gh.GBM(100.0, 0.2), n, 13, expiry, seed=4)  # weekly: coarse
    book = gh.Option(100.0, expiry, quantity=-1)
    delta_only = gh.hedge(spot, times, book, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    res = gh.hedge(spot, times, book, vol=0.2, strategy=cls(hedge_option), backend="numpy")
    led = res.ledger(3)
    for k in range(13):
        tau = expiry - times[k]
        units = float(led["hedge_option_units"].iloc[k])
        book_greek = -float(_greek(greek, spot[k, 3], 100.0, tau, 0.2))
        per = float(_greek(greek, spot[k, 3], hedge_option.strike, hedge_option.expiry - times[k], 0.2))
        assert units == pytest.approx(-book_greek / per, rel=1e-10)
        assert abs(float(led[greek].iloc[k])) < 1e-10 * abs(book_greek)
        assert float(led["delta"].iloc[k]) + float(led["holding"].iloc[k]) == pytest.approx(0.0, abs=1e-12)
    assert float(np.std(res.pnl)) < max_ratio * float(np.std(delta_only.pnl))
    assert abs(float(np.mean(res.pnl))) < 3 * float(np.std(res.pnl)) / math.sqrt(n)


# --- 10. static hedge and no hedge -------------------------------------------------------------------------------------------------


def test_static_and_no_hedge():
    spot, times = _paths(gh.GBM(100.0, 0.2), 5000, 52, 1.0, seed=2)
    book = gh.Option(100.0, 1.0, quantity=-1)
    none = gh.hedge(spot, times, book, vol=0.2, strategy=gh.NoHedge(), costs=gh.Costs(per_trade=1.0), backend="numpy")
    assert np.all(none.n_trades == 0) and np.all(none.costs == 0) and np.all(none.turnover == 0)
    np.testing.assert_allclose(none.pnl, none.unhedged, rtol=0, atol=1e-12)
    np.testing.assert_allclose(none.pnl, float(_greek("price", 100.0, 100.0, 1.0, 0.2)) - np.maximum(spot[-1] - 100.0, 0.0), atol=1e-9)
    assert none.summary()["effectiveness"] == pytest.approx(0.0, abs=1e-12)
    static = gh.hedge(spot, times, book, vol=0.2, strategy=gh.StaticHedge(), costs=gh.Costs(per_trade=1.0), backend="numpy")
    assert np.all(static.n_trades == 2)  # open and unwind
    np.testing.assert_allclose(static.costs, 2.0)
    d0 = float(_greek("delta", 100.0, 100.0, 1.0, 0.2))
    np.testing.assert_allclose(static.hedging_error, none.pnl + d0 * (spot[-1] - 100.0), atol=1e-9)
    daily = gh.hedge(spot, times, book, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    for res in (static, daily):
        eff = 1 - np.var(res.pnl, ddof=1) / np.var(res.unhedged, ddof=1)
        assert res.summary()["effectiveness"] == pytest.approx(eff, rel=1e-12)
    assert 0.3 < static.summary()["effectiveness"] < daily.summary()["effectiveness"]
    assert daily.summary()["effectiveness"] > 0.97


# --- 11. bad input -----------------------------------------------------------------------------------------------------------------

_P = np.array([[100.0, 100.0], [101.0, 99.0], [102.0, 98.0]])
_T = np.array([0.0, 0.1, 0.2])
_O = gh.Option(100.0, 0.5, quantity=-1)


def _hedge(**kw):
    args = dict(prices=_P, times=_T, options=_O, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    args.update(kw)
    return gh.hedge(args.pop("prices"), args.pop("times"), args.pop("options"), **args)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(times=np.array([0.0, 0.1])), "times"),
    (dict(times=np.array([0.0, 0.2, 0.2])), "times must be strictly increasing"),
    (dict(times=np.array([0.0, 0.3, 0.2])), "times must be strictly increasing"),
    (dict(times=np.array([0.0, np.nan, 0.2])), "times"),
    (dict(vol=np.full(4, 0.2)), "vol"),
    (dict(vol=np.full((3, 2), 0.2)), "vol"),
    (dict(vol=-0.2), "vol"),
    (dict(marks=np.ones(4)), "marks"),
    (dict(marks=np.ones((3, 2))), "marks"),
    (dict(marks=-np.ones(3)), "marks"),
    (dict(prices=np.array([[100.0, 100.0], [-1.0, 99.0], [102.0, 98.0]])), r"prices\[1, 0\]"),
    (dict(prices=np.array([[100.0, 100.0], [101.0, np.nan], [102.0, 98.0]])), r"prices\[1, 1\]"),
    (dict(prices=np.array([[100.0, 0.0], [101.0, 99.0], [102.0, 98.0]])), r"prices\[0, 1\]"),
    (dict(prices=np.ones((1, 2))), "prices"),
    (dict(options=gh.Option(100.0, 0.15)), "expiry"),
    (dict(options=gh.Option(100.0, 0.0)), "expiry"),
    (dict(options=[]), "options"),
    (dict(options="call"), "options"),
    (dict(strategy="periodic"), "strategy"),
    (dict(strategy=gh.DeltaGamma(gh.Option(100.0, 0.2))), "hedge_option"),
    (dict(costs=0.01), "costs"),
    (dict(rate=math.nan), "rate"),
    (dict(lot_size=0), "lot_size"),
    (dict(max_position=-1), "max_position"),
    (dict(dtype="int32"), "dtype"),
])  # fmt: skip
def test_hedge_rejects_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        _hedge(**kw)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: gh.Costs(per_trade=-1.0), "per_trade"),
    (lambda: gh.Costs(proportional=math.nan), "proportional"),
    (lambda: gh.Costs(per_share=math.inf), "per_share"),
    (lambda: gh.Costs(min_per_trade="1"), "min_per_trade"),
    (lambda: gh.Costs(impact=0.1, adv=0.0), "adv"),
    (lambda: gh.Periodic(0), "Periodic.every"),
    (lambda: gh.Periodic(1.5), "Periodic.every"),
    (lambda: gh.Leland(every=-2), "Leland.every"),
    (lambda: gh.DeltaBand(-1.0), "DeltaBand.width"),
    (lambda: gh.DeltaBand(math.nan), "DeltaBand.width"),
    (lambda: gh.WhalleyWilmott(0.0), "WhalleyWilmott.risk_aversion"),
    (lambda: gh.DeltaGamma(gh.Option(100.0, 1.0), every=0), "DeltaGamma.every"),
    (lambda: gh.Option(-100.0, 1.0), "strike"),
    (lambda: gh.Option(100.0, math.nan), "expiry"),
    (lambda: gh.Option(100.0, 1.0, vol=0.0), "vol"),
    (lambda: gh.Option(100.0, 1.0, call="put"), "call"),
    (lambda: gh.rebalance(1.0, 0.0, price=1.0, strategy=object(), backend="numpy"), "strategy"),
    (lambda: gh.rebalance(1.0, 0.0, price=-1.0, strategy=gh.Periodic(), backend="numpy"), "price"),
    (lambda: gh.rebalance(np.nan, 0.0, price=1.0, strategy=gh.Periodic(), backend="numpy"), "exposure"),
    (lambda: gh.rebalance(np.ones(3), np.ones(2), price=1.0, strategy=gh.Periodic(), backend="numpy"), "broadcast"),
    (lambda: gh.rebalance(1.0, 0.0, price=1.0, strategy=gh.Periodic(), lot_size=-1, backend="numpy"), "lot_size"),
])  # fmt: skip
def test_bad_parameters_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- 12. backends agree ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [
    gh.Periodic(2),
    gh.WhalleyWilmott(0.5),
    gh.DeltaBand(0.05, relative=True, to_edge=True),
    gh.DeltaGamma(gh.Option(105.0, 0.6), every=3),
    gh.Leland(),
], ids=lambda s: type(s).__name__)  # fmt: skip
def test_backends_agree(bk, strategy):
    spot, times = _paths(gh.GBM(100.0, 0.25, 0.02, 0.01), 400, 24, 0.4, seed=12)
    # one option settles inside the run (date 12), one is marked at the end
    book = [gh.Option(100.0, times[12], quantity=-3), gh.Option(95.0, 0.5, call=False, quantity=2)]
    kw = dict(vol=0.25, rate=0.02, div=0.01, strategy=strategy, costs=gh.Costs(per_trade=0.1, proportional=0.001), lot_size=None)
    ref = gh.hedge(spot, times, book, backend="numpy", **kw)
    device = gh.get_backend(bk).asarray(spot)
    for prices in (spot, device):  # host rows streamed, and (JAX) the whole array on the device
        res = gh.hedge(prices, times, book, backend=bk, **kw)
        scale = float(np.max(np.abs(ref.pnl)))
        for name in ("pnl", "costs", "unhedged", "turnover"):
            np.testing.assert_allclose(getattr(res, name), getattr(ref, name), rtol=1e-10, atol=1e-10 * scale, err_msg=name)
        np.testing.assert_array_equal(res.n_trades, ref.n_trades)
    assert float(np.std(ref.pnl)) > 0


@pytest.mark.parametrize("module", ["loop", "engine", "costs"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"gpu_hedge._hedging.{module}")
    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0


def test_hedge_simulated_equals_hedging_the_simulated_paths():
    m = gh.GBM(100.0, 0.25, rate=0.02, div=0.01)
    kw = dict(vol=0.25, strategy=gh.DeltaBand(0.02), costs=gh.Costs(proportional=1e-3))
    opt = gh.Option(105.0, 0.5, quantity=-3)
    sim = dict(n_paths=10_000, n_steps=26, horizon=0.5, seed=4)  # > one block of paths
    streamed = gh.hedge_simulated(m, opt, backend="numpy", **sim, **kw)
    paths = gh.simulate(m, backend="numpy", **sim)
    stored = gh.hedge(paths.spot, paths.times, opt, rate=m.rate, div=m.div, backend="numpy", **kw)
    np.testing.assert_array_equal(streamed.pnl, stored.pnl)
    np.testing.assert_array_equal(streamed.n_trades, stored.n_trades)
    assert streamed.ledger(9_999)["pnl"].iloc[-1] == pytest.approx(streamed.pnl[9_999], rel=1e-12)
