"""Batched raw-SVI fit: every slice of every group in one vectorised solve, on any backend.

Algorithm (each step acts on all slices at once; the only Python loops are over iterations):

1. **Quasi-explicit start** (Zeliade 2009): for fixed ``(m, sigma)``, ``w = a + d y + c sqrt(y^2 + 1)``
   with ``y = (k - m) / sigma`` is linear in ``(a, d, c)``; batched 3x3 weighted normal equations
   for every slice times a 6 x 6 grid of ``(m, sigma)``, the best projected fit per slice kept.
2. **Levenberg-Marquardt** on ``(a, b, rho, m, sigma)``: residuals are the weighted relative
   total-variance errors of the quotes, plus penalty rows ``lam_g * max(G_MARGIN - g(k_j), 0)`` on a
   per-slice grid ``k_j`` (the slice's quotes widened, the group's span and far wings) for
   Durrleman's ``g``, plus (calendar rounds) ``lam_c * max(L(k_j) - w(k_j), 0) / wbar`` and
   ``lam_c * max(w(k_j) - U(k_j), 0) / wbar``. Analytic Jacobian (``w``, ``w'``, ``w''`` and ``g``
   differentiated by hand), Marquardt-scaled batched 5x5 ``xp.linalg.solve``, per-slice damping,
   accept/reject per slice, then projection onto ``b in [0, 2/(1+|rho|)]`` (Lee), ``|rho| <= 0.999``,
   ``sigma >= 1e-4``, ``a + b sigma sqrt(1 - rho^2) >= 1e-4 wbar`` (``w > 0``).
3. **Repair rounds**: slices whose ``g`` still dips below 0 on the grid get ``lam_g`` x 10; with
   ``calendar=True`` each round gives slice ``i`` the targets ``L = (w_{i-1} + w_i)/2 + delta`` and
   ``U = (w_i + w_{i+1})/2 - delta`` from the previous round's fits (Jacobi: all slices at once),
   so two crossing neighbours meet at their midpoint instead of overshooting past each other;
   violators get ``lam_c`` x 10. Each round runs ``max_iter // 2`` more LM iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

G_MARGIN = 1e-3  # the fit keeps g >= G_MARGIN on its grid, so g >= 0 between grid points too
CAL_MARGIN = 1e-5  # relative gap (of wbar) kept between consecutive slices' total variance
RHO_MAX = 0.999
SIGMA_MIN = 1e-4
W_FLOOR = 1e-4  # minimum of w as a fraction of the slice's mean market total variance
# starting penalty weights, kept small: from the (infeasible) quasi-explicit start a heavy penalty
# stalls LM far from the constrained optimum (real SPY chain: 100/100 gave median 3.8 vol points, 1/10 gives 0.4);
# the repair rounds escalate them on the slices that still violate
LAM_G = 1.0
LAM_C = 10.0
N_FIT = 48  # base grid points per slice the constraints are enforced on
N_CHECK = 401  # dense grid points the result is checked on (and adaptive points are taken from)
N_ADAPT = 6  # extra fit-grid slots filled, one per repair round, with the worst dense-grid point


@dataclass
class SviFit:
    params: np.ndarray  # (S, 5): a, b, rho, m, sigma
    converged: np.ndarray  # (S,) bool
    grid: np.ndarray  # (S, J) the k grid the constraints were enforced on
    iterations: int


def check_grids(k_min: np.ndarray, k_max: np.ndarray, prev: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the no-arbitrage conditions are enforced (``n`` small) and checked (``n`` large).

    Butterfly grid (S, n + 16): ``n`` points over the slice's quoted span widened by
    ``ext = max(half its width, 0.1)`` on each side, then wings at ``ext * (0.25 ... 32)`` beyond.
    Calendar grid (S, n): ``n`` points over the union of the widened spans of slice ``i`` and its
    previous expiry ``prev[i]`` (itself when it has none): where both smiles are pinned by quotes.
    """
    ext = np.maximum(0.5 * (k_max - k_min), 0.1)
    lo, hi = k_min - ext, k_max + ext
    t = np.linspace(0.0, 1.0, n)[None, :]
    wings = ext[:, None] * np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0])[None, :]
    bfly = np.concatenate([lo[:, None] + (hi - lo)[:, None] * t, lo[:, None] - wings, hi[:, None] + wings], axis=1)
    p = np.where(prev >= 0, prev, np.arange(len(prev)))
    clo, chi = np.minimum(lo, lo[p]), np.maximum(hi, hi[p])
    return bfly, clo[:, None] + (chi - clo)[:, None] * t


def _cols(p: Any) -> tuple[Any, ...]:
    return tuple(p[:, j : j + 1] for j in range(5))


def svi_parts(xp: Any, k: Any, p: Any, jac: bool) -> tuple[Any, ...]:
    """``w, w', w''`` at ``k`` (S, N) for params ``p`` (S, 5), and with ``jac`` their gradients (S, N, 5)."""
    a, b, rho, m, sig = _cols(p)
    x = k - m
    s = xp.sqrt(x * x + sig * sig)
    s3 = s * s * s
    w = a + b * (rho * x + s)
    w1 = b * (rho + x / s)
    w2 = b * sig * sig / s3
    if not jac:
        return w, w1, w2
    one, zero = xp.ones_like(x), xp.zeros_like(x)
    s5 = s3 * s * s
    dw = xp.stack([one, rho * x + s, b * x, -w1, b * sig / s], axis=-1)
    dw1 = xp.stack([zero, rho + x / s, b * one, -w2, -b * x * sig / s3], axis=-1)
    dw2 = xp.stack([zero, sig * sig / s3, zero, 3.0 * b * sig * sig * x / s5, b * sig * (2.0 * s * s - 3.0 * sig * sig) / s5], axis=-1)
    return w, w1, w2, dw, dw1, dw2


def _g_and_grad(xp: Any, k: Any, p: Any) -> tuple[Any, Any, Any]:
    w, w1, w2, dw, dw1, dw2 = svi_parts(xp, k, p, True)
    u = 1.0 - k * w1 / (2.0 * w)
    g = _g_of(k, w, w1, w2)
    gw = u * k * w1 / (w * w) + 0.25 * w1 * w1 / (w * w)
    gw1 = -u * k / w - 0.5 * w1 * (1.0 / w + 0.25)
    dg = gw[..., None] * dw + gw1[..., None] * dw1 + 0.5 * dw2
    return g, dg, (w, dw)


def _g_of(k: Any, w: Any, w1: Any, w2: Any) -> Any:
    u = 1.0 - k * w1 / (2.0 * w)
    return u * u - 0.25 * w1 * w1 * (1.0 / w + 0.25) + 0.5 * w2


def residuals(xp: Any, p: Any, d: dict, jac: bool) -> tuple[Any, Any]:
    """Stacked residuals (S, Q + Jb + 2 Jc) and, with ``jac``, the Jacobian (S, Q + Jb + 2 Jc, 5).

    Rows: quotes, butterfly penalties on ``grid``, calendar penalties against the lower target on
    ``cgrid`` (this slice's pair with its previous expiry) and against the upper target on
    ``cgrid_next`` (the pair with its next expiry)."""
    sw = d["sqrt_wt"] / d["wbar"]
    wq = svi_parts(xp, d["k"], p, jac)
    rq = sw * (wq[0] - d["w"])
    if jac:
        g, dg, _ = _g_and_grad(xp, d["grid"], p)
    else:
        g = _g_of(d["grid"], *svi_parts(xp, d["grid"], p, False))
    wl = svi_parts(xp, d["cgrid"], p, jac)
    wu = svi_parts(xp, d["cgrid_next"], p, jac)
    viol_g = xp.maximum(G_MARGIN - g, 0.0)
    cl = d["lam_c"] / d["wbar"] * d["has_lo"]
    cu = d["lam_c"] / d["wbar"] * d["has_hi"]
    vl = xp.maximum(d["lo_t"] - wl[0], 0.0)
    vu = xp.maximum(wu[0] - d["hi_t"], 0.0)
    r = xp.concat([rq, d["lam_g"] * viol_g, cl * vl, cu * vu], axis=1)
    if not jac:
        return r, None
    jq = sw[..., None] * wq[3]
    jg = -(d["lam_g"] * (viol_g > 0))[..., None] * dg
    jl = -(cl * (vl > 0))[..., None] * wl[3]
    ju = (cu * (vu > 0))[..., None] * wu[3]
    return r, xp.concat([jq, jg, jl, ju], axis=1)


def project(xp: Any, p: Any, d: dict) -> Any:
    """Clip ``p`` into the admissible raw-SVI set (see the module docstring)."""
    a, b, rho, m, sig = _cols(p)
    rho = xp.clip(rho, -RHO_MAX, RHO_MAX)
    sig = xp.clip(sig, SIGMA_MIN, 10.0)
    b = xp.clip(b, 0.0, 2.0 / (1.0 + xp.abs(rho)))
    m = xp.clip(m, d["m_lo"], d["m_hi"])
    a = xp.maximum(a, W_FLOOR * d["wbar"] - b * sig * xp.sqrt(1.0 - rho * rho))
    return xp.concat([a, b, rho, m, sig], axis=1)


def lm_step(xp: Any, p: Any, mu: Any, d: dict) -> tuple[Any, Any, Any]:
    """One Levenberg-Marquardt iteration for every slice: returns ``(p, mu, cost)``."""
    r, J = residuals(xp, p, d, True)
    cost = xp.sum(r * r, axis=1)
    # steps are taken in Zeliade's coordinates q = (a, d, c, m, sigma), d = b rho sigma, c = b sigma:
    # for fixed (m, sigma) the model is linear in (a, d, c), which keeps the LM steps well scaled
    a, b, rho, m, sig = _cols(p)
    c = xp.maximum(b * sig, 1e-300)
    zero, one = xp.zeros_like(a), xp.ones_like(a)
    # dp/dq: rows p = (a, b = c/sigma, rho = d/c, m, sigma), columns q
    D = xp.stack(
        [
            xp.concat([one, zero, zero, zero, zero], axis=1),
            xp.concat([zero, zero, 1.0 / sig, zero, -b / sig], axis=1),
            xp.concat([zero, 1.0 / c, -rho / c, zero, zero], axis=1),
            xp.concat([zero, zero, zero, one, zero], axis=1),
            xp.concat([zero, zero, zero, zero, one], axis=1),
        ],
        axis=1,
    )
    J = xp.where(d["zeliade"][:, :, None] > 0, J @ D, J)
    Jt = xp.matrix_transpose(J)
    A = Jt @ J
    grad = (Jt @ r[..., None])[..., 0]
    eye = xp.eye(5, dtype=p.dtype)
    diag = xp.sum(A * eye, axis=-1)
    scale = diag + 1e-12 * (1.0 + xp.max(diag, axis=1, keepdims=True))
    M = A + (mu[:, None, None] * scale[:, None, :]) * eye
    delta = xp.linalg.solve(M, -grad[..., None])[..., 0]
    qa, qd, qc, qm, qs = (delta[:, j : j + 1] for j in range(5))
    c_new = c + qc
    s_new = xp.maximum(sig + qs, SIGMA_MIN)
    rho_new = xp.where(c_new > 0, (b * rho * sig + qd) / xp.where(c_new > 0, c_new, 1.0), xp.sign(rho + qd))
    trial_q = xp.concat([a + qa, xp.maximum(c_new, 0.0) / s_new, rho_new, m + qm, s_new], axis=1)
    trial = project(xp, xp.where(d["zeliade"] > 0, trial_q, p + delta), d)
    rt, _ = residuals(xp, trial, d, False)
    cost_t = xp.sum(rt * rt, axis=1)
    ok = cost_t < cost
    p = xp.where(ok[:, None], trial, p)
    mu = xp.clip(xp.where(ok, mu * 0.3, mu * 5.0), 1e-12, 1e12)
    return p, mu, xp.where(ok, cost_t, cost)


def quasi_explicit(xp: Any, d: dict, lo: Any, hi: Any) -> Any:
    """Zeliade's quasi-explicit start: best of a 6 x 6 ``(m, sigma)`` grid, all slices at once."""
    width = hi - lo
    m_grid = lo[:, None] + width[:, None] * xp.asarray([-0.1, 0.1, 0.3, 0.5, 0.7, 1.1], dtype=lo.dtype)[None, :]
    s_grid = xp.maximum(width, 1e-3)[:, None] * xp.asarray([0.02, 0.05, 0.1, 0.25, 0.5, 1.0], dtype=lo.dtype)[None, :]
    S = m_grid.shape[0]
    m = xp.reshape(xp.broadcast_to(m_grid[:, :, None], (S, 6, 6)), (S, 36))  # m slow, sigma fast
    sig = xp.reshape(xp.broadcast_to(s_grid[:, None, :], (S, 6, 6)), (S, 36))
    k, wt, w = d["k"][:, None, :], d["sqrt_wt"][:, None, :] ** 2, d["w"][:, None, :]
    y = (k - m[..., None]) / sig[..., None]
    phi = xp.stack([xp.ones_like(y), y, xp.sqrt(y * y + 1.0)], axis=-1)  # (S, C, Q, 3)
    phit = xp.matrix_transpose(phi * wt[..., None])
    A = phit @ phi + 1e-12 * xp.eye(3, dtype=lo.dtype)
    coef = xp.linalg.solve(A, (phit @ w[..., None]))[..., 0]  # (S, C, 3): a, d, c
    c = xp.maximum(coef[..., 2], 1e-12)
    cand = xp.stack([coef[..., 0], c / sig, xp.clip(coef[..., 1] / c, -RHO_MAX, RHO_MAX), m, sig], axis=-1)
    C = cand.shape[1]
    flat = xp.reshape(cand, (S * C, 5))
    dd = {key: xp.repeat(d[key], C, axis=0) for key in ("wbar", "m_lo", "m_hi")}
    flat = project(xp, flat, dd)
    cand = xp.reshape(flat, (S, C, 5))
    a, b, rho, mm, ss = (cand[..., j : j + 1] for j in range(5))
    x = k - mm
    model = a + b * (rho * x + xp.sqrt(x * x + ss * ss))
    cost = xp.sum(wt * (model - w) ** 2, axis=-1)
    best = xp.argmin(cost, axis=1)
    pick = xp.arange(C)[None, :] == best[:, None]
    return xp.sum(xp.where(pick[..., None], cand, 0.0), axis=1)
