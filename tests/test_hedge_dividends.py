"""Cash dividends in the hedging engine (issue 16, points 4 and 7): ``gh.hedge(..., dividends=)``.

The paths are the escrowed model's, written here: ``S_t = S*_t + PV_t`` with ``S*`` a geometric
Brownian motion at the pricing vol and ``PV_t`` the value at ``t`` of the dividends still to go ex,
so the stock drops by each amount at its ex-date. On such paths the escrowed price with
``vol_adjust="none"`` is the exact no-arbitrage value: a delta hedge at that model's deltas, with
the dividends paid on the shares held, must have mean P&L 0 (within its standard error), and the
premium must equal the discounted mean payoff (a Monte Carlo value not computed by the pricer).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gpu_hedge as gh

S0, R, VOL = 100.0, 0.03, 0.25


def escrowed_paths(times: np.ndarray, divs: list[tuple[float, float]], n_paths: int, seed: int, vol: float = VOL) -> np.ndarray:
    def pv(t: float) -> float:
        return sum(a * math.exp(-R * (ti - t)) for ti, a in divs if ti > t)

    rng = np.random.default_rng(seed)
    dt = np.diff(times)[:, None]
    z = rng.standard_normal((times.size - 1, n_paths))
    logs = np.vstack([np.zeros(n_paths), np.cumsum((R - 0.5 * vol**2) * dt + vol * np.sqrt(dt) * z, axis=0)])
    return (S0 - pv(float(times[0]))) * np.exp(logs) + np.array([pv(float(t)) for t in times])[:, None]


DIVS = [(0.3, 2.0), (0.8, 2.0)]


def test_european_delta_hedge_with_cash_dividends_has_zero_mean_pnl(bk):
    times = np.linspace(0.0, 1.0, 201)
    n = 3000
    S = escrowed_paths(times, DIVS, n, seed=0)
    opt = gh.Option(100.0, 1.0, quantity=-1)
    res = gh.hedge(S, times, opt, vol=VOL, rate=R, strategy=gh.Periodic(), backend=bk, dividends=DIVS, vol_adjust="none")
    pnl = np.asarray(res.pnl)
    se = pnl.std() / math.sqrt(n)
    assert abs(pnl.mean()) < 3 * se
    # the premium is the escrowed price, and the discounted mean payoff of these paths
    premium = float(np.mean(res.premium))
    price = float(gh.price(S0, 100.0, 1.0, VOL, R, call=True, dividends=DIVS, vol_adjust="none", backend="numpy"))
    assert -premium == pytest.approx(price, rel=1e-12)  # short one option (multiplier 1)
    payoff = np.maximum(S[-1] - 100.0, 0.0) * math.exp(-R)
    assert abs(payoff.mean() - price) < 3 * payoff.std() / math.sqrt(n)
    # without the dividends (no cash on the shares, no-dividend deltas and premium) the hedge is biased
    plain = np.asarray(gh.hedge(S, times, opt, vol=VOL, rate=R, strategy=gh.Periodic(), backend=bk).pnl)
    assert abs(plain.mean()) > 10 * se


def test_hedging_error_shrinks_with_the_rebalancing_frequency():
    fine = np.linspace(0.0, 1.0, 401)
    S = escrowed_paths(fine, DIVS, 2000, seed=4)
    std = []
    for every in (16, 4, 1):  # the same paths seen 25, 100 and 400 times
        idx = np.arange(0, fine.size, every)
        res = gh.hedge(S[idx], fine[idx], gh.Option(100.0, 1.0, quantity=-1), vol=VOL, rate=R, strategy=gh.Periodic(),
                       backend="numpy", dividends=DIVS, vol_adjust="none")  # fmt: skip
        std.append(float(np.std(np.asarray(res.pnl))))
    # the hedging error falls like 1 / sqrt(n_dates): x4 the dates, about half the std
    assert 0.4 < std[1] / std[0] < 0.6 and 0.4 < std[2] / std[1] < 0.6, std


def test_ledger_pays_the_dividends_on_the_shares_held():
    times = np.linspace(0.0, 1.0, 11)
    divs = [(0.33, 1.5), (0.34, 0.5), (1.0, 0.7)]  # two between dates 3 and 4, one on the last date
    S = escrowed_paths(times, divs, 3, seed=2)
    res = gh.hedge(S, times, gh.Option(100.0, 1.0, quantity=-2), vol=VOL, rate=R, strategy=gh.Periodic(), backend="numpy",
                   dividends=divs)  # fmt: skip
    led = res.ledger(1)
    held = led["holding"].to_numpy()
    want = np.zeros(times.size)
    want[4] = held[3] * (1.5 * math.exp(R * (0.4 - 0.33)) + 0.5 * math.exp(R * (0.4 - 0.34)))
    want[10] = held[9] * 0.7
    np.testing.assert_allclose(led["dividend_cash"].to_numpy(), want, rtol=1e-13, atol=1e-13)
    assert held[3] > 0  # short calls: long shares, which receive the dividends
    # the cash account's change on date 4: interest, the dividends and the trade
    cash = led["cash"].to_numpy()
    trade, cost = led["trade"].to_numpy(), led["cost"].to_numpy()
    assert cash[4] == pytest.approx(cash[3] * math.exp(R * 0.1) + want[4] - trade[4] * S[4, 1] - cost[4], rel=1e-12)


def test_american_call_is_exercised_on_the_eve_of_a_large_dividend():
    divs = [(0.5, 5.0)]
    times = np.unique(np.concatenate([np.linspace(0.0, 1.0, 11), [0.4999]]))
    n = 120
    S = escrowed_paths(times, divs, n, seed=1, vol=0.2)
    res = gh.hedge(S, times, gh.Option(80.0, 1.0, quantity=1, exercise="american"), vol=0.2, rate=R, strategy=gh.Periodic(),
                   backend="numpy", dividends=divs, vol_adjust="none")  # fmt: skip
    eve = int(np.flatnonzero(times == 0.4999)[0])
    order = np.argsort(S[eve])
    seen = []
    for p in (order[-1], order[n // 2], order[0]):  # a ledger replays the path with every Greek: a few paths
        led = res.ledger(int(p))
        when = led.index[led["exercised"]].tolist()
        seen.append(bool(when))
        intrinsic = S[eve, p] - 80.0
        # holding through the dividend is worth about the American call on the ex-dividend spot (no dividend left)
        keep = float(gh.price(S[eve, p] - 5.0, 80.0, 0.5, 0.2, R, call=True, exercise="american", backend="numpy"))
        if when:
            assert when == [0.4999], when
            assert led["exercise_cash"].iloc[eve] == pytest.approx(intrinsic, rel=1e-12)
            assert keep < intrinsic + 0.02
        else:
            assert keep > intrinsic - 0.02
    assert seen[0] and not all(seen)  # the deepest in the money is exercised, not every path
    pnl = np.asarray(res.pnl)
    assert abs(pnl.mean()) < 3 * pnl.std() / math.sqrt(n)


def test_paid_or_zero_dividends_change_nothing_and_bad_input_is_refused():
    times = np.linspace(0.0, 0.5, 26)
    S = escrowed_paths(times, [], 50, seed=3)
    kw = dict(vol=VOL, rate=R, strategy=gh.Periodic(), backend="numpy")
    opt = gh.Option(100.0, 0.5, quantity=-1)
    base = gh.hedge(S, times, opt, **kw)
    for divs in ([(0.0, 3.0)], [(0.2, 0.0)], []):
        np.testing.assert_array_equal(np.asarray(gh.hedge(S, times, opt, dividends=divs, **kw).pnl), np.asarray(base.pnl))
    with pytest.raises(ValueError, match="amount must be >= 0"):
        gh.hedge(S, times, opt, dividends=[(0.2, -1.0)], **kw)
    with pytest.raises(ValueError, match="vol_adjust"):
        gh.hedge(S, times, opt, dividends=[(0.2, 1.0)], vol_adjust="bogus", **kw)
    with pytest.raises(ValueError, match="delta must be 'bs'"):
        gh.hedge(S, times, opt, dividends=[(0.2, 1.0)], delta="minimum_variance", mv=(0.0, 0.0, 0.0), **kw)
    hedge_opt = gh.DeltaGamma(hedge_option=gh.Option(100.0, 1.0))
    with pytest.raises(ValueError, match="not supported with dividends="):
        gh.hedge(S, times, opt, dividends=[(0.2, 1.0)], **{**kw, "strategy": hedge_opt})


def test_cli_backtest_with_dividends_and_american_exercise(tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from gpu_hedge.cli import app

    dates = pd.date_range("2025-01-02", periods=120, freq="D")
    t = ((dates - dates[0]).days / 365.0).to_numpy()
    ex = 60  # the 61st day goes ex: 3.0 per share
    S = escrowed_paths(t, [(float(t[ex]), 3.0)], 1, seed=9)[:, 0]
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "close": S}).to_csv(tmp_path / "px.csv", index=False)
    pd.DataFrame({"ex_date": [dates[ex].strftime("%Y-%m-%d"), "2024-06-01"], "amount": [3.0, 9.0]}).to_csv(tmp_path / "divs.csv",
                                                                                                       index=False)  # fmt: skip
    base = ["backtest", str(tmp_path / "px.csv"), "--start", "2025-01-02", "--vol", "0.25", "--backend", "numpy"]
    args = [*base, "--strike", "95", "--expiry-days", "119", "--dividends", str(tmp_path / "divs.csv"),
            "--ledger", str(tmp_path / "led.csv")]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Cash dividends: 1 going ex in the window, 3.0000 per share" in result.output
    led = pd.read_csv(tmp_path / "led.csv")
    premium = float(gh.price(S[0], 95.0, t[-1], 0.25, 0.0, call=True, dividends=[(float(t[ex]), 3.0)], backend="numpy"))
    assert -float(led["option_value"].iloc[0]) == pytest.approx(premium, rel=1e-12)  # one option written
    assert led["dividend_cash"].iloc[ex] == pytest.approx(3.0 * led["holding"].iloc[ex - 1], rel=1e-12)  # the shares get 3 each
    assert (led["dividend_cash"].drop(index=ex) == 0).all()
    # American exercise (a short window: the per-date American pricer)
    am = CliRunner().invoke(app, [*base, "--expiry-days", "20", "--american", "--put", "--strike", "200", "--rate", "0.05"],
                            env={"COLUMNS": "200"})  # fmt: skip
    assert am.exit_code == 0, am.output
    assert "American: exercised on 2025-01-02" in am.output  # a put this deep in the money: at once
    bad = CliRunner().invoke(app, [*args, "--dividends", str(tmp_path / "px.csv")], env={"COLUMNS": "200"})
    assert bad.exit_code != 0 and "needs the columns ex_date and amount" in bad.output and "Traceback" not in bad.output
