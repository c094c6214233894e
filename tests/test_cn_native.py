"""The NumPy backend's compiled tridiagonal solve of the Crank-Nicolson grid (``cpu_fallback._tridiag``)
against the grid's array code (the Thomas algorithm as ``Backend.scan`` loops): the same recurrences,
so the same values within a few roundings, on American and European rows with cash dividends."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge as gh
from gpu_hedge._pricing import cn_grid


def _rows(n: int = 40, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    T = rng.uniform(0.05, 2.0, n)
    times = np.stack([rng.uniform(0.0, 1.0, n) * T, rng.uniform(0.5, 1.2, n) * T], axis=1)
    return dict(spot=rng.uniform(60, 140, n), strike=np.full(n, 100.0), expiry=T, vol=rng.uniform(0.1, 0.6, n),
                rate=rng.uniform(0.0, 0.08, n), div=rng.uniform(0.0, 0.03, n), phi=rng.choice([-1.0, 1.0], n),
                american=rng.random(n) < 0.7, times=np.sort(times, axis=1), amounts=rng.uniform(0.0, 3.0, (n, 2)))  # fmt: skip


def test_compiled_solve_is_the_array_code():
    bk = gh.get_backend("numpy")
    if bk.special.tridiag_obstacle(*(np.zeros(1),) * 3, np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros((3, 1))) is None:
        pytest.skip("no Numba here (or GPU_HEDGE_NUMBA=0): the array code runs")
    kw = _rows()
    got = cn_grid.cn_solve(bk, **kw, n_time=60, n_space=121)
    cn_grid._SOLVERS.clear()
    plain = type("Plain", (), {})()  # the same backend with the array code: no compiled solve offered
    for attr in ("xp", "scan", "capabilities", "jit", "asarray", "to_numpy"):
        setattr(plain, attr, getattr(bk, attr))
    plain.special = type("S", (), {})()
    try:
        want = cn_grid.cn_solve(plain, **kw, n_time=60, n_space=121)
    finally:
        cn_grid._SOLVERS.clear()
    for k in ("price", "delta", "gamma", "theta"):
        np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-12, atol=1e-12, err_msg=k)
    assert np.all(np.asarray(got["price"]) > 0)


def test_compiled_solve_declines_float32():
    from cpu_fallback._tridiag import tridiag_obstacle

    z = np.zeros(2, dtype=np.float32)
    assert tridiag_obstacle(z, z, z, np.zeros((1, 2), np.float32), z, z, np.zeros((3, 2), np.float32)) is None
