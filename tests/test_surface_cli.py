"""``gpu-hedge surface``: a real quote file in, a fitted surface (Parquet) and a smile plot out; clear errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from gpu_hedge._surface import VolSurface
from gpu_hedge.cli import app
from tests.conftest import SHARED_DATA

runner = CliRunner()
AGILENT = SHARED_DATA / "agilent_A_eod_chain_2016-01-05_vendor_greeks.csv"


@pytest.mark.skipif(not AGILENT.exists(), reason="no ../shared/data Agilent chain here")
def test_surface_command_fits_saves_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "a.parquet", tmp_path / "a.png"
    res = runner.invoke(app, ["surface", str(AGILENT), "--out", str(out), "--plot", str(png), "--backend", "numpy"])
    assert res.exit_code == 0, res.output
    surf = VolSurface.load(out)
    p = surf.params
    assert len(p) == int(re.search(r"(\d+) slices, model svi", res.output).group(1)) >= 5
    assert p["butterfly_ok"].all() and surf.arbitrage_report()["g_min"].min() >= 0.0
    median = float(re.search(r"median ([0-9.]+)", res.output).group(1))
    assert median == pytest.approx(100 * p["rmse_vol"].median(), abs=1e-3)
    # the saved surface reproduces its own slices: the vol at a slice's forward is sqrt(w(0) / T)
    row = p.iloc[0]
    w0 = row["a"] + row["b"] * (-row["rho"] * row["m"] + np.hypot(row["m"], row["sigma"]))
    vol = surf.vol(np.array([row["forward"]]), np.array([row["expiry_years"]]), group=row["group"])
    assert float(np.asarray(vol)[0]) == pytest.approx(np.sqrt(w0 / row["expiry_years"]), rel=1e-10)
    assert png.exists() and png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "x.csv"], "the extension must be .parquet"),
        (["--out", "x.parquet", "--model", "sabr"], "expected svi or ssvi"),
        (["--out", "x.parquet", "--backend", "nope"], "unknown backend"),
    ],
)
def test_surface_command_errors_are_one_line(tmp_path, args, message):
    res = runner.invoke(app, ["surface", str(tmp_path / "missing.csv"), *args])
    assert res.exit_code != 0 and message in res.output


def test_surface_command_names_an_unreadable_file(tmp_path):
    res = runner.invoke(app, ["surface", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "x.parquet")])
    assert res.exit_code == 1 and "missing.csv" in res.output
