"""Host-side orchestration of the batched SVI solve: data to the device, iterations, repair rounds."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from . import fit as F
from .data import Slices

_STEPS: dict[Any, Any] = {}
STALL_WINDOW = 10  # converged: the cost fell by less than a relative 1e-6 over the last 10 iterations


def _step(bk: Any) -> Any:
    key = bk.name
    if key not in _STEPS:
        _STEPS[key] = bk.jit(partial(F.lm_step, bk.xp))
    return _STEPS[key]


def _eval_grid(xp: Any, p: Any, idx: Any, grid: Any) -> Any:
    w, _, _ = F.svi_parts(xp, grid, xp.take(p, idx, axis=0), False)
    return w


def _run(bk: Any, p: Any, mu: Any, d: dict, n: int) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    step = _step(bk)
    hist = None
    cost = None
    for i in range(n):
        p, mu, cost = step(p, mu, d)
        if i == n - 1 - STALL_WINDOW:
            hist = cost
    cost_np = bk.to_numpy(cost)
    if hist is None:
        return p, mu, cost_np, np.ones_like(cost_np, dtype=bool)
    hist_np = bk.to_numpy(hist)
    converged = (cost_np >= (1.0 - 1e-6) * hist_np) | (cost_np < 1e-24)
    return p, mu, cost_np, converged


def fit_svi(bk: Any, sl: Slices, *, calendar: bool, max_iter: int, rounds: int) -> F.SviFit:
    """Fit raw SVI to every slice of ``sl`` at once (see :mod:`gpu_hedge._surface.fit`)."""
    xp = bk.xp
    S = len(sl.expiry)
    grid, lo, hi = F.make_grids(sl)
    mask = sl.mask
    wbar = (sl.w * mask).sum(1) / mask.sum(1)
    span = np.maximum(hi - lo, 0.1)
    J = grid.shape[1]
    host = {
        "k": sl.k,
        "w": sl.w,
        "sqrt_wt": np.sqrt(sl.weight),
        "wbar": wbar[:, None],
        "grid": grid,
        "lam_g": np.full((S, 1), F.LAM_G),
        "lam_c": np.full((S, 1), F.LAM_C),
        "has_lo": np.zeros((S, 1)),
        "has_hi": np.zeros((S, 1)),
        "lo_t": np.zeros((S, J)),
        "hi_t": np.zeros((S, J)),
        "m_lo": (lo - 2.0 * span)[:, None],
        "m_hi": (hi + 2.0 * span)[:, None],
    }
    d = {key: bk.asarray(np.asarray(v, dtype=np.float64)) for key, v in host.items()}
    p = F.quasi_explicit(xp, d, bk.asarray(lo), bk.asarray(hi))
    mu = bk.asarray(np.full(S, 1e-3))
    p, mu, cost, converged = _run(bk, p, mu, d, max_iter)
    idx = np.arange(S)
    prev = np.where(sl.prev >= 0, sl.prev, idx)
    nxt = np.where(sl.next >= 0, sl.next, idx)
    has_prev = (sl.prev >= 0).astype(float)[:, None]
    has_next = (sl.next >= 0).astype(float)[:, None]
    lam_g = host["lam_g"].copy()
    lam_c = host["lam_c"].copy()
    iterations = max_iter
    for _ in range(rounds):
        g = bk.to_numpy(_g_on(xp, p, d["grid"]))
        w_self = bk.to_numpy(_eval_grid(xp, p, bk.asarray(idx), d["grid"]))
        bad_g = g.min(axis=1) < 0.0
        if calendar:
            w_prev = bk.to_numpy(_eval_grid(xp, p, bk.asarray(prev), d["grid"]))
            w_next = bk.to_numpy(_eval_grid(xp, p, bk.asarray(nxt), d["grid"]))
            bad_lo = ((w_prev - w_self).max(axis=1) > 0.0) & (sl.prev >= 0)
            bad_c = bad_lo.copy()
            bad_c[sl.prev[bad_lo]] = True  # both slices of a crossing pair
        else:
            bad_c = np.zeros(S, dtype=bool)
        if not (bad_g.any() or bad_c.any()):
            break
        lam_g[bad_g] *= 10.0
        lam_c[bad_c] *= 10.0
        d["lam_g"], d["lam_c"] = bk.asarray(lam_g), bk.asarray(lam_c)
        if calendar:
            delta = F.CAL_MARGIN * wbar[:, None]
            d["lo_t"] = bk.asarray(0.5 * (w_prev + w_self) + delta)
            d["hi_t"] = bk.asarray(0.5 * (w_self + w_next) - delta)
            d["has_lo"], d["has_hi"] = bk.asarray(has_prev), bk.asarray(has_next)
        mu = bk.asarray(np.full(S, 1e-3))
        p, mu, cost, converged = _run(bk, p, mu, d, max(max_iter // 2, STALL_WINDOW + 2))
        iterations += max(max_iter // 2, STALL_WINDOW + 2)
    return F.SviFit(params=bk.to_numpy(p), converged=converged, grid=grid, iterations=iterations)


def _g_on(xp: Any, p: Any, grid: Any) -> Any:
    w, w1, w2 = F.svi_parts(xp, grid, p, False)
    u = 1.0 - grid * w1 / (2.0 * w)
    return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2
