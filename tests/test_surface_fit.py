"""Arbitrage-free implied-vol surface fitting (gpu_hedge._surface): SVI and SSVI, batched, on every backend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpu_hedge._surface import (
    VolSurface,
    durrleman_g,
    fit_surface,
    raw_svi_derivatives,
    raw_svi_total_variance,
    ssvi_total_variance,
)
from tests.conftest import SHARED_DATA

SVI_COLS = ["a", "b", "rho", "m", "sigma"]
# calendar-consistent sets (a, b, rho, m, sigma, T) for group "X"; group "Y" has a lone slice
SVI_TRUE = {
    ("X", 0.25): (0.008, 0.08, -0.5, 0.02, 0.15),
    ("X", 0.5): (0.016, 0.10, -0.45, 0.03, 0.20),
    ("X", 1.0): (0.030, 0.14, -0.40, 0.05, 0.25),
    ("Y", 0.75): (0.020, 0.20, 0.10, -0.05, 0.30),
}
VOGT = (-0.0410, 0.1331, 0.3060, 0.3586, 0.4153)  # (a, b, rho, m, sigma): Gatheral-Jacquier 2014, T = 1


def svi_frame(params: dict, n0: int = 25, lo: float = -0.9, hi: float = 0.6) -> pd.DataFrame:
    rows = []
    for i, ((g, T), p) in enumerate(params.items()):
        k = np.linspace(lo, hi, n0 + 3 * i)
        F = 100.0 * np.exp(0.03 * T)
        w = raw_svi_total_variance(k, *p)
        rows.append(pd.DataFrame({"group": g, "expiry_years": T, "strike": F * np.exp(k), "forward": F, "vol": np.sqrt(w / T)}))
    return pd.concat(rows, ignore_index=True)


def test_recovers_raw_svi_parameters(bk):
    frame = svi_frame(SVI_TRUE)
    surface = fit_surface(frame, backend=bk)
    p = surface.params
    assert list(zip(p["group"], p["expiry_years"], strict=True)) == list(SVI_TRUE)
    np.testing.assert_allclose(p[SVI_COLS].to_numpy(), np.array(list(SVI_TRUE.values())), atol=1e-6)
    assert (p["status"] == "converged").all() and p["butterfly_ok"].all() and p["calendar_ok"].all()
    assert (p["rmse_vol"] < 1e-8).all()
    vol = surface.vol(frame["strike"].to_numpy(), frame["expiry_years"].to_numpy(), frame["group"].to_numpy())
    np.testing.assert_allclose(vol, frame["vol"].to_numpy(), atol=1e-8)


SSVI_TRUE = {"A": (-0.6, 1.2, 0.4, [0.01, 0.02, 0.045, 0.08]), "B": (-0.3, 0.8, 0.25, [0.02, 0.03, 0.05])}


def ssvi_frame() -> pd.DataFrame:
    rows = []
    for g, (rho, eta, gamma, thetas) in SSVI_TRUE.items():
        for j, th in enumerate(thetas):
            T = 0.25 * (j + 1)
            k = np.linspace(-0.8, 0.5, 2 + j)  # SSVI takes slices with fewer than 5 quotes
            w = ssvi_total_variance(k, th, rho, eta, gamma)
            rows.append(pd.DataFrame({"group": g, "expiry_years": T, "strike": 100 * np.exp(k), "forward": 100.0, "vol": np.sqrt(w / T)}))
    return pd.concat(rows, ignore_index=True)


def test_recovers_ssvi_parameters(bk):
    frame = ssvi_frame()
    surface = fit_surface(frame, model="ssvi", backend=bk)
    p = surface.params
    want = np.array([[th, rho, eta, gamma] for rho, eta, gamma, ths in SSVI_TRUE.values() for th in ths])
    np.testing.assert_allclose(p[["theta", "rho", "eta", "gamma"]].to_numpy(), want, atol=1e-6)
    assert p["butterfly_ok"].all() and p["calendar_ok"].all()
    vol = surface.vol(frame["strike"].to_numpy(), frame["expiry_years"].to_numpy(), frame["group"].to_numpy())
    np.testing.assert_allclose(vol, frame["vol"].to_numpy(), atol=1e-8)
    # between slices theta is linear in T, and the SSVI formula holds
    w = surface.total_variance(0.1, 0.375, group="A")
    np.testing.assert_allclose(w, ssvi_total_variance(0.1, 0.015, -0.6, 1.2, 0.4), rtol=1e-12)


def test_durrleman_g_matches_finite_differences():
    k = np.linspace(-2.0, 2.0, 81)
    for p in [*SVI_TRUE.values(), VOGT]:
        w, w1, w2 = raw_svi_derivatives(k, *p)
        h = 1e-4
        wp, w0, wm = (raw_svi_total_variance(k + s, *p) for s in (h, 0.0, -h))
        fd1 = (wp - wm) / (2 * h)
        fd2 = (wp - 2 * w0 + wm) / (h * h)
        np.testing.assert_allclose(w1, fd1, atol=1e-8)
        np.testing.assert_allclose(w2, fd2, atol=1e-5)
        g_fd = (1 - k * fd1 / (2 * w)) ** 2 - fd1**2 / 4 * (1 / w + 0.25) + fd2 / 2
        np.testing.assert_allclose(durrleman_g(k, *p), g_fd, atol=1e-5)


def test_vogt_example_is_flagged_and_repaired(bk):
    k = np.linspace(-1.5, 1.5, 3001)
    g = durrleman_g(k, *VOGT)
    assert g.min() < -0.03 and 0.5 < k[np.argmin(g)] < 1.3  # arbitrageable near k = 0.9 (GJ 2014, figure 2)
    row = dict(group="V", expiry_years=1.0, forward=1.0, **dict(zip(SVI_COLS, VOGT, strict=True)))
    given = VolSurface.from_params(pd.DataFrame([row]), model="svi")
    rep = given.arbitrage_report()
    assert not rep["butterfly_ok"].iloc[0] and rep["g_min"].iloc[0] < -0.03
    assert not given.params["butterfly_ok"].iloc[0]
    frame = svi_frame({("V", 1.0): VOGT}, n0=41, lo=-1.0, hi=1.5)
    fitted = fit_surface(frame, backend=bk)
    rep = fitted.arbitrage_report()
    assert rep["butterfly_ok"].all() and rep["g_min"].iloc[0] >= 0.0
    kk = np.linspace(-6, 6, 24001)
    assert durrleman_g(kk, *fitted.params[SVI_COLS].to_numpy()[0]).min() >= 0.0
    assert fitted.params["rmse_vol"].iloc[0] < 0.01  # repaired at the cost of under a vol point


def test_calendar_crossing_is_repaired(bk):
    # two slices whose independent fits cross: the later one's wings are lower than the earlier one's
    crossing = {("C", 0.5): (0.010, 0.20, -0.3, 0.0, 0.10), ("C", 0.6): (0.016, 0.10, -0.3, 0.0, 0.20)}
    frame = svi_frame(crossing, lo=-0.6, hi=0.4)
    free = fit_surface(frame, backend=bk, calendar=False)
    assert free.arbitrage_report()["calendar_max"].iloc[1] > 1e-3
    assert not free.params["calendar_ok"].iloc[1]
    fixed = fit_surface(frame, backend=bk, calendar=True)
    rep = fixed.arbitrage_report()
    assert fixed.params["calendar_ok"].all() and rep["butterfly_ok"].all()
    assert rep["calendar_max"].iloc[1] <= 0.0
    p = fixed.params[SVI_COLS].to_numpy()
    k = np.linspace(-1.5, 1.0, 5001)
    assert (raw_svi_total_variance(k, *p[1]) - raw_svi_total_variance(k, *p[0])).min() >= 0.0


def real_frame() -> pd.DataFrame:
    import gpu_hedge.io as gio

    q = gio.read_quotes(SHARED_DATA / "cboe_spx_chain_2023-09-14.csv")
    f = gio.implied_forwards(q, rate=0.053)
    q = q.merge(f[["expiry", "forward"]], on="expiry")
    otm = np.where(q["call"], q["strike"] >= q["forward"], q["strike"] < q["forward"])
    keep = otm & (q["bid"] > 0) & (q["iv"] > 0) & q["delta"].abs().between(0.02, 0.98) & (q["expiry_years"] > 0) & q["forward"].notna()
    frame = q[keep].assign(group=q["underlying"], vol=q["iv"])[["group", "expiry_years", "strike", "forward", "vol"]]
    n = frame.groupby("expiry_years")["vol"].transform("size")
    return frame[n >= 10].reset_index(drop=True)


@pytest.mark.skipif(not (SHARED_DATA / "cboe_spx_chain_2023-09-14.csv").exists(), reason="no ../shared/data SPX chain here")
def test_real_spx_chain_is_fitted_without_arbitrage():
    frame = real_frame()
    assert frame["expiry_years"].nunique() > 40
    free = fit_surface(frame, backend="numpy", calendar=False)
    fp = free.params
    assert fp["butterfly_ok"].all()
    assert fp["rmse_vol"].max() < 0.01  # every slice within a vol point before the calendar repair
    surface = fit_surface(frame, backend="numpy")
    p, rep = surface.params, surface.arbitrage_report()
    assert p["butterfly_ok"].all() and p["calendar_ok"].all()
    assert rep["g_min"].min() >= 0.0 and (rep["calendar_max"].dropna() <= 1e-10).all()
    # Known limitation: the coupled calendar repair (one damping per group) costs accuracy on this
    # chain, median ~1.5 and max ~6.3 vol points against 0.06 / 0.8 without it; bounds as measured
    assert p["rmse_vol"].median() < 0.025 and p["rmse_vol"].max() < 0.08


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.assign(vol=np.where(f.index == 3, -0.2, f["vol"])), "group 'X', expiry 0.25: vol must be positive"),
        (lambda f: f.assign(vol=np.where(f.index == 30, np.nan, f["vol"])), "group 'X', expiry 0.5: vol must be positive"),
        (lambda f: f.assign(strike=np.where(f.index == 2, 0.0, f["strike"])), "group 'X', expiry 0.25: strike must be positive"),
        (lambda f: f.assign(forward=np.where(f.index == 60, -1.0, f["forward"])), "group 'X', expiry 1.0: forward must be positive"),
        (lambda f: f.assign(expiry_years=np.where(f.index == 0, 0.0, f["expiry_years"])), "group 'X', expiry 0.0: expiry_years must be"),
        (lambda f: f.assign(forward=np.where(f.index == 1, f["forward"] * 1.01, f["forward"])), "group 'X', expiry 0.25: forwards"),
        (lambda f: f[~((f["group"] == "Y") & (f.index % 10 != 0))], "group 'Y', expiry 0.75: 3 quote(s); the fit needs at least 5 quotes"),
        (lambda f: f.drop(columns="forward"), "missing column(s) ['forward']"),
    ],
)
def test_bad_input_names_group_and_expiry(change, message):
    frame = svi_frame(SVI_TRUE)
    with pytest.raises(ValueError) as err:
        fit_surface(change(frame), backend="numpy")
    assert message in str(err.value)


def test_ssvi_needs_three_quotes_per_group():
    frame = ssvi_frame()
    frame = frame[(frame["group"] == "A") | (frame.index == frame.index[frame["group"] == "B"][0])]
    with pytest.raises(ValueError, match="group 'B': 1 quote"):
        fit_surface(frame, model="ssvi", backend="numpy")


def test_weights_spread_vega_and_array():
    frame = svi_frame(SVI_TRUE)
    rng = np.random.default_rng(1)
    noisy = frame.assign(vol=frame["vol"] + rng.normal(0, 0.002, len(frame)))
    noisy = noisy.assign(bid_vol=noisy["vol"] - 0.005, ask_vol=noisy["vol"] + 0.005, vega=1.0)
    a = fit_surface(noisy.drop(columns=["bid_vol", "ask_vol"]), backend="numpy").params[SVI_COLS].to_numpy()
    b = fit_surface(noisy, backend="numpy").params[SVI_COLS].to_numpy()  # equal spreads: the same as uniform
    c = fit_surface(noisy, backend="numpy", weights="vega").params[SVI_COLS].to_numpy()
    d = fit_surface(noisy, backend="numpy", weights=np.full(len(noisy), 3.0)).params[SVI_COLS].to_numpy()
    np.testing.assert_allclose(b, a, atol=1e-10)
    np.testing.assert_allclose(c, a, atol=1e-10)
    np.testing.assert_allclose(d, a, atol=1e-10)
    with pytest.raises(ValueError, match="weight must be finite"):
        fit_surface(noisy, backend="numpy", weights=np.full(len(noisy), -1.0))


def test_save_load_round_trip(tmp_path):
    for model, frame in (("svi", svi_frame(SVI_TRUE)), ("ssvi", ssvi_frame())):
        surface = fit_surface(frame, model=model, backend="numpy")
        path = tmp_path / f"{model}.parquet"
        surface.save(path)
        back = VolSurface.load(path)
        assert back.model == model and back.groups == surface.groups
        pd.testing.assert_frame_equal(back.params, surface.params)
        K = np.linspace(60, 160, 41)[:, None]
        T = np.array([0.05, 0.25, 0.3, 0.6, 1.0, 2.0])[None, :]
        for g in surface.groups:
            np.testing.assert_array_equal(back.vol(K, T, group=g), surface.vol(K, T, group=g))


def test_interpolation_and_extrapolation_conventions():
    surface = fit_surface(svi_frame(SVI_TRUE), backend="numpy")
    p = surface.params.set_index(["group", "expiry_years"])
    w = lambda key, k: raw_svi_total_variance(k, *p.loc[key, SVI_COLS].to_numpy(float))  # noqa: E731
    k = np.linspace(-0.5, 0.5, 11)
    np.testing.assert_allclose(surface.total_variance(k, 0.75, group="X"), 0.5 * (w(("X", 0.5), k) + w(("X", 1.0), k)), rtol=1e-13)
    np.testing.assert_allclose(surface.total_variance(k, 0.1, group="X"), w(("X", 0.25), k) * 0.1 / 0.25, rtol=1e-13)
    np.testing.assert_allclose(surface.total_variance(k, 3.0, group="X"), w(("X", 1.0), k) * 3.0, rtol=1e-13)
    F = surface.forward(np.array([0.25, 0.375, 1.0]), group="X")
    np.testing.assert_allclose(F, 100 * np.exp(0.03 * np.array([0.25, 0.375, 1.0])), rtol=1e-12)
    assert surface.expiries("X").tolist() == [0.25, 0.5, 1.0] and surface.groups == ["X", "Y"]
    with pytest.raises(ValueError, match="group 'Z' is not in the surface"):
        surface.vol(100.0, 1.0, group="Z")


def test_numpy_and_jax_agree():
    pytest.importorskip("jax")
    import gpu_hedge

    if "jax" not in gpu_hedge.available_backends():
        pytest.skip("JAX is not usable here")
    frame = svi_frame(SVI_TRUE)
    rng = np.random.default_rng(7)
    frame = frame.assign(vol=frame["vol"] * (1 + rng.normal(0, 0.01, len(frame))))
    a = fit_surface(frame, backend="numpy").params
    b = fit_surface(frame, backend="jax").params
    np.testing.assert_allclose(b[SVI_COLS].to_numpy(), a[SVI_COLS].to_numpy(), atol=1e-8)
    a = fit_surface(ssvi_frame(), model="ssvi", backend="numpy").params
    b = fit_surface(ssvi_frame(), model="ssvi", backend="jax").params
    np.testing.assert_allclose(b[["theta", "rho", "eta", "gamma"]].to_numpy(), a[["theta", "rho", "eta", "gamma"]].to_numpy(), atol=1e-8)
