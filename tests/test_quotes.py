"""Quote readers, implied forwards, per-contract IVs and Greeks, and the ``quotes`` command, on small synthetic files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge._book import QUOTE_COLUMNS, implied_forwards, quote_greeks, read_cboe_chain, read_quotes, read_vendor_eod
from gpu_hedge.cli import app

runner = CliRunner()
YEAR_S = 365 * 86400

# --- synthetic files, one per layout -------------------------------------------------------------

SPOT, RATE, DIV, VOL = 4500.0, 0.05, 0.015, 0.18
QUOTE_TIME = pd.Timestamp("2023-09-14 16:31", tz="America/New_York")
# (expiration column, root, expiry with settlement time)
CBOE_EXPIRIES = (
    ("Fri Oct 20 2023", "SPX", pd.Timestamp("2023-10-20 09:30", tz="America/New_York")),
    ("Fri Oct 20 2023", "SPXW", pd.Timestamp("2023-10-20 16:00", tz="America/New_York")),
    ("Fri Dec 15 2023", "SPXW", pd.Timestamp("2023-12-15 16:00", tz="America/New_York")),
)
CBOE_STRIKES = (4300.0, 4400.0, 4450.0, 4500.0, 4550.0, 4600.0, 4700.0)


def _occ(root: str, expiry: pd.Timestamp, call: bool, strike: float) -> str:
    return f"{root}{expiry:%y%m%d}{'C' if call else 'P'}{round(strike * 1000):08d}"


def _bsm_price(strike, T, call, vol=VOL):
    return float(gh.to_numpy(gh.price(SPOT, strike, T, vol, RATE, DIV, call=call, backend="numpy")))


def write_cboe(path, *, header_line=None) -> dict:
    """A CBOE-layout file whose mids are exact BSM prices (spread 0.2 around them); returns the truth."""
    lines = [
        "",
        f"Standard & Poors 500 Index,Last: {SPOT},Change:  37.6601",
        '"Date: September 14, 2023 at 4:31 PM EDT",Bid: 4483.25,Ask: 4526.27,Size: 1*1,Volume: 0',
        header_line
        or "Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike,"
        "Puts,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest",
    ]
    for label, root, expiry in CBOE_EXPIRIES:
        T = (expiry - QUOTE_TIME).total_seconds() / YEAR_S
        for k in CBOE_STRIKES:
            side = []
            for call in (True, False):
                p = _bsm_price(k, T, call)
                iv = 0 if k == 4300.0 else VOL  # IV 0 = "not computed"
                delta = 0.55 if call else -0.45
                side.append(f"{_occ(root, expiry, call, k)},1.5,0.1,{p - 0.1:.6f},{p + 0.1:.6f},12,{iv},{delta},0.0021,345")
            lines.append(f"{label},{side[0]},{k:.2f},{side[1]}")
    path.write_text("\n".join(lines) + "\n")
    return {"rows": 2 * len(CBOE_EXPIRIES) * len(CBOE_STRIKES)}


SPXW_HEADER = (
    "\ufeffunderlying,underlying_last, exchange,optionroot,optionext,type,expiration,quotedate,strike,last,bid,ask,"
    "volume,openinterest,impliedvol,delta,gamma,theta,vega,optionalias"
)


def write_spxw(path, header=SPXW_HEADER) -> None:
    rows = [
        "SPXW,2695.79,W,SPXW180131C02700000,,call,01/31/2018,01/02/2018,2700,18.4,18,18.6,108,5879,0.0634,0.4913,0.0084,-139.5025,299.5682,SPXW180131C02700000",
        "SPXW,2695.79,W,SPXW180131P02700000,,put,01/31/2018,01/02/2018,2700,23,22.5,23.3,165,173,0.074,-0.5063,0.0072,-124.5629,299.6013,SPXW180131P02700000",
        # blanks after commas, as some vendor exports have them
        "SPXW, 2695.79, W, SPXW180228P02500000,, put, 02/28/2018, 01/02/2018, 2500, 0, 0, 0.4, 0, 0, 0.12, -0.02, 0.0003, "
        "-20.1, 40.2, SPXW180228P02500000",
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


AGILENT_HEADER = (
    "UnderlyingSymbol,UnderlyingPrice,Flags,OptionSymbol,Type,Expiration,DataDate,Strike,Last,Bid,Ask,Volume,"
    "OpenInterest,T1OpenInterest,IVMean,IVBid,IVAsk,Delta,Gamma,Theta,Vega,AKA"
)


def write_agilent(path, header=AGILENT_HEADER) -> None:
    rows = [
        "A,40.55,*,A160115C00040000,call,01/15/2016,01/05/2016,40,1.13,1.03,1.15,29,30812,30793,0.3053,0.281,0.3296,0.6195,0.1924,-0.0404,0.0247,A160115C00040000",
        "A,40.55,*,A160115P00020000,put,01/15/2016,01/05/2016,20,0,0,0.35,0,0,0,2.5042,0,2.8834,-0.0247,0.0036,-0.0503,0.0038,A160115P00020000",
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


@pytest.fixture
def cboe_file(tmp_path):
    p = tmp_path / "chain.csv"
    write_cboe(p)
    return p


# --- readers --------------------------------------------------------------------------------------


def test_cboe_splits_side_by_side_calls_and_puts_into_rows(cboe_file):
    df = read_cboe_chain(cboe_file)
    assert tuple(df.columns) == QUOTE_COLUMNS
    assert len(df) == 2 * len(CBOE_EXPIRIES) * len(CBOE_STRIKES)
    assert df["call"].sum() == len(df) // 2
    assert (df["symbol"].str[-9] == np.where(df["call"], "C", "P")).all()
    row = df[(df["root"] == "SPXW") & ~df["call"] & (df["strike"] == 4450.0)].iloc[0]
    assert row["symbol"] == "SPXW231020P04450000" and row["delta"] == -0.45
    assert row["mid"] == pytest.approx((row["bid"] + row["ask"]) / 2)
    assert row["volume"] == 12 and row["open_interest"] == 345 and row["last"] == 1.5
    assert (df["underlying_price"] == SPOT).all() and (df["underlying"] == "SPX").all()


def test_cboe_settlement_times_and_act365_expiry_years(cboe_file):
    df = read_cboe_chain(cboe_file)
    assert (df["quote_time"] == QUOTE_TIME).all()
    assert (df["quote_date"] == pd.Timestamp("2023-09-14")).all()
    spx = df[df["root"] == "SPX"]
    assert (spx["expiry"] == pd.Timestamp("2023-10-20 09:30", tz="America/New_York")).all()
    # 14 Sep 16:31 -> 20 Oct 09:30 is 35 days 16 h 59 min; -> 20 Oct 16:00 is 35 days 23 h 29 min.
    assert spx["expiry_years"].iloc[0] == pytest.approx((35 * 1440 + 16 * 60 + 59) / (365 * 1440), rel=1e-14)
    pm = df[(df["root"] == "SPXW") & (df["expiry"].dt.month == 10)]
    assert pm["expiry"].iloc[0].hour == 16
    assert pm["expiry_years"].iloc[0] == pytest.approx((35 * 1440 + 23 * 60 + 29) / (365 * 1440), rel=1e-14)


def test_cboe_zero_iv_is_nan_and_attrs_hold_conventions(cboe_file):
    df = read_cboe_chain(cboe_file)
    assert df.loc[df["strike"] == 4300.0, "iv"].isna().all()
    assert (df.loc[df["strike"] != 4300.0, "iv"] == VOL).all()
    assert df[["theta", "vega", "iv_bid", "iv_ask"]].isna().all().all()
    assert df.attrs["layout"] == "cboe" and df.attrs["rate"] == pytest.approx(0.053) and df.attrs["div"] == "implied"
    assert "365" in df.attrs["expiry_rule"]


def test_expired_contracts_get_zero_expiry_years(tmp_path):
    p = tmp_path / "chain.csv"
    p.write_text(
        '\nX,Last: 100,Change: 0\n"Date: September 14, 2023 at 4:31 PM EDT",Bid: 1\n'
        "Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike,"
        "Puts,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest\n"
        "Thu Sep 14 2023,SPXW230914C00100000,1,0,1,1.2,0,0,0,0,0,100.00,SPXW230914P00100000,0,0,0,0,0,0,0,0,0\n"
    )
    df = read_cboe_chain(p)
    assert (df["expiry_years"] == 0.0).all()
    put = df[~df["call"]].iloc[0]
    assert math.isnan(put["mid"])  # no ask: no mid


def test_spxw_eod_reader_keeps_units_and_uses_vendor_time_rule(tmp_path):
    p = tmp_path / "spxw.csv"
    write_spxw(p)
    df = read_vendor_eod(p)
    assert tuple(df.columns) == QUOTE_COLUMNS and len(df) == 3
    assert df.attrs["layout"] == "spxw-eod" and df.attrs["rate"] == 0.0175 and df.attrs["div"] == 0.0
    assert df["expiry_years"].iloc[0] == pytest.approx((29 - 0.625) / 365, rel=1e-14)
    assert df["expiry_years"].iloc[2] == pytest.approx((57 - 0.625) / 365, rel=1e-14)
    assert df["theta"].iloc[0] == -139.5025 and df["vega"].iloc[0] == 299.5682  # already per year / per 1.00
    assert list(df["call"]) == [True, False, False] and df["iv"].iloc[1] == 0.074
    assert (df["underlying"] == "SPX").all() and (df["root"] == "SPXW").all()
    assert df["expiry"].iloc[0] == pd.Timestamp("2018-01-31 16:00", tz="America/New_York")
    assert df["quote_time"].isna().all() and (df["quote_date"] == pd.Timestamp("2018-01-02")).all()
    assert df["mid"].iloc[2] == pytest.approx(0.2) and df["bid"].iloc[2] == 0.0


def test_agilent_reader_converts_theta_per_day_and_vega_per_point(tmp_path):
    p = tmp_path / "a.csv"
    write_agilent(p)
    df = read_quotes(p)
    assert df.attrs["layout"] == "agilent" and df.attrs["rate"] == 0.0 and df.attrs["div"] == 0.0
    c = df.iloc[0]
    assert c["theta"] == pytest.approx(-0.0404 * 365) and c["vega"] == pytest.approx(0.0247 * 100)
    assert (c["iv"], c["iv_bid"], c["iv_ask"]) == (0.3053, 0.281, 0.3296)
    assert c["expiry_years"] == pytest.approx(10 / 365, rel=1e-14)
    assert math.isnan(df["iv_bid"].iloc[1])  # printed 0: not computed


@pytest.mark.parametrize(
    ("writer", "header", "gone"),
    [
        (write_spxw, SPXW_HEADER.replace(",impliedvol", ",iv_x").replace(",strike", ",k"), ["strike", "impliedvol"]),
        (write_agilent, AGILENT_HEADER.replace("IVBid", "IVB").replace(",Vega", ",V"), ["IVBid", "Vega"]),
    ],
)
def test_vendor_files_missing_columns_raise_naming_file_and_columns(tmp_path, writer, header, gone):
    p = tmp_path / "bad.csv"
    writer(p, header=header)
    layout = "spxw-eod" if writer is write_spxw else "agilent"
    with pytest.raises(ValueError) as err:
        read_quotes(p, layout=layout)
    msg = str(err.value)
    assert str(p) in msg and all(g in msg for g in gone)


def test_cboe_missing_columns_raise(tmp_path):
    p = tmp_path / "bad.csv"
    write_cboe(p, header_line="Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike")
    with pytest.raises(ValueError, match=r"missing column\(s\).*Puts"):
        read_quotes(p)


def test_unrecognised_layout_raises(tmp_path):
    p = tmp_path / "other.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unrecognised quote file layout"):
        read_quotes(p)
    with pytest.raises(ValueError, match="unknown layout"):
        read_quotes(p, layout="bloomberg")
    with pytest.raises(ValueError, match="no such file"):
        read_quotes(tmp_path / "absent.csv")


# --- implied forwards ----------------------------------------------------------------------------


def _parity_chain(S=100.0, r=0.04, q=0.02, T=0.75, noise=0.0, seed=0) -> pd.DataFrame:
    strikes = np.arange(70.0, 131.0, 5.0)
    rng = np.random.default_rng(seed)
    rows = []
    for call in (True, False):
        vol = 0.25 + 0.1 * ((strikes - S) / S) ** 2  # a smile: parity must not care
        p = gh.to_numpy(gh.price(S, strikes, T, vol, r, q, call=call, backend="numpy")) + noise * rng.standard_normal(strikes.size)
        rows.append(pd.DataFrame({"call": call, "strike": strikes, "mid": p, "bid": p - 0.05}))
    df = pd.concat(rows, ignore_index=True)
    return df.assign(underlying="X", quote_date=pd.Timestamp("2024-01-02"), expiry=pd.Timestamp("2024-10-01"), expiry_years=T,
                     underlying_price=S)  # fmt: skip


def test_implied_forwards_recovers_forward_and_dividend_yield_given_rate():
    S, r, q, T = 100.0, 0.04, 0.02, 0.75
    f = implied_forwards(_parity_chain(S, r, q, T), rate=r)
    row = f.iloc[0]
    assert row["forward"] == pytest.approx(S * math.exp((r - q) * T), rel=1e-12)
    assert row["div"] == pytest.approx(q, abs=1e-12)
    assert row["discount"] == pytest.approx(math.exp(-r * T), rel=1e-15) and row["n_strikes"] == 10
    assert row["fit_rms"] < 1e-10


def test_implied_forwards_recovers_rate_by_least_squares_without_one():
    S, r, q, T = 100.0, 0.04, 0.02, 0.75
    row = implied_forwards(_parity_chain(S, r, q, T), rate=None).iloc[0]
    assert row["rate"] == pytest.approx(r, abs=1e-10) and row["div"] == pytest.approx(q, abs=1e-10)
    assert row["forward"] == pytest.approx(S * math.exp((r - q) * T), rel=1e-12)


def test_implied_forwards_median_shrugs_off_one_bad_quote():
    S, r, q, T = 100.0, 0.04, 0.02, 0.75
    chain = _parity_chain(S, r, q, T)
    chain.loc[(chain["strike"] == 100.0) & chain["call"], "mid"] += 0.5  # one stale call
    row = implied_forwards(chain, rate=r).iloc[0]
    assert row["div"] == pytest.approx(q, abs=1e-12)


def test_implied_forwards_ignores_strikes_without_two_bids_and_reports_empty_groups():
    chain = _parity_chain()
    chain["bid"] = np.where(chain["strike"] == 100.0, 0.0, chain["bid"])
    chain = pd.concat([chain, chain.assign(expiry=pd.Timestamp("2024-01-02 16:00"), expiry_years=0.0)], ignore_index=True)
    f = implied_forwards(chain, rate=0.04)
    assert list(f["n_strikes"]) == [0, 10]
    assert f["forward"].isna().iloc[0] and f["div"].iloc[1] == pytest.approx(0.02, abs=1e-12)
    with pytest.raises(ValueError, match="missing column"):
        implied_forwards(chain.drop(columns="mid"), rate=0.04)


def test_cboe_forwards_from_reader_recover_the_dividend_yield(cboe_file):
    # Synthetic mids are exact BSM prices with DIV, so per-expiry q comes back to within the quote rounding.
    f = implied_forwards(read_cboe_chain(cboe_file), rate=RATE)
    assert len(f) == len(CBOE_EXPIRIES)
    np.testing.assert_allclose(f["div"], DIV, atol=1e-7)


# --- per-contract IVs and Greeks, and the CLI -----------------------------------------------------


def test_quote_greeks_recovers_the_pricing_vol_and_matches_greeks(cboe_file, bk):
    quotes = read_cboe_chain(cboe_file)
    table, summary = quote_greeks(quotes, rate=RATE, div="implied", backend=bk)
    solved = table["calc_iv"].notna()
    assert summary.rows == len(quotes) and summary.solved["mid"] == int(solved.sum()) == len(quotes)
    np.testing.assert_allclose(table["calc_iv"], VOL, atol=1e-7)
    np.testing.assert_allclose(table["div"], DIV, atol=1e-7)
    want = gh.greeks(table["underlying_price"].to_numpy(), table["strike"].to_numpy(), table["expiry_years"].to_numpy(), VOL, RATE, DIV,
                     call=table["call"].to_numpy(), greeks=["delta", "vega", "theta"], backend="numpy")  # fmt: skip
    for name in ("delta", "vega", "theta"):
        np.testing.assert_allclose(table[f"calc_{name}"], gh.to_numpy(want[name]), rtol=1e-5, atol=1e-6)
    assert (table["calc_iv_bid"] < table["calc_iv"]).all() and (table["calc_iv"] < table["calc_iv_ask"]).all()
    assert (table["calc_iv_status"] == "ok").all()


def test_quote_greeks_uses_vendor_conventions_by_default(tmp_path):
    p = tmp_path / "spxw.csv"
    write_spxw(p)
    table, summary = quote_greeks(read_quotes(p), backend="numpy")
    assert (table["rate"] == 0.0175).all() and (table["div"] == 0.0).all()
    assert summary.solved["bid"] == 2 and summary.solved["mid"] == 3
    assert set(table["calc_iv_status"]) <= {"ok", "below_intrinsic", "above_max", "not_identifiable", "skipped: no price"}


@pytest.mark.parametrize("ext", ["parquet", "csv"])
def test_cli_quotes_writes_table_and_prints_summary(cboe_file, tmp_path, ext):
    out = tmp_path / f"out.{ext}"
    result = runner.invoke(app, ["quotes", str(cboe_file), "--out", str(out), "--backend", "numpy", "--rate", str(RATE)])
    assert result.exit_code == 0, result.output
    assert "Implied vols" in result.output and "42" in result.output and "cboe" in result.output
    back = pd.read_parquet(out) if ext == "parquet" else pd.read_csv(out)
    assert len(back) == 42 and {"calc_iv", "calc_delta", "calc_theta", "iv", "symbol"} <= set(back.columns)
    np.testing.assert_allclose(back["calc_iv"], VOL, atol=1e-7)


def test_cli_quotes_all_greeks_and_fixed_div(cboe_file, tmp_path):
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["quotes", str(cboe_file), "--out", str(out), "--backend", "numpy", "--div", "0.0", "--all-greeks"])
    assert result.exit_code == 0, result.output
    back = pd.read_parquet(out)
    assert {f"calc_{g}" for g in gh.GREEK_NAMES} <= set(back.columns) and (back["div"] == 0.0).all()


@pytest.mark.parametrize(
    "args",
    [["--out", "x.txt"], ["--layout", "bloomberg"], ["--backend", "tpu"], ["--div", "lots"], ["--exercise", "bermudan"]],
)
def test_cli_quotes_fails_cleanly(cboe_file, args):
    result = runner.invoke(app, ["quotes", str(cboe_file), *args])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_non_numeric_quote_raises_naming_file_and_column(tmp_path):
    p = tmp_path / "a.csv"
    write_agilent(p)
    p.write_text(p.read_text().replace(",1.03,", ",1.03x,"))
    with pytest.raises(ValueError, match=r"a\.csv: column 'bid'"):
        read_quotes(p)


# --- exercise style: inferred from the root, or given --------------------------------------------


def test_exercise_is_inferred_from_the_option_root(cboe_file, tmp_path):
    from gpu_hedge._book.quotes import american_rows

    frame = pd.DataFrame({"root": ["SPX", "SPXW", "SPY", "A", None, "spy "], "underlying": ["SPX", "SPX", "SPY", "A", "SPX", "SPY"]})
    assert american_rows(frame).tolist() == [False, False, True, True, False, True]
    assert read_cboe_chain(cboe_file).attrs["exercise"] == "european"  # SPX and SPXW roots
    p = tmp_path / "a.csv"
    write_agilent(p)
    assert read_quotes(p).attrs["exercise"] == "american"


def test_quote_greeks_inverts_american_prices(cboe_file):
    # the synthetic chain's mids replaced by American prices at VOL: exercise="american" recovers VOL and
    # gives American Greeks; "infer" (SPX roots) treats them as European and so finds other vols.
    # NumPy only: the American kernels' JAX compilations are covered by tests/test_american.py.
    quotes = read_cboe_chain(cboe_file)
    S, K, T = (quotes[c].to_numpy() for c in ("underlying_price", "strike", "expiry_years"))
    call = quotes["call"].to_numpy()
    amer = np.asarray(gh.price(S, K, T, VOL, RATE, DIV, call=call, exercise="american", backend="numpy"))
    quotes = quotes.assign(mid=amer, bid=amer - 0.1, ask=amer + 0.1)
    table, _ = quote_greeks(quotes, rate=RATE, div=DIV, greeks=("delta", "gamma", "speed"), backend="numpy", exercise="american")
    assert (table["exercise"] == "american").all() and table.attrs["exercise_used"] == "american"
    ok = table["calc_iv_status"] == "ok"
    assert ok.mean() > 0.9
    np.testing.assert_allclose(table.loc[ok, "calc_iv"], VOL, atol=1e-7)
    want = gh.greeks(S, K, T, VOL, RATE, DIV, call=call, greeks=("delta", "gamma"), exercise="american", backend="numpy")
    for name in ("delta", "gamma"):
        np.testing.assert_allclose(table.loc[ok, f"calc_{name}"], np.asarray(want[name])[ok], rtol=1e-5, atol=1e-8)
    assert table["calc_speed"].isna().all()  # a third-order Greek American options do not have here
    euro, _ = quote_greeks(quotes, rate=RATE, div=DIV, greeks=("delta",), backend="numpy")
    assert (euro["exercise"] == "european").all() and euro.attrs["exercise_used"] == "european"
    early = (~call) & (amer > np.asarray(gh.price(S, K, T, VOL, RATE, DIV, call=call, backend="numpy")) + 1e-6)
    assert early.any() and (euro.loc[early, "calc_iv"] > VOL + 1e-6).all()  # a premium read as vol
    with pytest.raises(ValueError, match="exercise = 'bermudan'"):
        quote_greeks(quotes, exercise="bermudan", backend="numpy")


def test_cli_quotes_exercise_option(cboe_file, tmp_path):
    out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["quotes", str(cboe_file), "--out", str(out), "--backend", "numpy", "--rate", str(RATE), "--exercise",
                                 "american"], env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "exercise american" in result.output
    assert (pd.read_parquet(out)["exercise"] == "american").all()
