"""Let's Be Rational for one option (P. Jäckel, Wilmott 2015): the normalised Black function and its
inverse as ``gpu_hedge._pricing._normalised_black`` computes them lane by lane, here for one lane that
takes only the branches it needs, with the same branch conditions, constants, order of operations and
status rules, compiled without FMA contraction (so its arithmetic rounds as the array code's NumPy calls
do; only the special functions, :mod:`cpu_fallback._special`, differ by an ulp or so).

Every constant and coefficient is the caller's (``gpu_hedge._pricing.implied_vol.native_request``),
written out by ``tools/gen_iv_constants.py`` as the module globals of :mod:`cpu_fallback._iv_constants`,
which Numba compiles in as constants (the series tables as constant arrays of fixed shape, so LLVM
unrolls their loops). The small steps of the chain are inlined into their callers (``inline="always"``:
``_black_plain``, ``_black_accurate``, ``_rational_cubic``, ``_householder``); the guess, the control
parameter and the solver are calls (inlining them too into the caller's loop, needed while the
constants were call arguments, is about 3 % faster but costs 1.3 s more of the first compile).
"""

from __future__ import annotations

import math

import numpy as np

from ._iv_constants import (
    ASYMPTOTIC,
    ETA,
    INV_SQRT2,
    INV_SQRT_2PI,
    RC_MAX,
    RC_MIN,
    S_MAX,
    S_MIN,
    SMALL_T,
    SQRT3,
    SQRT_PI_OVER_2,
    TAU,
    TWO_PI_OVER_SQRT27,
)
from ._jit import njit
from ._special import PLAIN, TINY, clip, erfcx, fmax, fmin, ndtr, ndtri

#: row ``k`` of ``_ASYM``: the ``k + 2`` coefficients of P_{k+1} (lowest order first), zero-padded
_N_ASYM = len(ASYMPTOTIC)
_ASYM = np.zeros((_N_ASYM, _N_ASYM + 1))
for _k, _row in enumerate(ASYMPTOTIC):
    _ASYM[_k, : len(_row)] = _row
#: the small-t series' ``c_{k+1} = (sum_j (p_j + q_j a) g^(k-j) + a g^(k+1)) / _DEN[k]``, ``_PQ[k, j] = (p_j, q_j)``
_N_SMALL = len(SMALL_T)
_PQ = np.zeros((_N_SMALL, _N_SMALL, 2))
for _k, (_, _pairs) in enumerate(SMALL_T):
    _PQ[_k, : len(_pairs)] = _pairs
_DEN = np.array([d for d, _ in SMALL_T], dtype=np.float64)


@njit(**PLAIN)
def _asymptotic_row(k: int, e: float) -> float:  # pragma: no cover - compiled
    p = _ASYM[k, k + 1]
    for j in range(k, -1, -1):
        p = p * e + _ASYM[k, j]
    return p


@njit(**PLAIN)
def _asymptotic_region(h: float, t: float) -> float:  # pragma: no cover - compiled
    """b e^{(h^2+t^2)/2} sqrt(2 pi) for h << 0: row ``k`` of ``_ASYM`` is P_{k+1} in ``e = (t/h)^2``."""
    e = (t / h) * (t / h)
    r = (h + t) * (h - t)
    q = (h / r) * (h / r)
    acc = _asymptotic_row(_N_ASYM - 1, e)
    for k in range(_N_ASYM - 1, 0, -1):
        acc = _asymptotic_row(k - 1, e) + (2 * k + 1) * q * acc
    return (t / r) * (2.0 + q * acc)


@njit(**PLAIN)
def _small_t_coefficient(k: int, a: float, g: float) -> float:  # pragma: no cover - compiled
    """The series' ``c_{k+1}`` (row ``k`` of the tables)."""
    ck = a
    for j in range(k, -1, -1):
        ck = _PQ[k, j, 0] + _PQ[k, j, 1] * a + g * ck
    return ck / _DEN[k]


@njit(**PLAIN)
def _small_t_region(h: float, t: float) -> float:  # pragma: no cover - compiled
    """The small-t series ``2 t (a + w (c_1 + w (c_2 + ...)))`` with ``a = 1 + h Y(h)``, ``w = t^2``
    (loops of fixed length, ``_N_SMALL``, which LLVM unrolls)."""
    a = 1.0 + h * SQRT_PI_OVER_2 * erfcx(-INV_SQRT2 * h)
    w = t * t
    g = h * h
    acc = _small_t_coefficient(_N_SMALL - 1, a, g)
    for k in range(_N_SMALL - 2, -1, -1):
        acc = _small_t_coefficient(k, a, g) + w * acc
    return 2.0 * t * (a + w * acc)


@njit(inline="always", **PLAIN)
def _black_plain(x: float, s: float, b_max: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """``black_and_vega(..., accurate=False)``; ``b_max = exp(x / 2)``."""
    h = x / s
    t = 0.5 * s
    expo = math.exp(-0.5 * (h * h + t * t))
    second = 0.5 * expo * erfcx(INV_SQRT2 * (t - h))
    b = ndtr(h + t) * b_max - second
    return fmax(b, 0.0), INV_SQRT_2PI * expo


@njit(inline="always", **PLAIN)
def _black_accurate(x: float, s: float, b_max: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """``black_and_vega(..., accurate=True)``: only the region the lane is in."""
    h = x / s
    t = 0.5 * s
    expo = math.exp(-0.5 * (h * h + t * t))
    if (x < s * ETA) and (0.5 * s * s + x < s * (TAU + ETA)):
        b = INV_SQRT_2PI * expo * _asymptotic_region(h, t)
    elif t < TAU:
        b = INV_SQRT_2PI * expo * _small_t_region(h, t)
    else:
        second = 0.5 * expo * erfcx(INV_SQRT2 * (t - h))
        if x + 0.5 * s * s > 0.85 * s:  # h + t > 0.85: b is mostly the first term
            b = ndtr(h + t) * b_max - second
        else:
            z = fmax(-INV_SQRT2 * (h + t), -0.7)
            b = 0.5 * expo * erfcx(z) - second
    return fmax(b, 0.0), INV_SQRT_2PI * expo


@njit(inline="always", **PLAIN)
def _rational_cubic(  # pragma: no cover - compiled
    z: float, zl: float, zr: float, yl: float, yr: float, dl: float, dr: float, r: float
) -> float:
    width = zr - zl
    if width == 0:
        return 0.5 * (yl + yr)
    u = (z - zl) / width
    v = 1.0 - u
    if r >= RC_MAX:
        return yr * u + yl * v
    return (yr * u * u * u + (r * yr - width * dr) * u * u * v + (r * yl + width * dl) * u * v * v + yl * v * v * v) / (
        1.0 + (r - 3.0) * u * v
    )


@njit(**PLAIN)
def _control_parameter(  # pragma: no cover - compiled
    zl: float, zr: float, yl: float, yr: float, dl: float, dr: float, d2: float, at_right: bool, prefer_shape: bool
) -> float:
    rc_min, rc_max = RC_MIN, RC_MAX
    width = zr - zl
    if width == 0:
        width = 1.0
    secant = (yr - yl) / width
    num = 0.5 * width * d2 + (dr - dl)
    den = dr - secant if at_right else secant - dl
    if abs(den) < TINY:
        fit = rc_max if num > 0 else rc_min
    else:
        fit = num / den
    if abs(num) < TINY:
        fit = 0.0
    # Minimum for shape preservation (Delbourgo & Gregory 1985, (3.8) and (3.18)).
    monotonic = (dl * secant >= 0) and (dr * secant >= 0)
    convex = (dl <= secant) and (secant <= dr)
    concave = (dl >= secant) and (secant >= dr)
    if abs(secant) < TINY:
        r1 = rc_max if prefer_shape else -math.inf
    else:
        r1 = (dr + dl) / secant
    if not monotonic:
        r1 = -math.inf
    if convex or concave:
        dd = dr - dl
        a, b = dr - secant, secant - dl
        if (abs(a) < TINY) or (abs(b) < TINY):
            r2 = rc_max if prefer_shape else -math.inf
        else:
            r2 = fmax(abs(dd / a), abs(dd / b))
    else:
        r2 = rc_max if (monotonic and prefer_shape) else -math.inf
    r_min = fmax(fmax(r1, r2), rc_min) if (monotonic or convex or concave) else rc_min
    return fmax(fit, r_min)


@njit(inline="always", **PLAIN)
def _householder(newton: float, halley: float, hh3: float) -> float:  # pragma: no cover - compiled
    return newton * (1.0 + 0.5 * halley * newton) / (1.0 + newton * (halley + hh3 * newton / 6.0))


@njit(**PLAIN)
def _initial_guess(beta: float, x: float, b_max: float) -> tuple[float, float, float, bool, bool]:  # pragma: no cover - compiled
    """``(s, s_lo, s_hi, lower, upper)``: Jäckel's four-branch rational-cubic guess and its bracket."""
    s_min, s_max = S_MIN, S_MAX
    ax = -x
    # The inflexion point s_c and the tangents there, which cut b = 0 at s_l and b = b_max at s_h.
    s_c = math.sqrt(2.0 * ax)
    b_c = 0.5 * b_max * (1.0 - erfcx(math.sqrt(ax)))
    v_c = INV_SQRT_2PI * b_max
    low = beta < b_c
    s_n = s_c - b_c / v_c if low else s_c + (b_max - b_c) / v_c
    s_n = clip(s_n, s_min, s_max)
    b_n, v_n = _black_plain(x, s_n, b_max)
    outer = (beta < b_n) if low else (beta > b_n)
    lower = low and outer
    upper = outer and not low
    inv_v_c = 1.0 / v_c
    inv_v_n = 1.0 / fmax(v_n, TINY)
    # Each branch's rational cubic: nodes, slopes and curvature (outer: lower f = c |x| Phi(-z)^3, upper f = Phi(-s/2)).
    f_lo = cdf_n = 0.0
    if lower:
        z = ax / (SQRT3 * s_n)
        cdf_n = ndtr(-z)
        y = z * z
        s2 = s_n * s_n
        ratio = cdf_n / fmax(INV_SQRT_2PI * math.exp(-0.5 * y), TINY)  # Phi(-z) / phi(z); guess only
        e_lo = fmin(y + 0.125 * s2, 300.0)
        f_lo = TWO_PI_OVER_SQRT27 * ax * cdf_n * cdf_n * cdf_n
        fp_lo = 2.0 * math.pi * y * cdf_n * cdf_n * math.exp(e_lo)
        fpp_lo = (math.pi / 6.0) * y / (s2 * s_n) * cdf_n * (
            8.0 * SQRT3 * s_n * ax + (3.0 * s2 * (s2 - 8.0) - 8.0 * ax * ax) * ratio
        ) * math.exp(2.0 * e_lo)  # fmt: skip
        zl, zr, yl, yr, dl, dr, d2 = 0.0, b_n, 0.0, f_lo, 1.0, fp_lo, fpp_lo
    elif upper:
        cdf_n = ndtr(-0.5 * s_n)
        s2 = s_n * s_n
        w = fmin((x / s_n) * (x / s_n), 600.0)
        fp_hi = -0.5 * math.exp(0.5 * w)
        fpp_hi = SQRT_PI_OVER_2 * math.exp(fmin(w + 0.125 * s2, 600.0)) * w / s_n
        zl, zr, yl, yr, dl, dr, d2 = b_n, b_max, cdf_n, 0.0, fp_hi, -0.5, fpp_hi
    elif low:
        zl, zr, yl, yr, dl, dr, d2 = b_n, b_c, s_n, s_c, inv_v_n, inv_v_c, 0.0
    else:
        zl, zr, yl, yr, dl, dr, d2 = b_c, b_n, s_c, s_n, inv_v_c, inv_v_n, 0.0
    if not math.isfinite(d2):
        d2 = 0.0
    r = _control_parameter(zl, zr, yl, yr, dl, dr, d2, low, outer)
    g = _rational_cubic(beta, zl, zr, yl, yr, dl, dr, r)
    # Round-off guard (extreme |x|): the quadratic through the same end data; outer maps inverted with one ndtri.
    if lower:
        u_lo = beta / (b_n if b_n > 0 else 1.0)
        f = g if g > 0 else (f_lo * u_lo + b_n * (1.0 - u_lo)) * u_lo
        cube = fmax(f / (TWO_PI_OVER_SQRT27 * fmax(ax, TINY)), 0.0) ** (1.0 / 3.0)
        s = ax / (SQRT3 * fmax(abs(ndtri(clip(cube, TINY, 0.5))), s_min))
        s_lo, s_hi = s_min, s_n
    elif upper:
        width_hi = b_max - b_n if b_max > b_n else 1.0
        u_hi = (beta - b_n) / width_hi
        f = g if g > 0 else (cdf_n * (1.0 - u_hi) + 0.5 * width_hi * u_hi) * (1.0 - u_hi)
        s = -2.0 * ndtri(clip(f, TINY, 0.5))
        s_lo, s_hi = s_n, s_max
    else:
        s = g
        s_lo, s_hi = (s_n, s_c) if low else (s_c, s_n)
    return s, s_lo, s_hi, lower, upper


@njit(**PLAIN)
def implied_total_vol(  # pragma: no cover - compiled
    beta: float, x: float, b_max: float
) -> tuple[float, float, float]:
    """``(s, ds, vega)`` of ``_normalised_black.implied_total_vol`` for one lane (``x <= 0``,
    ``|x| <= x_max``, ``0 < beta < b_max = e^{x/2}``), computing only the branch the lane is in."""
    s, s_lo, s_hi, lower, upper = _initial_guess(beta, x, b_max)
    use_gap = upper and beta > 0.5 * b_max
    ln_beta = math.log(beta) if lower else 0.0
    gap_beta = b_max - beta if use_gap else 1.0
    ds = 0.0
    bp = 0.0
    for step in range(2):
        if step:  # the first step left the bracket: restart from its middle (extreme |x| only)
            if not ((s >= s_lo) and (s <= s_hi)):
                s = 0.5 * (s_lo + s_hi)
        s = clip(s, S_MIN, S_MAX)
        if step:
            b, bp = _black_accurate(x, s, b_max)
        else:
            b, bp = _black_plain(x, s, b_max)
        if (b > beta) and (s < s_hi):
            s_hi = s
        if (b < beta) and (s > s_lo):
            s_lo = s
        h = x / s
        halley = h * h / s - 0.25 * s  # b''/b'
        hh3 = halley * halley - 3.0 * (h / s) * (h / s) - 0.25  # b'''/b'
        bp_safe = fmax(bp, TINY)
        underflow = False  # bisect instead
        if lower:  # g = 1/ln b - 1/ln beta
            if (b > 0) and (bp > 0):
                ln_b = math.log(b)
                bpob = bp_safe / b
            else:
                ln_b = ln_beta
                bpob = bp_safe
                underflow = True
            k = 1.0 + 2.0 / ln_b
            n = (ln_beta - ln_b) * ln_b / ln_beta / bpob
            hl = halley - bpob * k
            h3 = hh3 + 2.0 * bpob * bpob * (1.0 + 3.0 / ln_b * (1.0 + 1.0 / ln_b)) - 3.0 * halley * bpob * k
        elif use_gap:  # g = ln(b_max - beta) - ln(b_max - b)
            gap = b_max - b
            if not ((gap > 0) and (bp > TINY)):
                gap = gap_beta
                underflow = True
            gp = bp_safe / gap
            n = -math.log(gap_beta / gap) / gp
            hl = halley + gp
            h3 = hh3 + gp * (2.0 * gp + 3.0 * halley)
        else:  # g = b - beta
            n = (beta - b) / bp_safe
            hl = halley
            h3 = hh3
        ds = _householder(n, hl, h3)
        if underflow:
            ds = 0.5 * (s_lo + s_hi) - s
        ds = fmax(ds, -0.5 * s)
        s = s + ds
    return s, ds, bp
