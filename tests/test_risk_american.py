"""American rows in the risk job (issue 16, point 6): the book's ``exercise`` column through
``gh.risk`` (positions, sums, ladder), ``ResidentBook``, Dask partitions, resume and ``gpu-hedge risk``.

The references are the public functions: American rows' Greeks are ``gh.greeks(..., exercise="american")``
row by row, their ladder P&L is ``gh.price(..., exercise="american")`` at the shifted inputs minus
at the base ones; European rows must be exactly what an all-European run gives.

JAX compiles the American kernel once per (Greeks asked, shape): about 30 s on a CPU. So on a
compiling backend the book's American rows are bsm only, the ladder short, and the same-backend
reference is asked for on rows padded to the shape the job sends (one compile serves both).
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge._book import ResidentBook
from gpu_hedge._book.american_rows import AMERICAN_OUTPUTS
from gpu_hedge._book.batches import device_size
from gpu_hedge._book.store import fingerprint

MARKET = pd.DataFrame(
    {
        "underlying": ["AAA", "BBB", "FUT"],
        "spot": [100.0, 95.0, 102.0],
        "vol": [0.20, 0.30, 0.18],
        "rate": [0.03, 0.06, 0.04],
        "div": [0.01, 0.04, 0.5],  # FUT is a futures price: black76 ignores its div
    }
)
SCEN = "spot=-0.1;0;0.15,vol=-0.05;0.05"
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")


def _compiling(bk: str) -> bool:
    return "jit" in gh.get_backend(bk).capabilities


def make_book(n: int = 240, seed: int = 3, american_futures: bool = True) -> pd.DataFrame:
    """Calls and puts on two stocks and a futures; exercise spelt every way (None = European)."""
    rng = np.random.default_rng(seed)
    und = rng.choice(["AAA", "BBB", "FUT"], n)
    words = rng.choice(["american", "American", "AMERICAN", "european", "European", None], n)
    if not american_futures:
        words = np.where(und == "FUT", "european", words)
    return pd.DataFrame(
        {
            "position_id": [f"A{i:04d}" for i in range(n)],
            "underlying": und,
            "option_type": rng.choice(["C", "P"], n),
            "strike": np.round(100.0 * np.exp(rng.normal(0.0, 0.25, n)), 2),
            "expiry_years": rng.uniform(0.02, 2.0, n),
            "quantity": rng.integers(-20, 21, n).astype(float),
            "multiplier": np.where(rng.random(n) < 0.2, 10.0, np.nan),
            "vol": np.where(rng.random(n) < 0.5, rng.uniform(0.1, 0.6, n), np.nan),
            "model": np.where(und == "FUT", "black76", "bsm"),
            "exercise": words,
        }
    )


def _rows(book: pd.DataFrame) -> pd.DataFrame:
    """Each row's pricing inputs, read independently of the job."""
    mk = MARKET.set_index("underlying")
    und = book["underlying"].to_numpy()
    return pd.DataFrame(
        {
            "spot": mk.loc[und, "spot"].to_numpy(),
            "strike": book["strike"].to_numpy(dtype=float),
            "tau": book["expiry_years"].to_numpy(dtype=float),
            "vol": book["vol"].fillna(pd.Series(mk.loc[und, "vol"].to_numpy())).to_numpy(dtype=float),
            "rate": mk.loc[und, "rate"].to_numpy(),
            "div": mk.loc[und, "div"].to_numpy(),
            "call": (book["option_type"] == "C").to_numpy(),
            "model": book["model"].to_numpy(),
            "american": book["exercise"].fillna("european").str.lower().eq("american").to_numpy(),
            "weight": book["quantity"].to_numpy() * book["multiplier"].fillna(100.0).to_numpy(),
        }
    )


def _american_greeks(bk: str, rows: pd.DataFrame, method: str = "alo") -> dict[str, np.ndarray]:
    """``gh.greeks(..., exercise="american")`` of the American rows on ``bk``, per model, on rows padded
    to the job's device shape (a compiling backend then reuses the job's compiled kernel)."""
    out = {name: np.full(len(rows), np.nan) for name in AMERICAN_OUTPUTS}
    for model in ("bsm", "black76"):
        m = (rows["model"] == model).to_numpy() & rows["american"].to_numpy()
        k = int(m.sum())
        if not k:
            continue
        size = device_size(gh.get_backend(bk), k)
        cols = [np.resize(rows.loc[m, c].to_numpy(), size) for c in ("spot", "strike", "tau", "vol", "rate", "div", "call")]
        g = gh.greeks(*cols[:6], call=cols[6], model=model, greeks=AMERICAN_OUTPUTS, exercise="american", method=method, backend=bk)
        for name in AMERICAN_OUTPUTS:
            out[name][m] = np.asarray(g[name], dtype=float)[:k]
    return out


def _price(rows: pd.DataFrame, ds: float = 0.0, dv: float = 0.0) -> np.ndarray:
    """Every row's price at spot x (1 + ds), max(vol + dv, 0), by gh.price with the row's exercise."""
    out = np.empty(len(rows))
    for model in ("bsm", "black76"):
        m = (rows["model"] == model).to_numpy()
        c = {k: rows.loc[m, k].to_numpy() for k in ("spot", "strike", "tau", "vol", "rate", "div", "call", "american")}
        ex = np.where(c["american"], "american", "european")
        p = gh.price(c["spot"] * (1.0 + ds), c["strike"], c["tau"], np.maximum(c["vol"] + dv, 0.0), c["rate"], c["div"],
                     call=c["call"], model=model, exercise=ex, backend="numpy")  # fmt: skip
        out[m] = np.asarray(p, dtype=float)
    return out


@functools.cache
def _book(bk: str) -> pd.DataFrame:
    return make_book(american_futures=not _compiling(bk))


@functools.cache
def _run(bk: str) -> gh.RiskResult:
    return gh.risk(_book(bk), MARKET, scenarios=SCEN, backend=bk, chunk_rows=100)


def _close(actual, expected, scale, rel: float) -> None:
    err = np.abs(np.asarray(actual, dtype=float) - np.asarray(expected, dtype=float))
    assert np.all(err <= rel * np.asarray(scale, dtype=float) + 1e-300), f"max error / scale {np.max(err / np.maximum(scale, 1e-300)):.3g}"


# --- positions ------------------------------------------------------------------------------------------------------------------


def test_american_rows_are_priced_american_and_european_rows_unchanged(bk):
    book, r = _book(bk), _run(bk)
    rows = _rows(book)
    am = rows["american"].to_numpy()
    assert 60 < am.sum() < len(book) - 60
    pos = r.positions
    assert list(pos["position_id"]) == list(book["position_id"]) and len(r.invalid) == 0
    assert list(pos["exercise"]) == list(np.where(am, "american", "european"))
    ref = _american_greeks(bk, rows)
    for name in GREEKS:
        # the job solves each shared boundary once (american_shared): the same arithmetic, but a compiler
        # may round it differently, and the bumped Greeks' differences multiply that by 1 / bump (1e4)
        rel = 1e-12 if name in ("price", "delta", "gamma") else 1e-9
        atol = 1e-300 if rel == 1e-12 else rel * np.max(np.abs(ref[name][am]))
        np.testing.assert_allclose(pos.loc[am, name], ref[name][am], rtol=rel, atol=atol, err_msg=name)
        np.testing.assert_allclose(pos.loc[am, f"position_{name}" if name != "price" else "value"], ref[name][am] * rows["weight"][am],
                                   rtol=rel, atol=atol * np.max(np.abs(rows["weight"])), err_msg=name)  # fmt: skip
    np.testing.assert_array_equal(pos.loc[am, "early_exercise"], ref["early_exercise"][am] > 0.5)
    assert not pos.loc[~am, "early_exercise"].any()
    # the European rows: what a run without the exercise column gives, to the last bit
    euro = gh.risk(book.drop(columns="exercise"), MARKET, backend=bk, chunk_rows=100).positions
    assert (euro["exercise"] == "european").all()
    for name in GREEKS:
        np.testing.assert_array_equal(pos.loc[~am, name], euro.loc[~am, name], err_msg=name)
    # early exercise is worth something: American puts >= European, strictly for some
    puts = am & ~rows["call"].to_numpy()
    assert (pos.loc[puts, "price"].to_numpy() >= euro.loc[puts, "price"].to_numpy() - 1e-12).all()
    assert (pos.loc[puts, "price"].to_numpy() > euro.loc[puts, "price"].to_numpy() + 1e-6).any()


def test_sums_by_underlying_add_up(bk):
    r = _run(bk)
    pos = r.positions
    terms = pos.assign(**{n: pos[f"position_{n}"] for n in GREEKS[1:]})[["underlying", "value", *GREEKS[1:]]]
    sums, scale = terms.groupby("underlying").sum(), terms.groupby("underlying").agg(lambda s: s.abs().sum())
    by = r.by_underlying
    assert by["positions"].to_dict() == pos["underlying"].value_counts().to_dict()
    for col in ("value", *GREEKS[1:]):
        _close(by[col], sums.loc[by.index, col], scale.loc[by.index, col], 1e-12)


# --- the ladder -----------------------------------------------------------------------------------------------------------------


def test_ladder_of_american_rows_is_repricing_at_shifted_inputs(bk):
    book, r = _book(bk), _run(bk)
    rows = _rows(book)
    base = _price(rows)
    w = rows["weight"].to_numpy()
    for ds, dv in gh.Scenarios.parse(SCEN).pairs():
        pnl = pd.Series((_price(rows, ds, dv) - base) * w).groupby(book["underlying"].to_numpy())
        expected, scale = pnl.sum(), pnl.agg(lambda s: s.abs().sum())
        got = r.ladder[(r.ladder["spot_shock"] == ds) & (r.ladder["vol_shock"] == dv)].set_index("underlying")["pnl"]
        _close(got, expected.loc[got.index], np.maximum(scale.loc[got.index], 1.0), 1e-11)
    # one American row alone: its ladder is its own repricing, row by row
    one = book[rows["american"].to_numpy() & (book["underlying"] == "AAA").to_numpy()].head(1)
    r1 = gh.risk(one, MARKET, scenarios=SCEN, backend=bk)
    rows1 = _rows(one.reset_index(drop=True))
    for ds, dv in gh.Scenarios.parse(SCEN).pairs():
        got = float(r1.ladder.query("spot_shock == @ds and vol_shock == @dv")["pnl"].iloc[0])
        want = float((_price(rows1, ds, dv) - _price(rows1))[0] * rows1["weight"].iloc[0])
        assert got == pytest.approx(want, rel=1e-11, abs=1e-9)


def test_resident_book_equals_risk(bk):
    book, r = _book(bk), _run(bk)
    rb = ResidentBook(book, MARKET, backend=bk)
    by = rb.by_underlying()
    for col in r.by_underlying.columns:
        _close(by[col], r.by_underlying[col], np.abs(r.by_underlying[col]).max(), 1e-12)
    lad = rb.ladder(SCEN)
    pd.testing.assert_frame_equal(lad.drop(columns="pnl"), r.ladder.drop(columns="pnl"))
    _close(lad["pnl"], r.ladder["pnl"], np.abs(r.ladder["pnl"]).max(), 1e-12)


# --- validation, netting, resume, Dask, CLI (host-side: NumPy) -------------------------------------------------------------------


def test_bad_exercise_word_is_a_flagged_row():
    book = make_book(12, seed=5)
    book.loc[3, "exercise"] = "bermudan"
    book.loc[7, "exercise"] = " American "  # blanks and case are fine
    with pytest.raises(gh.BookError, match="bermudan"):
        gh.risk(book, MARKET, backend="numpy")
    r = gh.risk(book, MARKET, backend="numpy", on_invalid="skip")
    assert len(r.invalid) == 1 and len(r.positions) == 11
    bad = r.invalid.iloc[0]
    assert (bad["position_id"], bad["row"], bad["column"], bad["value"]) == ("A0003", 3, "exercise", "bermudan")
    assert "unknown exercise" in bad["reason"]
    assert r.positions.set_index("position_id").loc["A0007", "exercise"] == "american"


def test_exercise_is_part_of_the_netted_contract():
    """Two rows of the same contract, one European and one American, are priced apart (netting is on)."""
    base = make_book(5, seed=9).assign(option_type="P", exercise="european", model="bsm", underlying="BBB")
    book = pd.concat([base, base.assign(exercise="american", position_id=base["position_id"] + "x")], ignore_index=True)
    pos = gh.risk(book, MARKET, backend="numpy").positions
    eu, am = pos["price"].to_numpy()[:5], pos["price"].to_numpy()[5:]
    assert (am > eu + 1e-6).all()
    rows = _rows(book)
    np.testing.assert_allclose(am, _price(rows)[5:], rtol=1e-12)


def test_resume_sees_the_exercise_column(tmp_path):
    book = make_book(60, seed=2)
    path = tmp_path / "book.parquet"
    book.to_parquet(path)
    first = gh.risk(path, MARKET, backend="numpy", out=tmp_path / "out", chunk_rows=30)
    again = gh.risk(path, MARKET, backend="numpy", out=tmp_path / "out", chunk_rows=30, keep_positions=True)
    assert again.summary["partitions_resumed"] == 2
    assert list(again.positions["exercise"]) == list(np.where(_rows(book)["american"], "american", "european"))
    pd.testing.assert_frame_equal(first.by_underlying, again.by_underlying)
    before = fingerprint(path)
    book.assign(exercise="european").to_parquet(path)  # only the exercise column changes
    assert fingerprint(path) != before
    third = gh.risk(path, MARKET, backend="numpy", out=tmp_path / "out", chunk_rows=30)
    assert third.summary["partitions_resumed"] == 0
    assert not np.allclose(third.by_underlying["value"], first.by_underlying["value"])


def test_dask_partitions_price_american_rows():
    distributed = pytest.importorskip("dask.distributed")
    book = make_book(90, seed=4)
    kw = dict(scenarios=SCEN, backend="numpy", chunk_rows=30)
    ref = gh.risk(book, MARKET, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        r = gh.risk(book, MARKET, dask=client, **kw)
    assert (r.positions["exercise"] == "american").any()
    pd.testing.assert_frame_equal(r.positions, ref.positions)
    pd.testing.assert_frame_equal(r.by_underlying, ref.by_underlying)
    pd.testing.assert_frame_equal(r.ladder, ref.ladder)


def test_cli_risk_on_a_csv_with_an_exercise_column(tmp_path):
    from gpu_hedge.cli import app

    book = make_book(40, seed=6)
    book.to_csv(tmp_path / "book.csv", index=False)
    MARKET.to_csv(tmp_path / "market.csv", index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["risk", str(tmp_path / "book.csv"), "--market", str(tmp_path / "market.csv"), "--out", str(out),
                                      "--scenarios", SCEN, "--backend", "numpy", "--no-progress"], env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    pos = pd.read_parquet(out / "positions.parquet")
    assert (pos["exercise"] == "american").sum() == _rows(book)["american"].sum()
    ref = gh.risk(book, MARKET, backend="numpy", scenarios=SCEN)
    np.testing.assert_allclose(pd.read_parquet(out / "by_underlying.parquet").set_index("underlying")["delta"], ref.by_underlying["delta"],
                               rtol=1e-12)  # fmt: skip


def test_exercise_argument_overrides_the_column():
    # exercise="american" prices every row American, whatever the column says (or without one);
    # "european" every row European; the reference is a book whose column says so on every row
    book = make_book(60, seed=8)
    kw = dict(scenarios=SCEN, backend="numpy")
    all_am = gh.risk(book.assign(exercise="american"), MARKET, **kw)
    all_eu = gh.risk(book.drop(columns="exercise"), MARKET, **kw)
    for override, ref in (("american", all_am), ("european", all_eu)):
        for frame in (book, book.drop(columns="exercise")):
            r = gh.risk(frame, MARKET, exercise=override, **kw)
            assert (r.positions["exercise"] == override).all()
            pd.testing.assert_frame_equal(r.by_underlying, ref.by_underlying)
            pd.testing.assert_frame_equal(r.ladder, ref.ladder)
    with pytest.raises(ValueError, match="exercise = 'bermudan'"):
        gh.risk(book, MARKET, exercise="bermudan", backend="numpy")


def test_cli_risk_exercise_option(tmp_path):
    from gpu_hedge.cli import app

    book = make_book(30, seed=9).drop(columns="exercise")
    book.to_csv(tmp_path / "book.csv", index=False)
    MARKET.to_csv(tmp_path / "market.csv", index=False)
    base = ["risk", str(tmp_path / "book.csv"), "--market", str(tmp_path / "market.csv"), "--scenarios", "none", "--backend", "numpy",
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "out"), "--exercise", "american"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    pos = pd.read_parquet(tmp_path / "out" / "positions.parquet")
    assert (pos["exercise"] == "american").all()
    ref = gh.risk(book, MARKET, backend="numpy", scenarios=None, exercise="american")
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "out" / "by_underlying.parquet").set_index("underlying")["delta"],
                               ref.by_underlying["delta"], rtol=1e-12)  # fmt: skip
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "bad"), "--exercise", "asian"], env={"COLUMNS": "200"})
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "exercise" in bad.output
    fast = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "fast"), "--exercise", "american", "--american-method", "alo-fast"],
                              env={"COLUMNS": "200"})  # fmt: skip
    assert fast.exit_code == 0, fast.output
    ref = gh.risk(book, MARKET, backend="numpy", scenarios=None, exercise="american", american_method="alo-fast")
    np.testing.assert_allclose(pd.read_parquet(tmp_path / "fast" / "positions.parquet")["price"], ref.positions["price"], rtol=1e-12)
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "bad2"), "--american-method", "tree"], env={"COLUMNS": "200"})
    assert bad.exit_code != 0 and "Traceback" not in bad.output and "american_method" in bad.output


def test_american_method_alo_fast_reaches_the_job_and_resident_book():
    """american_method="alo-fast": the job's American rows are gh.greeks(method="alo-fast") (not the
    default's values), within 1e-6 of the default; ResidentBook and resume follow it; a bad name is refused."""
    book = _book("numpy")
    rows, am = _rows(book), _rows(book)["american"].to_numpy()
    fast = gh.risk(book, MARKET, scenarios=SCEN, backend="numpy", chunk_rows=100, american_method="alo-fast")
    ref, dflt = _american_greeks("numpy", rows, "alo-fast"), _run("numpy").positions
    pos = fast.positions
    np.testing.assert_allclose(pos.loc[am, "price"], ref["price"][am], rtol=1e-12)
    np.testing.assert_allclose(pos.loc[am, "delta"], ref["delta"][am], rtol=1e-12, atol=1e-15)
    diff = np.abs(pos.loc[am, "price"].to_numpy() - dflt.loc[am, "price"].to_numpy()) / dflt.loc[am, "price"].to_numpy()
    assert 0 < diff.max() < 1e-6
    np.testing.assert_array_equal(pos.loc[~am, "price"], dflt.loc[~am, "price"])
    rb = gh.ResidentBook(book, MARKET, backend="numpy", american_method="alo-fast")
    np.testing.assert_allclose(rb.by_underlying()["delta"], fast.by_underlying.loc[rb.by_underlying().index, "delta"], rtol=1e-12)
    rb.update_market(MARKET)
    assert rb.market.american_method == "alo-fast"
    with pytest.raises(gh.BookError, match="american_method 'alo-slow'"):
        gh.risk(book, MARKET, backend="numpy", american_method="alo-slow")


def test_resume_does_not_mix_american_methods(tmp_path):
    book = _book("numpy")
    first = gh.risk(book, MARKET, backend="numpy", chunk_rows=100, out=tmp_path / "r")
    again = gh.risk(book, MARKET, backend="numpy", chunk_rows=100, out=tmp_path / "r", american_method="alo-fast")
    assert first.summary["partitions_resumed"] == 0 and again.summary["partitions_resumed"] == 0
    same = gh.risk(book, MARKET, backend="numpy", chunk_rows=100, out=tmp_path / "r", american_method="alo-fast")
    assert same.summary["partitions_resumed"] > 0
