"""Our implied vols and deltas against third parties' on real quote files (../shared/data; skipped where absent).

What reproduces each vendor (measured medians in the comments, NumPy backend):

- CBOE SPX chain: ACT/365 on the clock to the settlement time (SPX monthlies 09:30 ET, SPXW 16:00 ET),
  r = 5.3 %, one dividend yield per expiry from put-call parity (``implied_forwards``, median of
  ``K + (C - P) e^{rT}`` over the 10 strikes nearest the money). IV from mid: 2.6e-4; BS delta at
  our IV: 1.4e-3 (1.3e-3 at CBOE's own IV). CBOE's delta convention is not quite ours; 2e-3 holds.
- SPXW 2018 vendor file: r = 1.75 %, q = 0, T = (days - 0.625) / 365. IV: 7.4e-4, delta: 5.6e-4.
- Agilent: r = q = 0, T = days / 365. IVBid from bid: 4.9e-4, IVAsk from ask: 6.0e-4. The options
  are American, but at r = q = 0 early exercise is never optimal: American IVs are the European ones.
- CBOE SPY chain (American): r = 5.3 %, parity dividend yields, ``quote_greeks(exercise="american")``
  on 2,679 sensible contracts: IV from mid median 4.0e-3, 95th percentile 2.8e-2 from CBOE's
  (European: 4.0e-3, 3.3e-2); delta median 1.0e-2, p95 6.0e-2 (European: 1.65e-2, 1.1e-1). CBOE's
  own American model (dividends, rates) is not published: the residual is the vendor's model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge._book import implied_forwards, quote_greeks, read_quotes
from gpu_hedge.cli import app

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CBOE_SPX = DATA / "cboe_spx_chain_2023-09-14.csv"
SPXW_EOD = DATA / "spxw_eod_chain_2018-01_2018-02_vendor_greeks.csv"
AGILENT = DATA / "agilent_A_eod_chain_2016-01-05_vendor_greeks.csv"
CBOE_RATE = 0.053


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"real quote file {path.name} not found in {DATA} (the shared data folder sits beside the repository)")
    return path


def _sensible(df: pd.DataFrame, min_days: float = 0.0) -> pd.DataFrame:
    """Positive bid, an uncrossed quote (finite mid), a vendor IV, 0.05 < |vendor delta| < 0.95, at least
    ``min_days`` to expiry."""
    keep = (df["bid"] > 0) & df["mid"].notna() & df["iv"].notna() & df["delta"].abs().between(0.05, 0.95, inclusive="neither")
    keep &= df["expiry_years"] > max(min_days / 365.0, 0.0)
    return df[keep]


def _iv_and_delta(df: pd.DataFrame, price: str, rate, div, bk) -> tuple[np.ndarray, np.ndarray]:
    S, K, T = (df[c].to_numpy() for c in ("underlying_price", "strike", "expiry_years"))
    call = df["call"].to_numpy()
    iv = np.asarray(gh.to_numpy(gh.implied_vol(df[price].to_numpy(), S, K, T, rate, div, call=call, backend=bk)), dtype=float)
    ok = np.isfinite(iv)
    delta = np.full(iv.shape, np.nan)
    g = gh.greeks(S[ok], K[ok], T[ok], iv[ok], np.broadcast_to(rate, S.shape)[ok], np.broadcast_to(div, S.shape)[ok],
                  call=call[ok], greeks=["delta"], backend=bk)  # fmt: skip
    delta[ok] = gh.to_numpy(g["delta"])
    assert ok.mean() > 0.99, f"only {ok.sum()} of {ok.size} IVs solved"
    return iv, delta


def _median_abs(a, b) -> float:
    return float(np.nanmedian(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))


@pytest.fixture(scope="module")
def cboe():
    quotes = read_quotes(_need(CBOE_SPX))
    fwd = implied_forwards(quotes, rate=CBOE_RATE)
    keys = ["underlying", "quote_date", "expiry"]
    return quotes.merge(fwd[[*keys, "div"]], on=keys, how="left")


def test_cboe_file_reads_as_documented(cboe):
    assert len(cboe) == 19_920 and cboe["expiry"].nunique() == 59  # 53 dates; SPX AM and SPXW PM share 6
    assert cboe["underlying_price"].iloc[0] == pytest.approx(4505.1001)
    assert set(cboe["root"]) == {"SPX", "SPXW"}
    assert (cboe.loc[cboe["root"] == "SPX", "expiry"].dt.hour == 9).all()


def test_cboe_iv_and_delta_agree_with_cboe(cboe, bk):
    sel = _sensible(cboe, min_days=3)
    assert len(sel) > 9000
    iv, delta = _iv_and_delta(sel, "mid", CBOE_RATE, sel["div"].to_numpy(), bk)
    assert _median_abs(iv, sel["iv"]) <= 2e-3  # measured 2.6e-4
    assert _median_abs(delta, sel["delta"]) <= 2e-3  # measured 1.4e-3


def test_cboe_implied_dividend_yields_are_plausible(cboe):
    # S&P 500 dividend yield in 2023 was about 1.5 %; parity forwards past a month should say so.
    fwd = implied_forwards(read_quotes(CBOE_SPX), rate=CBOE_RATE)
    longer = fwd[fwd["expiry_years"] > 0.25]
    assert longer["div"].between(0.0, 0.025).all()


def test_spxw_eod_iv_and_delta_agree_with_vendor_contract_by_contract(bk):
    quotes = read_quotes(_need(SPXW_EOD))
    r, q = quotes.attrs["rate"], quotes.attrs["div"]
    assert (r, q) == (0.0175, 0.0)
    sel = _sensible(quotes)
    assert len(sel) > 4000
    iv, delta = _iv_and_delta(sel, "mid", r, q, bk)
    assert _median_abs(iv, sel["iv"]) <= 1e-3  # measured 7.4e-4
    assert _median_abs(delta, sel["delta"]) <= 1e-3  # measured 5.6e-4


def test_agilent_bid_and_ask_ivs_agree_with_vendor(bk):
    quotes = read_quotes(_need(AGILENT))
    r, q = quotes.attrs["rate"], quotes.attrs["div"]
    sel = _sensible(quotes)
    for side, col in (("bid", "iv_bid"), ("ask", "iv_ask")):
        rows = sel[sel[col].notna()]
        iv, _ = _iv_and_delta(rows, side, r, q, bk)
        assert _median_abs(iv, rows[col]) <= 1e-3, side  # measured 4.9e-4 (bid), 6.0e-4 (ask)


SPY = DATA / "cboe_spy_chain_2023-09-14.csv"


def test_spy_american_ivs_and_deltas_are_closer_to_cboe_than_european_ones():
    # NumPy only: about 2,700 American IVs (mid, bid and ask) take ~15 s; JAX is covered elsewhere
    quotes = read_quotes(_need(SPY))
    assert quotes.attrs["exercise"] == "american"
    sel = _sensible(quotes, min_days=3).reset_index(drop=True)
    assert len(sel) > 2500
    res = {}
    for ex in ("european", "american"):
        table, _ = quote_greeks(sel, rate=CBOE_RATE, div="implied", greeks=("delta",), backend="numpy", exercise=ex)
        assert table["calc_iv"].notna().mean() > 0.99
        d_iv, d_delta = (table["calc_iv"] - table["iv"]).abs(), (table["calc_delta"] - table["delta"]).abs()
        res[ex] = (d_iv.median(), d_iv.quantile(0.95), d_delta.median(), d_delta.quantile(0.95))
    am, eu = res["american"], res["european"]
    assert am[0] <= 5e-3 and am[1] <= 3.2e-2  # measured 4.0e-3, 2.8e-2
    assert am[2] <= 1.2e-2 and am[3] <= 7e-2  # measured 1.0e-2, 6.0e-2
    assert am[1] < eu[1] and am[2] < 0.7 * eu[2] and am[3] < 0.7 * eu[3]


def test_agilent_american_ivs_equal_european_at_zero_rates():
    quotes = read_quotes(_need(AGILENT))
    assert quotes.attrs["exercise"] == "american" and (quotes.attrs["rate"], quotes.attrs["div"]) == (0.0, 0.0)
    eu, _ = quote_greeks(quotes, greeks=("delta",), backend="numpy", exercise="european")
    am, _ = quote_greeks(quotes, greeks=("delta",), backend="numpy")  # inferred: American
    assert (am["exercise"] == "american").all()
    pd.testing.assert_series_equal(am["calc_iv_status"], eu["calc_iv_status"])
    np.testing.assert_allclose(am["calc_iv"], eu["calc_iv"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(am["calc_delta"], eu["calc_delta"], rtol=1e-6, atol=1e-9)


def test_vendor_theta_and_vega_are_converted_to_our_units():
    for path in (SPXW_EOD, AGILENT):
        quotes = read_quotes(_need(path))
        sel = _sensible(quotes)
        S, K, T, vol = (sel[c].to_numpy() for c in ("underlying_price", "strike", "expiry_years", "iv"))
        r, q = quotes.attrs["rate"], quotes.attrs["div"]
        g = gh.greeks(S, K, T, vol, r, q, call=sel["call"].to_numpy(), greeks=["theta", "vega"], backend="numpy")
        for name in ("theta", "vega"):
            rel = np.abs(gh.to_numpy(g[name]) - sel[name].to_numpy()) / np.abs(sel[name].to_numpy())
            assert np.median(rel) < 0.02, (path.name, name)


def test_cli_quotes_on_the_cboe_chain(tmp_path):
    out = tmp_path / "spx.parquet"
    result = CliRunner().invoke(app, ["quotes", str(_need(CBOE_SPX)), "--out", str(out), "--backend", "numpy"])
    assert result.exit_code == 0, result.output
    assert "19,920" in result.output and "skipped: expired" in result.output
    table = pd.read_parquet(out)
    assert len(table) == 19_920 and (table["rate"] == CBOE_RATE).all()
    sel = _sensible(table, min_days=3)
    assert _median_abs(sel["calc_iv"], sel["iv"]) <= 2e-3
    assert _median_abs(sel["calc_delta"], sel["delta"]) <= 2e-3
