"""The normalised Black function and its inverse, after P. Jäckel, "Let's Be Rational" (Wilmott 2015).

With ``x = ln(F/K)`` and total vol ``s = sigma sqrt(T)``, an undiscounted call costs
``sqrt(F K) b(x, s)`` where::

    b(x, s) = Phi(x/s + s/2) e^{x/2} - Phi(x/s - s/2) e^{-x/2}

Everything here works on the out-of-the-money branch ``x <= 0`` (callers reduce to it with put-call
symmetry and by subtracting the intrinsic value), is pure array code on ``xp`` and ``sp`` (the
backend's special functions) and never branches on data: every region is computed and the right
one selected with ``xp.where``, and the solver runs a fixed number of steps, so the same code
jit-compiles. ``b`` is evaluated in Jäckel's four regions (asymptotic expansion for ``h = x/s``
far below -10, a 12th-order small-``t`` expansion for ``t = s/2 < 0.21``, the plain formula once
``h + t > 0.85``, and the scaled complementary error function ``erfcx`` elsewhere), each accurate
to a few ulps where it is used.

The inverse takes Jäckel's four-branch rational-cubic initial guess (branches split at the
inflexion point ``s_c = sqrt(2|x|)`` and at the tangent intercepts ``s_l``, ``s_h``; the two outer
ones interpolate transformed maps of ``b``) and then exactly two Householder(3) steps on the
branch's transformed objective: ``1/ln b - 1/ln beta`` (lowest branch), ``ln(b_max - beta) -
ln(b_max - b)`` (highest, when ``beta > b_max / 2``), ``b - beta`` otherwise. The guess and the
first step use the plain formula for ``b`` (see :func:`black_and_vega`; far more accurate than a
fourth-order step needs); the second step, which fixes the result, uses the full four-region ``b``.
"""

from __future__ import annotations

import math
from typing import Any

SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / SQRT_2PI
SQRT_PI_OVER_2 = math.sqrt(math.pi / 2.0)
INV_SQRT2 = 1.0 / math.sqrt(2.0)
SQRT3 = math.sqrt(3.0)
TWO_PI_OVER_SQRT27 = 2.0 * math.pi / math.sqrt(27.0)

#: Region boundaries of b (Jäckel): the asymptotic expansion below h = ETA, the small-t expansion below t = TAU.
ETA = -10.0
TAU = 2.0 * (2.0**-52) ** (1.0 / 16.0)

RC_MIN = -(1.0 - math.sqrt(2.0**-52))  # rational cubic control parameter bounds
RC_MAX = 2.0 / (2.0**-52) ** 2


def limits(xp: Any, dtype: Any) -> tuple[float, float, float]:
    """``(x_max, s_min, s_max)``: the ranges of ``|x|`` and ``s`` in which no step over- or underflows.

    ``|x| <= x_max`` keeps ``e^{|x|/2}`` finite; ``s_min`` keeps ``(x/s)^2`` finite.
    Beyond them the price carries no usable information about the vol in this ``dtype``.
    """
    fi = xp.finfo(dtype)
    x_max = 0.5 * math.log(float(fi.max))
    s_min = 4.0 * x_max / math.sqrt(float(fi.max))
    return x_max, s_min, 1.0 / s_min


def _asymptotic_sum_coefficients() -> list[list[float]]:
    # A(h, t) = 2 + q (P1(e) + 3 q (P2(e) + 5 q (P3(e) + ...))), P_k(e) = (-1)^k 2 sum_j C(2k+1, 2j+1) e^j:
    # Abramowitz & Stegun 26.2.12 for Y(h +- t), expanded in q = (h/r)^2, e = (t/h)^2, r = (h+t)(h-t).
    return [[(-1) ** k * 2.0 * math.comb(2 * k + 1, 2 * j + 1) for j in range(k + 1)] for k in range(1, 18)]


#: The asymptotic expansion's coefficients: row k - 1 holds the k + 1 coefficients of P_k (see below).
ASYMPTOTIC = _asymptotic_sum_coefficients()

#: The small-t series' coefficients (Jäckel): ``c_k = (sum_j (p_j + q_j a) g^j + a g^k) / denominator``,
#: ``g = h^2``, for k = 1 ... 6, as ``(denominator, ((p_0, q_0), ..., (p_{k-1}, q_{k-1})))``.
SMALL_T: tuple[tuple[float, tuple[tuple[float, float], ...]], ...] = (
    (6.0, ((-1.0, 3.0),)),
    (120.0, ((-7.0, 15.0), (-1.0, 10.0))),
    (5040.0, ((-57.0, 105.0), (-18.0, 105.0), (-1.0, 21.0))),
    (362880.0, ((-561.0, 945.0), (-285.0, 1260.0), (-33.0, 378.0), (-1.0, 36.0))),
    (39916800.0, ((-6555.0, 10395.0), (-4680.0, 17325.0), (-840.0, 6930.0), (-52.0, 990.0), (-1.0, 55.0))),
    (6227020800.0, ((-89055.0, 135135.0), (-82845.0, 270270.0), (-20370.0, 135135.0), (-1926.0, 25740.0), (-75.0, 2145.0), (-1.0, 78.0))),
)


def horner(c: Any, z: Any) -> Any:
    """``c[0] + z (c[1] + z (c[2] + ...))``."""
    p = c[-1]
    for a in reversed(c[:-1]):
        p = p * z + a
    return p


def _asymptotic_region(xp: Any, h: Any, t: Any) -> Any:
    """b e^{(h^2+t^2)/2} sqrt(2 pi) for h << 0, to 17th order (accurate to ~1e-16 when h + t < -10 + TAU)."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    acc = horner(ASYMPTOTIC[-1], e)
    for k in range(len(ASYMPTOTIC) - 1, 0, -1):
        acc = horner(ASYMPTOTIC[k - 1], e) + (2 * k + 1) * q * acc
    return (t / r) * (2.0 + q * acc)


def _small_t_region(xp: Any, sp: Any, h: Any, t: Any) -> Any:
    """b e^{(h^2+t^2)/2} sqrt(2 pi) as a series in t to 12th order, with a = 1 + h Y(h), Y = Phi/phi (h <= 0)."""
    return small_t_series(1.0 + h * SQRT_PI_OVER_2 * sp.erfcx(-INV_SQRT2 * h), h, t)


def small_t_series(a: Any, h: Any, t: Any) -> Any:
    """:func:`_small_t_region`'s series given ``a`` = 1 + h Y(h): ``2 t (a + w (c_1 + w (c_2 + ...)))``,
    ``w = t^2``, each ``c_k`` from its row of :data:`SMALL_T` (plain arithmetic on any array type)."""
    w = t * t
    g = h * h
    acc = None
    for denominator, pairs in reversed(SMALL_T):
        c = a
        for p, q in reversed(pairs):
            c = p + q * a + g * c
        c = c / denominator
        acc = c if acc is None else c + w * acc
    return 2.0 * t * (a + w * acc)


def black_and_vega(xp: Any, sp: Any, x: Any, s: Any, accurate: bool) -> tuple[Any, Any]:
    """``(b(x, s), db/ds)`` for ``x <= 0`` and ``s`` in ``[s_min, s_max]`` (see :func:`limits`).

    ``accurate=False`` uses the plain formula everywhere, its second term in erfcx form so that it
    cannot underflow: a few ulps where ``h + t > 0.85``, elsewhere losing about ``eps |h| / t``
    relative to cancellation (1e-12 at ``t = 1e-4``), plenty for an initial guess and a first
    fourth-order step.
    """
    h = x / s
    t = 0.5 * s
    expo = xp.exp(-0.5 * (h * h + t * t))
    vega = INV_SQRT_2PI * expo
    # Phi(h - t) e^{-x/2} = erfcx((t - h)/sqrt2) e^{-(h^2+t^2)/2} / 2, since x = 2 h t.
    second = 0.5 * expo * sp.erfcx(INV_SQRT2 * (t - h))
    b_plain = sp.ndtr(h + t) * xp.exp(0.5 * x) - second
    if not accurate:
        return xp.maximum(b_plain, 0.0), vega
    plain = x + 0.5 * s * s > 0.85 * s  # h + t > 0.85: b is mostly the first term, no cancellation
    # Phi(z) = erfcx(-z/sqrt2) e^{-z^2/2} / 2: one exponential instead of four (clamped off its region).
    z = xp.maximum(-INV_SQRT2 * (h + t), -0.7)
    b_erfcx = 0.5 * expo * sp.erfcx(z) - second
    asym = (x < s * ETA) & (0.5 * s * s + x < s * (TAU + ETA))
    small = ~asym & (t < TAU)  # here h >= ETA
    ha, ta = xp.where(asym, h, 2.0 * ETA), xp.where(asym, t, 1.0)
    hs, ts = xp.where(small, h, 0.0), xp.where(small, t, 0.0)
    # Both series are expensive (17th-order / erfcx) and their regions rare in most chunks.
    series = sp.lazy_where(
        asym,
        lambda: _asymptotic_region(xp, ha, ta),
        lambda: sp.lazy_where(small, lambda: _small_t_region(xp, sp, hs, ts), lambda: 0.0 * hs),
    )
    b = xp.where(asym | small, INV_SQRT_2PI * expo * series, xp.where(plain, b_plain, b_erfcx))
    return xp.maximum(b, 0.0), vega


def _rational_cubic(xp: Any, z: Any, zl: Any, zr: Any, yl: Any, yr: Any, dl: Any, dr: Any, r: Any) -> Any:
    """Delbourgo-Gregory rational cubic through (zl, yl), (zr, yr) with slopes dl, dr, control r."""
    width = zr - zl
    flat = width == 0
    width = xp.where(flat, 1.0, width)
    u = (z - zl) / width
    v = 1.0 - u
    linear = r >= RC_MAX
    rs = xp.where(linear, 0.0, r)
    cubic = (yr * u * u * u + (rs * yr - width * dr) * u * u * v + (rs * yl + width * dl) * u * v * v + yl * v * v * v) / (
        1.0 + (rs - 3.0) * u * v
    )
    out = xp.where(linear, yr * u + yl * v, cubic)
    return xp.where(flat, 0.5 * (yl + yr), out)


def _control_parameter(
    xp: Any,
    zl: Any,
    zr: Any,
    yl: Any,
    yr: Any,
    dl: Any,
    dr: Any,
    d2: Any,
    at_right: Any,
    prefer_shape: Any,
    tiny: float,
) -> Any:
    """Control parameter matching the second derivative ``d2`` at the right (``at_right``) or left end,
    raised to the minimum that keeps the interpolant monotone and convex/concave like its data."""
    width = zr - zl
    width = xp.where(width == 0, 1.0, width)
    secant = (yr - yl) / width
    num = 0.5 * width * d2 + (dr - dl)
    den = xp.where(at_right, dr - secant, secant - dl)
    den_zero = xp.abs(den) < tiny
    fit = num / xp.where(den_zero, 1.0, den)
    fit = xp.where(den_zero, xp.where(num > 0, RC_MAX, RC_MIN), fit)
    fit = xp.where(xp.abs(num) < tiny, 0.0, fit)
    # Minimum for shape preservation (Delbourgo & Gregory 1985, (3.8) and (3.18)).
    monotonic = (dl * secant >= 0) & (dr * secant >= 0)
    convex = (dl <= secant) & (secant <= dr)
    concave = (dl >= secant) & (secant >= dr)
    s_zero = xp.abs(secant) < tiny
    r1 = xp.where(s_zero, xp.where(prefer_shape, RC_MAX, -math.inf), (dr + dl) / xp.where(s_zero, 1.0, secant))
    r1 = xp.where(monotonic, r1, -math.inf)
    dd = dr - dl
    a, c = dr - secant, secant - dl
    ac_zero = (xp.abs(a) < tiny) | (xp.abs(c) < tiny)
    r2 = xp.maximum(xp.abs(dd / xp.where(ac_zero, 1.0, a)), xp.abs(dd / xp.where(ac_zero, 1.0, c)))
    r2 = xp.where(ac_zero, xp.where(prefer_shape, RC_MAX, -math.inf), r2)
    r2 = xp.where(convex | concave, r2, xp.where(monotonic & prefer_shape, RC_MAX, -math.inf))
    r_min = xp.where(monotonic | convex | concave, xp.maximum(xp.maximum(r1, r2), RC_MIN), RC_MIN)
    return xp.maximum(fit, r_min)


def _householder(newton: Any, halley: Any, hh3: Any) -> Any:
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


def implied_total_vol(xp: Any, sp: Any, beta: Any, x: Any) -> tuple[Any, Any, Any]:
    """``(s, ds, vega)``: the total vol with ``b(x, s) = beta``, the last Householder step and db/ds there.

    Needs ``x <= 0``, ``|x| <= x_max`` and ``0 < beta < e^{x/2}``; other lanes give finite junk.
    """
    x_max, s_min, s_max = limits(xp, beta.dtype)
    tiny = float(xp.finfo(beta.dtype).tiny)
    ax = -x
    b_max = xp.exp(0.5 * x)
    # The inflexion point s_c and the tangents there, which cut b = 0 at s_l and b = b_max at s_h.
    s_c = xp.sqrt(2.0 * ax)
    b_c = 0.5 * b_max * (1.0 - sp.erfcx(xp.sqrt(ax)))
    v_c = INV_SQRT_2PI * b_max
    low = beta < b_c
    s_n = xp.where(low, s_c - b_c / v_c, s_c + (b_max - b_c) / v_c)
    s_n = xp.clip(s_n, s_min, s_max)
    b_n, v_n = black_and_vega(xp, sp, x, s_n, accurate=False)
    outer = xp.where(low, beta < b_n, beta > b_n)
    lower, upper = low & outer, ~low & outer

    # Outer branches interpolate a map f(beta) whose inverse is explicit: lower f = c |x| Phi(-z)^3
    # with z = |x| / (sqrt3 s), upper f = Phi(-s/2).
    z = ax / (SQRT3 * s_n)
    cdf_n = sp.ndtr(xp.where(low, -z, -0.5 * s_n))
    y = z * z
    s2 = s_n * s_n
    ratio = cdf_n / xp.maximum(INV_SQRT_2PI * xp.exp(-0.5 * y), tiny)  # Phi(-z) / phi(z); guess only
    e_lo = xp.minimum(y + 0.125 * s2, 300.0)
    f_lo = TWO_PI_OVER_SQRT27 * ax * cdf_n * cdf_n * cdf_n
    fp_lo = 2.0 * math.pi * y * cdf_n * cdf_n * xp.exp(e_lo)
    fpp_lo = (math.pi / 6.0) * y / (s2 * s_n) * cdf_n * (
        8.0 * SQRT3 * s_n * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * ax * ax) * ratio
    ) * xp.exp(2.0 * e_lo)  # fmt: skip
    w = xp.minimum((x / s_n) * (x / s_n), 600.0)
    fp_hi = -0.5 * xp.exp(0.5 * w)
    fpp_hi = SQRT_PI_OVER_2 * xp.exp(xp.minimum(w + 0.125 * s2, 600.0)) * w / s_n

    # One rational cubic serves all four branches: select its nodes, slopes and curvature.
    inv_v_c = 1.0 / v_c
    inv_v_n = 1.0 / xp.maximum(v_n, tiny)
    zl = xp.where(low, xp.where(outer, 0.0, b_n), xp.where(outer, b_n, b_c))
    zr = xp.where(low, xp.where(outer, b_n, b_c), xp.where(outer, b_max, b_n))
    yl = xp.where(low, xp.where(outer, 0.0, s_n), xp.where(outer, cdf_n, s_c))
    yr = xp.where(low, xp.where(outer, f_lo, s_c), xp.where(outer, 0.0, s_n))
    dl = xp.where(low, xp.where(outer, 1.0, inv_v_n), xp.where(outer, fp_hi, inv_v_c))
    dr = xp.where(low, xp.where(outer, fp_lo, inv_v_c), xp.where(outer, -0.5, inv_v_n))
    d2 = xp.where(lower, fpp_lo, xp.where(upper, fpp_hi, 0.0))
    d2 = xp.where(xp.isfinite(d2), d2, 0.0)
    r = _control_parameter(xp, zl, zr, yl, yr, dl, dr, d2, low, outer, tiny)
    g = _rational_cubic(xp, beta, zl, zr, yl, yr, dl, dr, r)
    # Round-off guard (extreme |x|): fall back to the quadratic through the same end data.
    u_lo = beta / xp.where(b_n > 0, b_n, 1.0)
    width_hi = xp.where(b_max > b_n, b_max - b_n, 1.0)
    u_hi = (beta - b_n) / width_hi
    g_lo = xp.where(g > 0, g, (f_lo * u_lo + b_n * (1.0 - u_lo)) * u_lo)
    g_hi = xp.where(g > 0, g, (cdf_n * (1.0 - u_hi) + 0.5 * width_hi * u_hi) * (1.0 - u_hi))
    f = xp.where(lower, g_lo, g_hi)
    # Invert the maps with one ndtri: lower s = |x| / (sqrt3 |ndtri((f / (c |x|))^{1/3})|), upper s = -2 ndtri(f).
    cube = xp.pow(xp.maximum(f / (TWO_PI_OVER_SQRT27 * xp.maximum(ax, tiny)), 0.0), 1.0 / 3.0)
    q = sp.ndtri(xp.clip(xp.where(lower, cube, f), tiny, 0.5))
    s_outer = xp.where(lower, ax / (SQRT3 * xp.maximum(xp.abs(q), s_min)), -2.0 * q)
    s = xp.where(outer, s_outer, g)
    s_lo = xp.where(low, xp.where(outer, s_min, s_n), xp.where(outer, s_n, s_c))
    s_hi = xp.where(low, xp.where(outer, s_n, s_c), xp.where(outer, s_max, s_n))
    use_log = lower
    use_gap = upper & (beta > 0.5 * b_max)

    ln_beta = xp.log(xp.where(use_log, beta, 0.5))
    gap_beta = xp.where(use_gap, b_max - beta, 1.0)
    ds = xp.zeros_like(s)
    for step in range(2):
        if step:  # the first step left the bracket: restart from its middle (extreme |x| only)
            s = xp.where((s >= s_lo) & (s <= s_hi), s, 0.5 * (s_lo + s_hi))
        s = xp.clip(s, s_min, s_max)
        b, bp = black_and_vega(xp, sp, x, s, accurate=step == 1)
        s_hi = xp.where((b > beta) & (s < s_hi), s, s_hi)
        s_lo = xp.where((b < beta) & (s > s_lo), s, s_lo)
        h = x / s
        halley = h * h / s - 0.25 * s  # b''/b'
        hh3 = halley * halley - 3.0 * (h / s) * (h / s) - 0.25  # b'''/b'
        bp_safe = xp.maximum(bp, tiny)
        newton = (beta - b) / bp_safe
        # g = 1/ln b - 1/ln beta
        ok_log = use_log & (b > 0) & (bp > 0)
        b_l = xp.where(ok_log, b, beta)
        ln_b = xp.where(use_log, xp.log(xp.where(ok_log, b_l, 0.5)), -1.0)
        ln_b = xp.where(ok_log, ln_b, xp.where(use_log, ln_beta, -1.0))
        bpob = bp_safe / xp.where(ok_log, b_l, 1.0)
        k = 1.0 + 2.0 / ln_b
        lt = xp.where(use_log, ln_beta, -1.0)
        n_log = (lt - ln_b) * ln_b / lt / bpob
        h_log = halley - bpob * k
        hh3_log = hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b)) - 3.0 * halley * bpob * k
        # g = ln(b_max - beta) - ln(b_max - b)
        gap = b_max - b
        ok_gap = use_gap & (gap > 0) & (bp > tiny)
        gap = xp.where(ok_gap, gap, gap_beta)
        gp = bp_safe / gap
        n_gap = -xp.log(gap_beta / gap) / gp
        h_gap = halley + gp
        hh3_gap = hh3 + gp * (2.0 * gp + 3.0 * halley)
        n = xp.where(use_log, n_log, xp.where(use_gap, n_gap, newton))
        hl = xp.where(use_log, h_log, xp.where(use_gap, h_gap, halley))
        h3 = xp.where(use_log, hh3_log, xp.where(use_gap, hh3_gap, hh3))
        ds = _householder(n, hl, h3)
        underflow = (use_log & ~ok_log) | (use_gap & ~ok_gap)  # bisect instead
        ds = xp.where(underflow, 0.5 * (s_lo + s_hi) - s, ds)
        ds = xp.maximum(ds, -0.5 * s)
        s = s + ds
    return s, ds, bp
