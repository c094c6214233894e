"""Cash dividends in the risk job (issue 16, point 4: "the book schema and market data take a
dividend schedule per underlying"): the dividend table through ``gh.risk`` (positions, sums,
ladder), ``ResidentBook``, Dask partitions, resume and ``gpu-hedge risk --dividends``.

References: Hull's known value (escrowed model, no vol adjustment) and the escrowed closed form
written here with SciPy; otherwise the public pricing functions, ``gh.greeks(..., dividends=)``
row by row and ``gh.price(..., dividends=)`` at each scenario's shifted inputs. Rows without a
dividend before expiry must be bit for bit what a run without the table gives.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge._book import BookError, ResidentBook

GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")
MARKET = pd.DataFrame(
    {
        "underlying": ["AAA", "BBB", "FUT"],
        "spot": [100.0, 60.0, 102.0],
        "vol": [0.25, 0.30, 0.18],
        "rate": [0.04, 0.05, 0.03],
        "div": [0.0, 0.01, 0.0],
    }
)
# AAA pays twice, BBB once (late), FUT's entry is ignored (black76: a futures price), ZZZ is not in the market
DIVIDENDS = pd.DataFrame(
    {
        "underlying": ["AAA", "AAA", "BBB", "FUT", "ZZZ"],
        "ex_years": [0.15, 0.65, 0.9, 0.2, 0.1],
        "amount": [1.2, 1.2, 0.8, 5.0, 3.0],
    }
)
SCHEDULES = {"AAA": [(0.15, 1.2), (0.65, 1.2)], "BBB": [(0.9, 0.8)], "FUT": []}
SCEN = "spot=-0.1;0.1,vol=-0.05;0.05"


def make_book(n: int, seed: int = 1, american: bool = True, futures: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    und = rng.choice(["AAA", "BBB", "FUT"] if futures else ["AAA", "BBB"], n)
    spot = MARKET.set_index("underlying")["spot"].reindex(und).to_numpy()
    return pd.DataFrame(
        {
            "position_id": [f"D{i:03d}" for i in range(n)],
            "underlying": und,
            "option_type": rng.choice(["C", "P"], n),
            "strike": np.round(spot * np.exp(rng.normal(0.0, 0.15, n)), 2),
            "expiry_years": rng.uniform(0.05, 1.2, n),  # some expire before AAA's first dividend, most BBB rows before its one
            "quantity": rng.integers(-10, 11, n).astype(float),
            "model": np.where(und == "FUT", "black76", "bsm"),
            "exercise": rng.choice(["american", "european"], n) if american else "european",
        }
    )


def _reference(book: pd.DataFrame, bk: str) -> dict[str, np.ndarray]:
    """Per-unit Greeks of every row from gh.greeks, with the row's underlying's schedule (bsm rows)."""
    m = MARKET.set_index("underlying").loc[book["underlying"]]
    out = {k: np.empty(len(book)) for k in GREEKS}
    for model in ("bsm", "black76"):
        rows = np.flatnonzero(book["model"].to_numpy() == model)
        if not rows.size:
            continue
        b, mm = book.iloc[rows], m.iloc[rows]
        kw = {"dividends": [SCHEDULES[u] for u in b["underlying"]]} if model == "bsm" else {}
        g = gh.greeks(mm["spot"].to_numpy(), b["strike"].to_numpy(), b["expiry_years"].to_numpy(), mm["vol"].to_numpy(),
                      mm["rate"].to_numpy(), mm["div"].to_numpy(), call=b["option_type"].to_numpy() == "C", model=model,
                      exercise=b["exercise"].to_numpy(), greeks=GREEKS, backend=bk, **kw)  # fmt: skip
        for k in GREEKS:
            out[k][rows] = np.asarray(g[k])
    return out


def _compiling(bk: str) -> bool:
    return "jit" in gh.get_backend(bk).capabilities


def test_positions_are_gh_greeks_with_the_underlyings_dividends(bk):
    # on a compiling backend: European rows and the dividend-paying American rows only (no ALO compile)
    book = make_book(60, american=not _compiling(bk))
    if _compiling(bk):
        book.loc[book["underlying"] == "AAA", "exercise"] = np.resize(["american", "european"], int((book["underlying"] == "AAA").sum()))
        book.loc[book["underlying"] == "AAA", "expiry_years"] = np.maximum(book.loc[book["underlying"] == "AAA", "expiry_years"], 0.2)
    res = gh.risk(book, MARKET, dividends=DIVIDENDS, backend=bk)
    ref = _reference(book, bk)
    pos = res.positions
    for k in GREEKS:
        np.testing.assert_allclose(pos[k].to_numpy(), ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
    w = book["quantity"].to_numpy() * 100.0
    by = res.by_underlying
    for u in ("AAA", "BBB"):
        sel = (book["underlying"] == u).to_numpy()
        np.testing.assert_allclose(by.loc[u, "delta"], np.sum(ref["delta"][sel] * w[sel]), rtol=1e-10)
    assert res.summary["dividends"] == {"underlyings": 3, "vol_adjust": "beneder_vorst"}
    # dividends make a difference: AAA rows that live past 0.15 are not the no-dividend values
    # (a compiling backend's book is European but for dividend-paying rows: no ALO compile for the plain run)
    plain = gh.risk(book.assign(exercise="european") if _compiling(bk) else book, MARKET, backend=bk).positions
    aaa = ((book["underlying"] == "AAA") & (book["expiry_years"] > 0.15)).to_numpy()
    same = (book["exercise"] == "european").to_numpy() | (not _compiling(bk))
    assert np.all(np.abs(pos["price"].to_numpy()[aaa & same] - plain["price"].to_numpy()[aaa & same]) > 1e-3)
    # rows without a dividend before expiry, and black76 rows, are bit for bit the run without the table
    quiet = ~aaa & ~((book["underlying"] == "BBB") & (book["expiry_years"] > 0.9)).to_numpy()
    for k in GREEKS:
        np.testing.assert_array_equal(pos[k].to_numpy()[quiet], plain[k].to_numpy()[quiet], err_msg=k)


def test_hull_known_value_through_the_book():
    # Hull: S=40, K=40, r=9 %, vol 30 %, 180 days (Actual/360), 0.50 at days 60 and 150: 3.67 (escrowed, no adjustment)
    book = pd.DataFrame({"position_id": ["h"], "underlying": ["XYZ"], "option_type": ["C"], "strike": [40.0], "expiry_years": [0.5],
                         "quantity": [1.0]})  # fmt: skip
    market = pd.DataFrame({"underlying": ["XYZ"], "spot": [40.0], "vol": [0.3], "rate": [0.09], "div": [0.0]})
    divs = pd.DataFrame({"underlying": ["XYZ", "XYZ"], "ex_years": [60 / 360, 150 / 360], "amount": [0.5, 0.5]})
    price = float(gh.risk(book, market, dividends=divs, vol_adjust="none", backend="numpy").positions["price"].iloc[0])
    s = 40.0 - 0.5 * math.exp(-0.09 * 60 / 360) - 0.5 * math.exp(-0.09 * 150 / 360)
    d1 = (math.log(s / 40.0) + (0.09 + 0.045) * 0.5) / (0.3 * math.sqrt(0.5))
    closed = s * norm.cdf(d1) - 40.0 * math.exp(-0.045) * norm.cdf(d1 - 0.3 * math.sqrt(0.5))
    assert round(price, 2) == 3.67
    assert price == pytest.approx(closed, rel=1e-12)


def test_ex_dates_are_act365_years_and_paid_or_zero_dividends_count_for_nothing():
    book = make_book(40, seed=2)
    day0 = pd.Timestamp("2026-03-02")
    dated = pd.DataFrame({"underlying": ["AAA", "AAA", "BBB", "AAA", "BBB"],
                          "ex_date": [day0 + pd.Timedelta(days=d) for d in (73, 292, 365, -10, 0)],  # the last two: paid
                          "amount": [1.0, 1.0, 0.5, 7.0, 7.0]})  # fmt: skip
    years = pd.DataFrame({"underlying": ["AAA", "AAA", "BBB"], "ex_years": [73 / 365, 292 / 365, 1.0], "amount": [1.0, 1.0, 0.5]})
    a = gh.risk(book, MARKET, dividends=dated, valuation_date="2026-03-02", backend="numpy").positions
    b = gh.risk(book, MARKET, dividends=years, backend="numpy").positions
    pd.testing.assert_frame_equal(a, b)
    none = pd.DataFrame({"underlying": ["AAA", "BBB"], "ex_years": [0.3, 0.5], "amount": [0.0, 0.0]})
    pd.testing.assert_frame_equal(gh.risk(book, MARKET, dividends=none, backend="numpy").positions,
                                  gh.risk(book, MARKET, backend="numpy").positions)  # fmt: skip


def test_ladder_is_full_revaluation_with_the_cash_dividends(bk):
    book = make_book(24, seed=3, american=not _compiling(bk), futures=False)
    res = gh.risk(book, MARKET, dividends=DIVIDENDS, scenarios=SCEN, backend=bk)
    m = MARKET.set_index("underlying").loc[book["underlying"]]
    kw = dict(call=book["option_type"].to_numpy() == "C", exercise=book["exercise"].to_numpy(),
              dividends=[SCHEDULES[u] for u in book["underlying"]], backend="numpy")  # fmt: skip
    S, K, T, v, r, q = (m["spot"].to_numpy(), book["strike"].to_numpy(), book["expiry_years"].to_numpy(), m["vol"].to_numpy(),
                        m["rate"].to_numpy(), m["div"].to_numpy())  # fmt: skip
    base = np.asarray(gh.price(S, K, T, v, r, q, **kw))
    w = book["quantity"].to_numpy() * 100.0
    lad = res.ladder.set_index(["underlying", "spot_shock", "vol_shock"])["pnl"]
    for ds in (-0.1, 0.1):
        for dv in (-0.05, 0.05):
            p = np.asarray(gh.price(S * (1 + ds), K, T, v + dv, r, q, **kw))
            for u in ("AAA", "BBB"):
                sel = (book["underlying"] == u).to_numpy()
                assert lad[(u, ds, dv)] == pytest.approx(np.sum((p - base)[sel] * w[sel]), rel=1e-9, abs=1e-9)


def test_resident_book_with_dividends_is_the_risk_job(bk):
    book = make_book(30, seed=5, american=not _compiling(bk))
    res = gh.risk(book, MARKET, dividends=DIVIDENDS, scenarios=SCEN, backend=bk)
    rb = ResidentBook(book, MARKET, dividends=DIVIDENDS, backend=bk)
    by = rb.by_underlying()
    for col in ("value", "delta", "gamma", "vega", "theta", "rho"):
        np.testing.assert_allclose(by[col].to_numpy(), res.by_underlying[col].to_numpy(), rtol=1e-10, err_msg=col)
    np.testing.assert_allclose(rb.ladder(SCEN)["pnl"].to_numpy(), res.ladder["pnl"].to_numpy(), rtol=1e-9, atol=1e-8)
    # a new market keeps the dividends: spots up 5 % is the ladder's +5 % scenario
    moved = MARKET.assign(spot=MARKET["spot"] * 1.05)
    rb.update_market(moved)
    want = gh.risk(book, moved, dividends=DIVIDENDS, backend=bk).by_underlying["value"].to_numpy()
    np.testing.assert_allclose(rb.by_underlying()["value"].to_numpy(), want, rtol=1e-10)


def test_bad_dividend_tables_are_clear_errors():
    book = make_book(6, american=False)
    bad = [
        (DIVIDENDS.drop(columns="amount"), "missing column(s) amount"),
        (DIVIDENDS.assign(when=1), "unknown column(s) 'when'"),
        (DIVIDENDS.assign(ex_date="2027-01-01"), "one of the columns ex_date"),
        (DIVIDENDS.assign(amount=[1.0, -1.0, 1.0, 1.0, 1.0]), "row 1 (underlying 'AAA'): amount = -1.0 must be a >= 0"),
        (DIVIDENDS.assign(ex_years=[0.1, np.nan, 0.2, 0.3, 0.4]), "row 1 (underlying 'AAA'): ex_years = nan"),
        (DIVIDENDS.drop(columns="ex_years").assign(ex_date="2027-01-01"), "give the valuation date"),
    ]
    for table, words in bad:
        with pytest.raises(BookError, match=None) as e:
            gh.risk(book, MARKET, dividends=table, backend="numpy")
        assert words in str(e.value), (words, str(e.value))
    with pytest.raises(BookError, match="vol_adjust 'bogus' must be one of none, simple, beneder_vorst"):
        gh.risk(book, MARKET, dividends=DIVIDENDS, vol_adjust="bogus", backend="numpy")
    with pytest.raises(BookError, match="needs a dividend table"):
        gh.risk(book, MARKET, vol_adjust="none", backend="numpy")


def test_dividends_worth_the_spot_make_the_row_invalid_and_a_shock_below_them_an_error():
    book = make_book(8, american=False, futures=False)
    book.loc[0, ["underlying", "expiry_years"]] = ["AAA", 0.5]
    book.loc[1, ["underlying", "expiry_years"]] = ["AAA", 0.1]  # expires before the dividend: fine
    divs = pd.DataFrame({"underlying": ["AAA"], "ex_years": [0.3], "amount": [150.0]})
    res = gh.risk(book, MARKET, dividends=divs, backend="numpy", on_invalid="skip")
    invalid = res.invalid.set_index("position_id")
    assert "worth the spot or more" in invalid.loc["D000", "reason"]
    assert "D001" not in invalid.index
    with pytest.raises(BookError, match="invalid row"):
        gh.risk(book, MARKET, dividends=divs, backend="numpy")
    # 60 of dividends on a spot of 100: valid, but a -50 % spot shock leaves S (1 + ds) below their PV
    ok = book.iloc[[0]]
    divs = divs.assign(amount=60.0)
    with pytest.raises(BookError, match=r"the spot shock -0.5 leaves the spot of 1 row\(s\) at or below"):
        gh.risk(ok, MARKET, dividends=divs, scenarios="spot=-0.5;0.1,vol=0", backend="numpy")


def test_dask_partitions_and_resume_with_dividends(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    book = make_book(60, seed=7)
    kw = dict(scenarios=SCEN, backend="numpy", chunk_rows=20, dividends=DIVIDENDS)
    ref = gh.risk(book, MARKET, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        r = gh.risk(book, MARKET, dask=client, **kw)
    pd.testing.assert_frame_equal(r.positions, ref.positions)
    pd.testing.assert_frame_equal(r.ladder, ref.ladder)
    out = tmp_path / "out"
    first = gh.risk(book, MARKET, out=out, **kw)
    again = gh.risk(book, MARKET, out=out, **kw)
    assert again.summary["partitions_resumed"] == 3
    pd.testing.assert_frame_equal(again.by_underlying, first.by_underlying)
    changed = gh.risk(book, MARKET, out=out, **{**kw, "dividends": DIVIDENDS.assign(amount=DIVIDENDS["amount"] * 2)})
    assert changed.summary["partitions_resumed"] == 0  # new dividends: nothing resumed
    assert not np.allclose(changed.by_underlying["value"], first.by_underlying["value"])
    other = gh.risk(book, MARKET, out=out, **{**kw, "vol_adjust": "none"})
    assert other.summary["partitions_resumed"] == 0


def test_cli_risk_with_a_dividend_file(tmp_path):
    from gpu_hedge.cli import app

    book = make_book(30, seed=8)
    book.to_csv(tmp_path / "book.csv", index=False)
    MARKET.to_csv(tmp_path / "market.csv", index=False)
    DIVIDENDS.to_csv(tmp_path / "divs.csv", index=False)
    out = tmp_path / "out"
    args = ["risk", str(tmp_path / "book.csv"), "--market", str(tmp_path / "market.csv"), "--out", str(out), "--scenarios", SCEN,
            "--backend", "numpy", "--no-progress", "--dividends", str(tmp_path / "divs.csv"), "--vol-adjust", "simple"]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(out / "positions.parquet")
    ref = gh.risk(book, MARKET, dividends=DIVIDENDS, vol_adjust="simple", scenarios=SCEN, backend="numpy").positions
    np.testing.assert_allclose(got["price"].to_numpy(), ref["price"].to_numpy(), rtol=1e-13)
    bad = CliRunner().invoke(app, [*args[:-4], "--dividends", str(tmp_path / "missing.csv")], env={"COLUMNS": "200"})
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "missing.csv" in bad.output
