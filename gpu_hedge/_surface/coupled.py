"""Calendar repair: one Levenberg-Marquardt on all slices of a group jointly, all groups at once.

The calendar rows ``lam_c / wbar_i * max(w_{i-1}(k; p_{i-1}) - w_i(k; p_i) + delta_i, 0)`` on the
pair grid of slice ``i`` depend on both neighbours, so the normal matrix of a group is block
tridiagonal in its slices (5 x 5 blocks). It is assembled densely per group, ``(G, 5E, 5E)`` with
``E`` the most expiries of a group (padded expiries get identity blocks), and solved with one
batched ``xp.linalg.solve``; damping, accept/reject and projection are per group. Unlike
refitting each slice against its neighbours' previous fits (Jacobi), this cannot oscillate: two
crossing slices move together to the cheapest ordered pair.
"""

from __future__ import annotations

from typing import Any

from . import fit as F


def _pair_rows(xp: Any, p: Any, d: dict, jac: bool) -> tuple[Any, ...]:
    """Calendar rows of every slice against its previous expiry, (S, Jc), and their Jacobians
    with respect to the previous slice's and the slice's own params (S, Jc, 5) each."""
    pp = xp.take(p, d["prev_i"], axis=0)
    own = F.svi_parts(xp, d["cgrid"], p, jac)
    prv = F.svi_parts(xp, d["cgrid"], pp, jac)
    scale = d["lam_c"] / d["wbar"] * d["has_prev"]
    v = prv[0] - own[0] + d["delta"]
    r = scale * xp.maximum(v, 0.0)
    if not jac:
        return (r,)
    act = (scale * (v > 0))[..., None]
    return r, act * prv[3], -act * own[3]


def _own_rows(xp: Any, p: Any, d: dict, jac: bool) -> tuple[Any, Any]:
    """Quote and butterfly rows of each slice (the calendar targets switched off)."""
    return F.residuals(xp, p, d, jac)


def _group_cost(xp: Any, per_slice: Any, d: dict) -> Any:
    E = d["eyeE"].shape[0]
    padded = xp.concat([per_slice, xp.zeros_like(per_slice[:1])], axis=0)
    return xp.sum(xp.reshape(xp.take(padded, d["slot"], axis=0), (-1, E)), axis=1)


def coupled_step(xp: Any, p: Any, mu: Any, d: dict) -> tuple[Any, Any, Any]:
    """One joint LM iteration over every group: returns ``(p, mu, group cost)``."""
    E = d["eyeE"].shape[0]
    G = mu.shape[0]
    r, J = _own_rows(xp, p, d, True)
    rc, J1, J2 = _pair_rows(xp, p, d, True)
    Jt = xp.matrix_transpose(J)
    J1t, J2t = xp.matrix_transpose(J1), xp.matrix_transpose(J2)
    nxt, has_next = d["next_i"], d["has_next"][..., None]
    diag = Jt @ J + J2t @ J2 + has_next * xp.take(J1t @ J1, nxt, axis=0)
    grad = (Jt @ r[..., None])[..., 0] + (J2t @ rc[..., None])[..., 0] + d["has_next"] * xp.take((J1t @ rc[..., None])[..., 0], nxt, axis=0)
    off = J1t @ J2  # block (prev(i), i)
    cost_s = xp.sum(r * r, axis=1) + xp.sum(rc * rc, axis=1)
    cost = _group_cost(xp, cost_s, d)
    eye5 = xp.eye(5, dtype=p.dtype)
    dscale = xp.sum(diag * eye5, axis=-1)
    dscale = dscale + 1e-12 * (1.0 + xp.max(dscale, axis=1, keepdims=True))
    # to the (G, E) layout; padded slots: identity diagonal, zero gradient and coupling
    pad_eye = xp.reshape(eye5, (1, 5, 5))
    slot = d["slot"]
    muS = xp.take(mu, d["group_i"], axis=0)
    damped = diag + (muS[:, None, None] * dscale[:, None, :]) * eye5
    Db = xp.reshape(xp.take(xp.concat([damped, pad_eye], axis=0), slot, axis=0), (G, E, 5, 5))
    Ob = xp.reshape(xp.take(xp.concat([off * d["has_prev"][..., None], 0.0 * pad_eye], axis=0), slot, axis=0), (G, E, 5, 5))
    gb = xp.reshape(xp.take(xp.concat([grad, xp.zeros_like(grad[:1])], axis=0), slot, axis=0), (G, E * 5))
    eyeE, sup = d["eyeE"], d["superE"]  # (E, E); sup[i, j] = 1 where j = i + 1
    blocks = Db[:, :, None] * eyeE[None, :, :, None, None]  # (G, E, E, 5, 5): block (i, j)
    upper = Ob[:, None, :] * sup[None, :, :, None, None]  # block (j - 1, j) = off of slot j
    blocks = blocks + upper + xp.permute_dims(upper, (0, 2, 1, 4, 3))
    M = xp.reshape(xp.permute_dims(blocks, (0, 1, 3, 2, 4)), (G, E * 5, E * 5))
    step = xp.linalg.solve(M, -gb[..., None])[..., 0]
    step = xp.reshape(step, (G * E, 5))
    delta = xp.take(step, d["slot_of_slice"], axis=0)
    trial = F.project(xp, p + delta, d)
    rt, _ = _own_rows(xp, trial, d, False)
    (rct,) = _pair_rows(xp, trial, d, False)
    cost_t = _group_cost(xp, xp.sum(rt * rt, axis=1) + xp.sum(rct * rct, axis=1), d)
    ok = cost_t < cost
    okS = xp.take(ok, d["group_i"], axis=0)
    p = xp.where(okS[:, None], trial, p)
    mu = xp.clip(xp.where(ok, mu * 0.3, mu * 5.0), 1e-12, 1e12)
    return p, mu, xp.where(ok, cost_t, cost)
