"""Batched SSVI fit: one power-law SSVI surface per group, all groups in one vectorised solve.

Parameters per group: ``rho, eta, gamma`` and the ATM total variances ``theta_1 <= ... <= theta_E``
of its expiries, carried as increments ``Delta_1 = theta_1 > 0``, ``Delta_j >= 0`` (so ``theta =
Delta @ L`` with ``L`` upper-triangular ones, and the term structure is non-decreasing by
construction). Projection after every step keeps ``|rho| <= 0.999``, ``0.01 <= gamma <= 1/2``
and ``0 < eta <= 2 / (1 + |rho|)``: Gatheral and Jacquier's (2014) sufficient conditions for a
power-law SSVI surface free of static (butterfly and calendar) arbitrage.

Start: ``theta`` from each slice's quote nearest the money (made non-decreasing), then the best of
a 5 x 4 x 3 grid of ``(rho, eta, gamma)``; then Levenberg-Marquardt on all ``3 + E`` parameters
with an analytic Jacobian and batched ``(3 + E)``-square solves, per-group damping.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .data import Slices

RHO_MAX = 0.999
GAMMA_MIN = 0.01
ETA_MIN = 1e-4
THETA_MIN = 1e-8
_STEPS: dict[Any, Any] = {}


def _theta(xp: Any, p: Any, d: dict) -> Any:
    return p[:, 3:] @ d["upper"]  # (G, E): cumulative sums of the increments


def ssvi_w(xp: Any, p: Any, d: dict, jac: bool) -> tuple[Any, Any]:
    """Model total variance at every padded quote (G, E*Q) and, with ``jac``, its gradient (G, E*Q, 3+E)."""
    G, E, Q = d["k"].shape
    rho, eta, gamma = p[:, 0:1, None], p[:, 1:2, None], p[:, 2:3, None]
    theta = _theta(xp, p, d)[..., None]  # (G, E, 1)
    k = d["k"]
    lt, l1t = xp.log(theta), xp.log1p(theta)
    phi = eta * xp.exp(-gamma * lt + (gamma - 1.0) * l1t)
    z = phi * k + rho
    R = xp.sqrt(z * z + 1.0 - rho * rho)
    w = 0.5 * theta * (1.0 + rho * phi * k + R)
    if not jac:
        return xp.reshape(w, (G, E * Q)), None
    dphi = 0.5 * theta * k * (rho + z / R)
    d_rho = 0.5 * theta * phi * k * (1.0 + 1.0 / R)
    d_eta = dphi * phi / eta
    d_gamma = dphi * phi * (l1t - lt)
    d_theta = w / theta + dphi * phi * (-gamma / theta + (gamma - 1.0) / (1.0 + theta))  # (G, E, Q)
    d_delta = d_theta[..., None] * d["lower_mask"][None, :, None, :]  # (G, E, Q, E): j <= e
    jac_ = xp.concat([xp.stack([d_rho, d_eta, d_gamma], axis=-1), d_delta], axis=-1)
    return xp.reshape(w, (G, E * Q)), xp.reshape(jac_, (G, E * Q, 3 + E))


def project(xp: Any, p: Any) -> Any:
    rho = xp.clip(p[:, 0:1], -RHO_MAX, RHO_MAX)
    eta = xp.clip(p[:, 1:2], ETA_MIN, 2.0 / (1.0 + xp.abs(rho)))
    gamma = xp.clip(p[:, 2:3], GAMMA_MIN, 0.5)
    first = xp.maximum(p[:, 3:4], THETA_MIN)
    rest = xp.maximum(p[:, 4:], 0.0)
    return xp.concat([rho, eta, gamma, first, rest], axis=1)


def lm_step(xp: Any, p: Any, mu: Any, d: dict) -> tuple[Any, Any, Any]:
    """One Levenberg-Marquardt iteration for every group: returns ``(p, mu, cost)``."""
    w, J = ssvi_w(xp, p, d, True)
    r = d["sw"] * (w - d["w"])
    J = d["sw"][..., None] * J
    cost = xp.sum(r * r, axis=1)
    Jt = xp.matrix_transpose(J)
    A = Jt @ J
    grad = (Jt @ r[..., None])[..., 0]
    P = p.shape[1]
    eye = xp.eye(P, dtype=p.dtype)
    diag = xp.sum(A * eye, axis=-1)
    scale = diag + 1e-12 * (1.0 + xp.max(diag, axis=1, keepdims=True))
    delta = xp.linalg.solve(A + (mu[:, None, None] * scale[:, None, :]) * eye, -grad[..., None])[..., 0]
    trial = project(xp, p + delta)
    wt, _ = ssvi_w(xp, trial, d, False)
    rt = d["sw"] * (wt - d["w"])
    cost_t = xp.sum(rt * rt, axis=1)
    ok = cost_t < cost
    p = xp.where(ok[:, None], trial, p)
    mu = xp.clip(xp.where(ok, mu * 0.3, mu * 5.0), 1e-12, 1e12)
    return p, mu, xp.where(ok, cost_t, cost)


def fit_ssvi(bk: Any, sl: Slices, *, max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit SSVI per group. Returns per-slice ``(theta, rho, eta, gamma)`` as an (S, 4) array, a
    per-slice converged flag, and the slice -> (group, position) index (S, 2)."""
    xp = bk.xp
    S, Q = sl.k.shape
    G = len(sl.groups)
    starts = np.searchsorted(sl.group_code, np.arange(G))  # slices are sorted by group
    pos = np.arange(S) - starts[sl.group_code]
    E = int(pos.max()) + 1
    mask = sl.mask
    wbar = (sl.w * mask).sum(1) / mask.sum(1)
    k = np.zeros((G, E, Q))
    w = np.ones((G, E, Q))
    sw = np.zeros((G, E, Q))
    k[sl.group_code, pos] = sl.k
    w[sl.group_code, pos] = sl.w
    sw[sl.group_code, pos] = np.sqrt(sl.weight) / wbar[:, None]
    # start: theta from the quote nearest k = 0, non-decreasing; padded expiries repeat the last
    near = np.argmin(np.where(mask, np.abs(sl.k), np.inf), axis=1)
    th = np.full((G, E), np.nan)
    th[sl.group_code, pos] = sl.w[np.arange(S), near]
    th = pd_ffill(th)
    th = np.maximum.accumulate(th, axis=1)
    inc = np.diff(th, axis=1, prepend=0.0)
    d = {
        "k": bk.asarray(k),
        "w": bk.asarray(w.reshape(G, E * Q)),
        "sw": bk.asarray(sw.reshape(G, E * Q)),
        "upper": bk.asarray(np.triu(np.ones((E, E)))),
        "lower_mask": bk.asarray(np.tril(np.ones((E, E)))),
    }
    grid = np.array(np.meshgrid([-0.9, -0.6, -0.3, 0.0, 0.3], [0.2, 0.5, 1.0, 1.5], [0.1, 0.3, 0.5], indexing="ij")).reshape(3, -1).T
    C = len(grid)
    cand = np.concatenate([np.repeat(grid[None], G, 0), np.repeat(inc[:, None, :], C, 1)], axis=2).reshape(G * C, 3 + E)
    dc = {key: (xp.repeat(v, C, axis=0) if key in ("k", "w", "sw") else v) for key, v in d.items()}
    candp = project(xp, bk.asarray(cand))
    wc, _ = ssvi_w(xp, candp, dc, False)
    cost = bk.to_numpy(xp.sum((dc["sw"] * (wc - dc["w"])) ** 2, axis=1)).reshape(G, C)
    best = np.argmin(cost, axis=1)
    p = bk.to_numpy(candp).reshape(G, C, 3 + E)[np.arange(G), best]
    p, mu = bk.asarray(p), bk.asarray(np.full(G, 1e-3))
    if bk.name not in _STEPS:
        _STEPS[bk.name] = bk.jit(partial(lm_step, xp))
    step = _STEPS[bk.name]
    hist = None
    for i in range(max_iter):
        p, mu, cost_ = step(p, mu, d)
        if i == max_iter - 11:
            hist = bk.to_numpy(cost_)
    c_end = bk.to_numpy(cost_)
    conv = np.ones(G, bool) if hist is None else (c_end >= (1 - 1e-6) * hist) | (c_end < 1e-24)
    theta = bk.to_numpy(_theta(xp, p, d))
    p = bk.to_numpy(p)
    g, e = sl.group_code, pos
    out = np.stack([theta[g, e], p[g, 0], p[g, 1], p[g, 2]], axis=1)
    return out, conv[g], np.stack([g, e], axis=1)


def pd_ffill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along axis 1 (padded expiries repeat the group's last real value)."""
    idx = np.where(np.isnan(a), 0, np.arange(a.shape[1])[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    return a[np.arange(a.shape[0])[:, None], idx]
