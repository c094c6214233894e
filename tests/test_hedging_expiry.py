"""Hedging past an option's expiry, and the hedging entry points' argument checks (issue 14, points 6 and 3).

Convention under test: an option whose expiry falls inside the run settles at its intrinsic value on
the date of ``times`` equal to its expiry (cash into the ledger), and that date's decision is forced:
the hedge is rebalanced to the options still alive (closed out, costs charged, when none is left),
whatever the strategy's schedule or band. Later dates only carry cash. An expiry strictly between two
dates is refused (no spot is interpolated). Every code path: the generic loop, the NumPy native and
blocked paths, JAX's per-date loop, its scan over stored prices and the fused ``hedge_simulated`` scan.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import gpu_hedge as gh

RATE = 0.03
MODEL = gh.GBM(100.0, 0.2, rate=RATE)
COSTS = gh.Costs(proportional=0.001, per_trade=0.01)


def _bs(spot, strike, tau, vol, rate, call):
    """Black-Scholes value and delta (SciPy), per unit."""
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol * vol) * tau) / (vol * np.sqrt(tau))
    d2 = d1 - vol * np.sqrt(tau)
    if call:
        return spot * norm.cdf(d1) - strike * math.exp(-rate * tau) * norm.cdf(d2), norm.cdf(d1)
    return strike * math.exp(-rate * tau) * norm.cdf(-d2) - spot * norm.cdf(-d1), norm.cdf(d1) - 1.0


def _by_hand(spot, times, book, vol, rate, every, proportional, per_trade):
    """The ledger written out for one path: ``book`` = [(strike, expiry, call, units)], Periodic(every)
    hedging, costs ``proportional x notional + per_trade``; an option settles at intrinsic on the date
    equal to its expiry and the hedge is then rebalanced to what is left. Returns (cash per date, final pnl)."""

    def cost(q, s):
        return proportional * abs(q) * s + (per_trade if q != 0 else 0.0)

    alive = list(book)
    value = sum(u * _bs(spot[0], k, e - times[0], vol, rate, c)[0] for k, e, c, u in alive)
    cash, held, ledger = -value, 0.0, []
    n = len(times)
    for k in range(n):
        forced = False
        if k > 0:
            cash *= math.exp(rate * (times[k] - times[k - 1]))
            for o in [o for o in alive if abs(o[1] - times[k]) < 1e-12]:
                strike, _, call, units = o
                cash += units * max((spot[k] - strike) if call else (strike - spot[k]), 0.0)
                alive.remove(o)
                forced = True
        if k < n - 1 and (forced or k % every == 0):
            target = -sum(u * _bs(spot[k], s, e - times[k], vol, rate, c)[1] for s, e, c, u in alive)
            trade = target - held
            cash -= trade * spot[k] + cost(trade, spot[k])
            held = target
        elif k == n - 1:
            cash += sum(u * _bs(spot[k], s, e - times[k], vol, rate, c)[0] for s, e, c, u in alive)
            cash += held * spot[k] - cost(-held, spot[k])
            held = 0.0
        ledger.append(cash)
    return np.array(ledger), cash


# --- point 6: hedge_simulated past expiry ---------------------------------------------------------------------------------------

STRATEGIES = {
    "periodic": gh.Periodic(),
    "every-5": gh.Periodic(every=5),  # 52 is not a multiple of 5: expiry is not one of its trade dates
    "static": gh.StaticHedge(),
    "band": gh.DeltaBand(0.3),
    "leland": gh.Leland(2),
    "whalley-wilmott": gh.WhalleyWilmott(1.0),
    "delta-gamma": gh.DeltaGamma(gh.Option(105.0, 3.0), every=4),
}


@pytest.mark.parametrize("option", [gh.Option(100.0, 1.0, quantity=-1), gh.Option(95.0, 1.0, call=False, quantity=2, multiplier=10)])
def test_hedge_simulated_past_expiry_equals_hedging_to_expiry(bk, option):
    # the same seed and step (1/52): the counter-based shocks are keyed by (seed, step, path), so
    # the 104-step paths are the 52-step paths up to t = 1
    common = dict(n_paths=600, seed=7, vol=0.2, costs=COSTS, backend=bk)
    for name, strategy in STRATEGIES.items():
        one = gh.hedge_simulated(MODEL, option, n_steps=52, horizon=1.0, strategy=strategy, **common)
        two = gh.hedge_simulated(MODEL, option, n_steps=104, horizon=2.0, strategy=strategy, **common)
        # after expiry the book is cash, which only earns interest
        grow = math.exp(RATE * 1.0)
        np.testing.assert_allclose(two.pnl, one.pnl * grow, rtol=1e-9, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(two.unhedged, one.unhedged * grow, rtol=1e-9, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(two.costs, one.costs, rtol=1e-9, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(two.n_trades, one.n_trades, err_msg=name)
        np.testing.assert_allclose(two.turnover, one.turnover, rtol=1e-9, err_msg=name)


def test_ledger_after_expiry_only_carries_cash(bk):
    res = gh.hedge_simulated(MODEL, gh.Option(100.0, 1.0, quantity=-1), n_paths=4, n_steps=8, horizon=2.0, seed=3, vol=0.2,
                             strategy=gh.Periodic(every=3), costs=COSTS, backend=bk)  # fmt: skip
    led = res.ledger(1)
    after = led[led.index > 1.0 + 1e-12]
    at = led.loc[1.0]
    assert (led.loc[led.index >= 1.0 - 1e-12, "holding"] == 0.0).all()  # closed out at expiry (a date off the every-3 schedule)
    assert at["trade"] != 0.0 and at["cost"] > 0.0
    assert (after["option_value"] == 0.0).all() and (after["trade"] == 0.0).all() and (after["cost"] == 0.0).all()
    dt = np.diff(led.index.to_numpy())[-1]
    np.testing.assert_allclose(after["cash"].to_numpy(), at["cash"] * np.exp(RATE * dt * np.arange(1, len(after) + 1)), rtol=1e-12)
    assert led["pnl"].iloc[-1] == pytest.approx(res.pnl[1], rel=1e-12)


# --- point 6: a given series past expiry, checked by hand -------------------------------------------------------------------------

SPOT = np.array([100.0, 103.0, 98.5, 104.0, 107.0, 101.0, 95.0])
TIMES = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5])


def _forms(bk, spot):
    """The series as a 1-D list (generic loop), a host (n_times, 2) array (NumPy: blocked/native; JAX: per
    date) and, on JAX, a device array (the scan over stored prices)."""
    forms = {"1-d": list(spot), "host-2d": np.stack([spot, spot], axis=1)}
    if bk == "jax":
        forms["device-2d"] = gh.get_backend("jax").asarray(forms["host-2d"])
    return forms


@pytest.mark.parametrize("numba", ["1", "0"])
def test_series_past_expiry_settles_intrinsic_at_expiry(bk, numba, monkeypatch):
    monkeypatch.setenv("GPU_HEDGE_NUMBA", numba)
    option = gh.Option(100.0, 1.0, quantity=-3)  # short 3 calls; the expiry is times[4], not a trade date of every=3
    ledger, pnl = _by_hand(SPOT, TIMES, [(100.0, 1.0, True, -3.0)], 0.2, 0.05, 3, 0.001, 0.01)
    # the settlement by hand: at t = 1 the calls pay 3 x (107 - 100) and the hedge is sold at 107
    for name, prices in _forms(bk, SPOT).items():
        res = gh.hedge(prices, TIMES, option, vol=0.2, rate=0.05, strategy=gh.Periodic(every=3), costs=COSTS, backend=bk)
        np.testing.assert_allclose(res.pnl, pnl, rtol=1e-10, err_msg=name)
        assert res.pnl[0] == pytest.approx(ledger[4] * math.exp(0.05 * 0.5), rel=1e-12)
    led = res.ledger(0)
    np.testing.assert_allclose(led["cash"].to_numpy(), ledger, rtol=1e-10)
    assert led["holding"].iloc[4:].eq(0.0).all()
    # the step at expiry: the settlement -21 and the sale of the hedge, less its cost, added to cash
    held = led["holding"].iloc[3]
    step = ledger[4] - ledger[3] * math.exp(0.05 * 0.25)
    assert step == pytest.approx(-3 * 7.0 + held * 107.0 - (0.001 * abs(held) * 107.0 + 0.01), rel=1e-12)


def test_series_two_options_settle_at_their_own_expiries(bk):
    book = [gh.Option(95.0, 0.5, quantity=-2), gh.Option(110.0, 1.0, call=False, quantity=1, multiplier=5)]
    by_hand = [(95.0, 0.5, True, -2.0), (110.0, 1.0, False, 5.0)]
    # every 3 dates: neither expiry (times[2], times[4]) is a trade date of the schedule
    _, pnl = _by_hand(SPOT, TIMES, by_hand, 0.2, 0.05, 3, 0.001, 0.01)
    for name, prices in _forms(bk, SPOT).items():
        res = gh.hedge(prices, TIMES, book, vol=0.2, rate=0.05, strategy=gh.Periodic(every=3), costs=COSTS, backend=bk)
        np.testing.assert_allclose(res.pnl, pnl, rtol=1e-10, err_msg=name)
    # the unhedged book: premium accrued from 0, each payoff from its own expiry: the calls pay
    # 2 x (98.5 - 95) at t = 0.5, the puts 5 x (110 - 107) at t = 1
    premium = -2 * _bs(100.0, 95.0, 0.5, 0.2, 0.05, True)[0] + 5 * _bs(100.0, 110.0, 1.0, 0.2, 0.05, False)[0]
    unhedged = -premium * math.exp(0.05 * 1.5) - 2 * 3.5 * math.exp(0.05 * 1.0) + 5 * 3.0 * math.exp(0.05 * 0.5)
    assert res.unhedged[0] == pytest.approx(unhedged, rel=1e-12)
    assert res.premium[0] == pytest.approx(premium, rel=1e-12)


def test_simulated_two_expiries_is_the_sum_of_each_alone(bk):
    # Periodic every date, no costs: the hedge is linear in the book, so the book's P&L is the sum
    # of each option's own P&L on the same paths, each settled and unhedged from its own expiry
    a, b = gh.Option(100.0, 0.5, quantity=-1), gh.Option(90.0, 1.0, call=False, quantity=2)
    kw = dict(n_paths=300, n_steps=30, horizon=1.5, seed=11, vol=0.2, strategy=gh.Periodic(), backend=bk)
    both = gh.hedge_simulated(MODEL, [a, b], **kw)
    alone = [gh.hedge_simulated(MODEL, o, **kw) for o in (a, b)]
    np.testing.assert_allclose(both.pnl, alone[0].pnl + alone[1].pnl, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(both.unhedged, alone[0].unhedged + alone[1].unhedged, rtol=1e-9, atol=1e-9)
    # and the same on the stored paths through gh.hedge
    paths = gh.simulate(MODEL, n_paths=300, n_steps=30, horizon=1.5, seed=11, backend=bk)
    stored = gh.hedge(paths.spot, paths.times, [a, b], vol=0.2, rate=RATE, strategy=gh.Periodic(), backend=bk)
    np.testing.assert_allclose(stored.pnl, both.pnl, rtol=1e-9, atol=1e-9)


def test_expiry_between_dates_is_refused(bk):
    with pytest.raises(ValueError, match=r"options\[1\]\.expiry = 0\.6 falls between times\[2\] = 0\.5 and times\[3\] = 0\.75"):
        gh.hedge(SPOT, TIMES, [gh.Option(100.0, 1.0), gh.Option(100.0, 0.6)], vol=0.2, strategy=gh.Periodic(), backend=bk)
    with pytest.raises(ValueError, match=r"options\.expiry = 1\.0 falls between .*horizon = 1\.5, n_steps = 52.*n_steps"):
        gh.hedge_simulated(MODEL, gh.Option(100.0, 1.0), n_paths=4, n_steps=52, horizon=1.5, seed=1, vol=0.2,
                           strategy=gh.Periodic(), backend=bk)  # fmt: skip


def test_documented():
    for fn in (gh.hedge, gh.hedge_simulated):
        doc = " ".join(fn.__doc__.split())
        assert "intrinsic" in doc and "expiry" in doc and "closed out" in doc, fn.__name__


# --- point 3: inputs taken as stated or refused, named as given --------------------------------------------------------------------

OPT = gh.Option(100.0, 1.0, quantity=-1)
SIM = dict(n_paths=8, n_steps=4, horizon=1.0, seed=1, vol=0.2, strategy=gh.Periodic())
P5, T5 = SPOT[:5], TIMES[:5]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(horizon=True), r"^horizon = True must be"),
        (dict(horizon="1.0"), r"^horizon = '1\.0' must be"),
        (dict(horizon=-1.0), r"^horizon = -1\.0 must be"),
        (dict(horizon=0.0), r"^horizon = 0\.0 must be"),
        (dict(horizon=math.nan), r"^horizon = nan must be"),
        (dict(vol="0.2"), r"^vol = '0\.2' is a string"),
        (dict(vol=True), r"^vol holds booleans"),
        (dict(vol=np.array(["0.2"] * 5)), r"^vol holds strings"),
        (dict(antithetic=1), r"^antithetic = 1 must be True or False"),
        (dict(lot_size=True), r"^lot_size = True must be"),
        (dict(max_position=False), r"^max_position = False must be"),
    ],
)
def test_hedge_simulated_refuses_and_names_the_argument(bk, change, message):
    with pytest.raises(ValueError, match=message):
        gh.hedge_simulated(MODEL, OPT, **{**SIM, **change, "backend": bk})


def test_arguments_already_named_stay_named():
    # a guard, not a new behaviour: these were refused by name before, and still are now that the
    # run's arguments are checked before the dates are built
    with pytest.raises(ValueError, match=r"^n_steps = True must be"):
        gh.hedge_simulated(MODEL, OPT, **{**SIM, "n_steps": True}, backend="numpy")
    with pytest.raises(ValueError, match=r"^n_steps = 4\.0 must be"):
        gh.hedge_simulated(MODEL, OPT, **{**SIM, "n_steps": 4.0}, backend="numpy")
    with pytest.raises(ValueError, match=r"^rate = '0\.01' must be"):
        gh.hedge(P5, T5, OPT, vol=0.2, rate="0.01", strategy=gh.Periodic(), backend="numpy")


def test_hedge_simulated_hedge_option_message_names_horizon():
    with pytest.raises(ValueError, match=r"hedge_option\.expiry = 1\.0 must be after horizon = 1\.0"):
        gh.hedge_simulated(MODEL, OPT, **{**SIM, "strategy": gh.DeltaGamma(gh.Option(100.0, 1.0))}, backend="numpy")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(prices=P5.astype(str)), r"^prices holds strings"),
        (dict(prices=[str(p) for p in P5]), r"^prices holds strings"),
        (dict(prices="100 101"), r"^prices = '100 101' is a string"),
        (dict(prices=np.ones(5, dtype=bool)), r"^prices holds booleans"),
        (dict(prices=np.array(P5, dtype=object)), r"^prices holds Python objects"),
        (dict(prices=P5 + 0j), r"^prices holds complex"),
        (dict(times=T5.astype(str)), r"^times holds strings"),
        (dict(times=[False, True, True, True, True]), r"^times holds booleans"),
        (dict(times=np.array([0, 1, 2, 3, 4], dtype="timedelta64[D]")), r"^times holds durations"),
        (dict(vol="0.2"), r"^vol = '0\.2' is a string"),
        (dict(vol=True), r"^vol holds booleans"),
        (dict(rate=True), r"^rate = True must be"),
        (dict(div=False), r"^div = False must be"),
        (dict(marks=["8"] * 5), r"^marks holds strings"),
        (dict(lot_size=True), r"^lot_size = True must be"),
    ],
)
def test_hedge_refuses_and_names_the_argument(bk, change, message):
    kw = dict(prices=P5, times=T5, options=OPT, vol=0.2, strategy=gh.Periodic(), backend=bk) | change
    with pytest.raises(ValueError, match=message):
        gh.hedge(kw.pop("prices"), kw.pop("times"), kw.pop("options"), **kw)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gh.Option(100.0, 1.0, quantity=True),
        lambda: gh.Option(True, 1.0),
        lambda: gh.Option(100.0, 1.0, vol=True),
        lambda: gh.Costs(proportional=True),
        lambda: gh.DeltaBand(True),
        lambda: gh.WhalleyWilmott(True),
    ],
)
def test_specs_refuse_booleans(make):
    with pytest.raises(ValueError, match="= True must be"):
        make()


def test_datetime64_times_are_act365_years_from_the_first_date(bk):
    dates = np.array(["2021-03-01", "2021-05-31", "2021-08-30", "2021-11-29", "2022-02-28", "2022-05-30", "2022-08-29"],
                     dtype="datetime64[D]")  # fmt: skip
    years = (dates - dates[0]).astype(np.float64) / 365.0  # ACT/365, read_prices' clock
    expiry = float(years[4])  # 364 days: the option settles on 2022-02-28
    option = gh.Option(100.0, expiry, quantity=-1)
    kw = dict(vol=0.2, rate=0.02, strategy=gh.Periodic(), costs=COSTS, backend=bk)
    ref = gh.hedge(SPOT, years, option, **kw)
    for given in (dates, dates.astype("datetime64[ns]"), pd.DatetimeIndex(dates), list(pd.DatetimeIndex(dates))):
        res = gh.hedge(SPOT, given, option, **kw)
        np.testing.assert_array_equal(res.pnl, ref.pnl)
        np.testing.assert_allclose(res._plan.times, years, rtol=0, atol=0)
    # the reader's clock is the same
    assert np.array_equal(gh.read_prices.__globals__["times_from_dates"](pd.DatetimeIndex(dates)), years)
    with pytest.raises(ValueError, match=r"times\[2\] is NaT"):
        gh.hedge(SPOT, np.array([*dates[:2], "NaT", *dates[3:]], dtype="datetime64[D]"), option, **kw)
    with pytest.raises(ValueError, match=r"times must be strictly increasing: times\[1\] = 2021-03-01"):
        gh.hedge(SPOT, np.array([dates[0], dates[0], *dates[2:]]), option, **kw)
