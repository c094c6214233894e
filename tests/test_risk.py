"""The large-book risk job ``gh.risk``: aggregates against an independent row-by-row computation,
the full-revaluation ladder against ``gh.price``, invariance to partitioning, backend and Dask
workers, row validation (every row in exactly one of positions / invalid), resume after a
simulated crash with byte-identical outputs, hedge trades, and the four input forms.

Tolerances: "relative" for a sum means relative to the sum of the absolute values of its terms
(a book of longs and shorts can net to nearly zero, so the error bound scales with the terms).
"""

from __future__ import annotations

import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import gpu_hedge as gh
from gpu_hedge import BookError, Scenarios

VALUATION = "2025-01-02"
MARKET = pd.DataFrame(
    {
        "underlying": ["AAA", "BBB", "CCC", "FUT", "IDLE"],
        "spot": [100.0, 95.0, 110.0, 102.0, 50.0],
        "vol": [0.20, 0.30, 0.25, 0.18, 0.40],
        "rate": [0.03, 0.03, 0.02, 0.03, 0.01],
        "div": [0.01, 0.0, 0.02, 0.5, 0.0],  # FUT is a futures price: black76 ignores its div
    }
)
SCEN = "spot=-0.2;-0.05;0;0.1,vol=-0.3;0;0.05"  # -0.3 points floors every vol at 0
OUTPUTS = ("positions", "by_underlying", "ladder", "trades", "invalid")


def make_book(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """Three bsm underlyings and a futures (black76) one; calls and puts in four spellings; 70 %
    expiry_years, 30 % expiry dates; half the rows with their own vol; some multipliers of 10."""
    rng = np.random.default_rng(seed)
    book = pd.DataFrame(
        {
            "position_id": [f"P{i:05d}" for i in range(n)],
            "underlying": rng.choice(["AAA", "BBB", "CCC"], n),
            "option_type": rng.choice(["C", "P", "call", "put", "Call", "PUT"], n),
            "strike": np.round(100.0 * np.exp(rng.normal(0.0, 0.2, n)), 2),
            "expiry_years": rng.uniform(0.05, 2.0, n),
            "expiry": pd.Series([None] * n, dtype=object),
            "quantity": rng.integers(-50, 51, n).astype(float),
            "multiplier": np.where(rng.random(n) < 0.2, 10.0, np.nan),
            "vol": np.where(rng.random(n) < 0.5, rng.uniform(0.1, 0.5, n), np.nan),
            "model": "bsm",
        }
    )
    dates = rng.random(n) < 0.3
    days = rng.integers(1, 700, int(dates.sum()))
    book.loc[dates, "expiry_years"] = np.nan
    book.loc[dates, "expiry"] = [(dt.date(2025, 1, 2) + dt.timedelta(days=int(d))).isoformat() for d in days]
    fut = [3, n // 6, (2 * n) // 5, n - 1]  # 3, 500, 1200, 2999 for n = 3000
    book.loc[fut, "underlying"] = "FUT"
    book.loc[fut, "model"] = "black76"
    return book


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    return make_book()


def _independent(book: pd.DataFrame, market: pd.DataFrame = MARKET) -> pd.DataFrame:
    """Per-row inputs and gh.greeks for every row of a valid book, computed without the risk job."""
    mk = market.set_index("underlying")
    tau = book["expiry_years"].to_numpy(dtype=float).copy()
    for i in np.flatnonzero(np.isnan(tau)):
        tau[i] = (dt.date.fromisoformat(book["expiry"].iloc[i]) - dt.date.fromisoformat(VALUATION)).days / 365.0
    und = book["underlying"].to_numpy()
    vol = np.where(book["vol"].isna(), mk.loc[und, "vol"].to_numpy(), book["vol"].to_numpy(dtype=float))
    mult = book["multiplier"].fillna(100.0).to_numpy(dtype=float)
    call = book["option_type"].str.lower().str.startswith("c").to_numpy()
    frame = pd.DataFrame(
        {
            "position_id": book["position_id"].to_numpy(),
            "underlying": und,
            "spot": mk.loc[und, "spot"].to_numpy(),
            "strike": book["strike"].to_numpy(dtype=float),
            "tau": tau,
            "vol": vol,
            "rate": mk.loc[und, "rate"].to_numpy(),
            "div": mk.loc[und, "div"].to_numpy(),
            "call": call,
            "model": book["model"].to_numpy(),
            "weight": book["quantity"].to_numpy(dtype=float) * mult,
        }
    )
    for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
        frame[name] = np.nan
    for model in ("bsm", "black76"):
        m = (frame["model"] == model).to_numpy()
        g = gh.greeks(*(frame.loc[m, c].to_numpy() for c in ("spot", "strike", "tau", "vol", "rate", "div")),
                      call=frame.loc[m, "call"].to_numpy(), model=model, greeks=("price", "delta", "gamma", "vega", "theta", "rho"),
                      backend="numpy")  # fmt: skip
        for name, v in g.items():
            frame.loc[m, name] = np.asarray(v, dtype=float)
    return frame


def _revalue(frame: pd.DataFrame, spot_shock: float, vol_shock: float) -> np.ndarray:
    """Each row's price at spot x (1 + spot_shock) and max(vol + vol_shock, 0), by gh.price."""
    out = np.empty(len(frame))
    for model in ("bsm", "black76"):
        m = (frame["model"] == model).to_numpy()
        col = {c: frame.loc[m, c].to_numpy() for c in ("spot", "strike", "tau", "vol", "rate", "div", "call")}
        shocked = gh.price(col["spot"] * (1.0 + spot_shock), col["strike"], col["tau"], np.maximum(col["vol"] + vol_shock, 0.0),
                           col["rate"], col["div"], call=col["call"], model=model, backend="numpy")  # fmt: skip
        out[m] = np.asarray(shocked, dtype=float)
    return out


def _close_sum(actual, expected, scale, rel: float) -> None:
    """|actual - expected| <= rel x scale (scale: the sum of |terms|), elementwise."""
    actual, expected, scale = (np.asarray(a, dtype=float) for a in (actual, expected, scale))
    err = np.abs(actual - expected)
    assert np.all(err <= rel * scale + 1e-300), f"max error / scale = {np.max(err / np.maximum(scale, 1e-300)):.3g} > {rel}"


def _same_results(a: gh.RiskResult, b: gh.RiskResult, rel: float) -> None:
    """by_underlying and ladder of two runs agree to ``rel`` of the magnitude of each column."""
    assert list(a.by_underlying.index) == list(b.by_underlying.index)
    assert (a.by_underlying["positions"] == b.by_underlying["positions"]).all()
    for col in a.by_underlying.columns:
        scale = np.abs(a.by_underlying[col]).max()
        _close_sum(a.by_underlying[col], b.by_underlying[col], scale, rel)
    pd.testing.assert_frame_equal(a.ladder.drop(columns="pnl"), b.ladder.drop(columns="pnl"))
    _close_sum(a.ladder["pnl"], b.ladder["pnl"], np.abs(a.ladder["pnl"]).max(), rel)


# --- 1. per-position Greeks and the aggregates ------------------------------------------------------------------------------------


def test_positions_and_aggregates_match_independent_computation(book):
    r = gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", chunk_rows=1000)
    ref = _independent(book)
    pos = r.positions
    assert len(pos) == len(book) and r.summary["rows_valid"] == len(book) and len(r.invalid) == 0
    assert list(pos["position_id"]) == list(book["position_id"])
    assert list(pos["underlying"]) == list(book["underlying"])
    for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
        np.testing.assert_allclose(pos[name], ref[name], rtol=1e-12, atol=0, err_msg=name)
    np.testing.assert_allclose(pos["value"], ref["price"] * ref["weight"], rtol=1e-12, atol=0)
    for name in ("delta", "gamma", "vega", "theta", "rho"):
        np.testing.assert_allclose(pos[f"position_{name}"], ref[name] * ref["weight"], rtol=1e-12, atol=0, err_msg=name)

    # by underlying: pandas groupby sums of greek x quantity x multiplier
    terms = pd.DataFrame({"underlying": ref["underlying"], "value": ref["price"] * ref["weight"],
                          **{n: ref[n] * ref["weight"] for n in ("delta", "gamma", "vega", "theta", "rho")}})  # fmt: skip
    grouped = terms.groupby("underlying")
    sums, scale = grouped.sum(), grouped.agg(lambda s: s.abs().sum())
    by = r.by_underlying
    assert list(by.index) == ["AAA", "BBB", "CCC", "FUT"]  # IDLE has no positions: not reported
    assert by["positions"].to_dict() == book["underlying"].value_counts().to_dict()
    for col in ("value", "delta", "gamma", "vega", "theta", "rho"):
        _close_sum(by[col], sums.loc[by.index, col], scale.loc[by.index, col], 1e-12)
    spot = MARKET.set_index("underlying").loc[by.index, "spot"]
    np.testing.assert_array_equal(by["spot"], spot)
    d, g, v, th = (sums.loc[by.index, c] for c in ("delta", "gamma", "vega", "theta"))
    sd, sg, sv, st = (scale.loc[by.index, c] for c in ("delta", "gamma", "vega", "theta"))
    _close_sum(by["dollar_delta"], d * spot, sd * spot, 1e-12)
    _close_sum(by["dollar_gamma_1pct"], g * spot**2 / 100.0, sg * spot**2 / 100.0, 1e-12)
    _close_sum(by["vega_per_point"], v / 100.0, sv / 100.0, 1e-12)
    _close_sum(by["theta_per_day"], th / 365.0, st / 365.0, 1e-12)
    # a hand-checked row: a long call of 100 x 100 shares vs a textbook value
    one = pd.DataFrame({"position_id": ["x"], "underlying": ["AAA"], "option_type": ["call"], "strike": [100.0],
                        "expiry_years": [1.0], "quantity": [1.0], "vol": [0.2]})  # fmt: skip
    m = MARKET.assign(rate=[0.05, 0.03, 0.02, 0.03, 0.01], div=[0.0, 0.0, 0.02, 0.5, 0.0])
    r1 = gh.risk(one, m, backend="numpy")
    assert r1.positions["price"].iloc[0] == pytest.approx(10.450583572185565, rel=1e-12)
    assert r1.by_underlying.loc["AAA", "value"] == pytest.approx(1045.0583572185565, rel=1e-12)
    assert r1.by_underlying.loc["AAA", "delta"] == pytest.approx(63.68306511756191, rel=1e-12)


# --- 2. the scenario ladder --------------------------------------------------------------------------------------------------------


def test_ladder_equals_full_revaluation(book):
    r = gh.risk(book, MARKET, scenarios=SCEN, valuation_date=VALUATION, backend="numpy", chunk_rows=1000)
    ref = _independent(book)
    base = _revalue(ref, 0.0, 0.0)
    sc = Scenarios.parse(SCEN)
    assert r.summary["scenarios"] == sc.size == 12
    assert len(r.ladder) == 12 * 4 and list(r.ladder.columns) == ["underlying", "spot_shock", "vol_shock", "pnl"]
    for ds, dv in sc.pairs():
        shocked = _revalue(ref, ds, dv)
        pnl = pd.Series((shocked - base) * ref["weight"].to_numpy()).groupby(ref["underlying"].to_numpy())
        expected, scale = pnl.sum(), pnl.agg(lambda s: s.abs().sum())
        got = r.ladder[(r.ladder["spot_shock"] == ds) & (r.ladder["vol_shock"] == dv)].set_index("underlying")["pnl"]
        assert list(got.index) == ["AAA", "BBB", "CCC", "FUT"]
        _close_sum(got, expected.loc[got.index], np.maximum(scale.loc[got.index], 1.0), 1e-10)
        if ds == 0.0 and dv == 0.0:
            assert (got == 0.0).all()


def _bs(s, k, t, v, r, q, call):
    d1 = (math.log(s / k) + (r - q + 0.5 * v * v) * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    n = lambda x: 0.5 * math.erfc(-x / math.sqrt(2.0))  # noqa: E731
    if call:
        return s * math.exp(-q * t) * n(d1) - k * math.exp(-r * t) * n(d2)
    return k * math.exp(-r * t) * n(-d2) - s * math.exp(-q * t) * n(-d1)


def test_vol_shock_below_zero_floors_at_intrinsic():
    # call K=90 and put K=90 on AAA (S=100, r=3 %, q=1 %), vol 5 %; vol shock -10 points -> vol 0
    book = pd.DataFrame({"position_id": ["c", "p"], "underlying": ["AAA", "AAA"], "option_type": ["C", "P"], "strike": [90.0, 90.0],
                         "expiry_years": [0.5, 0.5], "quantity": [2.0, -3.0], "vol": [0.05, 0.05]})  # fmt: skip
    r = gh.risk(book, MARKET, scenarios="spot=-0.15;0;0.1,vol=-0.1", backend="numpy")
    t, rr, q = 0.5, 0.03, 0.01
    call0, put0 = _bs(100.0, 90.0, t, 0.05, rr, q, True), _bs(100.0, 90.0, t, 0.05, rr, q, False)
    for ds in (-0.15, 0.0, 0.1):
        s = 100.0 * (1.0 + ds)
        fwd_intr = s * math.exp(-q * t) - 90.0 * math.exp(-rr * t)  # discounted intrinsic value on the forward
        call1, put1 = max(fwd_intr, 0.0), max(-fwd_intr, 0.0)
        expected = 200.0 * (call1 - call0) - 300.0 * (put1 - put0)
        got = r.ladder.loc[r.ladder["spot_shock"] == ds, "pnl"]
        assert len(got) == 1 and got.iloc[0] == pytest.approx(expected, rel=1e-12, abs=1e-9)
    # by hand at S = 85: below the discounted strike, so the call is worth 0 and the put 90 e^-rt - 85 e^-qt
    put85 = 90.0 * math.exp(-0.015) - 85.0 * math.exp(-0.005)  # 4.0840...
    expected85 = 200.0 * (0.0 - call0) - 300.0 * (put85 - put0)
    assert r.ladder.loc[r.ladder["spot_shock"] == -0.15, "pnl"].iloc[0] == pytest.approx(expected85, rel=1e-12)
    assert 4.08 < put85 < 4.09 and call0 > 10.0 and 0.0 < put0 < 0.01


def test_scenarios_parse_and_errors():
    s = Scenarios.parse("spot=-0.2:0.2:0.1")
    assert s.spot_shocks == (-0.2, -0.1, 0.0, 0.1, 0.2) and s.vol_shocks == (0.0,) and s.size == 5
    s = Scenarios.parse(" spot=-0.1;0;0.1 , VOL=-0.05:0.05:0.05 ")
    assert s.spot_shocks == (-0.1, 0.0, 0.1) and s.vol_shocks == (-0.05, 0.0, 0.05)
    assert s.pairs()[:4] == [(-0.1, -0.05), (-0.1, 0.0), (-0.1, 0.05), (0.0, -0.05)]
    d = Scenarios.default()
    assert d.size == 45 and d.spot_shocks[0] == -0.2 and d.spot_shocks[-1] == 0.2 and d.vol_shocks == (-0.1, -0.05, 0.0, 0.05, 0.1)
    for spec, message in (
        ("vol=-0.1;0.1", "has no spot shocks"),
        ("vega=0.1", "expected items like"),
        ("spot", "expected items like"),
        ("spot=0:1:0", "cannot read"),
        ("spot=0:1:-0.5", "cannot read"),
        ("spot=a;b", "cannot read"),
        ("spot=0:1", "cannot read"),
        ("spot=-1;0", "must be > -1"),
        ("spot=0;nan", "finite numbers"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            Scenarios.parse(spec)
    with pytest.raises(ValueError, match="non-empty"):
        Scenarios(())
    small = pd.DataFrame({"position_id": [1], "underlying": ["AAA"], "option_type": ["P"], "strike": [100.0],
                          "expiry_years": [1.0], "quantity": [1.0]})  # fmt: skip
    assert len(gh.risk(small, MARKET, scenarios="default", backend="numpy").ladder) == 45
    assert len(gh.risk(small, MARKET, scenarios=None, backend="numpy").ladder) == 0
    with pytest.raises(ValueError, match="no spot shocks"):
        gh.risk(small, MARKET, scenarios="vol=0.1", backend="numpy")


# --- 3. invariance: partitions, backends, Dask workers --------------------------------------------------------------------------


def test_chunk_rows_invariance(book):
    runs = {c: gh.risk(book, MARKET, scenarios=SCEN, valuation_date=VALUATION, backend="numpy", chunk_rows=c) for c in (7, 100, 10_000)}
    assert [runs[c].summary["partitions"] for c in (7, 100, 10_000)] == [429, 30, 1]
    for c in (7, 100):
        _same_results(runs[c], runs[10_000], 1e-12)
        pd.testing.assert_frame_equal(runs[c].positions, runs[10_000].positions)
        pd.testing.assert_frame_equal(runs[c].trades, runs[10_000].trades)


def test_backend_invariance(book, bk):
    kw = dict(scenarios="spot=-0.1;0.1,vol=-0.3;0.05", valuation_date=VALUATION, chunk_rows=None)
    ref = gh.risk(book, MARKET, backend="numpy", **kw)
    r = gh.risk(book, MARKET, backend=bk, **kw)
    assert r.summary["backend"] == bk
    _same_results(r, ref, 1e-12)
    for name in ("price", "delta", "gamma", "vega", "theta", "rho"):
        scale = np.abs(ref.positions[name]).max()
        _close_sum(r.positions[name], ref.positions[name], scale, 1e-12)


def test_dask_workers_equal_single_process(book):
    distributed = pytest.importorskip("dask.distributed")
    kw = dict(scenarios=SCEN, valuation_date=VALUATION, backend="numpy", chunk_rows=250)
    ref = gh.risk(book, MARKET, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        seen = []
        r = gh.risk(book, MARKET, dask=client, progress=lambda done, total: seen.append((done, total)), **kw)
    assert seen[-1] == (len(book), len(book)) and len(seen) == 12
    assert r.summary["partitions"] == 12 and r.summary["rows_read"] == len(book)
    _same_results(r, ref, 1e-12)
    pd.testing.assert_frame_equal(r.positions, ref.positions)


# --- 4. invalid input ------------------------------------------------------------------------------------------------------------


def _small_book() -> pd.DataFrame:
    return make_book(40, seed=7)


VOL_REASON = "vol must be finite and > 0 (leave it empty to use the market vol)"
ROW_CASES = [
    # (column, bad value, reason)
    ("strike", np.nan, "strike is missing or not a number"),
    ("strike", -5.0, "strike must be finite and > 0"),
    ("strike", 0.0, "strike must be finite and > 0"),
    ("option_type", "straddle", "unknown option_type (use C, P, call or put)"),
    ("underlying", "ZZZ", "underlying is not in the market data"),
    ("expiry_years", 0.0, "expired (expiry_years <= 0)"),
    ("expiry_years", -0.25, "expired (expiry_years <= 0)"),
    ("expiry", VALUATION, "expired (expiry on or before the valuation date 2025-01-02)"),
    ("expiry", "2024-12-31", "expired (expiry on or before the valuation date 2025-01-02)"),
    ("expiry", "not-a-date", "expiry is missing or not a date"),
    ("quantity", np.nan, "quantity is missing or not a finite number"),
    ("multiplier", 0.0, "multiplier must be > 0"),
    ("multiplier", -100.0, "multiplier must be > 0"),
    ("vol", -0.2, VOL_REASON),
    ("vol", 0.0, VOL_REASON),
    ("vol", np.inf, VOL_REASON),
    ("model", "heston", "unknown model (use bsm or black76)"),
]


@pytest.mark.parametrize(("column", "value", "reason"), ROW_CASES, ids=[f"{c}={v}" for c, v, _ in ROW_CASES])
def test_invalid_row(column, value, reason):
    book = _small_book()
    bad = 17
    if column == "expiry":  # a row giving a date instead of expiry_years
        book.loc[bad, "expiry_years"] = np.nan
    book[column] = book[column].astype(object)
    book.loc[bad, column] = value
    pid = book.loc[bad, "position_id"]
    shown = value if isinstance(value, str) else repr(value)

    with pytest.raises(BookError) as info:
        gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", chunk_rows=10)
    msg = str(info.value)
    assert f"position_id {pid} (row {bad}): {column} = {shown}: {reason}" in msg, msg
    assert "1 invalid row(s) in rows 10-19" in msg

    r = gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", chunk_rows=10, on_invalid="skip", scenarios="spot=-0.1;0.1")
    assert r.invalid.to_dict("records") == [{"position_id": pid, "row": bad, "column": column, "value": shown, "reason": reason}]
    s = r.summary
    assert s["rows_read"] == len(book) == 40 and s["rows_invalid"] == 1 and s["rows_valid"] == 39 == len(r.positions)
    assert sorted([*r.positions["position_id"], *r.invalid["position_id"]]) == sorted(book["position_id"])
    # the job went on: the other rows are the same as a book without the bad row
    clean = gh.risk(book.drop(index=bad), MARKET, valuation_date=VALUATION, backend="numpy", chunk_rows=10, scenarios="spot=-0.1;0.1")
    pd.testing.assert_frame_equal(r.positions, clean.positions)
    _same_results(r, clean, 1e-12)


def test_many_invalid_rows_none_dropped(book):
    b = book.copy()
    rng = np.random.default_rng(3)
    cols = ["strike", "option_type", "underlying", "quantity", "vol", "model"]
    vals = [-1.0, "X", "NOPE", np.nan, -0.5, "sabr"]
    for c in ("option_type", "underlying", "model", "strike", "quantity", "vol"):
        b[c] = b[c].astype(object)
    picks = rng.choice(len(b), 300, replace=False)
    for k, i in enumerate(picks):
        b.loc[i, cols[k % 6]] = vals[k % 6]
    r = gh.risk(b, MARKET, valuation_date=VALUATION, backend="numpy", chunk_rows=128, on_invalid="skip", scenarios=SCEN)
    s = r.summary
    assert s["rows_read"] == s["rows_valid"] + s["rows_invalid"] == len(b) == 3000
    assert s["rows_invalid"] == 300 and len(r.positions) == 2700
    ids = pd.concat([r.positions["position_id"], r.invalid["position_id"]])
    assert ids.is_unique and set(ids) == set(b["position_id"])
    assert sorted(r.invalid["row"]) == sorted(picks)
    assert r.invalid["reason"].value_counts().to_dict() == {
        "strike must be finite and > 0": 50, "unknown option_type (use C, P, call or put)": 50,
        "underlying is not in the market data": 50, "quantity is missing or not a finite number": 50,
        "vol must be finite and > 0 (leave it empty to use the market vol)": 50, "unknown model (use bsm or black76)": 50,
    }  # fmt: skip


def test_book_and_market_structure_errors(book):
    small = book.iloc[:50]
    with pytest.raises(BookError, match=r"missing column\(s\) strike"):
        gh.risk(small.drop(columns="strike"), MARKET, valuation_date=VALUATION, backend="numpy")
    with pytest.raises(BookError, match=r"missing column\(s\) expiry or expiry_years"):
        gh.risk(small.drop(columns=["expiry", "expiry_years"]), MARKET, backend="numpy")
    with pytest.raises(BookError, match=r"unknown column\(s\) 'strik'"):
        gh.risk(small.rename(columns={"strike": "strik"}), MARKET, valuation_date=VALUATION, backend="numpy", on_invalid="skip")
    with pytest.raises(BookError, match=r"unknown column\(s\) 'notes'"):
        gh.risk(small.assign(notes="x"), MARKET, valuation_date=VALUATION, backend="numpy")
    # expiry dates but no valuation date: an error for the job, whatever on_invalid says
    for b in (small, small.dropna(subset=["expiry"]), small.dropna(subset=["expiry"]).drop(columns="expiry_years")):
        with pytest.raises(BookError, match="give the valuation date"):
            gh.risk(b, MARKET, backend="numpy", on_invalid="skip")
    # a book of expiry_years only, one partition all empty: those rows are invalid, not a crash
    yrs = small.drop(columns="expiry").assign(expiry_years=0.5)
    yrs.loc[:9, "expiry_years"] = np.nan
    r = gh.risk(yrs, MARKET, backend="numpy", chunk_rows=10, on_invalid="skip")
    assert list(r.invalid["row"]) == list(range(10)) and set(r.invalid["column"]) == {"expiry_years"}
    assert r.summary["rows_valid"] == 40
    for bad, message in (
        (pd.concat([MARKET, MARKET.iloc[[1]]]), "underlying 'BBB' appears more than once"),
        (MARKET.assign(spot=[100.0, 0.0, 1.0, 1.0, 1.0]), "spot = 0.0 for underlying 'BBB' must be > 0"),
        (MARKET.assign(spot=[100.0, 1.0, -3.0, 1.0, 1.0]), "spot = -3.0 for underlying 'CCC' must be > 0"),
        (MARKET.assign(vol=[0.2, 0.2, np.nan, 0.2, 0.2]), "vol = nan for underlying 'CCC' must be > 0"),
        (MARKET.assign(rate=[0.0, np.inf, 0.0, 0.0, 0.0]), "rate = inf for underlying 'BBB' must be finite"),
        (MARKET.drop(columns="div"), "missing column(s) div"),
        (MARKET.assign(beta=1.0), "unknown column(s) 'beta'"),
    ):
        with pytest.raises(BookError, match=re.escape("market data: " + message)):
            gh.risk(small, bad, valuation_date=VALUATION, backend="numpy", on_invalid="skip")
    for kwargs, message in (({"on_invalid": "ignore"}, "on_invalid"), ({"dtype": "float16"}, "dtype"), ({"chunk_rows": 0}, "chunk_rows")):
        with pytest.raises(ValueError, match=message):
            gh.risk(small, MARKET, valuation_date=VALUATION, backend="numpy", **kwargs)


# --- 5. resume after a crash -------------------------------------------------------------------------------------------------------


class Killed(Exception):
    pass


def _output_bytes(path):
    """A file's bytes, or a dataset directory's files (names and bytes, in order)."""
    if path.is_dir():
        return [(f.name, f.read_bytes()) for f in sorted(path.iterdir())]
    return path.read_bytes()


def test_resume_after_crash_is_byte_identical(book, tmp_path):
    b = book.copy()
    b["strike"] = b["strike"].astype(object)
    b.loc[[5, 1500], "strike"] = [-1.0, "abc"]  # invalid rows in a resumed and in a recomputed partition
    kw = dict(scenarios=SCEN, valuation_date=VALUATION, backend="numpy", chunk_rows=400, on_invalid="skip")
    clean = gh.risk(b, MARKET, out=tmp_path / "clean", **kw)
    assert clean.positions is None and clean.summary["partitions"] == 8 and clean.summary["partitions_resumed"] == 0

    calls = []

    def kill_after_two(done, total):
        calls.append(done)
        if len(calls) == 2:
            raise Killed

    with pytest.raises(Killed):
        gh.risk(b, MARKET, out=tmp_path / "run", progress=kill_after_two, **kw)
    assert calls == [400, 800]
    assert sorted(p.name for p in (tmp_path / "run" / "parts").glob("sums-*.npz")) == ["sums-000000.npz", "sums-000001.npz"]
    assert not (tmp_path / "run" / "positions.parquet").exists()

    again = gh.risk(b, MARKET, out=tmp_path / "run", **kw)
    assert again.summary["partitions_resumed"] >= 2 and again.summary["partitions"] == 8
    assert again.summary["rows_read"] == 3000 and again.summary["rows_invalid"] == 2
    for name in OUTPUTS:
        assert _output_bytes(tmp_path / "run" / f"{name}.parquet") == _output_bytes(tmp_path / "clean" / f"{name}.parquet"), name
    pd.testing.assert_frame_equal(again.by_underlying, clean.by_underlying)
    pd.testing.assert_frame_equal(again.invalid, clean.invalid)
    assert pq.read_table(tmp_path / "run" / "positions.parquet").num_rows == 2998

    # a finished run re-run resumes every partition
    assert gh.risk(b, MARKET, out=tmp_path / "run", **kw).summary["partitions_resumed"] == 8
    # other scenarios: the earlier partitions are not reused, and the outputs follow the new parameters
    other = {**kw, "scenarios": "spot=-0.1;0.1"}
    changed = gh.risk(b, MARKET, out=tmp_path / "run", **other)
    assert changed.summary["partitions_resumed"] == 0
    assert len(pd.read_parquet(tmp_path / "run" / "ladder.parquet")) == 2 * 4
    gh.risk(b, MARKET, out=tmp_path / "fresh", **other)
    for name in OUTPUTS:
        assert _output_bytes(tmp_path / "run" / f"{name}.parquet") == _output_bytes(tmp_path / "fresh" / f"{name}.parquet"), name
    # another book (one quantity changed) or other market data: no resume either
    b2 = b.copy()
    b2.loc[10, "quantity"] = 1.0
    assert gh.risk(b2, MARKET, out=tmp_path / "run", **other).summary["partitions_resumed"] == 0
    m2 = MARKET.assign(spot=MARKET["spot"] * 1.01)
    assert gh.risk(b2, m2, out=tmp_path / "run", **other).summary["partitions_resumed"] == 0


# --- 6. hedge trades ------------------------------------------------------------------------------------------------------------


def test_trades_neutralise_delta(book):
    hedges = pd.DataFrame({"underlying": ["AAA", "BBB", "AAA"], "holding": [1000.0, -2500.0, 234.0]})
    r = gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", hedges=hedges)
    t = r.trades
    assert list(t.index) == ["AAA", "BBB", "CCC", "FUT"]
    np.testing.assert_array_equal(t["holding"], [1234.0, -2500.0, 0.0, 0.0])
    np.testing.assert_array_equal(t["exposure"], r.by_underlying["delta"])
    np.testing.assert_array_equal(t["trade"], np.round(-t["exposure"] - t["holding"]))
    np.testing.assert_array_equal(t["new_holding"], t["holding"] + t["trade"])
    assert (np.abs(t["new_holding"] + t["exposure"]) <= 0.5).all()  # net delta ~0 to the nearest share
    np.testing.assert_allclose(t["trade_notional"], t["trade"] * MARKET.set_index("underlying").loc[t.index, "spot"], rtol=1e-15)
    assert (t["cost"] == 0).all() and not t["limited"].any()
    assert (np.abs(t["trade"]) > 1000).all()  # a real book: not trivially zero

    lots = gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", hedges=hedges, lot_size=100,
                   costs=gh.Costs(per_trade=5.0))  # fmt: skip
    np.testing.assert_array_equal(lots.trades["trade"], np.round((-t["exposure"] - t["holding"]) / 100.0) * 100.0)
    assert (np.abs(lots.trades["new_holding"] + t["exposure"]) <= 50.0).all()
    np.testing.assert_array_equal(lots.trades["cost"], 5.0)
    frac = gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", lot_size=None)
    np.testing.assert_allclose(frac.trades["new_holding"] + frac.trades["exposure"], 0.0, atol=1e-9)

    with pytest.raises(BookError, match="hedges: underlying 'ZZZ'"):
        gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", hedges=pd.DataFrame({"underlying": ["ZZZ"], "holding": [1.0]}))
    with pytest.raises(BookError, match="hedges: underlying 'IDLE' has a hedge but no valid positions"):
        gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", hedges=pd.DataFrame({"underlying": ["IDLE"], "holding": [1.0]}))
    with pytest.raises(BookError, match=r"hedges: missing column\(s\) holding"):
        gh.risk(book, MARKET, valuation_date=VALUATION, backend="numpy", hedges=pd.DataFrame({"underlying": ["AAA"], "shares": [1.0]}))


# --- 7. input forms -------------------------------------------------------------------------------------------------------------


def test_parquet_csv_dataframe_arrow_give_identical_results(book, tmp_path):
    b = book.copy()
    b["strike"] = b["strike"].astype(object)
    b.loc[[11, 2222], "strike"] = [-1.0, np.nan]
    b.loc[77, "underlying"] = "ZZZ"
    b.loc[[5, 6], "multiplier"] = 1.0
    pq.write_table(pa.Table.from_pandas(b.assign(strike=b["strike"].astype(float)), preserve_index=False), tmp_path / "book.parquet",
                   row_group_size=700)  # fmt: skip
    b.to_csv(tmp_path / "book.csv", index=False)
    MARKET.to_csv(tmp_path / "market.csv", index=False)
    MARKET.to_parquet(tmp_path / "market.parquet", index=False)
    sources = {
        "dataframe": (b.assign(strike=b["strike"].astype(float)), MARKET),
        "arrow": (pa.Table.from_pandas(b.assign(strike=b["strike"].astype(float)), preserve_index=False), pa.Table.from_pandas(MARKET)),
        "parquet": (tmp_path / "book.parquet", tmp_path / "market.parquet"),
        "csv": (str(tmp_path / "book.csv"), str(tmp_path / "market.csv")),
    }
    kw = dict(scenarios=SCEN, valuation_date=VALUATION, backend="numpy", chunk_rows=500, on_invalid="skip")
    runs = {k: gh.risk(bk_, mk, **kw) for k, (bk_, mk) in sources.items()}
    ref = runs["dataframe"]
    assert ref.summary["rows_invalid"] == 3 and ref.summary["rows_valid"] == 2997
    for name, r in runs.items():
        assert r.summary["rows_read"] == 3000 and r.summary["partitions"] == 6, name
        for attr in OUTPUTS:
            pd.testing.assert_frame_equal(getattr(r, attr), getattr(ref, attr), check_exact=True, obj=f"{name}.{attr}")


def test_partition_halves_on_device_out_of_memory_and_the_result_is_unchanged(monkeypatch):
    import importlib

    risk_mod = importlib.import_module("gpu_hedge._book.risk")  # the module, not gh.risk

    book, market = make_book(1200), MARKET
    expected = gh.risk(book, market, scenarios="spot=-0.1;0.1", backend="numpy", valuation_date=VALUATION)
    real = risk_mod.process_partition
    sizes = []

    def flaky(index, frame, first_row, *args):
        sizes.append(len(frame))
        if len(frame) > 400:
            raise MemoryError("Unable to allocate 7.63 MiB")  # what NumPy raises
        return real(index, frame, first_row, *args)

    monkeypatch.setattr(risk_mod, "process_partition", flaky)
    got = gh.risk(book, market, scenarios="spot=-0.1;0.1", backend="numpy", valuation_date=VALUATION)
    assert max(s for s in sizes if s <= 400) <= 400 and sizes[0] == len(book)
    pd.testing.assert_frame_equal(got.positions, expected.positions)
    np.testing.assert_allclose(got.by_underlying.to_numpy(float), expected.by_underlying.to_numpy(float), rtol=1e-12)
    np.testing.assert_allclose(got.ladder["pnl"], expected.ladder["pnl"], rtol=1e-12)


def test_vol_surface_interpolates_total_variance_and_log_strike():
    # one underlying with a 2 x 3 grid; independent interpolation written out here
    surf = pd.DataFrame(
        {
            "underlying": "AAA",
            "expiry_years": [0.25, 0.25, 0.25, 1.0, 1.0, 1.0],
            "strike": [80.0, 100.0, 120.0] * 2,
            "vol": [0.30, 0.22, 0.25, 0.26, 0.20, 0.21],
        }
    )
    market = pd.DataFrame({"underlying": ["AAA", "BBB"], "spot": [100.0, 50.0], "vol": [0.5, 0.4], "rate": 0.02, "div": 0.0})
    cases = [(90.0, 0.5), (100.0, 0.25), (130.0, 2.0), (70.0, 0.1), (110.0, 0.75)]
    book = pd.DataFrame(
        {
            "position_id": range(len(cases) + 2),
            "underlying": ["AAA"] * len(cases) + ["AAA", "BBB"],
            "option_type": "C",
            "strike": [k for k, _ in cases] + [100.0, 50.0],
            "expiry_years": [t for _, t in cases] + [0.5, 0.5],
            "quantity": 1,
            "vol": [np.nan] * len(cases) + [0.33, np.nan],  # own vol wins; BBB has no surface: flat 0.4
        }
    )

    def expected(k, t):
        def at(row):  # vol linear in log-strike, flat beyond the wings
            x = np.log([80.0, 100.0, 120.0])
            return float(np.interp(math.log(k), x, row))

        v1, v2 = at([0.30, 0.22, 0.25]), at([0.26, 0.20, 0.21])
        tc = min(max(t, 0.25), 1.0)
        w = v1**2 * 0.25 + (tc - 0.25) / 0.75 * (v2**2 * 1.0 - v1**2 * 0.25)
        return math.sqrt(w / tc)

    vols = [expected(k, t) for k, t in cases] + [0.33, 0.4]
    res = gh.risk(book, market, vol_surface=surf, backend="numpy")
    ref = gh.greeks([100.0] * len(cases) + [100.0, 50.0], book["strike"].to_numpy(), book["expiry_years"].to_numpy(), vols, 0.02,
                    backend="numpy")  # fmt: skip
    np.testing.assert_allclose(res.positions["price"], np.asarray(ref["price"]), rtol=1e-12)
    assert expected(100.0, 0.25) == pytest.approx(0.22) and expected(130.0, 2.0) == pytest.approx(0.21)
    with pytest.raises(BookError, match="full expiry x strike grid"):
        gh.risk(book, market, vol_surface=surf.iloc[:-1], backend="numpy")
    with pytest.raises(BookError, match="'ZZZ' is not in the market data"):
        gh.risk(book, market, vol_surface=surf.assign(underlying="ZZZ"), backend="numpy")
    with pytest.raises(BookError, match="vol = "):
        gh.risk(book, market, vol_surface=surf.assign(vol=[0.3, -0.1, 0.2, 0.2, 0.2, 0.2]), backend="numpy")


def test_netting_by_contract_gives_the_same_results_and_survives_hash_collisions(monkeypatch):
    import importlib

    risk_mod = importlib.import_module("gpu_hedge._book.risk")
    base = make_book(600)
    book = pd.concat([base] * 5, ignore_index=True)  # every contract held five times
    book["position_id"] = [f"Q{i:05d}" for i in range(len(book))]
    book["quantity"] = np.resize([3, -1, 7, 2, -4], len(book))
    kw = dict(scenarios="spot=-0.1;0.1,vol=-0.05;0.05", valuation_date=VALUATION, backend="numpy")
    inverse, first = risk_mod._contracts([np.repeat(np.arange(4.0), 3)])
    assert first is not None and first.tolist() == [0, 3, 6, 9] and inverse.tolist() == np.repeat(np.arange(4), 3).tolist()
    netted = gh.risk(book, MARKET, **kw)
    monkeypatch.setattr(risk_mod, "DEDUPE_BELOW", 0.0)  # never net
    plain = gh.risk(book, MARKET, **kw)
    monkeypatch.undo()
    monkeypatch.setattr(risk_mod.pd.util, "hash_array", lambda a: np.zeros(len(a), dtype=np.uint64))  # every key collides
    collided = gh.risk(book, MARKET, **kw)
    for other in (plain, collided):
        pd.testing.assert_frame_equal(netted.positions, other.positions, rtol=1e-13)
        np.testing.assert_allclose(netted.by_underlying.to_numpy(float), other.by_underlying.to_numpy(float), rtol=1e-12)
        np.testing.assert_allclose(netted.ladder["pnl"], other.ladder["pnl"], rtol=1e-11, atol=1e-9)
