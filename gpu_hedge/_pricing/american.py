"""American options under Black-Scholes-Merton and Black-76: Andersen-Lake-Offengelt, batched.

The put's early-exercise boundary ``B(tau)`` solves the fixed-point equation of Andersen, Lake and
Offengelt ("High-performance American option pricing", J. Comp. Finance 20(1), 2016), written here
as array code for a whole batch at once with fixed counts (no per-option Python):

- the boundary lives on Chebyshev-Lobatto nodes in ``sqrt(tau)`` as ``H = ln(B / X)^2``, ``X = K min(1, r/q)``;
- the start is the QD+ approximation (Li 2010) at every node, a fixed number of Halley steps;
- each iteration evaluates the equation's integrals (their ``1/sqrt`` singularity removed by
  ``tau - u = tau (1 + y)^2 / 4``) with Gauss-Legendre points; the boundary at all of them is one
  matrix product with a constant interpolation matrix (``_alo_scheme``); the first step is a
  Jacobi-Newton step, the others fixed-point steps with Anderson mixing over the last four (the
  plain iteration converges only linearly, slowly where r / vol^2 is large);
- the price is the European value plus the early-exercise premium integrated over ``s = sqrt(t)``.

Calls use McDonald-Schroder symmetry ``C(S, K, r, q) = P(K, S, q, r)``; Black-76 (futures) is
``q = r`` on the forward. Everything is homogeneous in (spot, strike), so the work is done per unit
strike. The boundary does not depend on the spot: delta and gamma are analytic derivatives of the
premium integral at the fixed boundary; vega, theta, rho, dividend rho and the second-order Greeks
are central differences of the whole computation (smooth in its inputs: the counts are fixed).
"""

from __future__ import annotations

from typing import Any

from ._alo_scheme import DEFAULT, Scheme, tables
from ._limits import INV_SQRT_2PI

#: the Greeks American options have here (the others of GREEK_NAMES are refused by name)
AMERICAN_GREEKS: tuple[str, ...] = (
    "price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho", "vanna", "volga", "charm", "dual_delta", "dual_gamma",
)  # fmt: skip
#: per-row outputs besides the Greeks: immediate exercise optimal, the exercise boundary (spot) at the expiry
EXTRA_OUTPUTS: tuple[str, ...] = ("early_exercise", "boundary")

_NEWTON = 1  # Jacobi-Newton steps before the plain fixed-point steps
_DEPTH = 4  # Anderson mixing over the last _DEPTH fixed-point steps (after the Newton steps)


def _anderson(xp: Any, G: Any, F: Any, g: Any) -> Any:
    """Anderson (type II) mixing of a batch of fixed-point iterations: ``G`` and ``F`` hold the map's
    values ``g_k`` and residuals ``f_k = g_k - x_k`` of the last steps (``(rows, n, depth + 1)``, the
    newest last, ``g`` the newest value). The mix minimises the linearised residual over the last
    differences per row, by its normal equations with a Tikhonov term of ~1e4 ulp of their trace (so
    converged rows, whose differences are rounding, keep ``g`` to rounding, and a history still
    holding copies of one step has zero differences and no weight). Where the map contracts slowly
    (a put with r / vol^2 large) this turns the fixed point's linear convergence superlinear."""
    dF = F[:, :, 1:] - F[:, :, :-1]
    dG = G[:, :, 1:] - G[:, :, :-1]
    A = xp.sum(dF[:, :, :, None] * dF[:, :, None, :], axis=1)
    rhs = xp.sum(dF * F[:, :, -1:], axis=1)
    eye = xp.eye(A.shape[1], dtype=A.dtype)[None]
    trace = xp.sum(A * eye, axis=(1, 2))
    A = A + (1e4 * xp.finfo(A.dtype).eps * trace + xp.finfo(A.dtype).tiny)[:, None, None] * eye
    gamma = xp.linalg.solve(A, rhs[:, :, None])[:, :, 0]
    return g - xp.sum(dG * gamma[:, None, :], axis=2)


def _npdf(xp: Any, d: Any) -> Any:
    return INV_SQRT_2PI * xp.exp(-0.5 * d * d)


def _qd_plus(xp: Any, ndtr: Any, tau: Any, r: Any, q: Any, vol: Any, xmax: Any, steps: int = 8, scan: Any = None) -> Any:
    """QD+ boundary of a unit-strike put at times to expiry ``tau`` (Li 2010; Halley steps from
    ``xmax``, run by ``scan`` where given, as :func:`put_boundary`'s fixed point)."""
    s2 = vol * vol
    v = vol * xp.sqrt(tau)
    dr = xp.exp(-r * tau)
    dq = xp.exp(-q * tau)
    one_dr = -xp.expm1(-r * tau)
    omega = 2.0 * (r - q) / s2
    root = xp.sqrt((omega - 1.0) ** 2 + 8.0 * r / (s2 * one_dr))
    lam = 0.5 * (-(omega - 1.0) - root)
    lam_p = 2.0 * r / (s2 * one_dr * one_dr * root)
    den = 2.0 * lam + omega - 1.0
    alpha = 2.0 * dr * r / (s2 * den)
    beta = alpha * (1.0 / one_dr + lam_p / den) - lam
    c = alpha / (r * dr)
    lo = 1e4 * 2.220446049250313e-16 * xmax

    def halley(x: Any, _: Any) -> Any:
        dp = (xp.log(x * dq / dr)) / v + 0.5 * v
        dm = dp - v
        n_dp, n_dm, f_dp = ndtr(-dp), ndtr(-dm), _npdf(xp, dp)
        npv = dr * n_dm - x * dq * n_dp
        theta = r * dr * n_dm - q * x * dq * n_dp - s2 * x / (2.0 * v) * dq * f_dp
        charm = -dq * (f_dp * ((r - q) / v - dm / (2.0 * tau)) + q * n_dp)
        f = (1.0 - dq * n_dp) * x - beta * (1.0 - x - npv) + c * theta
        f1 = 1.0 - dq * n_dp + dq / v * f_dp + beta * (1.0 - dq * n_dp) + c * charm
        gamma = f_dp * dq / (v * x)
        colour = gamma * (q + (r - q) * dp / v + (1.0 - dp * dm) / (2.0 * tau))
        f2 = dq * (f_dp / (x * v) - f_dp * dp / (x * v * v)) + beta * gamma + c * colour
        lf = f * f2 / (f1 * f1)
        step = f / f1 / (1.0 - 0.5 * lf)
        step = xp.where(xp.isfinite(step), step, 0.0)
        return xp.clip(x - step, lo, xmax)

    x = xmax + 0.0 * tau
    if scan is not None:
        return scan(halley, x, (xp.arange(steps),))
    for _ in range(steps):
        x = halley(x, None)
    return x


def _h(xp: Any, b: Any, xmax: Any) -> Any:
    return xp.log(b / xmax) ** 2


def _from_h(xp: Any, y: Any, xmax: Any) -> Any:
    return xmax * xp.exp(-xp.sqrt(xp.maximum(y, 0.0)))


def _point_d(xp: Any, yq: Any, root_b: Any, drift: Any, sm: Any, n: int, n_fp: int) -> tuple[Any, Any]:
    """``(dp, dm)`` at every fixed-point integration point from the interpolated boundary ``yq``;
    ln(b / B(tau - m)) = sqrt(H(tau - m)) - sqrt(H(tau)): no log, no exp per point."""
    root_q = xp.sqrt(xp.maximum(yq.reshape(-1, n, n_fp), 0.0))
    dp_q = (root_q - root_b[:, :, None] + drift) / sm + 0.5 * sm
    return dp_q, dp_q - sm


def put_boundary(xp: Any, special: Any, T: Any, r: Any, q: Any, vol: Any, scheme: Scheme = DEFAULT) -> tuple[Any, Any]:
    """``(Y, xmax)``: the unit-strike put boundary of each row as ``H`` on the scheme's ``nodes + 1``
    Chebyshev points (row-wise ``(n_rows, nodes + 1)``; ``B = xmax exp(-sqrt(H))``). Needs ``r > 0``,
    ``vol > 0``, ``T > 0`` (the caller substitutes safe values elsewhere).

    The fixed point is ALO's distribution-functions form (their FP-B; the densities form FP-A is
    unstable for r - q large). After the Jacobi-Newton step and a first plain step every step is the
    same computation on a carry ``(Y, G, F)`` (the boundary and the last ``_DEPTH + 1`` map values and
    residuals, the history first filled with the first step's), run by ``special.scan`` where the
    backend has one (JAX: ``lax.scan``, so a boundary compiles as three steps, not ``iterations``)."""
    tb = tables(scheme)
    ndtr = special.ndtr
    frac = xp.asarray(tb.frac)
    sn = xp.asarray(tb.sin)[None, None, :]
    cs = xp.asarray(tb.cos)[None, None, :]
    wq = xp.asarray(tb.w)[None, None, :]
    M = xp.asarray(tb.fp_matrix)
    n, n_fp = scheme.nodes, scheme.fp_points
    T2, r2, q2, v2 = (a[:, None] for a in (T, r, q, vol))
    xmax = xp.where(q > r, r / xp.where(q > r, q, 1.0), 1.0)
    xm2 = xmax[:, None]
    tau = T2 * frac[None, :]  # (rows, n)
    scan = getattr(special, "scan", None)
    b = _qd_plus(xp, ndtr, tau, r2, q2, v2, xm2, scan=scan)
    Y = xp.concatenate([xp.zeros_like(T2), _h(xp, b, xm2)], axis=1)
    r3, q3, v3, tau3 = r2[:, :, None], q2[:, :, None], v2[:, :, None], tau[:, :, None]
    m = tau3 * sn * sn  # (rows, n, l): time from the node to the exercise date
    sm = v3 * xp.sqrt(tau3) * sn
    # dm = 2 tau sin(phi) cos(phi) dphi
    w_level = wq * 2.0 * tau3 * sn * cs
    drift = (r3 - q3) * m
    cq, cr = xp.exp(q3 * (tau3 - m)) * w_level, xp.exp(r3 * (tau3 - m)) * w_level
    fused = getattr(special, "alo_sums", None)  # the backend's fused integral sums, where it has them
    fused = fused(drift, sm, cq, cr) if fused is not None else None
    vt = v2 * xp.sqrt(tau)
    carry = (r2 - q2) * tau
    growth = xp.exp(-carry)

    def step(Y: Any, newton: bool) -> Any:
        """One fixed-point (or Jacobi-Newton) step: the map's new ``H`` at nodes 1..n."""
        root_b = xp.sqrt(xp.maximum(Y[:, 1:], 0.0))
        b = xm2 * xp.exp(-root_b)
        dp = (xp.log(b) + carry) / vt + 0.5 * vt
        dm = dp - vt
        if fused is not None:
            sum_q, sum_r = fused(Y, M, root_b)
        else:
            dp_q, dm_q = _point_d(xp, Y @ M, root_b, drift, sm, n, n_fp)
            sum_q, sum_r = xp.sum(cq * ndtr(dp_q), axis=2), xp.sum(cr * ndtr(dm_q), axis=2)
        N = ndtr(dm) + r2 * sum_r
        D = ndtr(dp) + q2 * sum_q
        new = growth * N / D
        if newton:  # Jacobi-Newton: the derivative of the non-integral terms in b
            fd = growth * (_npdf(xp, dm) / (b * vt) / D - _npdf(xp, dp) / (b * vt) * N / (D * D))
            jn = b - (new - b) / (fd - 1.0)
            new = xp.where(xp.isfinite(jn) & (jn > 0), jn, new)
        return _h(xp, xp.clip(new, 1e-300, xm2), xm2)

    def with_nodes(Y: Any, g: Any) -> Any:
        return xp.concatenate([Y[:, :1], g], axis=1)

    for _ in range(min(_NEWTON, scheme.iterations)):
        Y = with_nodes(Y, step(Y, True))
    plain = scheme.iterations - _NEWTON
    if plain <= 0:
        return Y, xmax
    g = step(Y, False)
    G = xp.stack([g] * (_DEPTH + 1), axis=2)
    F = xp.stack([g - Y[:, 1:]] * (_DEPTH + 1), axis=2)
    Y = with_nodes(Y, g)

    def mixed(c: Any, _: Any) -> Any:
        Y, G, F = c
        g = step(Y, False)
        G = xp.concatenate([G[:, :, 1:], g[:, :, None]], axis=2)
        F = xp.concatenate([F[:, :, 1:], (g - Y[:, 1:])[:, :, None]], axis=2)
        return with_nodes(Y, xp.maximum(_anderson(xp, G, F, g), 0.0)), G, F

    if plain > 1:
        if scan is None:
            for _ in range(plain - 1):
                Y, G, F = mixed((Y, G, F), None)
        else:
            Y, G, F = scan(mixed, (Y, G, F), (xp.arange(plain - 1),))
    return Y, xmax


def put_unit(
    xp: Any, special: Any, x: Any, T: Any, r: Any, q: Any, vol: Any, Y: Any, xmax: Any, scheme: Scheme = DEFAULT
) -> dict[str, Any]:
    """Unit-strike put at spot/strike ``x`` on a computed boundary: price, d/dx, d2/dx2, boundary at T."""
    tb = tables(scheme)
    ndtr = special.ndtr
    sT = xp.sqrt(T)
    s = sT[:, None] * xp.asarray(tb.price_sin)[None, :]
    t = s * s
    w = xp.asarray(tb.price_w)[None, :] * sT[:, None]
    bt = _from_h(xp, Y @ xp.asarray(tb.price_matrix), xmax[:, None])
    x2, r2, q2 = x[:, None], r[:, None], q[:, None]
    v = vol[:, None] * s
    dp = (xp.log(x2 / bt) + (r2 - q2) * t) / v + 0.5 * v
    dm = dp - v
    er, eq = xp.exp(-r2 * t), xp.exp(-q2 * t)
    n_dp, n_dm, f_dp, f_dm = ndtr(-dp), ndtr(-dm), _npdf(xp, dp), _npdf(xp, dm)
    two_s = 2.0 * s * w
    premium = xp.sum(two_s * (r2 * er * n_dm - q2 * x2 * eq * n_dp), axis=1)
    p_delta = xp.sum(two_s * (-r2 * er * f_dm / (x2 * v) - q2 * eq * n_dp + q2 * eq * f_dp / v), axis=1)
    p_gamma = xp.sum(two_s * (r2 * er * f_dm * (dm / v + 1.0) / (x2 * x2 * v) + q2 * eq * f_dp * (1.0 - dp / v) / (x2 * v)), axis=1)
    vT = vol * sT
    d1 = (xp.log(x) + (r - q) * T) / vT + 0.5 * vT
    d2 = d1 - vT
    eqT, erT = xp.exp(-q * T), xp.exp(-r * T)
    euro = erT * ndtr(-d2) - x * eqT * ndtr(-d1)
    e_delta = -eqT * ndtr(-d1)
    e_gamma = eqT * _npdf(xp, d1) / (x * vT)
    b_T = _from_h(xp, Y[:, -1], xmax)
    ex = x <= b_T
    price = xp.maximum(xp.maximum(euro, 0.0) + xp.maximum(premium, 0.0), 1.0 - x)
    return {
        "price": xp.where(ex, 1.0 - x, price),
        "delta": xp.where(ex, -1.0, e_delta + p_delta),
        "gamma": xp.where(ex, 0.0, e_gamma + p_gamma),
        "boundary": b_T,
        "early_exercise": ex,
    }
