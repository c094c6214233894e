"""Hedging American options: ``Option(exercise="american")`` priced and hedged with the American
pricer's Greeks, exercised (or assigned) per path at intrinsic value on the first date where
immediate exercise is optimal for the holder, its hedge unwound there.

American pricing is slow (~10 k options/s per core on NumPy; JAX compiles the pricer once per
path count, so every test here uses the same ``N_PATHS``): few paths, few dates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge._hedging import book as book_module
from gpu_hedge._hedging import step as step_module

N_PATHS = 256  # one compiled American kernel per path count on JAX: every run here has this many paths
RATE, VOL = 0.06, 0.2


def _first_exercise(spots: np.ndarray, times: np.ndarray, strike: float, expiry: float) -> int:
    """The first date k before expiry where immediate exercise of the American put is optimal (the
    package's pricer, as the engine asks it), or -1."""
    for k in range(times.size):
        tau = expiry - times[k]
        if tau <= 1e-12:
            break
        g = gh.greeks(spots[k], strike, tau, VOL, RATE, 0.0, call=False, exercise="american", greeks=("early_exercise",),
                      backend="numpy")  # fmt: skip
        if bool(g["early_exercise"]):
            return k
    return -1


@pytest.mark.parametrize("quantity", [1.0, -1.0])
def test_deep_itm_put_is_exercised_on_the_first_optimal_date(bk: str, quantity: float) -> None:
    strike, expiry = 100.0, 0.5
    times = np.linspace(0.0, 0.75, 16)  # the run goes on past the expiry (date 10): no second payment there
    rng = np.random.default_rng(5)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (16, N_PATHS)), axis=0))
    prices[0] = 100.0
    # path 0 falls deep into the money at date 4 and stays there
    prices[:, 0] = [100.0, 98.0, 96.0, 93.0, 70.0, 71.0, 69.0, 72.0, 70.0, 71.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0]
    put = gh.Option(strike, expiry, call=False, quantity=quantity, exercise="american")
    k_ex = _first_exercise(prices[:, 0], times, strike, expiry)
    assert 0 < k_ex < 10  # the path is built so that it is an early date, not t_0
    # device prices on JAX (the compiled scan would otherwise take them: American books run the loop)
    res = gh.hedge(gh.get_backend(bk).asarray(prices), times, put, vol=VOL, rate=RATE, strategy=gh.Periodic(),
                   costs=gh.Costs(proportional=0.001), backend=bk)  # fmt: skip
    led = res.ledger(0)
    assert led["exercised"].sum() == 1
    t_ex = led.index[led["exercised"].to_numpy()][0]
    assert t_ex == pytest.approx(times[k_ex], abs=1e-12)
    intrinsic = strike - prices[k_ex, 0]
    assert led["exercise_cash"].iloc[k_ex] == pytest.approx(quantity * intrinsic, rel=1e-12)
    assert (led["exercise_cash"].drop(index=led.index[k_ex]) == 0).all()
    # dead afterwards: no value, no delta, the hedge unwound on the exercise date and nothing held after
    after = led.iloc[k_ex:]
    assert (after["option_value"] == 0).all() and (after["delta"] == 0).all() and (after["holding"] == 0).all()
    assert led["holding"].iloc[k_ex - 1] != 0 and led["trade"].iloc[k_ex] == pytest.approx(-led["holding"].iloc[k_ex - 1])
    # the unhedged book: the premium paid at t_0 and the intrinsic value received at t_k, both accrued to t_n
    premium = float(res.premium[0])
    t_n = float(times[-1])
    expected = -premium * math.exp(RATE * t_n) + quantity * intrinsic * math.exp(RATE * (t_n - times[k_ex]))
    assert float(res.unhedged[0]) == pytest.approx(expected, rel=1e-10)
    assert float(led["pnl"].iloc[-1]) == pytest.approx(float(res.pnl[0]), rel=1e-10, abs=1e-10)
    # the premium at t_0 is the American price
    p0 = gh.greeks(100.0, strike, expiry, VOL, RATE, 0.0, call=False, exercise="american", greeks=("price",), backend="numpy")
    assert premium == pytest.approx(quantity * float(p0["price"]), rel=1e-12)


def test_american_call_without_dividends_is_the_european_run(bk: str) -> None:
    model = gh.GBM(100.0, VOL, rate=0.05)
    kw = dict(n_paths=N_PATHS, n_steps=20, horizon=0.5, seed=11, vol=VOL, strategy=gh.Periodic(),
              costs=gh.Costs(proportional=0.002), backend=bk)  # fmt: skip
    eu = gh.hedge_simulated(model, gh.Option(100.0, 0.5, quantity=-2.0), **kw)
    am = gh.hedge_simulated(model, gh.Option(100.0, 0.5, quantity=-2.0, exercise="american"), **kw)
    for name in ("pnl", "hedging_error", "costs", "turnover", "unhedged", "premium"):
        np.testing.assert_allclose(getattr(am, name), getattr(eu, name), rtol=0, atol=1e-10, err_msg=name)
    np.testing.assert_array_equal(am.n_trades, eu.n_trades)
    led_am, led_eu = am.ledger(3), eu.ledger(3)
    assert not led_am["exercised"].any() and (led_am["exercise_cash"] == 0).all()
    for col in ("spot", "option_value", "delta", "holding", "cash", "pnl"):
        np.testing.assert_allclose(led_am[col], led_eu[col], rtol=0, atol=1e-10, err_msg=col)


def test_mixed_book_without_early_exercise_is_the_european_run(bk: str) -> None:
    """A book of an American call (no dividend: never exercised early) expiring inside the run and a
    European put: the European book's run, through settlement, forced rebalancing and a band."""
    model = gh.GBM(100.0, VOL, rate=0.03)
    kw = dict(n_paths=N_PATHS, n_steps=20, horizon=0.5, seed=2, vol=VOL, strategy=gh.DeltaBand(0.1),
              costs=gh.Costs(proportional=0.001), backend=bk)  # fmt: skip
    put = gh.Option(95.0, 0.5, call=False, quantity=3.0)
    eu = gh.hedge_simulated(model, [gh.Option(105.0, 0.25, quantity=-2.0), put], **kw)
    am = gh.hedge_simulated(model, [gh.Option(105.0, 0.25, quantity=-2.0, exercise="american"), put], **kw)
    for name in ("pnl", "costs", "unhedged", "premium"):
        np.testing.assert_allclose(getattr(am, name), getattr(eu, name), rtol=0, atol=1e-10, err_msg=name)


def _european_deltas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decisions hedge the Black-Scholes-Merton delta (and gamma) of each American option while its
    price, premium and exercise stay American: hedging it "with European deltas"."""
    orig = book_module.american_terms
    bs = book_module.kernel(("delta", "gamma"))

    def terms(bk, o, spot, tau, vol, rate, div, names):  # noqa: ANN001, ANN202
        g = dict(orig(bk, o, spot, tau, vol, rate, div, names))
        e = bs(bk.xp, bk.special, spot, o.strike, tau, vol, rate, div, 1.0 if o.call else -1.0)
        g["delta"], g["gamma"] = e["delta"], e["gamma"]
        return g

    monkeypatch.setattr(book_module, "american_terms", terms)
    monkeypatch.setattr(step_module, "american_terms", terms)


def test_short_american_put_hedged_with_american_deltas(bk: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rate, vol = 0.08, 0.25
    model = gh.GBM(100.0, vol, rate=rate)
    put = gh.Option(100.0, 0.5, call=False, quantity=-1.0, exercise="american")
    kw = dict(n_paths=N_PATHS, n_steps=50, horizon=0.5, seed=7, vol=vol, strategy=gh.Periodic(), backend=bk)
    am = gh.hedge_simulated(model, put, **kw)
    s = am.summary()
    # the premium charged is the American price (short: the book brought it in)
    p0 = gh.greeks(100.0, 100.0, 0.5, vol, rate, 0.0, call=False, exercise="american", greeks=("price",), backend="numpy")
    assert s["premium"] == pytest.approx(-float(p0["price"]), rel=1e-12)
    # the hedge P&L is fair: mean ~ 0 against the premium
    assert abs(s["mean"]) < 0.05 * abs(s["premium"])
    assert abs(s["mean"]) < 4.0 * s["stderr_mean"] + 0.02 * abs(s["premium"])
    with monkeypatch.context() as m:
        _european_deltas(m)
        eu = gh.hedge_simulated(model, put, **kw)
    assert float(np.mean(eu.premium)) == pytest.approx(s["premium"], rel=1e-12)
    assert s["std"] < 0.9 * float(np.std(eu.pnl, ddof=1))


@pytest.mark.parametrize("word", ["bermudan", "American", "", None, True])
def test_bad_exercise_word_is_refused_naming_it(word: object) -> None:
    with pytest.raises(ValueError, match=r"Option\.exercise = .*must be one of 'european', 'american'") as err:
        gh.Option(100.0, 1.0, exercise=word)  # type: ignore[arg-type]
    assert repr(word) in str(err.value)


def test_american_books_refuse_what_they_do_not_support() -> None:
    put = gh.Option(100.0, 0.5, call=False, exercise="american")
    prices = np.full((3, 2), 100.0)
    with pytest.raises(ValueError, match=r"options is American.*delta must be 'bs'"):
        gh.hedge(prices, [0.0, 0.25, 0.5], put, vol=0.2, strategy=gh.Periodic(), delta="smile", backend="numpy")
    hedger = gh.Option(100.0, 1.0, exercise="american")
    with pytest.raises(ValueError, match="hedge_option must be European"):
        gh.hedge(prices, [0.0, 0.25, 0.5], put, vol=0.2, strategy=gh.DeltaGamma(hedger), backend="numpy")
