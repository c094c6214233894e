"""The hedging commands: ``gpu-hedge backtest`` on a CSV and on the shipped WTI series, and
``gpu-hedge simulate-hedge``, through Typer's CliRunner; ledgers written and checked, clean errors."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge.cli import app

runner = CliRunner()
HAS_MPL = importlib.util.find_spec("matplotlib") is not None


def _number(output: str, label: str) -> float:
    m = re.search(re.escape(label) + r"[^\d\n-]*(-?[\d,]+\.\d+)", output)
    assert m, f"{label!r} not found in output:\n{output}"
    return float(m.group(1).replace(",", ""))


def _flat(output: str) -> str:
    """The output with Rich's line wrapping undone (80 columns under CliRunner)."""
    return " ".join(output.split())


@pytest.fixture
def prices_csv(tmp_path):
    dates = pd.bdate_range("2023-01-02", periods=80)
    rng = np.random.default_rng(5)
    px = 50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, dates.size)))
    f = tmp_path / "px.csv"
    pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Close": px}).to_csv(f, index=False)
    return f, dates, px


def test_backtest_csv_writes_ledger(prices_csv, tmp_path):
    f, dates, px = prices_csv
    out = tmp_path / "ledger.csv"
    args = ["backtest", str(f), "--strike", "50", "--expiry-days", "60", "--start", "2023-01-02", "--vol", "0.3",
            "--proportional", "0.001", "--ledger", str(out), "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2023-01-02 -> 2023-03-03" in _flat(result.output) and "0.3000 (flat, --vol)" in _flat(result.output)
    led = pd.read_csv(out)
    assert led["date"].iloc[0] == "2023-01-02" and led["date"].iloc[-1] == "2023-03-03"
    assert np.allclose(led["spot"], px[: len(led)])
    # the printed result is the engine's, and the ledger adds up to it
    t = (pd.to_datetime(led["date"]) - pd.Timestamp("2023-01-02")).dt.days.to_numpy() / 365
    res = gh.hedge(px[: len(led)], t, gh.Option(50.0, t[-1], quantity=-1.0), vol=0.3, strategy=gh.Periodic(),
                   costs=gh.Costs(proportional=0.001), backend="numpy")  # fmt: skip
    assert _number(result.output, "Hedged P&L (after costs)") == pytest.approx(float(res.pnl[0]), abs=6e-5)
    assert _number(result.output, "Transaction costs") == pytest.approx(float(res.costs[0]), abs=6e-5)
    assert led["step_pnl"].sum() == pytest.approx(float(res.pnl[0]), abs=1e-9)


def test_backtest_vol_series_and_band(prices_csv, tmp_path):
    f, dates, _ = prices_csv
    vf = tmp_path / "vol.csv"
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "vol": np.linspace(0.2, 0.4, dates.size)}).to_csv(vf, index=False)
    args = ["backtest", str(f), "--expiry-days", "30", "--start", "2023-01-10", "--vol-series", str(vf), "--put",
            "--strategy", "band", "--band", "0.05", "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "per date from" in _flat(result.output) and "DeltaBand(width=0.05)" in _flat(result.output) and "put" in _flat(result.output)


def test_backtest_wti_shortcut(tmp_path):
    out = tmp_path / "wti.csv"
    args = ["backtest", "wti", "--expiry-days", "91", "--start", "2008-09-02", "--proportional", "0.0005", "--ledger", str(out),
            "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "WTI" in _flat(result.output) and "2008-09-02 -> 2008-12-02" in _flat(result.output)
    assert "realised over the 60 dates before the start" in _flat(result.output)
    led = pd.read_csv(out)
    wti = gh.load_wti().loc["2008-09-02":"2008-12-02"]
    assert len(led) == len(wti) and np.allclose(led["spot"], wti.to_numpy())
    assert _number(result.output, "Hedged P&L (after costs)") == pytest.approx(led["pnl"].iloc[-1], abs=6e-5)
    # default start: the latest window that fits in the series
    result = runner.invoke(app, ["backtest", "wti", "--expiry-days", "30", "--backend", "numpy"])
    assert result.exit_code == 0, result.output
    assert "2018-12-04 -> 2019-01-03" in _flat(result.output)


@pytest.mark.parametrize(
    "text, args, message",
    [
        ("Date,Close\n2023-01-02,50\n2023-01-03,oops\n", [], "line 3: price 'oops'"),
        ("Date,Close\n2023-01-03,50\n2023-01-02,51\n", [], "dates must be strictly increasing"),
        ("Date,Close\n2023-01-02,50\n2023-01-03,51\n", ["--column", "Last"], "price column 'Last' not found"),
        ("Date,Close\n2023-01-02,50\n2023-01-03,51\n", [], "after the series ends"),
    ],
)
def test_backtest_bad_csv_fails_cleanly(tmp_path, text, args, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    result = runner.invoke(app, ["backtest", str(f), "--expiry-days", "30", "--vol", "0.2", "--start", "2023-01-02", *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in _flat(result.output) and "error" in _flat(result.output) and message in _flat(result.output)


def test_backtest_option_errors(tmp_path):
    for args, message in (
        (["--quotes", "q.csv"], "no such file"),
        (["--vol", "0.2", "--vol-series", "v.csv"], "not both"),
        (["--strategy", "magic"], "--strategy 'magic'"),
        (["--start", "2030-01-01"], "after the last date"),
    ):
        result = runner.invoke(app, ["backtest", "wti", "--expiry-days", "30", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in _flat(result.output) and "Traceback" not in _flat(result.output)
    result = runner.invoke(app, ["backtest", str(tmp_path / "missing.csv"), "--expiry-days", "30"])
    assert result.exit_code == 2 and "no such file" in _flat(result.output)


def test_backtest_marks_and_implied_vols_from_option_quotes(tmp_path):
    wti = gh.load_wti().loc["2008-09-02":"2008-12-02"]
    dates = wti.index
    t = (dates - dates[0]).days.to_numpy() / 365.0
    k = float(wti.iloc[0])
    quotes = np.asarray(gh.price(wti.to_numpy(), k, t[-1] - t, 0.45, 0.01, backend="numpy"))  # priced at 45 % vol
    qf, led = tmp_path / "quotes.csv", tmp_path / "ledger.csv"
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "price": quotes}).to_csv(qf, index=False)
    args = ["backtest", "wti", "--expiry-days", "91", "--start", "2008-09-02", "--rate", "0.01", "--quotes", str(qf),
            "--ledger", str(led), "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "implied from" in _flat(result.output) and "(first 0.4500, median 0.4500)" in _flat(result.output)
    frame = pd.read_csv(led)
    # the book (one written call) is marked at the quotes, not at a model price
    np.testing.assert_allclose(frame["option_value"].iloc[:-1], -quotes[:-1], rtol=1e-12, atol=1e-12)
    assert _number(result.output, "Premium (book value at start)") == pytest.approx(-quotes[0], abs=6e-5)  # written: book value < 0


def test_simulate_hedge_compare_and_ledger(tmp_path):
    out = tmp_path / "path0.csv"
    args = ["simulate-hedge", "--paths", "3000", "--steps", "40", "--vol", "0.2", "--strike", "100", "--expiry", "0.25",
            "--proportional", "0.001", "--seed", "3", "--compare", "--ledger", str(out), "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Hedging strategies on the same paths" in _flat(result.output) and "NoHedge" in _flat(result.output)
    eff = _number(result.output, "effectiveness")
    assert 0.97 < eff <= 1.0
    led = pd.read_csv(out)
    assert len(led) == 41 and led["holding"].iloc[-1] == 0.0
    # the same run in Python gives the printed numbers
    p = gh.simulate(gh.GBM(100.0, 0.2), n_paths=3000, n_steps=40, horizon=0.25, seed=3, backend="numpy")
    res = gh.hedge(p.spot, p.times, gh.Option(100.0, 0.25, quantity=-1.0), vol=0.2, strategy=gh.Periodic(),
                   costs=gh.Costs(proportional=0.001), backend="numpy")  # fmt: skip
    assert _number(result.output, "std P&L") == pytest.approx(float(np.std(res.pnl, ddof=1)), abs=6e-5)
    assert led["pnl"].iloc[-1] == pytest.approx(float(res.pnl[0]), abs=1e-9)


@pytest.mark.parametrize("model", ["heston", "merton"])
def test_simulate_hedge_models_and_frontier(model):
    args = ["simulate-hedge", "--model", model, "--paths", "1000", "--steps", "30", "--strategy", "band", "--frontier",
            "--proportional", "0.001", "--backend", "numpy"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Cost / risk frontier (delta band, shares)" in _flat(result.output)
    assert model.capitalize() in _flat(result.output)


def test_simulate_hedge_errors():
    for args, message in ((["--model", "sabr"], "--model 'sabr'"), (["--strategy", "x"], "--strategy 'x'")):
        result = runner.invoke(app, ["simulate-hedge", "--paths", "10", *args])
        assert result.exit_code == 2 and message in _flat(result.output) and "Traceback" not in _flat(result.output)


@pytest.mark.skipif(HAS_MPL, reason="matplotlib is installed")
def test_plot_without_matplotlib_fails_cleanly(tmp_path):
    result = runner.invoke(app, ["simulate-hedge", "--paths", "10", "--plot", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "gpu_hedge[plot]" in _flat(result.output)


@pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed (pip install 'gpu_hedge[plot]')")
def test_plots_from_cli(tmp_path):
    png = tmp_path / "h.png"
    result = runner.invoke(app, ["simulate-hedge", "--paths", "500", "--steps", "20", "--compare", "--frontier", "--plot", str(png),
                                 "--backend", "numpy"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "h_frontier.png").read_bytes()[:4] == b"\x89PNG"
    bt = tmp_path / "bt.png"
    result = runner.invoke(app, ["backtest", "wti", "--expiry-days", "30", "--plot", str(bt), "--backend", "numpy"])
    assert result.exit_code == 0, result.output
    assert bt.read_bytes()[:4] == b"\x89PNG"
