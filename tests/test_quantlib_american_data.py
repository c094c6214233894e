"""tests/quantlib_american.json (from tools/gen_quantlib_american.py) is well-formed and consistent.

Checks, without QuantLib: every row has its inputs in the documented ranges and finite prices;
American >= European (to 1e-12 relative), American >= intrinsic, calls with q = 0 equal the
European value to 1e-8; QuantLib's accurate scheme is within 1e-4 relative of the high-precision
one and Bjerksund-Stensland (1993, a lower bound) within a few per cent; a sample of rows agrees
with the independent binomial reference (tests/american_reference.py) to 2e-5 relative.
With QuantLib importable: a handful of rows are regenerated exactly.
"""

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from american_reference import tree  # noqa: E402

PATH = Path(__file__).with_name("quantlib_american.json")
DATA = json.loads(PATH.read_text())
ROWS = DATA["rows"]
ENGINES = ("qdfp_high_precision", "qdfp_accurate", "qdfp_default", "bjerksund_stensland", "european")


def col(name: str) -> np.ndarray:
    return np.array([row[name] for row in ROWS])


def test_header():
    assert DATA["quantlib_version"].startswith("1.")
    assert isinstance(DATA["seed"], int) and DATA["n"] == len(ROWS) >= 250
    assert set(DATA["engines"]) == set(ENGINES)
    assert "highPrecisionScheme" in DATA["engines"]["qdfp_high_precision"]


def test_rows_well_formed_and_in_range():
    for row in ROWS:
        assert row["T"] == row["days"] / 365.0
        assert 1 <= row["days"] <= 5 * 365
        assert 0.05 <= row["vol"] <= 1.5 and 0.0 <= row["r"] <= 0.10 and 0.0 <= row["q"] <= 0.10
        sd = row["vol"] * math.sqrt(row["T"])
        assert abs(math.log(row["S"] / row["K"])) <= 4.0 * sd * (1 + 1e-12)
        assert all(math.isfinite(row[e]) and row[e] >= 0.0 for e in ENGINES)
    days, call = col("days"), col("call")
    assert days.min() == 1 and days.max() == 5 * 365 and (days <= 30).sum() >= 30
    assert 0.4 < call.mean() < 0.6 and ((col("q") == 0) & call).sum() >= 5


def test_american_bounds():
    am, eu = col("qdfp_high_precision"), col("european")
    S, K, call = col("S"), col("K"), col("call")
    intrinsic = np.maximum(np.where(call, S - K, K - S), 0.0)
    assert np.all(am >= eu - 1e-12 * np.maximum(1.0, eu))
    assert np.all(am >= intrinsic - 1e-12 * np.maximum(1.0, intrinsic))
    put = ~call
    assert np.all(am[put] >= (K - S)[put] - 1e-12 * K[put])
    assert np.any(am - eu > 1.0)  # the set has real early-exercise premia


def test_call_without_dividends_is_european():
    m = col("call") & (col("q") == 0.0)
    am, eu = col("qdfp_high_precision")[m], col("european")[m]
    assert np.all(np.abs(am - eu) <= 1e-8 * np.maximum(1.0, eu))


def test_engines_agree_as_expected():
    hp, acc, bjs = col("qdfp_high_precision"), col("qdfp_accurate"), col("bjerksund_stensland")
    big = hp > 1e-3 * col("K")
    assert np.max(np.abs(acc[big] / hp[big] - 1)) < 1e-4
    assert np.max(np.abs(bjs[big] / hp[big] - 1)) < 0.1
    assert np.all(bjs <= hp * (1 + 1e-6) + 1e-9)  # Bjerksund-Stensland 1993: a lower bound


def test_sample_against_binomial_reference():
    idx = np.arange(0, len(ROWS), 25)
    args = [col(k)[idx] for k in ("S", "K", "T", "vol", "r", "q", "call")]
    got = tree(*args)["price"]
    hp = col("qdfp_high_precision")[idx]
    err = np.abs(got - hp) / np.maximum(hp, 1e-3 * col("K")[idx])
    assert err.max() < 2e-5, err.max()


@pytest.mark.skipif(importlib.util.find_spec("QuantLib") is None, reason="QuantLib not installed")
def test_rows_reproduced_by_quantlib():
    import QuantLib as ql

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from gen_quantlib_american import INPUTS, option_set, price_row

    assert option_set(DATA["n"], DATA["seed"]) == [{k: r[k] for k in INPUTS} for r in ROWS]
    same_version = ql.__version__ == DATA["quantlib_version"]
    for row in ROWS[::60]:
        new = price_row(ql, row)
        for e in ENGINES:
            if same_version:
                assert new[e] == pytest.approx(row[e], rel=1e-13, abs=1e-14), e
            else:
                assert new[e] == pytest.approx(row[e], rel=1e-6, abs=1e-9), e
