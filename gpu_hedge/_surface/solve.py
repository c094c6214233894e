"""Host-side orchestration of the batched SVI solve: data to the device, iterations, repair rounds."""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np

from . import coupled as C
from . import fit as F
from .data import Slices

_STEPS: dict[Any, Any] = {}

_DEBUG = bool(os.environ.get("GPU_HEDGE_SURFACE_DEBUG"))
STALL_WINDOW = 10  # converged: the cost fell by less than a relative 1e-6 over the last 10 iterations


def _step(bk: Any, fn: Any) -> Any:
    key = (bk.name, fn.__name__)
    if key not in _STEPS:
        _STEPS[key] = bk.jit(partial(fn, bk.xp))
    return _STEPS[key]


def _layout(sl: Slices) -> dict[str, np.ndarray]:
    """Index arrays placing slices in a (group, expiry position) layout for the coupled solve."""
    S, G = len(sl.expiry), len(sl.groups)
    starts = np.searchsorted(sl.group_code, np.arange(G))
    pos = np.arange(S) - starts[sl.group_code]
    E = int(pos.max()) + 1
    slot = np.full(G * E, S)  # S: the padding row appended by the solver
    slot[sl.group_code * E + pos] = np.arange(S)
    idx = np.arange(S)
    return {
        "slot": slot,
        "slot_of_slice": sl.group_code * E + pos,
        "group_i": sl.group_code,
        "prev_i": np.where(sl.prev >= 0, sl.prev, idx),
        "next_i": np.where(sl.next >= 0, sl.next, idx),
        "has_next": (sl.next >= 0).astype(float)[:, None],
        "eyeE": np.eye(E),
        "superE": np.eye(E, k=1),
    }


def _active(sl: Slices, active: np.ndarray) -> tuple[np.ndarray, Slices]:
    """The slices where ``active`` (whole groups) and their own :class:`Slices`: group codes
    renumbered from 0, ``prev``/``next`` pointing into the subset."""
    sub = np.flatnonzero(active)
    new_index = np.full(len(sl.expiry), -1)
    new_index[sub] = np.arange(sub.size)
    codes, group_code = np.unique(sl.group_code[sub], return_inverse=True)
    remap = lambda a: np.where(a >= 0, new_index[np.maximum(a, 0)], -1)  # noqa: E731
    return sub, replace(
        sl, groups=[sl.groups[c] for c in codes], group_code=group_code, expiry=sl.expiry[sub], forward=sl.forward[sub],
        k=sl.k[sub], w=sl.w[sub], weight=sl.weight[sub], vol=sl.vol[sub], n_quotes=sl.n_quotes[sub],
        prev=remap(sl.prev[sub]), next=remap(sl.next[sub]),
    )  # fmt: skip


def _run(bk: Any, p: Any, mu: Any, d: dict, n: int, fn: Any = F.lm_step) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    step = _step(bk, fn)
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


def dense_checks(p: np.ndarray, bfly: np.ndarray, cal: np.ndarray, prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Host check of params ``p`` (S, 5): Durrleman's ``g`` on ``bfly`` and ``w_prev - w`` on ``cal``
    (``-inf`` for a group's first slice); both (S, N)."""
    w, w1, w2 = F.svi_parts(np, bfly, p, False)
    g = np.where(w > 0, F._g_of(bfly, w, w1, w2), -np.inf)
    has = prev >= 0
    pp = p[np.where(has, prev, np.arange(len(prev)))]
    diff = F.svi_parts(np, cal, pp, False)[0] - F.svi_parts(np, cal, p, False)[0]
    return g, np.where(has[:, None], diff, -np.inf)


def fit_svi(bk: Any, sl: Slices, *, calendar: bool, max_iter: int, rounds: int, zeliade: bool = True) -> F.SviFit:
    """Fit raw SVI to every slice of ``sl`` at once (see :mod:`gpu_hedge._surface.fit`)."""
    xp = bk.xp
    S = len(sl.expiry)
    mask = sl.mask
    lo = np.where(mask, sl.k, np.inf).min(axis=1)
    hi = np.where(mask, sl.k, -np.inf).max(axis=1)
    wbar = (sl.w * mask).sum(1) / mask.sum(1)
    bgrid, cgrid = F.check_grids(lo, hi, sl.prev, F.N_FIT)
    dense_b, dense_c = F.check_grids(lo, hi, sl.prev, F.N_CHECK)
    # adaptive slots start as copies of the quoted span's middle point (harmless duplicates)
    bgrid = np.concatenate([bgrid, np.repeat(bgrid[:, F.N_FIT // 2 : F.N_FIT // 2 + 1], F.N_ADAPT, axis=1)], axis=1)
    cgrid = np.concatenate([cgrid, np.repeat(cgrid[:, F.N_FIT // 2 : F.N_FIT // 2 + 1], F.N_ADAPT, axis=1)], axis=1)
    idx = np.arange(S)
    nxt = np.where(sl.next >= 0, sl.next, idx)
    span = np.maximum(hi - lo, 0.1)
    Jc = cgrid.shape[1]
    host = {
        "k": sl.k,
        "w": sl.w,
        "sqrt_wt": np.sqrt(sl.weight),
        "wbar": wbar[:, None],
        "grid": bgrid,
        "cgrid": cgrid,
        "cgrid_next": cgrid[nxt],
        "lam_g": np.full((S, 1), F.LAM_G),
        "lam_c": np.full((S, 1), F.LAM_C),
        "has_lo": np.zeros((S, 1)),
        "has_hi": np.zeros((S, 1)),
        "lo_t": np.zeros((S, Jc)),
        "hi_t": np.zeros((S, Jc)),
        "m_lo": (lo - 2.0 * span)[:, None],
        "m_hi": (hi + 2.0 * span)[:, None],
        "zeliade": np.full((S, 1), 1.0 if zeliade else 0.0),
    }
    d = {key: bk.asarray(np.asarray(v, dtype=np.float64)) for key, v in host.items()}
    p = F.quasi_explicit(xp, d, bk.asarray(lo), bk.asarray(hi))
    mu = bk.asarray(np.full(S, 1e-3))
    p, mu, cost, converged = _run(bk, p, mu, d, max_iter)
    converged = np.array(converged)
    has_prev = (sl.prev >= 0).astype(float)[:, None]
    iterations = max_iter
    coupled = False
    host["delta"] = F.CAL_MARGIN * wbar[:, None]
    host["has_prev"] = has_prev
    extra = max(max_iter, STALL_WINDOW + 2)
    for r in range(rounds):
        ph = np.array(bk.to_numpy(p))  # a writable host copy (a device array's view may be read-only)
        g, diff = dense_checks(ph, dense_b, dense_c, sl.prev)
        bad_g = g.min(axis=1) < 0.0
        bad_lo = (diff.max(axis=1) > 0.0) if calendar else np.zeros(S, bool)
        if _DEBUG:
            print(
                f"round {r}: butterfly {int(bad_g.sum())} (min g {g.min():.2e}), calendar {int(bad_lo.sum())} (max {diff.max():.2e}), "
                f"cost {float(cost.sum()):.4e}, converged {converged.mean():.2f}"
            )
        if not (bad_g.any() or bad_lo.any()):
            break
        slot = r % F.N_ADAPT
        host["grid"][bad_g, F.N_FIT + 16 + slot] = dense_b[bad_g, np.argmin(g[bad_g], axis=1)]
        host["lam_g"][bad_g] *= 10.0
        if calendar and bad_lo.any():
            host["cgrid"][bad_lo, F.N_FIT + slot] = dense_c[bad_lo, np.argmax(diff[bad_lo], axis=1)]
            bad_c = bad_lo.copy()
            bad_c[sl.prev[bad_lo]] = True  # both slices of a crossing pair
            if coupled:  # the first coupled round starts at LAM_C; later ones escalate on violators
                host["lam_c"][bad_c] *= 3.0
            coupled = True
        # the round refits only the groups with a violation (their slices, all of them: the calendar
        # couples a group's expiries); the others stay as they are, so a round's cost follows the
        # violators, not the batch (a large batch needs more rounds for its last few violators)
        active = np.isin(sl.group_code, np.unique(sl.group_code[bad_g | bad_lo]))
        sub, sub_sl = _active(sl, active)
        d = {key: bk.asarray(np.asarray(v[sub], dtype=np.float64)) for key, v in host.items()}
        p_sub = bk.asarray(ph[sub])
        if coupled:
            d.update({key: bk.asarray(v) for key, v in _layout(sub_sl).items()})
            mu = bk.asarray(np.full(len(sub_sl.groups), 1e-3))
            p_sub, mu, cost, conv_g = _run(bk, p_sub, mu, d, extra, C.coupled_step)
            converged[sub] = conv_g[sub_sl.group_code]
        else:
            mu = bk.asarray(np.full(len(sub), 1e-3))
            p_sub, mu, cost, converged[sub] = _run(bk, p_sub, mu, d, extra)
        ph[sub] = bk.to_numpy(p_sub)
        p = bk.asarray(ph)
        iterations += extra
    return F.SviFit(params=bk.to_numpy(p), converged=converged, grid=host["grid"], iterations=iterations)
