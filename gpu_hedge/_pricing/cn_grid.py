"""A batched Crank-Nicolson grid for American (and European) options with discrete cash dividends.

**Model: the escrowed process** (the one :mod:`.dividends` prices European options with). The grid
variable is ``x = log S*``, ``S* = S - PV(t)`` (``PV(t)``: value at ``t`` of the cash dividends
still to go ex in ``[t, T]``), a geometric Brownian motion with carry ``r - q`` and vol ``vol``
(the already adjusted ``vol*``). No jump at the ex-dates: ``S*`` is continuous; what changes at an
ex-date is the exercise value, the quoted spot ``S* + PV(t)``: ``phi (S* + PV(t) - K)``, cum-dividend
at the node of the ex-date. A European value on this grid therefore converges to the escrowed
closed form, an American call is exercised just before a dividend (Hull's escrowed tree, in PDE form).

**Scheme**, for all options at once (arrays ``(n_space, n_rows)``, rows on the fast axis):

- space: ``n_space`` (odd) nodes per row, uniform in ``log S*``, centred on today's ``S*`` (so
  price, delta and gamma are read at a node) over ``+-N_SD vol sqrt(T)``; Dirichlet ends at the
  discounted forward intrinsic value (the American one floored at exercise). The payoff is averaged
  over each node's cell (Pooley, Vetzal and Forsyth 2003, *J. Comp. Finance* 6(4)), which with the
  start-up below keeps second-order convergence despite the kink at the strike.
- time: ``n_time`` steps per row, in segments between the ex-dates (each ex-date a node, so exercise
  just before or just after a dividend is caught exactly; a segment gets about its share of the
  steps), shrinking quadratically towards the segment's end (expiry or the next ex-date), where the
  exercise boundary moves like the square root of the time left. Rannacher start-up: the first two
  steps from expiry are four implicit Euler half steps, and the two steps before each ex-date
  implicit Euler too; the rest Crank-Nicolson. A step into an ex-date node is solved against the
  exercise value of the time just after the dividend (ex-dividend, the put's larger one), then
  projected on the cum-dividend one (the call's larger one): solving against the jumped value
  would couple it into the continuation through the implicit half (a first-order error).
- each step solves its tridiagonal system by the Thomas algorithm batched over rows, a loop over
  space written as ``Backend.scan`` (compiled ``lax.scan`` on JAX, where writes use ``.at[].set``
  as the ``"immutable"`` capability asks; a loop with in-place writes on NumPy and CuPy). Early
  exercise by the Brennan-Schwartz algorithm: each row's grid is oriented so its exercise region
  (high ``S*`` for calls, low for puts) is at the top, where back substitution starts, and the
  back substitution takes ``max(continuation, exercise)`` (the exact solution of the discrete
  linear complementarity problem when the exercise region is one interval, as it is here).
- Greeks: delta and gamma by central differences at the centre node, theta (``dV/dt`` at fixed
  ``S*``) from the first two time steps (three-point formula), vega/volga/vanna and rho/dividend
  rho by bump-and-revalue on the same spatial grid (bumped rows are solved in the same batch).

**Convergence** (``tests/test_cn_grid.py``, which checks these figures; ``n_space = 2 n_time + 1``;
S=100, T=1, r=5 %, q=1 %, vol 25 %): error in price of (a) a European call K=105 without dividends
against the closed form, (b) a European put K=100 with cash dividends 1.5 at t=0.3 and 0.8 against
the escrowed closed form, (c) an American put K=110 without dividends against QuantLib 1.44's
QdFp high-precision value 14.075437381243, (d) an American call K=95 (vol 30 %, q=0, dividend 3 at
day 273 of 365) against QuantLib 1.44's ``FdBlackScholesVanillaEngine`` with its ``Escrowed``
cash-dividend model (the same model; 4000 x 2000 steps, Crank-Nicolson: 15.35382543). Each halving
of both spacings divides the errors (a)-(c) by 4; (d) is second order on average (the exercise
boundary at the ex-date falls anywhere in a cell, so not monotonically)::

 n_time     (a)             (b)             (c)             (d)
 25         +1.185e-02      -2.957e-03      -2.592e-02      +1.620e-03
 50         +2.993e-03      -6.180e-04      -6.408e-03      +9.324e-04
 100        +7.468e-04      -1.426e-04      -1.752e-03      -1.057e-04
 200        +1.863e-04      -3.486e-05      -4.506e-04      +5.110e-05
 400        +4.659e-05      -8.626e-06      -1.154e-04      +6.311e-06

At the defaults (``n_time`` 200, ``n_space`` 401) against the same QuantLib engine (2000 x 2000),
S=100, r=5 %, dividends at days 91 and 273: American call K=100, vol 25 %, dividends 2: 10.12316
(QuantLib 10.12311); call K=95, vol 30 %, dividends 3: 13.41768 (13.41772); put K=105, vol 25 %,
dividends 2: 12.25045 (12.25052; the grid converges to about 12.2508 here, as does a 5,840-step
escrowed binomial tree, 12.2512).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

N_SPACE = 401  #: default space nodes
N_TIME = 200  #: default time steps (before the Rannacher half steps)
N_SD = 5.5  #: grid half-width in standard deviations of log S* at expiry
_SOLVERS: dict[tuple[int, int], tuple[Any, Any]] = {}


def time_grid(
    T: np.ndarray, r: np.ndarray, times: np.ndarray, amounts: np.ndarray, n_time: int, phi: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Host arrays of the backward time stepping, per step ``(n_steps, n_rows)``: ``dt``, ``theta``
    (1 implicit, 0.5 Crank-Nicolson), ``pv`` (PV at the new node of the dividends strictly after it:
    the exercise value during the step), ``pv_cum`` (calls, ``phi`` > 0: also the dividend going ex
    at the node, projected on after the step; puts: ``pv``), ``tau`` (time to expiry of the new
    node); ``pv_T`` (a call's dividends exactly at ``T``, for the exercise value at expiry) and
    ``h1``, ``h2`` (the first two steps from valuation, for theta). At an ex-date node the holder
    may exercise just before or just after the dividend; the node takes the larger value."""
    N = int(n_time)
    if N < 4:
        raise ValueError(f"n_time must be >= 4 (Rannacher start-up); got {N}")
    n = T.shape[0]
    live = (times > 0) & (times <= T[:, None]) & (amounts > 0)
    inner = live & (times < T[:, None])
    Tsafe = np.where(T > 0, T, 1.0)
    # segments between ex-dates: node KB_j (about N t_j / T) is the ex-date t_j exactly; within a
    # segment the steps shrink towards its end (time to the segment's end quadratic in the step
    # index), where the exercise boundary moves like the square root of that time (after expiry
    # or an ex-date, going backwards). Refining N refines every segment smoothly.
    kb = np.where(inner, np.clip(np.rint(N * times / Tsafe[:, None]), 1, N - 1), N)
    B = np.concatenate([np.zeros((n, 1)), np.sort(np.where(inner, times, T[:, None]), axis=1), T[:, None]], axis=1)
    KB = np.concatenate([np.zeros((n, 1)), np.sort(kb, axis=1), np.full((n, 1), N)], axis=1)
    k = np.arange(N + 1)[None, :]
    seg = np.sum(KB[:, 1:, None] < k[:, None, :], axis=1)
    lo, hi = np.take_along_axis(B, seg, axis=1), np.take_along_axis(B, seg + 1, axis=1)
    klo, khi = np.take_along_axis(KB, seg, axis=1), np.take_along_axis(KB, seg + 1, axis=1)
    frac = (k - klo) / np.maximum(khi - klo, 1.0)
    nodes = np.where(frac >= 1.0, hi, lo + (hi - lo) * (1.0 - (1.0 - frac) ** 2))  # ex-dates exactly
    kinked = np.zeros((n, N + 1), dtype=bool)
    for i in range(times.shape[1]):
        kinked[np.flatnonzero(inner[:, i]), kb[inner[:, i], i].astype(np.int64)] = True
    mid = lambda a, b: 0.5 * (nodes[:, a] + nodes[:, b])  # noqa: E731
    new = [mid(N, N - 1), nodes[:, N - 1], mid(N - 1, N - 2), nodes[:, N - 2]] + [nodes[:, k] for k in range(N - 3, -1, -1)]
    new_t = np.stack(new)
    old_t = np.concatenate([nodes[None, :, N], new_t[:-1]])
    pv, pv_cum = np.zeros_like(new_t), np.zeros_like(new_t)
    pv_T = np.zeros(n)
    cum = np.ones(n, dtype=bool) if phi is None else np.asarray(phi).reshape(-1) > 0
    for i in range(times.shape[1]):
        t, a = times[:, i], np.where(live[:, i], amounts[:, i], 0.0)
        value = a[None, :] * np.exp(-r[None, :] * (t[None, :] - new_t))
        pv += np.where(t[None, :] > new_t, value, 0.0)
        pv_cum += np.where(np.where(cum[None, :], t[None, :] >= new_t, t[None, :] > new_t), value, 0.0)
        pv_T += np.where(cum & (t >= T), a, 0.0)
    # Rannacher start-up: the first four half steps implicit; and, as the exercise value jumps at an
    # ex-date and projection leaves a kink there, the two steps before each ex-date node too
    theta = np.full((N + 2, n), 0.5)
    theta[:4] = 1.0
    old_node = N + 2 - np.arange(4, N + 2)  # CN step s (>= 4) leaves node N + 2 - s
    restart = kinked[:, old_node] | kinked[:, old_node + 1]
    theta[4:][restart.T] = 1.0
    dt = old_t - new_t
    return {"dt": dt, "theta": theta, "pv": pv, "pv_cum": pv_cum, "tau": T[None, :] - new_t, "pv_T": pv_T, "h1": dt[-1], "h2": dt[-2]}


def _solve(xp: Any, scan: Any, immutable: bool, n_space: int, native: Any, x0, h, K, phi, am, vol, r, q, dt, theta, pv, pv_cum, tau, pv_T,
           h1, h2):  # fmt: skip
    """The jitted core: backward induction from expiry; returns price, delta, gamma, theta at x0.
    ``native``: the backend's compiled solve of a step (``special.tridiag_obstacle``) or None."""
    J = (n_space - 1) // 2
    offs = xp.asarray(np.arange(n_space, dtype=np.float64) - J, dtype=x0.dtype)[:, None]
    X = x0 + phi * offs * h
    Sg = xp.exp(X)
    lk = xp.log(K)
    a, b = X - 0.5 * h, X + 0.5 * h
    aa, bb = xp.maximum(a, lk), xp.minimum(b, lk)
    call_avg = xp.where(b > lk, (xp.exp(b) - xp.exp(aa) - K * (b - aa)) / h, 0.0)
    put_avg = xp.where(a < lk, (K * (bb - a) - (xp.exp(bb) - xp.exp(a))) / h, 0.0)
    V = xp.where(phi > 0, call_avg, put_avg)
    V = xp.where(am, xp.maximum(V, phi * (Sg + pv_T - K)), V)
    alpha = 0.5 * vol * vol / (h * h)
    beta = (r - q - 0.5 * vol * vol) / (2.0 * h)
    lo_o = xp.where(phi > 0, alpha - beta, alpha + beta)  # on the oriented neighbour below
    up_o = xp.where(phi > 0, alpha + beta, alpha - beta)
    dg = -2.0 * alpha - r
    if immutable:
        put = lambda A, i, v: A.at[i].set(v)  # noqa: E731
    else:

        def put(A: Any, i: Any, v: Any) -> Any:
            A[i] = v
            return A

    fwd_idx = (np.arange(1, n_space - 1),)
    back_idx = (np.arange(n_space - 2, 0, -1),)
    neg_inf = -np.inf
    S_ends = xp.stack([Sg[0], Sg[n_space - 1]])

    def step(carry: Any, xs: Any) -> Any:
        V, c1, c2 = carry
        d_t, th, pv_s, pv_c, tr = xs
        rhs = V[1:-1] + (1.0 - th) * d_t * (lo_o * V[:-2] + dg * V[1:-1] + up_o * V[2:])
        ex = xp.where(am, phi * (Sg + pv_s - K), neg_inf)
        bc = xp.maximum(phi * (S_ends * xp.exp(-q * tr) - K * xp.exp(-r * tr)), 0.0)
        bc = xp.maximum(bc, xp.stack([ex[0], ex[n_space - 1]]))
        A_sub, A_dg, A_sup = -th * d_t * lo_o, 1.0 - th * d_t * dg, -th * d_t * up_o
        U = native(A_sub, A_dg, A_sup, rhs, bc[0], bc[1], ex) if native is not None else None
        if U is not None:
            U = xp.where(am, xp.maximum(U, phi * (Sg + pv_c - K)), U)
            return U, V[J], c1

        def forward(c: Any, x: Any) -> Any:
            cp, dp, CP, DP = c
            i = x[0]
            m = A_dg - A_sub * cp
            cpn = A_sup / m
            dpn = (rhs[i - 1] - A_sub * dp) / m
            return cpn, dpn, put(CP, i, cpn), put(DP, i, dpn)

        zeros = xp.zeros((n_space,) + x0.shape, dtype=x0.dtype)
        _, _, CP, DP = scan(forward, (0.0 * x0, bc[0], zeros, zeros + 0.0), fwd_idx)

        def backward(c: Any, x: Any) -> Any:
            u_next, U = c
            i = x[0]
            u = xp.maximum(DP[i] - CP[i] * u_next, ex[i])
            return u, put(U, i, u)

        U = put(put(zeros + 0.0, 0, bc[0]), n_space - 1, bc[1])
        _, U = scan(backward, (bc[1], U), back_idx)
        # a call's exercise value jumps up at an ex-date node: the step is solved against the
        # obstacle of the time just after it (ex-dividend), then projected on the cum-dividend one
        U = xp.where(am, xp.maximum(U, phi * (Sg + pv_c - K)), U)
        return U, V[J], c1

    V, c1, c2 = scan(step, (V, 0.0 * x0, 0.0 * x0), (dt, theta, pv, pv_cum, tau))
    S0 = xp.exp(x0)
    Vx = phi * (V[J + 1] - V[J - 1]) / (2.0 * h)
    Vxx = (V[J + 1] - 2.0 * V[J] + V[J - 1]) / (h * h)
    f0 = V[J]
    th0 = -(2.0 * h1 + h2) / (h1 * (h1 + h2)) * f0 + (h1 + h2) / (h1 * h2) * c1 - h1 / (h2 * (h1 + h2)) * c2
    return {"price": f0, "delta": Vx / S0, "gamma": (Vxx - Vx) / (S0 * S0), "theta": th0}


def _solver(bk: Any, n_space: int) -> Any:
    key = (id(bk), n_space)
    if key not in _SOLVERS:
        native = None if "jit" in bk.capabilities else getattr(bk.special, "tridiag_obstacle", None)
        fn = partial(_solve, bk.xp, bk.scan, "immutable" in bk.capabilities, n_space, native)
        _SOLVERS[key] = (bk, bk.jit(fn))
    return _SOLVERS[key][1]


def cn_solve(
    bk: Any, spot: Any, strike: Any, expiry: Any, vol: Any, rate: Any, div: Any, phi: Any, american: Any,
    times: np.ndarray, amounts: np.ndarray, *, n_space: int = N_SPACE, n_time: int = N_TIME,
    half_width: Any = None, dtype: Any = np.float64,
) -> dict[str, Any]:  # fmt: skip
    """Price, delta, gamma (in ``S*``) and theta (``dV/dt`` at fixed ``S*``, dividend dates fixed in
    calendar time) of ``n`` options on the grid; ``spot`` is the escrowed ``S*``, ``vol`` the vol of
    ``S*``. 1-D arrays of ``n`` rows (backend arrays or host), ``phi`` +1 call / -1 put,
    ``american`` bool per row, ``times``/``amounts`` host ``(n, m)``. ``half_width``: the grid's
    half-width in ``log S*`` per row (default ``N_SD vol sqrt(T)``); vol and expiry must be > 0."""
    n_space = int(n_space) | 1
    if n_space < 5:
        raise ValueError(f"n_space must be >= 5; got {n_space}")
    xp = bk.xp
    host = {k: np.asarray(bk.to_numpy(v), dtype=np.float64).reshape(-1) for k, v in (("T", expiry), ("r", rate))}
    phi_h = np.asarray(bk.to_numpy(phi), dtype=np.float64).reshape(-1)
    grid = time_grid(host["T"], host["r"], np.asarray(times, np.float64), np.asarray(amounts, np.float64), n_time, phi_h)
    dev = {k: bk.asarray(v, dtype=dtype) for k, v in grid.items()}
    S, K, vol, r, q, phi = (bk.asarray(v, dtype=dtype) for v in (spot, strike, vol, rate, div, phi))
    T = bk.asarray(host["T"], dtype=dtype)
    L = N_SD * vol * xp.sqrt(T) if half_width is None else bk.asarray(half_width, dtype=dtype)
    h = 2.0 * L / (n_space - 1)
    am = bk.asarray(np.asarray(bk.to_numpy(american), dtype=bool).reshape(-1))
    return _solver(bk, n_space)(
        xp.log(S),
        h,
        K,
        phi,
        am,
        vol,
        r,
        q,
        dev["dt"],
        dev["theta"],
        dev["pv"],
        dev["pv_cum"],
        dev["tau"],
        dev["pv_T"],
        dev["h1"],
        dev["h2"],
    )


#: bump sizes for the revalued Greeks (absolute: vol, rate, yield)
BUMPS = {"vol": 1e-3, "rate": 1e-4, "div": 1e-4}


def cn_partials(
    bk: Any, spot: Any, strike: Any, expiry: Any, vol: Any, rate: Any, div: Any, phi: Any, american: Any,
    times: np.ndarray, amounts: np.ndarray, names: tuple[str, ...], *, n_space: int = N_SPACE,
    n_time: int = N_TIME, dtype: Any = np.float64,
) -> dict[str, Any]:  # fmt: skip
    """:func:`cn_solve` plus ``vega``, ``volga``, ``vanna`` (in ``vol``), ``rho`` (``r``, at fixed
    ``S*``) and ``dividend_rho`` (``q``) by central bump-and-revalue on the same spatial grid, all
    bumped rows solved in one batch with the base rows. Returns the ``names`` asked for."""
    xp = bk.xp
    base = [bk.asarray(v, dtype=dtype) for v in (spot, strike, expiry, vol, rate, div, phi)]
    S, K, T, v, r, q, ph = base
    n = int(S.shape[0])
    variants = [(v, r, q)]
    dv, dr, dq = BUMPS["vol"], BUMPS["rate"], BUMPS["div"]
    sig = bool(set(names) & {"vega", "volga", "vanna"})
    if sig:
        variants += [(v + dv, r, q), (v - dv, r, q)]
    if "rho" in names:
        variants += [(v, r + dr, q), (v, r - dr, q)]
    if "dividend_rho" in names:
        variants += [(v, r, q + dq), (v, r, q - dq)]
    c = len(variants)
    cat = lambda xs: xp.concatenate(xs)  # noqa: E731
    am = np.tile(np.asarray(bk.to_numpy(american), dtype=bool).reshape(-1), c)
    out = cn_solve(
        bk, cat([S] * c), cat([K] * c), cat([T] * c), cat([x[0] for x in variants]), cat([x[1] for x in variants]),
        cat([x[2] for x in variants]), cat([ph] * c), am, np.tile(times, (c, 1)), np.tile(amounts, (c, 1)),
        n_space=n_space, n_time=n_time, half_width=cat([N_SD * v * xp.sqrt(T)] * c), dtype=dtype,
    )  # fmt: skip
    part = {k: [a[j * n : (j + 1) * n] for j in range(c)] for k, a in out.items()}
    res = {k: part[k][0] for k in ("price", "delta", "gamma", "theta")}
    j = 1
    if sig:
        P, D = part["price"], part["delta"]
        res["vega"] = (P[j] - P[j + 1]) / (2.0 * dv)
        res["volga"] = (P[j] - 2.0 * P[0] + P[j + 1]) / (dv * dv)
        res["vanna"] = (D[j] - D[j + 1]) / (2.0 * dv)
        j += 2
    if "rho" in names:
        res["rho"] = (part["price"][j] - part["price"][j + 1]) / (2.0 * dr)
        j += 2
    if "dividend_rho" in names:
        res["dividend_rho"] = (part["price"][j] - part["price"][j + 1]) / (2.0 * dq)
    return {k: res[k] for k in names}


def exercised_now(xp: Any, spot: Any, strike: Any, phi: Any, price: Any, american: Any) -> Any:
    """Per row: an American option whose grid price is its intrinsic value (exercise now is optimal;
    within 1e-12 of the strike, the grid's floor), False for European rows."""
    intrinsic = xp.maximum(phi * (spot - strike), 0.0)
    return american & (intrinsic > 0) & (price <= intrinsic + 1e-12 * strike)
