"""The batched Crank-Nicolson grid (gpu_hedge._pricing.cn_grid): second-order convergence, Greeks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

import gpu_hedge
from gpu_hedge._pricing.cn_grid import cn_partials, cn_solve, time_grid

#: QuantLib 1.44 QdFpAmericanEngine(highPrecisionScheme): American put S=100, K=110, T=1 (365 days,
#: Actual/365 Fixed), r=5 %, q=1 %, vol 25 %; computed once offline
AMERICAN_PUT_REF = 14.075437381243
#: QuantLib 1.44 FdBlackScholesVanillaEngine(cashDividendModel=Escrowed, tGrid=4000, xGrid=2000,
#: dampingSteps=4, CrankNicolson), computed once offline: American call S=100, K=95, T=365 days,
#: r=5 %, q=0, vol 30 %, cash dividend 3 at day 273 (Actual/365 Fixed); 2000 x 2000 gives 15.35382408
AMERICAN_CALL_DIV_REF = 15.35382543


def bs(S, K, T, v, r, q, phi):
    d1 = (np.log(S / K) + (r - q + 0.5 * v * v) * T) / (v * np.sqrt(T))
    d2 = d1 - v * np.sqrt(T)
    return phi * (S * np.exp(-q * T) * norm.cdf(phi * d1) - K * np.exp(-r * T) * norm.cdf(phi * d2))


# rows: (a) European call K=105 without dividends, (b) European put K=100 with two cash dividends
# (the escrowed spot S* = S - PV), (c) American put K=110 without dividends, (d) American call
# K=95 with a cash dividend 3 at day 273 of 365 (vol 30 %, q=0)
DIV_T, DIV_A = np.array([0.3, 0.8]), np.array([1.5, 1.5])
S_STAR_B = 100.0 - float(np.sum(DIV_A * np.exp(-0.05 * DIV_T)))
S_STAR_D = 100.0 - 3.0 * math.exp(-0.05 * 273 / 365)
ROWS = dict(
    S=np.array([100.0, S_STAR_B, 100.0, S_STAR_D]), K=np.array([105.0, 100.0, 110.0, 95.0]), T=np.ones(4),
    v=np.array([0.25, 0.25, 0.25, 0.3]), r=np.full(4, 0.05), q=np.array([0.01, 0.01, 0.01, 0.0]),
    phi=np.array([1.0, -1.0, -1.0, 1.0]), am=np.array([False, False, True, True]),
    times=np.array([[0.0, 0.0], DIV_T, [0.0, 0.0], [273 / 365, 273 / 365]]),
    amounts=np.array([[0.0, 0.0], DIV_A, [0.0, 0.0], [3.0, 0.0]]),
)  # fmt: skip


def _prices(bk, N):
    R = ROWS
    out = cn_solve(bk, R["S"], R["K"], R["T"], R["v"], R["r"], R["q"], R["phi"], R["am"], R["times"], R["amounts"],
                   n_space=2 * N + 1, n_time=N)  # fmt: skip
    return bk.to_numpy(out["price"])


def errors(bk, sizes=(25, 50, 100, 200)):
    R = ROWS
    exact = bs(R["S"], R["K"], R["T"], R["v"], R["r"], R["q"], R["phi"])
    exact[2], exact[3] = AMERICAN_PUT_REF, AMERICAN_CALL_DIV_REF
    return np.array([_prices(bk, N) - exact for N in sizes])


def test_second_order_convergence(bk):
    """Halving both spacings divides the error by about 4: (a) European without dividends against the
    closed form, (b) European with dividends against the escrowed closed form, (c) American put
    against QuantLib's high-precision QdFp value."""
    err = errors(gpu_hedge.get_backend(bk))
    ratios = err[:-1, :3] / err[1:, :3]
    assert np.all((ratios > 3.3) & (ratios < 5.0)), (err, ratios)
    assert np.all(np.abs(err[-1]) < np.array([3e-4, 3e-4, 6e-4, 1e-4]))
    # (d) the exercise boundary at the ex-date falls anywhere in a cell: second order on average
    # (1.6e-3 -> 5e-5 over three halvings), not monotone
    assert abs(err[0, 3]) / abs(err[-1, 3]) > 16


def test_greeks_against_the_closed_form(bk):
    b = gpu_hedge.get_backend(bk)
    S, K, T, v, r, q = np.array([100.0, 100.0]), np.array([105.0, 95.0]), np.array([1.0, 0.5]), np.array([0.25, 0.4]), 0.05, 0.01
    phi = np.array([1.0, -1.0])
    z = np.zeros((2, 0))
    names = ("price", "delta", "gamma", "theta", "vega", "rho", "dividend_rho")
    got = cn_partials(b, S, K, T, v, np.full(2, r), np.full(2, q), phi, np.zeros(2, bool), z, z, names)
    got = {k: b.to_numpy(x) for k, x in got.items()}
    ref = gpu_hedge.greeks(S, K, T, v, r, q, call=phi > 0, greeks=names, backend="numpy")
    tol = dict.fromkeys(names, 1e-4)  # the default grid: 1e-5 to 4e-5 relative here
    for k in names:
        np.testing.assert_allclose(got[k], np.asarray(ref[k]), rtol=tol[k], err_msg=k)


def test_ex_dates_are_nodes_and_the_steps_add_up():
    T = np.array([1.0, 0.5])
    times = np.array([[0.25, 0.75], [0.1, 0.7]])  # the second row's second dividend is after expiry
    g = time_grid(T, np.full(2, 0.05), times, np.ones((2, 2)), 40, np.array([1.0, -1.0]))
    new_t = T[None, :] - g["tau"]
    for t in (0.25, 0.75):
        assert np.any(new_t[:, 0] == t)
    assert np.min(np.abs(new_t[:, 1] - 0.1)) < 1e-15
    np.testing.assert_allclose(g["dt"].sum(axis=0), T, rtol=1e-14)
    assert np.all(g["dt"] > 0) and g["theta"][:4].min() == 1.0
    with pytest.raises(ValueError, match="n_time must be >= 4"):
        time_grid(T, np.full(2, 0.05), times, np.ones((2, 2)), 3)


def test_table_in_the_docstring_is_current():
    """The convergence table of cn_grid's docstring shows these errors (NumPy, 4 significant digits)."""
    from gpu_hedge._pricing import cn_grid

    doc = cn_grid.__doc__
    err = errors(gpu_hedge.get_backend("numpy"), sizes=(25, 50, 100))
    for N, row in zip((25, 50, 100), err, strict=True):
        line = f" {N:<9d}  " + "  ".join(f"{e:+.3e}".ljust(14) for e in row)
        assert line.rstrip() in doc, line
    assert math.isfinite(float(err.sum()))
