"""``gpu-hedge hedge-gain``: Hull-White's real-marks study from the command line, on the SPXW 2018 file."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gpu_hedge.cli import app
from tests.conftest import SHARED_DATA

runner = CliRunner()
SPXW = SHARED_DATA / "spxw_eod_chain_2018-01_2018-02_vendor_greeks.csv"
needs_data = pytest.mark.skipif(not SPXW.exists(), reason="no ../shared/data SPXW 2018 file here")


@needs_data
def test_walk_forward_gain_table_and_plot(tmp_path):
    """The table written is the study's (same pairs, same gains), and the walk-forward MV delta beats
    BS on the calls of the Feb-2018 spike while the sticky-moneyness delta loses (an equity skew)."""
    import gpu_hedge as gh
    import gpu_hedge.io as gio

    pytest.importorskip("matplotlib")
    out, png = tmp_path / "gain.csv", tmp_path / "gain.png"
    res = runner.invoke(app, ["hedge-gain", str(SPXW), "--split", "expanding", "--out", str(out), "--plot", str(png), "--backend", "numpy"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out).set_index(["option", "bucket"])
    direct = gh.hedge_gain_study(gio.read_quotes(SPXW), surfaces="fit", split="expanding").table
    assert list(table.index) == list(direct.index) and len(table) == 27
    np.testing.assert_array_equal(table["n"].to_numpy(), direct["n"].to_numpy())
    for col in ("rms_bs", "gain_mv", "gain_mv_in", "gain_smile"):
        np.testing.assert_allclose(table[col].to_numpy(), direct[col].to_numpy(), rtol=1e-12, err_msg=col)
    text = " ".join(res.output.split())  # Rich wraps lines at the terminal's width
    n_pairs = int(re.search(r"([\d,]+) one-day pairs", text).group(1).replace(",", ""))
    assert n_pairs == int(direct.loc[("all", "all"), "n"]) > 3000
    assert table.loc[("calls", "all"), "gain_mv"] > 0.3 and table.loc[("all", "all"), "gain_smile"] < 0
    assert f"{100 * table.loc[('calls', 'all'), 'gain_mv']:+.1f} %" in text
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--split", "daily"], "--split 'daily': expected one of month, expanding"),
        (["--surfaces", "ssvi"], "--surfaces 'ssvi': expected one of fit, none"),
        (["--iv", "mine"], "--iv 'mine': expected one of ours, vendor"),
        (["--out", "gain.xlsx"], "--out gain.xlsx: the extension must be .csv or .parquet"),
    ],
)
def test_bad_options_are_refused_before_any_work(args, message, tmp_path):
    res = runner.invoke(app, ["hedge-gain", str(tmp_path / "missing.csv"), *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split())


def test_a_missing_file_is_one_line(tmp_path):
    res = runner.invoke(app, ["hedge-gain", str(tmp_path / "missing.csv"), "--surfaces", "none"])
    assert res.exit_code == 1 and "missing.csv" in res.output
