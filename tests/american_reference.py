"""Independent binomial-tree reference for American (and European) options, for tests only.

Model: Black-Scholes-Merton on a spot ``S`` with continuous dividend yield ``q`` and continuously
compounded rate ``r`` (cost of carry ``b = r - q``); Black-76 on a forward is the special case
``q = r`` with ``S`` the forward. ``T`` in years, ``vol`` a decimal. Nothing here imports
gpu_hedge; every option of a batch is priced in the same NumPy array pass (one backward induction
over a ``(batch, nodes)`` array, no per-option Python).

The tree is Leisen-Reimer (Leisen and Reimer 1996, "Binomial models for option valuation -
examining and improving convergence", Applied Mathematical Finance 3(4), 319-346): an odd number of
steps ``n``, up/down probabilities from the Peizer-Pratt method-2 inversion of ``d2`` and ``d1``,
so the terminal distribution is centred on the strike and the European price converges as
``O(1/n^2)`` without oscillation. American values converge as ``O(1/n)`` with a small residual
oscillation (the exercise boundary crossing the nodes); :func:`tree` applies a two-point
Richardson extrapolation on ``n`` and ``2n + 1`` steps, ``V = (n2 V(n2) - n1 V(n1)) / (n2 - n1)``,
the scheme Leisen (1998, "Pricing the American put option: a detailed convergence analysis for
binomial models", J. Economic Dynamics and Control 22, 1419-1444) studies, and averages it over
``smooth`` consecutive odd ``n`` to damp the oscillation.
European mode returns the ``2n + 1``-step value (no extrapolation: its error is already
``O(1/n^2)``).

Delta and gamma come from the nodes one and two steps in (the usual tree estimates, extrapolated
and averaged the same way). Measured accuracy at the defaults (``n = 1001``, ``smooth = 3``), on 50
random options (1 day - 5 years, vol 5-150 %, r, q 0-10 %, ln(S/K) within +-3 sd) against
QuantLib 1.44's QdFp high-precision engine: price within 8e-6 relative (median 1e-7), delta within
6e-5 absolute, gamma within 1e-5 relative (median) of a bumped QdFp gamma, in about 2.5 s.
European prices match the closed form to about 1e-8 relative (1e-6 on deep out-of-the-money
prices below 1e-2).

Public helpers: :func:`tree`, :func:`bsm_european`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

__all__ = ["bsm_european", "lr_tree", "tree"]


def _arrays(S, K, T, vol, r, q, call):
    arrs = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (S, K, T, vol, r, q)), np.asarray(call, dtype=bool))
    return [np.ascontiguousarray(a).ravel() for a in arrs], arrs[0].shape


def bsm_european(S, K, T, vol, r, q, call):
    """Black-Scholes-Merton European price (Merton 1973), vectorised; float64."""
    (S, K, T, vol, r, q, call), shape = _arrays(S, K, T, vol, r, q, call)
    sd = vol * np.sqrt(T)
    fwd = S * np.exp((r - q) * T)
    df = np.exp(-r * T)
    d1 = (np.log(fwd / K) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    c = df * (fwd * ndtr(d1) - K * ndtr(d2))
    p = df * (K * ndtr(-d2) - fwd * ndtr(-d1))
    return np.where(call, c, p).reshape(shape)


def _peizer_pratt(z: np.ndarray, n: int) -> np.ndarray:
    """Peizer-Pratt method-2 inversion h(z) for an odd number of steps n (Leisen and Reimer 1996)."""
    a = z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0))
    return 0.5 + np.sign(z) * 0.5 * np.sqrt(1.0 - np.exp(-(a * a) * (n + 1.0 / 6.0)))


def lr_tree(S, K, T, vol, r, q, call, *, n: int = 2001, american: bool = True) -> dict[str, np.ndarray]:
    """One Leisen-Reimer tree of ``n`` steps (``n`` is made odd). Returns price, delta, gamma."""
    n = int(n) | 1
    (S, K, T, vol, r, q, call), shape = _arrays(S, K, T, vol, r, q, call)
    m = S.size
    dt = T / n
    sd = vol * np.sqrt(T)
    d1 = (np.log(S / K) + (r - q + 0.5 * vol * vol) * T) / sd
    d2 = d1 - sd
    p = _peizer_pratt(d2, n)
    pbar = _peizer_pratt(d1, n)
    growth = np.exp((r - q) * dt)
    u = growth * pbar / p
    d = (growth - p * u) / (1.0 - p)
    disc = np.exp(-r * dt)
    pu = (disc * p)[:, None]
    pd = (disc * (1.0 - p))[:, None]
    eta = np.where(call, 1.0, -1.0)[:, None]
    Kc = K[:, None]
    # terminal nodes: S u^i d^(n-i), i = 0..n; built in log space once
    i = np.arange(n + 1, dtype=np.float64)[None, :]
    spot = S[:, None] * np.exp(i * np.log(u)[:, None] + (n - i) * np.log(d)[:, None])
    values = np.maximum(eta * (spot - Kc), 0.0)
    inv_d = (1.0 / d)[:, None]
    keep: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    buf = np.empty((m, n + 1), dtype=np.float64)  # ping-pong with ``values``: no allocation per step
    for j in range(n - 1, -1, -1):
        cont = buf[:, : j + 1]
        np.multiply(pu, values[:, 1 : j + 2], out=cont)
        cont += pd * values[:, : j + 1]
        # nodes of step j: S u^i d^(j-i) = (node i of step j+1) / d
        spot = spot[:, : j + 1] * inv_d
        if american:
            np.maximum(cont, eta * (spot - Kc), out=cont)
        buf, values = values, cont
        if j <= 2:
            keep[j] = (values.copy(), spot.copy())
    v2, s2 = keep[2]
    delta_up = (v2[:, 2] - v2[:, 1]) / (s2[:, 2] - s2[:, 1])
    delta_dn = (v2[:, 1] - v2[:, 0]) / (s2[:, 1] - s2[:, 0])
    gamma = (delta_up - delta_dn) / (0.5 * (s2[:, 2] - s2[:, 0]))
    v1, s1 = keep[1]
    delta = (v1[:, 1] - v1[:, 0]) / (s1[:, 1] - s1[:, 0])
    price = keep[0][0][:, 0]
    return {"price": price.reshape(shape), "delta": delta.reshape(shape), "gamma": gamma.reshape(shape)}


def tree(S, K, T, vol, r, q, call, *, n: int = 1001, american: bool = True, smooth: int = 3, batch: int = 64) -> dict[str, np.ndarray]:
    """Reference price, delta and gamma. American: Leisen-Reimer trees of ``n`` and ``2n + 1`` steps
    (``n`` odd) Richardson-extrapolated in ``1/n``, averaged over ``smooth`` consecutive odd ``n``
    (``n, n + 2, ...``) to damp the residual oscillation from the exercise boundary crossing the
    nodes. European: the ``2n + 1``-step value. Options are processed ``batch`` at a time."""
    (S, K, T, vol, r, q, call), shape = _arrays(S, K, T, vol, r, q, call)
    out = {k: np.zeros(S.size) for k in ("price", "delta", "gamma")}
    ns = [(int(n) | 1) + 2 * j for j in range(max(1, int(smooth)) if american else 1)]
    for lo in range(0, S.size, batch):
        sl = slice(lo, lo + batch)
        args = (S[sl], K[sl], T[sl], vol[sl], r[sl], q[sl], call[sl])
        for n1 in ns:
            n2 = 2 * n1 + 1
            fine = lr_tree(*args, n=n2, american=american)
            coarse = lr_tree(*args, n=n1, american=True) if american else None
            for k in out:
                v = fine[k] if coarse is None else (n2 * fine[k] - n1 * coarse[k]) / (n2 - n1)
                out[k][sl] += v / len(ns)
    return {k: v.reshape(shape) for k, v in out.items()}
