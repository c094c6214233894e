"""The synthetic book generator and the `generate-book` / `risk` / `demo` commands end to end."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gpu_hedge._book import book_shape, expiry_calendar, generate_book, write_book
from gpu_hedge.cli import app

runner = CliRunner()
VAL = "2026-01-02"
WIDE = {"COLUMNS": "200"}


def _invoke(*args: str):
    return runner.invoke(app, list(args), env=WIDE)


@pytest.fixture(scope="module")
def small_book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    result = _invoke("generate-book", "--positions", "5000", "--underlyings", "8", "--seed", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "5,000 positions" in result.output and "book.parquet" in result.output
    return out


def test_generate_then_risk_reconciles(small_book, tmp_path):
    out = tmp_path / "risk"
    result = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(out),
                     "--valuation-date", VAL, "--chunk-rows", "2000", "--backend", "numpy", "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("positions.parquet", "by_underlying.parquet", "ladder.parquet", "trades.parquet", "invalid.parquet", "summary.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_read"] == summary["rows_valid"] + summary["rows_invalid"] == 5000
    assert summary["partitions"] == 3 and summary["scenarios"] == 45
    assert len(pd.read_parquet(out / "positions.parquet")) == summary["rows_valid"]
    by = pd.read_parquet(out / "by_underlying.parquet")
    assert by["positions"].sum() == 5000 and len(pd.read_parquet(out / "ladder.parquet")) == 45 * len(by)
    trades = pd.read_parquet(out / "trades.parquet")
    np.testing.assert_allclose(trades["new_holding"], -trades["exposure"], atol=0.5 + 1e-9)  # periodic: back to neutral, whole shares
    assert "Top 8 of 8 underlyings" in result.output and "Proposed hedge trades" in result.output and "Total" in result.output
    assert "Traceback" not in result.output


def test_risk_scenarios_hedges_and_band(small_book, tmp_path):
    by0 = pd.read_parquet(_run_default(small_book, tmp_path / "a") / "by_underlying.parquet").set_index("underlying")
    hedges = tmp_path / "hedges.csv"
    u = by0.index[0]
    pd.DataFrame({"underlying": [u], "holding": [-round(by0.loc[u, "delta"])]}).to_csv(hedges, index=False)
    out = tmp_path / "b"
    result = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(out),
                     "--valuation-date", VAL, "--scenarios", "spot=-0.1;0;0.1", "--hedges", str(hedges), "--strategy", "band",
                     "--band", "0.05", "--backend", "numpy")  # fmt: skip
    assert result.exit_code == 0, result.output
    ladder = pd.read_parquet(out / "ladder.parquet")
    assert sorted(ladder["spot_shock"].unique()) == [-0.1, 0.0, 0.1] and (ladder["vol_shock"] == 0).all()
    trades = pd.read_parquet(out / "trades.parquet").set_index("underlying")
    assert trades.loc[u, "trade"] == 0  # already hedged: inside the band
    none = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(tmp_path / "c"),
                   "--valuation-date", VAL, "--scenarios", "none", "--backend", "numpy")  # fmt: skip
    assert none.exit_code == 0, none.output
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["scenarios"] == 0


def _run_default(book_dir: Path, out: Path, *args: str) -> Path:
    result = _invoke("risk", str(book_dir / "book.parquet"), "--market", str(book_dir / "market.csv"), "--out", str(out),
                     "--valuation-date", VAL, "--backend", "numpy", *args)  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


BAD = {  # position_id -> (column, value, words of the reason)
    "7": ("strike", "-5", "strike must be"),
    "11": ("option_type", "X", "unknown option_type"),
    "13": ("underlying", "NOPE", "not in the market data"),
    "17": ("expiry", "2025-12-19", "expired"),
    "19": ("vol", "-0.2", "vol must be"),
    "23": ("quantity", "", "quantity is missing"),
}


def _bad_csv(tmp_path: Path) -> tuple[Path, Path]:
    book, market = generate_book(40, n_underlyings=3, seed=2, valuation_date=VAL)
    book = book.astype({"underlying": str, "option_type": str, "expiry": str, "quantity": object, "strike": object, "vol": object})
    book["expiry"] = book["expiry"].str[:10]
    for pid, (col, value, _) in BAD.items():
        book.loc[book["position_id"] == int(pid), col] = value
    path = tmp_path / "book.csv"
    book.to_csv(path, index=False)
    mpath = tmp_path / "market.csv"
    market.to_csv(mpath, index=False)
    return path, mpath


def test_skip_sets_each_bad_row_aside_with_its_reason(tmp_path):
    path, mpath = _bad_csv(tmp_path)
    out = tmp_path / "out"
    result = _invoke("risk", str(path), "--market", str(mpath), "--out", str(out), "--valuation-date", VAL, "--on-invalid", "skip",
                     "--backend", "numpy")  # fmt: skip
    assert result.exit_code == 0, result.output
    invalid = pd.read_parquet(out / "invalid.parquet").set_index("position_id")
    assert sorted(invalid.index) == sorted(BAD)
    for pid, (col, _, words) in BAD.items():
        assert invalid.loc[pid, "column"] == col and words in invalid.loc[pid, "reason"], (pid, invalid.loc[pid].to_dict())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_read"] == 40 and summary["rows_invalid"] == len(BAD) and summary["rows_valid"] == 40 - len(BAD)
    assert "6 invalid row(s) set aside" in result.output


def test_raise_exits_1_naming_the_position(tmp_path):
    path, mpath = _bad_csv(tmp_path)
    result = _invoke("risk", str(path), "--market", str(mpath), "--out", str(tmp_path / "out"), "--valuation-date", VAL,
                     "--backend", "numpy")  # fmt: skip
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "error" in result.output
    assert "position_id 7 " in result.output and "strike" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenarios", "spot=oops"], "scenario spec"),
        (["--on-invalid", "ignore"], "on_invalid"),
        (["--strategy", "gamma"], "--strategy"),
    ],
)
def test_risk_errors_are_clean(small_book, tmp_path, args, words):
    result = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(tmp_path / "o"),
                     "--valuation-date", VAL, "--backend", "numpy", *args)  # fmt: skip
    assert result.exit_code != 0 and "Traceback" not in result.output and words in result.output, result.output


def test_missing_files_and_dates_exit_1(small_book, tmp_path):
    for args, words in (
        ([str(tmp_path / "nope.parquet"), "--market", str(small_book / "market.csv")], "no such file"),
        ([str(small_book / "book.parquet"), "--market", str(tmp_path / "nope.csv")], "nope.csv"),
        ([str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--valuation-date", "2030-01-01"], "expired"),
    ):
        result = _invoke("risk", *args, "--out", str(tmp_path / "o"), "--backend", "numpy")
        assert result.exit_code == 1 and "Traceback" not in result.output and words in result.output, result.output
    result = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and "valuation" in result.output  # expiry holds dates


def test_generator_shape_matches_the_real_chain():
    """Bands around the SPX 2023-09-14 figures of gpu_hedge._book.generate's docstring."""
    book, market = generate_book(200_000, seed=0, valuation_date=VAL)
    for weight in ("contracts", "rows"):
        s = book_shape(book, market, VAL, weight=weight)
        assert 0.24 <= s["within_5pct"] <= 0.36, s  # SPX 0.30
        assert 0.38 <= s["within_10pct"] <= 0.52, s  # SPX 0.44
        assert 0.62 <= s["within_20pct"] <= 0.78, s  # SPX 0.69
        assert 1.7 <= s["put_call_ratio"] <= 2.4, s  # SPX 2.06
        assert s["otm_put_share"] >= 0.85, s  # SPX 0.92
        assert 0.45 <= s["otm_call_share"] <= 0.65, s  # SPX 0.55
        assert 0.25 <= s["expiry_30d"] <= 0.45, s  # SPX 0.37
        assert 0.45 <= s["expiry_91d"] <= 0.65, s  # SPX 0.55
        assert 0.88 <= s["expiry_365d"] <= 0.98, s  # SPX 0.94
        assert s["top5_underlyings"] >= 0.5, s  # a few large underlyings carry most positions
    # Round strikes are more popular: per underlying, multiples of 10 ticks hold far more than 1/10.
    k = book.loc[book["underlying"] == "UND001", "strike"]
    assert ((k % 50) == 0).mean() > 0.6 and ((k % 100) == 0).mean() > 0.45  # UND001: tick 5, like SPX


def test_generator_schema_and_calendar():
    book, market = generate_book(20_000, n_underlyings=12, seed=4, valuation_date=VAL)
    assert list(book.columns) == ["position_id", "underlying", "option_type", "strike", "expiry", "quantity", "multiplier", "vol"]
    assert book["position_id"].dtype == np.int64 and (book["position_id"] == np.arange(len(book))).all()
    assert set(book["option_type"].astype(str)) == {"C", "P"} and (book["quantity"] != 0).all() and (book["multiplier"] == 100).all()
    assert (book["strike"] > 0).all() and set(book["underlying"].astype(str)) <= set(market["underlying"])
    assert (book["expiry"] > pd.Timestamp(VAL)).all() and (book["expiry"] <= pd.Timestamp(VAL) + pd.Timedelta(days=3 * 366)).all()
    assert 0.07 <= book["vol"].isna().mean() <= 0.13 and book["vol"].min() >= 0.05 and book["vol"].max() <= 1.5
    assert list(market.columns) == ["underlying", "spot", "vol", "rate", "div"] and len(market) == 12
    cal = expiry_calendar(VAL)
    fridays = pd.to_datetime(cal["expiry"]).dt.day_of_week == 4
    assert fridays.all() and set(cal["kind"]) == {"weekly", "monthly", "quarterly", "leaps"}
    third = cal[cal["kind"] != "weekly"]["expiry"].dt.day
    assert third.between(15, 21).all()  # third Fridays
    assert cal["weight"].sum() == pytest.approx(1.0)


def test_generator_is_deterministic_by_seed(tmp_path):
    a, ma = generate_book(3000, seed=9)
    b, mb = generate_book(3000, seed=9)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ma, mb)
    c, _ = generate_book(3000, seed=10)
    assert not a["strike"].equals(c["strike"])
    p1 = write_book(a, ma, tmp_path / "one")[0]
    p2 = write_book(b, mb, (tmp_path / "two.parquet", tmp_path / "two.csv"))[0]
    pd.testing.assert_frame_equal(pd.read_parquet(p1), pd.read_parquet(p2))
    with pytest.raises(ValueError, match="n_positions"):
        generate_book(-1)


def test_demo_runs_small():
    result = _invoke("demo", "--n", "3000", "--seed", "1", "--backend", "numpy")
    assert result.exit_code == 0, result.output
    for words in ("3,000 positions", "P&L ladder of UND001", "-20%", "+10 pt", "Proposed hedge trades", "positions/s"):
        assert words in result.output, words


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed is not installed")
def test_dask_workers_give_the_same_totals(small_book, tmp_path):
    local = pd.read_parquet(_run_default(small_book, tmp_path / "local", "--chunk-rows", "2000") / "by_underlying.parquet")
    out = tmp_path / "dask"
    result = _invoke("risk", str(small_book / "book.parquet"), "--market", str(small_book / "market.csv"), "--out", str(out),
                     "--valuation-date", VAL, "--backend", "numpy", "--chunk-rows", "2000", "--dask-workers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Dask workers" in " ".join(result.output.split())  # Rich wraps long lines at a space
    dask = pd.read_parquet(out / "by_underlying.parquet")
    pd.testing.assert_frame_equal(local, dask, check_exact=True)  # partitions combined in order: the same float sums
