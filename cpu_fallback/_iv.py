"""The NumPy backend's native implied-volatility kernels: ``gpu_hedge._pricing.implied_vol``'s
``lognormal_kernel`` (bsm, black76: Jäckel's "Let's Be Rational", :mod:`cpu_fallback._lbr`) and
``bachelier_kernel`` (Jäckel's "Implied Normal Volatility"), one option at a time in a Numba loop, float64.

The generic kernels are branch-free array code: every option evaluates every branch (the four
initial-guess branches, the four regions of the normalised Black function, the three Householder
objectives). Here each option takes only the branch it needs, with the same branch conditions,
constants, order of operations and status rules. The constants, coefficient tables and status codes
are the caller's, sent in its native request ``("implied_vol", model, constants)``; this package
defines none of them. ``tools/gen_iv_constants.py`` writes them out as the module globals of
:mod:`cpu_fallback._iv_constants`, which Numba compiles in as constants (as data, passed to the
loops, they cost 4-5 % of the speed), and
:func:`implied_vol_kernel` refuses a request whose constants are not that file's (a stale file
never computes with other constants; a test checks the file is the generator's output).

- the option-level transcendentals (forward, discount factor, ``ln(F/K)``, the normalisation, the
  intrinsic value ``2 sinh(|x|/2)``, the bound ``e^{-|x|/2}``; bachelier: ``e^{rT}``) are the generic
  kernel's own NumPy calls on the chunk (:func:`_lognormal_prelude`), so the price bounds and the
  normalised problem are bit for bit the generic kernel's (the bounds checks compare prices that sit
  on the bounds to within ulps; the intrinsic value subtracted from in-the-money prices is where
  ulps matter most);
- the solver runs in the compiled loop, without FMA contraction, so its arithmetic rounds exactly as
  the generic kernel's NumPy calls do. It differs only in its special functions
  (:mod:`cpu_fallback._special`): ``exp``/``log`` from libm instead of NumPy's, and scalar ``ndtr``,
  ``erfcx``, ``ndtri`` instead of the generic kernel's vectorised ``ndtr`` and SciPy's ``erfcx`` /
  ``ndtri``: a few ulps, which the conditioning of the inverse problem magnifies near the
  identifiability limit (``tests/test_iv_native.py``: same status codes, vols within 1e-13 relative or
  10x the vol change of a 4-ulp price change; seen: 5e-15).

Speed per core (1e6 random realistic options, ``benchmarks/implied_vol.py``'s mix; shared 2-vCPU
AMD EPYC VM, so +-5 %): bsm 2.4-2.6 M options/s against 1.65-1.7 M/s for the generic kernel,
bachelier 9.3-9.6 M/s against 7.8-8.2 M/s. Scalar code gains less than the branch count suggests: the generic kernel runs
every branch in SIMD, while here each option is one long chain of dependent divisions and libm calls
(a Householder step is about 80 ns of the about 400 ns an option takes).

Numba's on-disk cache entries are keyed on every source file of this package (:mod:`cpu_fallback._jit`),
so regenerating ``_iv_constants.py`` recompiles these loops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from . import _iv_constants
from ._black import _full
from ._iv_constants import (
    CONVERGED,
    FAR_DEN,
    FAR_NUM,
    INV_SQRT2,
    INV_SQRT_2PI,
    NEAR,
    NEAR_DEN,
    NEAR_NUM,
    SQRT_2PI,
    SQRT_PI_OVER_2,
    STATUS_ABOVE_MAX,
    STATUS_BELOW_INTRINSIC,
    STATUS_NOT_IDENTIFIABLE,
    STATUS_OK,
    VOL_TOL,
    X_MAX,
)
from ._jit import njit
from ._lbr import implied_total_vol
from ._special import EPS, PLAIN, TINY, erfcx, fmax, fmin, ndtr, ndtri

__all__ = ["MODELS", "NAMES", "erfcx", "implied_vol_kernel", "ndtr", "ndtri"]  # the special functions: re-exported

#: the native names this module serves
MODELS = ("bsm", "black76", "bachelier")
NAMES = ("vol", "status")
#: the command that rewrites :mod:`cpu_fallback._iv_constants` from the pricing layer's definition
REGENERATE = "python tools/gen_iv_constants.py"

#: bachelier's rational guesses (coefficients lowest order first), constant arrays of fixed length
_FAR_NUM, _FAR_DEN, _NEAR_NUM, _NEAR_DEN = (np.array(c, dtype=np.float64) for c in (FAR_NUM, FAR_DEN, NEAR_NUM, NEAR_DEN))


@njit(**PLAIN)
def _rational(row: Any, z: float) -> float:  # pragma: no cover - compiled
    """Horner: ``row[0] + z (row[1] + z (...))``."""
    p = row[row.shape[0] - 1]
    for j in range(row.shape[0] - 2, -1, -1):
        p = p * z + row[j]
    return p


@njit(nogil=True, **PLAIN)
def _lognormal_loop(  # pragma: no cover - compiled
    K: Any, T: Any, P: Any, phi: Any, F: Any, D: Any, x: Any, norm: Any, b_max: Any, sinh2: Any, vol: Any, status: Any
) -> None:
    """``implied_vol.lognormal_kernel`` option by option, given its NumPy prelude (:func:`_lognormal_prelude`)."""
    for i in range(vol.shape[0]):
        Ki, Ti, Pi, p, Fi, Di = K[i], T[i], P[i], phi[i], F[i], D[i]
        # Bounds in price space: [D * intrinsic, D * (F for a call, K for a put)].
        itm = p * (Fi - Ki) > 0
        slack = 4.0 * EPS * Di * fmax(Fi, Ki) if itm else 0.0  # rounding of F - K
        below = Pi < Di * (p * (Fi - Ki) if itm else 0.0) - slack
        cap = Di * (Fi if p > 0 else Ki)
        above = Pi > cap * (1.0 + 8.0 * EPS) + slack
        # Normalised out-of-the-money problem: x = ln(F/K) <= 0, beta = time value / (D sqrt(F K)).
        ax = abs(x[i])
        beta_otm = Pi * norm[i]
        if p * x[i] > 0:
            beta_otm = beta_otm - sinh2[i]
        ok = False
        v = math.nan
        if (Ti > 0) and (Ki > 0) and (ax <= X_MAX) and (beta_otm > 0) and (beta_otm < b_max[i]) and not (below or above):
            s, ds, vega = implied_total_vol(beta_otm, -ax, b_max[i])
            sqrtT = math.sqrt(Ti)
            v = s / sqrtT
            identifiable = (4.0 * EPS * Pi + TINY) * norm[i] <= VOL_TOL * sqrtT * vega
            ok = identifiable and (abs(ds) <= CONVERGED * s) and math.isfinite(v)
        vol[i] = v if ok else math.nan
        status[i] = STATUS_OK if ok else (STATUS_BELOW_INTRINSIC if below else (STATUS_ABOVE_MAX if above else STATUS_NOT_IDENTIFIABLE))


def _lognormal_prelude(S: Any, K: Any, T: Any, r: Any, q: Any, forward: bool) -> tuple[np.ndarray, ...]:
    """The generic kernel's option-level transcendentals, as the same NumPy calls (so the bounds and the
    normalisation are bit for bit the generic kernel's): ``F, D, x = ln(F/K), 1 / (D sqrt(F K)),
    e^{-|x|/2}, 2 sinh(|x|/2)``. Vectorised, they also cost a fraction of scalar ``libm`` calls."""
    Ks = np.where(K > 0, K, 1.0)
    x = np.divide(S, Ks)
    np.log(x, out=x)
    rT = np.multiply(r, T)
    if forward:  # carry 0: F = S, x = ln(S/K), e^{rT - carry T / 2} = e^{rT}
        F = S
        e = rT
    else:
        cT = np.subtract(r, q)
        cT *= T
        F = np.exp(cT)
        F *= S
        x += cT
        cT *= 0.5
        e = np.subtract(rT, cT, out=cT)
    norm = np.exp(e)
    root = np.sqrt(S)
    root *= np.sqrt(Ks)
    norm /= root
    D = np.negative(rT, out=rT)
    np.exp(D, out=D)
    half = np.abs(x)
    half *= 0.5
    sinh2 = np.expm1(half)
    b_max = np.negative(half, out=half)
    sinh2 -= np.expm1(b_max)
    np.exp(b_max, out=b_max)
    return F, D, x, norm, b_max, sinh2


@njit(nogil=True, **PLAIN)
def _bachelier_loop(  # pragma: no cover - compiled
    F: Any, K: Any, T: Any, Pf: Any, phi: Any, vol: Any, status: Any
) -> None:
    """``implied_vol.bachelier_kernel`` option by option, given the undiscounted prices ``Pf``."""
    for i in range(vol.shape[0]):
        Fi, Ki, Ti = F[i], K[i], T[i]
        delta = Fi - Ki
        ad = abs(delta)
        itm = phi[i] * delta > 0
        slack = 4.0 * EPS * fmax(abs(Fi), abs(Ki)) if itm else 0.0
        tv = Pf[i] - (ad if itm else 0.0)
        below = tv < -slack
        ok = False
        v = math.nan
        if (Ti > 0) and (tv > 0) and not below:
            if ad == 0:  # at the money
                v = SQRT_2PI * tv
                d = 0.0
                converged = True
            else:
                # ratio = time value / |F - K| = -Phi~(x*), x* = -|F - K| / v < 0.
                ratio = tv / ad
                if ratio > -NEAR:
                    g = 1.0 / (-ratio - 0.5)
                    g2 = g * g
                    xb = g * (INV_SQRT_2PI + _rational(_FAR_NUM, g2) / _rational(_FAR_DEN, g2) * g2)
                else:
                    hq = math.sqrt(-math.log(ratio))
                    xb = _rational(_NEAR_NUM, hq) / _rational(_NEAR_DEN, hq)
                xb = fmin(xb, -TINY)
                ln_ratio = math.log(ratio)
                step = 0.0
                for _ in range(2):
                    # q = (Phi~(xb) + ratio) / phi(xb), each term scaled by 1/phi(xb) so nothing under- or overflows.
                    qq = SQRT_PI_OVER_2 * erfcx(-INV_SQRT2 * xb) + 1.0 / xb
                    qq = qq + SQRT_2PI * math.exp(fmin(ln_ratio + 0.5 * xb * xb, 700.0))
                    x2 = xb * xb
                    step = (
                        3.0 * qq * x2 * (2.0 - qq * xb * (2.0 + x2))
                        / (6.0 + qq * xb * (-12.0 + xb * (6.0 * qq + xb * (-6.0 + qq * xb * (3.0 + x2)))))
                    )  # fmt: skip
                    xb = fmin(xb + step, -TINY)
                v = ad / -xb
                d = xb
                converged = abs(step) <= CONVERGED * -xb
            sqrtT = math.sqrt(Ti)
            vi = v / sqrtT
            identifiable = 4.0 * EPS * abs(Pf[i]) + TINY <= VOL_TOL * v * INV_SQRT_2PI * math.exp(-0.5 * d * d)
            ok = identifiable and converged and math.isfinite(vi) and (vi > 0)
            v = vi
        vol[i] = v if ok else math.nan
        status[i] = STATUS_OK if ok else (STATUS_BELOW_INTRINSIC if below else STATUS_NOT_IDENTIFIABLE)


@lru_cache(maxsize=16)
def check_constants(model: str, constants: tuple[tuple[str, Any], ...]) -> None:
    """Raise RuntimeError unless ``constants`` (a native request's) are those this module was compiled
    with, :mod:`cpu_fallback._iv_constants`'s for ``model`` (cached: once per distinct request)."""
    family = "BACHELIER" if model == "bachelier" else "LOGNORMAL"
    own = dict(getattr(_iv_constants, family))
    given = dict(constants)
    if given != own:
        names = sorted(k for k in own.keys() | given.keys() if own.get(k, None) != given.get(k, None))
        raise RuntimeError(
            f"the native implied-vol request's constants differ from cpu_fallback/_iv_constants.py ({', '.join(names)}):"
            f" the file is stale; regenerate it with `{REGENERATE}` from the repository root"
        )


def implied_vol_kernel(model: str, constants: tuple[tuple[str, Any], ...]) -> Any:
    """``kernel(S, K, T, price, r, q, phi, out=...)`` for :func:`cpu_fallback.run_chunked` with
    ``into=True``: writes ``out["vol"]`` and ``out["status"]`` (the caller's status codes, as floats) of
    one chunk, as ``gpu_hedge._pricing.implied_vol``'s kernel for ``model`` does. The caller's
    ``constants`` must be those compiled in (:mod:`cpu_fallback._iv_constants`), else RuntimeError naming
    the command that regenerates that file. Inputs are chunk slices or 0-d arrays, float64; ``phi`` is
    +1 (call) or -1 (put)."""
    if model not in MODELS:
        raise ValueError(f"no native implied-vol kernel for model {model!r}")
    forward = model == "black76"
    check_constants(model, tuple(constants))

    def kernel(S: Any, K: Any, T: Any, P: Any, r: Any, q: Any, phi: Any, out: Mapping[str, np.ndarray]) -> None:
        vol, status = out["vol"], out["status"]
        n = vol.shape[0]
        S, K, T, P, r, q, phi = (_full(a, n) for a in (S, K, T, P, r, q, phi))
        if model == "bachelier":
            Pf = np.multiply(r, T)
            np.exp(Pf, out=Pf)
            Pf *= P
            _bachelier_loop(S, K, T, Pf, phi, vol, status)
        else:
            _lognormal_loop(K, T, P, phi, *_lognormal_prelude(S, K, T, r, q, forward), vol, status)

    return kernel
