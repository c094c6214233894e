"""The gpu-hedge command: demo totals against an independent SciPy recomputation, and clean errors."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr
from typer.testing import CliRunner

import gpu_hedge
from gpu_hedge._book import demo_book, generate_book
from gpu_hedge.cli import app

runner = CliRunner()


def _bsm(S, K, T, v, r, q, call):
    """Textbook BSM price, delta, vega, theta (per year) written independently of gpu_hedge."""
    sqrtT = np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * v * v) * T) / (v * sqrtT)
    d2 = d1 - v * sqrtT
    s = np.where(call, 1.0, -1.0)
    dq, dr = np.exp(-q * T), np.exp(-r * T)
    pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    price = s * (S * dq * ndtr(s * d1) - K * dr * ndtr(s * d2))
    delta = s * dq * ndtr(s * d1)
    gamma = dq * pdf / (S * v * sqrtT)
    vega = S * dq * pdf * sqrtT
    theta = -S * dq * pdf * v / (2 * sqrtT) + s * (q * S * dq * ndtr(s * d1) - r * K * dr * ndtr(s * d2))
    rho = s * K * T * dr * ndtr(s * d2)
    return {"price": price, "delta": delta, "gamma": gamma, "vega": vega, "theta": theta, "rho": rho}


def _number(output: str, label: str) -> float:
    m = re.search(re.escape(label) + r"[^\d\n-]*(-?[\d,]+\.\d+)", output)
    assert m, f"{label!r} not found in output:\n{output}"
    return float(m.group(1).replace(",", ""))


def test_demo_totals_match_independent_recomputation():
    n, seed = 2000, 3
    result = runner.invoke(app, ["demo", "--n", str(n), "--seed", str(seed), "--backend", "numpy"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "numpy" in out and "2,000 positions" in out and "positions/s" in out
    assert "P&L ladder of" in out and "Proposed hedge trades" in out

    book, market = generate_book(n, seed=seed, valuation_date="2026-01-02")
    mk = market.set_index("underlying").loc[book["underlying"].astype(str)]
    T = (book["expiry"] - np.datetime64("2026-01-02")).dt.days.to_numpy() / 365.0
    vol = book["vol"].fillna(pd.Series(mk["vol"].to_numpy(), index=book.index)).to_numpy()
    S = mk["spot"].to_numpy()
    g = _bsm(S, book["strike"].to_numpy(), T, vol, mk["rate"].to_numpy(), mk["div"].to_numpy(), (book["option_type"] == "C").to_numpy())
    w = (book["quantity"] * book["multiplier"]).to_numpy(dtype=float)
    expected = {
        "Position value": math.fsum(w * g["price"]),
        "Dollar delta": math.fsum(w * g["delta"] * S),
        "Dollar gamma (1%)": math.fsum(w * g["gamma"] * S * S / 100),
        "Vega per vol point": math.fsum(w * g["vega"] / 100),
        "Theta per day": math.fsum(w * g["theta"] / 365),
        "Rho": math.fsum(w * g["rho"]),
    }
    for label, want in expected.items():
        got = _number(out, label)
        assert got == pytest.approx(want, rel=1e-9, abs=0.006), label  # printed to 2 decimals

    # Top underlying by |dollar delta| is the one an independent groupby finds.
    dd = pd.Series(w * g["delta"] * S).groupby(book["underlying"].astype(str).to_numpy()).sum()
    top = dd.abs().idxmax()
    top_table = out[out.index("underlyings by |dollar delta|") :]
    first_row = re.search(r"│\s*(UND\d+)\s*│", top_table)
    assert first_row and first_row.group(1) == top


@pytest.mark.skipif("cupy" in gpu_hedge.available_backends(), reason="CuPy can run here")
def test_demo_cupy_without_gpu_fails_cleanly():
    result = runner.invoke(app, ["demo", "--n", "100", "--backend", "cupy"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "cupy" in result.output.lower() and "cannot run here" in result.output
    assert not isinstance(result.exception, gpu_hedge.BackendUnavailableError)


def test_demo_rejects_unknown_backend_and_dtype():
    for args in (["--backend", "tpu"], ["--dtype", "float16"]):
        result = runner.invoke(app, ["demo", "--n", "10", *args])
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "error" in result.output


def test_help_and_backends():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "demo" in result.output and "backends" in result.output
    result = runner.invoke(app, ["backends"])
    assert result.exit_code == 0 and "numpy" in result.output and "auto" in result.output


def test_demo_book_is_seeded_and_realistic():
    a, b = demo_book(5000, seed=7), demo_book(5000, seed=7)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["strike"], demo_book(5000, seed=8)["strike"])
    m = a["strike"] / a["spot"]
    assert m.min() >= 0.6 - 1e-12 and m.max() <= 1.4 + 1e-12
    assert a["expiry"].min() >= 1 / 365 - 1e-12 and a["expiry"].max() <= 3.0
    assert a["vol"].min() >= 0.10 and a["vol"].max() <= 0.80
    assert a["call"].dtype == bool and (a["multiplier"] == 100).all() and (a["quantity"] != 0).all()
    assert 40 <= np.unique(a["underlying"]).size <= 50
    spots = {int(u): set(a["spot"][a["underlying"] == u]) for u in np.unique(a["underlying"])}
    assert all(len(s) == 1 for s in spots.values())  # one spot per underlying
