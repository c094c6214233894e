"""The risk job on a fitted (SVI) vol surface: row vols, sticky-strike and sticky-moneyness ladders,
and the shadow delta, each checked against an independent computation with ``gh.price``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import gpu_hedge as gh
from gpu_hedge import BookError
from gpu_hedge._book import POSITION_COLUMNS
from gpu_hedge.cli import app

RATE, DIV = 0.02, 0.01
MARKET = pd.DataFrame({"underlying": ["AAA", "BBB"], "spot": [100.0, 50.0], "vol": [0.5, 0.4], "rate": RATE, "div": DIV})
BOOK = pd.DataFrame(
    {
        "position_id": [f"p{i}" for i in range(8)],
        "underlying": ["AAA"] * 6 + ["AAA", "BBB"],
        "option_type": ["C", "P", "C", "P", "C", "P", "C", "C"],
        "strike": [80.0, 90.0, 100.0, 110.0, 125.0, 95.0, 100.0, 50.0],
        "expiry_years": [0.3, 0.5, 0.1, 1.5, 2.5, 0.25, 0.5, 0.5],
        "quantity": [1.0, -2.0, 3.0, 1.0, -1.0, 2.0, 1.0, 1.0],
        "vol": [np.nan] * 6 + [0.33, np.nan],  # own vol wins; BBB has no group in the surface: flat 0.4
    }
)
SCEN = "spot=-0.1;-0.02;0;0.05,vol=0;0.03"


def _surface() -> gh.VolSurface:
    params = pd.DataFrame(
        {
            "group": ["AAA", "AAA", "AAA", "ZZZ"],  # ZZZ names no underlying of the market: ignored
            "expiry_years": [0.25, 1.0, 2.0, 0.5],
            "forward": [100.25, 101.0, 102.0, 50.0],
            "a": [0.005, 0.02, 0.045, 0.01],
            "b": [0.1, 0.12, 0.13, 0.1],
            "rho": [-0.6, -0.5, -0.45, -0.3],
            "m": [0.0, 0.02, 0.03, 0.0],
            "sigma": [0.1, 0.2, 0.25, 0.1],
        }
    )
    return gh.VolSurface.from_params(params, model="svi")


SURFACE = _surface()
ON = np.arange(6)  # the rows priced on the surface


def _price(spot, strike, tau, vol):
    call = (BOOK["option_type"] == "C").to_numpy()
    return np.asarray(gh.price(spot, strike, tau, vol, RATE, DIV, call=call, backend="numpy"), dtype=float)


def _row_vols(spot_scale: float = 1.0) -> np.ndarray:
    """Each row's vol after the spot is scaled by ``spot_scale`` under sticky moneyness (1: the base vols)."""
    K, T = BOOK["strike"].to_numpy(), BOOK["expiry_years"].to_numpy()
    vol = np.where(BOOK["underlying"] == "BBB", 0.4, BOOK["vol"].to_numpy())
    vol[ON] = SURFACE.vol(K[ON] / spot_scale, T[ON], group="AAA")
    return vol


def test_row_vols_are_the_surface_and_the_file_gives_the_same(bk, tmp_path):
    res = gh.risk(BOOK, MARKET, vol_surface=SURFACE, backend=bk)
    want = _row_vols()
    np.testing.assert_allclose(res.positions["vol"], want, rtol=1e-15)
    assert res.positions["vol"].iloc[6] == 0.33 and res.positions["vol"].iloc[7] == 0.4
    spot = MARKET.set_index("underlying").loc[BOOK["underlying"], "spot"].to_numpy()
    np.testing.assert_allclose(res.positions["price"], _price(spot, BOOK["strike"], BOOK["expiry_years"], want), rtol=1e-12)
    # sticky strike: the shadow delta is the BS delta
    np.testing.assert_array_equal(res.positions["shadow_delta"], res.positions["delta"])
    assert list(res.positions.columns[:6]) == ["position_id", "underlying", "vol", "price", "delta", "shadow_delta"]
    # saved by VolSurface.save, read back by its kind
    SURFACE.save(tmp_path / "s.parquet")
    again = gh.risk(BOOK, MARKET, vol_surface=str(tmp_path / "s.parquet"), backend=bk)
    pd.testing.assert_frame_equal(again.positions, res.positions)
    # no surface: the old columns only
    plain = gh.risk(BOOK, MARKET, backend=bk)
    assert "shadow_delta" not in plain.positions and "shadow_delta" not in plain.by_underlying
    assert tuple(plain.positions.columns) == POSITION_COLUMNS


def test_sticky_strike_and_moneyness_ladders(bk):
    strike = gh.risk(BOOK, MARKET, vol_surface=SURFACE, scenarios=SCEN, sticky="strike", backend=bk)
    money = gh.risk(BOOK, MARKET, vol_surface=SURFACE, scenarios=SCEN, sticky="moneyness", backend=bk)
    K, T = BOOK["strike"].to_numpy(), BOOK["expiry_years"].to_numpy()
    w = BOOK["quantity"].to_numpy() * 100.0
    spot = MARKET.set_index("underlying").loc[BOOK["underlying"], "spot"].to_numpy()
    base = _price(spot, K, T, _row_vols())
    for name, res, moving in (("strike", strike, False), ("moneyness", money, True)):
        for r in res.ladder.itertuples():
            rows = (BOOK["underlying"] == r.underlying).to_numpy()
            vol = _row_vols(1.0 + r.spot_shock) if moving else _row_vols()
            pnl = w * (_price(spot * (1.0 + r.spot_shock), K, T, np.maximum(vol + r.vol_shock, 0.0)) - base)
            assert r.pnl == pytest.approx(pnl[rows].sum(), rel=1e-11, abs=1e-9), (name, r)
    a, b = (
        strike.ladder.set_index(["underlying", "spot_shock", "vol_shock"]),
        money.ladder.set_index(["underlying", "spot_shock", "vol_shock"]),
    )
    moved = a.index.get_level_values("spot_shock") != 0
    on_aaa = a.index.get_level_values("underlying") == "AAA"
    assert (np.abs(a["pnl"] - b["pnl"])[moved & on_aaa] > 1.0).all()  # the smile moved: the AAA ladders differ
    np.testing.assert_allclose(a["pnl"][~(moved & on_aaa)], b["pnl"][~(moved & on_aaa)], rtol=1e-12, atol=1e-9)


def test_shadow_delta_is_the_spot_derivative_with_the_smile_moving(bk):
    res = gh.risk(BOOK, MARKET, vol_surface=SURFACE, sticky="moneyness", backend=bk)
    K, T = BOOK["strike"].to_numpy(), BOOK["expiry_years"].to_numpy()
    spot = MARKET.set_index("underlying").loc[BOOK["underlying"], "spot"].to_numpy()
    h = 1e-4
    up = _price(spot * (1 + h), K, T, _row_vols(1 + h))
    down = _price(spot * (1 - h), K, T, _row_vols(1 - h))
    fd = (up - down) / (2 * h * spot)
    np.testing.assert_allclose(res.positions["shadow_delta"], fd, rtol=1e-6)
    shadow, delta = res.positions["shadow_delta"].to_numpy(), res.positions["delta"].to_numpy()
    assert (np.abs(shadow[ON] - delta[ON]) > 1e-3).all()  # a negative skew: the shadow delta is not the BS delta
    np.testing.assert_array_equal(shadow[6:], delta[6:])  # own vol, no surface: BS delta
    by = res.by_underlying
    w = BOOK["quantity"].to_numpy() * 100.0
    aaa = (BOOK["underlying"] == "AAA").to_numpy()
    assert by.loc["AAA", "shadow_delta"] == pytest.approx((w * fd)[aaa].sum(), rel=1e-6)
    assert by.loc["AAA", "dollar_shadow_delta"] == pytest.approx(by.loc["AAA", "shadow_delta"] * 100.0, rel=1e-14)
    assert list(by.columns[by.columns.get_loc("delta") :][:2]) == ["delta", "shadow_delta"]


def test_cli_risk_on_a_saved_fitted_surface_sticky_moneyness(tmp_path):
    SURFACE.save(tmp_path / "surface.parquet")
    BOOK.to_parquet(tmp_path / "book.parquet")
    MARKET.to_csv(tmp_path / "market.csv", index=False)
    out = tmp_path / "out"
    args = ["risk", str(tmp_path / "book.parquet"), "--market", str(tmp_path / "market.csv"), "--out", str(out), "--backend", "numpy",
            "--vol-surface", str(tmp_path / "surface.parquet"), "--sticky", "moneyness", "--scenarios", "spot=-0.1;0.1"]  # fmt: skip
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    direct = gh.risk(BOOK, MARKET, vol_surface=SURFACE, sticky="moneyness", scenarios="spot=-0.1;0.1", backend="numpy")
    pos = pd.read_parquet(out / "positions.parquet")
    np.testing.assert_allclose(pos["shadow_delta"], direct.positions["shadow_delta"], rtol=1e-14)
    np.testing.assert_allclose(pd.read_parquet(out / "ladder.parquet")["pnl"], direct.ladder["pnl"], rtol=1e-14)
    bad = CliRunner().invoke(app, [*args[:-4], "--sticky", "sideways"], env={"COLUMNS": "200"})
    assert bad.exit_code == 1 and "sticky" in bad.output and "moneyness" in bad.output


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"sticky = 'sideways' must be 'strike' or 'moneyness'"):
        gh.risk(BOOK, MARKET, vol_surface=SURFACE, sticky="sideways", backend="numpy")
    pd.DataFrame({"underlying": ["AAA"], "tenor": [1.0], "vol": [0.2]}).to_parquet(tmp_path / "wrong.parquet")
    with pytest.raises(BookError, match=r"neither a fitted surface .* nor a vol grid .*its columns are underlying, tenor, vol"):
        gh.risk(BOOK, MARKET, vol_surface=str(tmp_path / "wrong.parquet"), backend="numpy")
    with pytest.raises(BookError, match="no such file"):
        gh.risk(BOOK, MARKET, vol_surface=str(tmp_path / "absent.parquet"), backend="numpy")
    other = gh.VolSurface.from_params(SURFACE.params.assign(group="QQQ"), model="svi")
    with pytest.raises(BookError, match=r"none of the fitted surface's groups \('QQQ'\) names an underlying"):
        gh.risk(BOOK, MARKET, vol_surface=other, backend="numpy")


def test_groups_named_by_underlying_and_quote_date(bk):
    """``gpu-hedge surface`` names groups "<underlying> <quote date>": one such group names its
    underlying; two dates for one underlying are an error naming both; an exact name wins."""
    dated = gh.VolSurface.from_params(SURFACE.params.assign(group=SURFACE.params["group"] + " 2016-01-05"), model="svi")
    res = gh.risk(BOOK, MARKET, vol_surface=dated, backend=bk)
    np.testing.assert_allclose(res.positions["vol"], _row_vols(), rtol=1e-15)
    two = pd.concat([dated.params, dated.params.assign(group="AAA 2016-01-06", a=dated.params["a"] + 0.01)])
    with pytest.raises(BookError, match=r"underlying 'AAA' has 2 fitted groups \('AAA 2016-01-05', 'AAA 2016-01-06'\)"):
        gh.risk(BOOK, MARKET, vol_surface=gh.VolSurface.from_params(two, model="svi"), backend=bk)
    exact = gh.VolSurface.from_params(pd.concat([SURFACE.params, two]), model="svi")
    np.testing.assert_array_equal(gh.risk(BOOK, MARKET, vol_surface=exact, backend=bk).positions["vol"], _row_vols())


def test_an_empty_book_on_a_surface_writes_the_surface_runs_columns(tmp_path):
    """No partition completes: positions.parquet still has a surface run's columns (vol, shadow deltas)."""
    from gpu_hedge._book.partitions import SMILE_POSITION_COLUMNS

    gh.risk(BOOK.iloc[:0], MARKET, vol_surface=SURFACE, out=tmp_path / "smile", backend="numpy")
    assert tuple(pd.read_parquet(tmp_path / "smile" / "positions.parquet").columns) == SMILE_POSITION_COLUMNS
    gh.risk(BOOK.iloc[:0], MARKET, out=tmp_path / "plain", backend="numpy")
    assert tuple(pd.read_parquet(tmp_path / "plain" / "positions.parquet").columns) == POSITION_COLUMNS
