"""ResidentBook: a book read once and re-run as the market moves; slices halve on device OOM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_hedge._book.resident import ResidentBook
from gpu_hedge._book.risk import risk


def _book(n=3000, seed=3):
    rng = np.random.default_rng(seed)
    und = rng.choice(["AAA", "BBB", "CCC"], n)
    spot = pd.Series({"AAA": 50.0, "BBB": 120.0, "CCC": 900.0})
    book = pd.DataFrame(
        {
            "position_id": np.arange(n),
            "underlying": und,
            "option_type": rng.choice(["C", "P", "call", "put"], n),
            "strike": np.round(spot[und].to_numpy() * rng.uniform(0.7, 1.3, n), 1),
            "expiry_years": rng.uniform(0.02, 2.0, n),
            "quantity": rng.integers(-50, 50, n),
            "vol": np.where(rng.random(n) < 0.5, rng.uniform(0.1, 0.6, n), np.nan),
            "model": np.where(rng.random(n) < 0.1, "black76", "bsm"),
        }
    )
    market = pd.DataFrame(
        {"underlying": spot.index, "spot": spot.to_numpy(), "vol": [0.25, 0.3, 0.2], "rate": 0.03, "div": [0.0, 0.01, 0.02]}
    )
    return book, market


def test_resident_results_equal_the_streaming_job(bk):
    book, market = _book()
    rb = ResidentBook(book, market, backend=bk)
    # the full 9 x 5 ladder on NumPy; a short one on JAX, whose CPU compile of 45 fused scenarios is slow
    spec = "default" if bk == "numpy" else "spot=-0.2;0.1,vol=-0.1;0.05"
    ref = risk(book, market, scenarios=spec, backend=bk, chunk_rows=700)
    np.testing.assert_allclose(rb.by_underlying().to_numpy(float), ref.by_underlying.to_numpy(float), rtol=1e-12, atol=1e-9)
    lad = rb.ladder(spec)
    assert list(lad.columns) == list(ref.ladder.columns) and len(lad) == (45 if bk == "numpy" else 4) * 3
    np.testing.assert_allclose(lad["pnl"], ref.ladder["pnl"], rtol=1e-11, atol=1e-8)


def test_a_new_market_reprices_without_rereading_the_book(bk):
    book, market = _book()
    rb = ResidentBook(book, market, backend=bk)
    moved = market.assign(spot=market["spot"] * [1.02, 0.97, 1.0], vol=market["vol"] + 0.01)
    rb.update_market(moved.iloc[::-1])  # any row order
    ref = risk(book, moved, backend=bk)
    np.testing.assert_allclose(rb.by_underlying()["delta"], ref.by_underlying["delta"], rtol=1e-12)
    with pytest.raises(ValueError, match="'AAA'"):
        rb.update_market(moved.iloc[1:])


def test_slices_halve_on_out_of_memory_and_the_result_is_unchanged(monkeypatch):
    book, market = _book(2000)
    rb = ResidentBook(book, market, backend="numpy", slice_rows=2000)
    expected = rb.by_underlying()
    bk = rb.bk
    real = bk.elementwise
    sizes = []

    def flaky(kernel, arrays, names, dtype, key=None, native=None):
        n = int(np.shape(arrays[1])[0])
        sizes.append(n)
        if n > 600:
            raise MemoryError("Unable to allocate 123 bytes")  # what NumPy raises
        return real(kernel, arrays, names, dtype, key, native)

    monkeypatch.setattr(bk, "elementwise", flaky)
    got = rb.by_underlying()
    assert max(s for s in sizes if s <= 600) <= 600 and any(s > 600 for s in sizes)
    np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-12)


def test_invalid_rows_raise_or_are_kept_aside():
    book, market = _book(50)
    book.loc[7, "strike"] = -1.0
    with pytest.raises(ValueError, match="position_id 7"):
        ResidentBook(book, market, backend="numpy")
    rb = ResidentBook(book, market, backend="numpy", on_invalid="skip")
    assert rb.n == 49 and rb.invalid["position_id"].tolist() == ["7"]


def test_docstring_examples_run():
    import doctest

    import gpu_hedge._book.resident as mod

    failures, tried = doctest.testmod(mod)
    assert tried > 0 and failures == 0
