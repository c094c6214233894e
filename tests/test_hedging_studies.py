"""Hedging studies: compare() and frontier() on GBM paths, the shipped WTI series, read_prices, a real
backtest through gh.hedge with its ledger identities, and the plots (when matplotlib is installed)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest

import gpu_hedge as gh
from gpu_hedge._hedging.prices import realised_vol, series_arrays, times_from_dates
from gpu_hedge._hedging.studies import render_compare, render_frontier, strategy_name

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
COSTS = gh.Costs(proportional=0.001)


@pytest.fixture(scope="module")
def gbm():
    p = gh.simulate(gh.GBM(100.0, 0.2), n_paths=4000, n_steps=63, horizon=0.25, seed=11, backend="numpy")
    return p.spot, p.times, gh.Option(100.0, 0.25, quantity=-1)


def test_compare_ranks_strategies(gbm):
    spot, times, opt = gbm
    t = gh.compare(spot, times, opt, vol=0.2, costs=COSTS, backend="numpy")
    assert list(t.index) == ["Periodic", "StaticHedge", "NoHedge"]
    assert list(t.columns) == ["std_pnl", "es_99", "mean_cost", "effectiveness", "p95_pnl", "mean_pnl", "mean_trades"]
    dyn, static, none = (t.loc[n] for n in t.index)
    # risk: daily delta hedging << hedging once << no hedge
    assert dyn.std_pnl < 0.25 * static.std_pnl and static.std_pnl < 0.7 * none.std_pnl
    assert dyn.es_99 < static.es_99 < none.es_99
    # cost: trading every day costs most, never trading nothing
    assert dyn.mean_cost > static.mean_cost > 0 and none.mean_cost == 0
    assert dyn.mean_trades == pytest.approx(64, abs=1) and static.mean_trades == 2 and none.mean_trades == 0
    assert dyn.effectiveness > 0.98 and 0.3 < static.effectiveness < 0.95 and none.effectiveness == 0.0
    # the unhedged written call keeps at most its premium (about 3.99) as upside
    assert none.p95_pnl <= 3.99 + 1e-9 and none.p95_pnl > dyn.p95_pnl
    # Black-Scholes delta hedging at the true vol: mean P&L about minus the costs
    assert dyn.mean_pnl == pytest.approx(-dyn.mean_cost, abs=0.05)
    table = render_compare(t)
    assert table.row_count == 3


def test_compare_results_same_paths_and_kwargs(gbm):
    spot, times, opt = gbm
    res = gh.compare_results(spot, times, opt, vol=0.2, strategy=gh.DeltaBand(0.05), costs=COSTS, backend="numpy", lot_size=None)
    assert list(res) == ["DeltaBand(width=0.05)", "StaticHedge", "NoHedge"]
    # same paths: the unhedged P&L is identical in every run
    u = res["NoHedge"].unhedged
    assert all(np.array_equal(r.unhedged, u) for r in res.values())
    assert np.array_equal(res["NoHedge"].pnl, u)
    # a static strategy given as the dynamic one is not run twice
    assert list(gh.compare_results(spot[:, :50], times, opt, vol=0.2, strategy=gh.StaticHedge(), backend="numpy")) == [
        "StaticHedge",
        "NoHedge",
    ]


def test_strategy_names():
    assert strategy_name(gh.Periodic()) == "Periodic"
    assert strategy_name(gh.Periodic(every=5)) == "Periodic(every=5)"
    assert strategy_name(gh.WhalleyWilmott(0.5)) == "WhalleyWilmott(risk_aversion=0.5)"


@pytest.mark.parametrize("kind, values", [("interval", [1, 2, 5, 10, 21]), ("band", [0.02, 0.05, 0.1, 0.2, 0.4])])
def test_frontier_monotone(gbm, kind, values):
    spot, times, opt = gbm
    f = gh.frontier(spot, times, opt, vol=0.2, costs=COSTS, kind=kind, values=values, backend="numpy")
    assert list(f.columns) == ["value", "mean_cost", "std_pnl", "es_99", "mean_trades"]
    assert list(f["value"]) == values
    # looser rebalancing (larger value): cheaper, riskier
    assert np.all(np.diff(f["mean_cost"]) < 0)
    assert np.all(np.diff(f["std_pnl"]) > 0)
    assert np.all(np.diff(f["mean_trades"]) < 0)
    assert render_frontier(f).row_count == len(values)


def test_frontier_defaults_and_errors(gbm):
    spot, times, opt = gbm
    f = gh.frontier(spot[:, :200], times, opt, vol=0.2, costs=COSTS, backend="numpy")
    assert list(f["value"]) == [1, 2, 3, 5, 10, 20, 50]
    with pytest.raises(ValueError, match="kind"):
        gh.frontier(spot, times, opt, vol=0.2, costs=COSTS, kind="width")
    with pytest.raises(ValueError, match="whole number"):
        gh.frontier(spot, times, opt, vol=0.2, costs=COSTS, values=[1.5])


def test_load_wti():
    s = gh.load_wti()
    assert isinstance(s, pd.Series) and s.name == "DCOILWTICO" and s.dtype == np.float64
    assert s.index[0] == pd.Timestamp("1986-01-02") and s.index[-1] == pd.Timestamp("2019-01-03")
    assert len(s) == 8321  # 8,611 rows less 290 holidays
    assert s.notna().all() and (s > 0).all() and s.index.is_monotonic_increasing and s.index.is_unique
    assert s.min() == pytest.approx(10.25) and s.max() == pytest.approx(145.31)
    assert s.loc["2008-07-03"] == pytest.approx(145.31)  # the July 2008 peak
    t, p, d = series_arrays(s)
    assert t[0] == 0.0 and t[-1] == pytest.approx((d[-1] - d[0]).days / 365) and p.size == t.size == 8321
    assert 0.2 < realised_vol(p, t) < 0.5


def _csv(tmp_path, text, name="px.csv"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_read_prices_ok(tmp_path):
    f = _csv(tmp_path, "Date,Open,Close\n2024-01-02,1,100\n2024-01-03,1,.\n2024-01-05,1,101.5\n2024-01-08,1,99\n")
    t, p, d = gh.read_prices(f)  # 'Close' found among several columns; '.' dropped
    assert p.tolist() == [100.0, 101.5, 99.0]
    assert t.tolist() == [0.0, 3 / 365, 6 / 365]
    assert [x.date().isoformat() for x in d] == ["2024-01-02", "2024-01-05", "2024-01-08"]
    t2, p2, _ = gh.read_prices(_csv(tmp_path, "when,px\n2024-01-02,5\n2024-01-03,6\n", "b.csv"))  # the only other column
    assert p2.tolist() == [5.0, 6.0] and t2[1] == pytest.approx(1 / 365)
    _, p3, _ = gh.read_prices(_csv(tmp_path, "d,a,b\n2024-01-02,5,7\n2024-01-03,6,8\n", "c.csv"), column="b", date_column="d")
    assert p3.tolist() == [7.0, 8.0]


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("Date,Close\n2024-01-02,100\n2024-01-03,abc\n", {}, r"line 3: price 'abc' in column 'Close' is not a number"),
        ("Date,Close\n2024-01-02,100\n2024-01-03,-1\n", {}, r"line 3: price '-1' .* must be > 0"),
        ("Date,Close\n2024-01-02,100\n2024-01-03,0\n", {}, r"line 3: price '0' .* must be > 0"),
        ("Date,Close\n2024-01-03,100\n2024-01-02,101\n", {}, r"line 3: date '2024-01-02' comes before the previous one"),
        ("Date,Close\n2024-01-02,100\n2024-01-02,101\n", {}, r"line 3: date '2024-01-02' repeats"),
        ("Date,Close\n2024-01-02,100\nnot a date,101\n", {}, r"line 3: date 'not a date' .* is not a date"),
        ("Date,Close\n2024-01-02,100\n", {"column": "Adj"}, r"price column 'Adj' not found; the file has columns \['Date', 'Close'\]"),
        ("Date,A,B\n2024-01-02,1,2\n", {}, r"cannot tell which column holds the prices among \['A', 'B'\]"),
        ("Close\n100\n", {}, "expected a date column and a price column"),
        ("Date,Close\n2024-01-02,100\n", {}, "at least 2 prices"),
    ],
)
def test_read_prices_errors(tmp_path, text, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gh.read_prices(_csv(tmp_path, text), **kwargs)


def test_read_prices_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        gh.read_prices(tmp_path / "nope.csv")


def test_wti_backtest_end_to_end():
    """Write a 3-month at-the-money call on WTI in the 2008 crash and delta-hedge it daily."""
    s = gh.load_wti().loc["2008-09-02":"2008-12-01"]
    t, p, d = series_arrays(s)
    assert t.tolist() == times_from_dates(d).tolist()
    prior = gh.load_wti().loc[:"2008-09-02"].iloc[-61:]
    pt, pp, _ = series_arrays(prior)
    vol = realised_vol(pp, pt)
    opt = gh.Option(float(p[0]), float(t[-1]), quantity=-1.0)
    costs = gh.Costs(proportional=0.0005)
    res = gh.hedge(p, t, opt, vol=vol, strategy=gh.Periodic(), costs=costs, backend="numpy")
    led = res.ledger(0)
    assert len(led) == p.size and np.allclose(led["spot"].to_numpy(), p)
    # ledger identities: the final P&L is the sum of the daily P&L, costs add up, P&L decomposes exactly
    assert float(res.pnl[0]) == pytest.approx(led["step_pnl"].sum(), abs=1e-9)
    assert float(res.pnl[0]) == pytest.approx(led["pnl"].iloc[-1], abs=1e-9)
    assert float(res.costs[0]) == pytest.approx(led["cost"].sum(), abs=1e-9)
    assert float(res.hedging_error[0]) == pytest.approx(float(res.pnl[0] + res.costs[0]), abs=1e-12)
    parts = led[["delta_pnl", "gamma_pnl", "theta_pnl", "vega_pnl", "carry"]].sum(axis=1) - led["cost"] + led["residual"]
    assert np.allclose(parts.to_numpy(), led["step_pnl"].to_numpy(), atol=1e-9)
    assert led["holding"].iloc[-1] == 0.0 and led["trade"].iloc[-1] == pytest.approx(-led["holding"].iloc[-2])
    # unhedged: the premium received less the payoff (rate 0); oil fell from ~110 to ~50, the call expired worthless
    assert float(res.unhedged[0]) == pytest.approx(-float(res.premium[0]) - max(p[-1] - p[0], 0.0), abs=1e-9)
    assert p[-1] < p[0] and float(res.unhedged[0]) > 0
    # short gamma priced at the calm summer's vol, hedged through the crash's far higher realised vol: a loss,
    # and the gamma + theta terms of the attribution carry it
    assert realised_vol(p, t) > 1.5 * vol and float(res.pnl[0]) < 0
    assert float((led["gamma_pnl"] + led["theta_pnl"]).sum()) < 0
    # trades on every date where the holding changed, the final unwind included (the call ends far out of
    # the money, so the last deltas round to nothing)
    assert int(res.n_trades[0]) == int((led["trade"] != 0).sum()) and int(res.n_trades[0]) >= p.size - 3


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed (pip install 'gpu_hedge[plot]')")
def test_plots_written(gbm, tmp_path):
    spot, times, opt = gbm
    res = gh.compare_results(spot[:, :500], times, opt, vol=0.2, costs=COSTS, backend="numpy")
    for target, fn, arg in (
        ("hist.png", gh.plot_pnl_histogram, res),
        ("one.png", gh.plot_pnl_histogram, res["Periodic"]),
        ("front.png", gh.plot_frontier, gh.frontier(spot[:, :500], times, opt, vol=0.2, costs=COSTS, values=[1, 5, 20], backend="numpy")),
        ("ledger.png", gh.plot_ledger, res["Periodic"].ledger(0)),
    ):
        out = fn(arg, tmp_path / target)
        data = (tmp_path / target).read_bytes()
        assert str(out).endswith(target) and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plots_without_matplotlib(gbm, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mpl(name, *args, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    spot, times, opt = gbm
    res = gh.hedge(spot[:, :50], times, opt, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    with pytest.raises(ImportError, match=r"pip install 'gpu_hedge\[plot\]'"):
        gh.plot_pnl_histogram(res, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert math.isfinite(res.summary()["std"])
