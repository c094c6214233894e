"""The data of the native implied-vol kernels (:mod:`cpu_fallback._iv`), as the caller sends it.

The formulas' constants are defined once, by the caller (``gpu_hedge``'s pricing layer): its native
request is ``("implied_vol", model, constants)``, ``constants`` a tuple of ``(name, value)`` pairs,
floats or tuples of floats. :func:`unpack` lays them out for the compiled code: the scalars in one
tuple ``c`` indexed by the positions below (a model's unused ones NaN), the coefficient tables as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)

#: the scalar constants, in the order of ``c``: status codes, thresholds, roots; lognormal: the solver's
#: limits, region bounds, rational-cubic bounds and roots; bachelier: the guess's region split
SCALARS = (
    "status_ok", "status_below_intrinsic", "status_above_max", "status_not_identifiable", "converged", "vol_tol",
    "sqrt_2pi", "inv_sqrt_2pi", "sqrt_pi_over_2", "inv_sqrt2",
    "x_max", "s_min", "s_max", "eta", "tau", "rc_min", "rc_max", "sqrt3", "two_pi_over_sqrt27",
    "near",
)  # fmt: skip
OK, BELOW, ABOVE, NOT_IDENTIFIABLE, CONVERGED, VOL_TOL = range(6)
SQRT_2PI, INV_SQRT_2PI, SQRT_PI_OVER_2, INV_SQRT2 = range(6, 10)
X_MAX, S_MIN, S_MAX, ETA, TAU, RC_MIN, RC_MAX, SQRT3, TWO_PI_OVER_SQRT27 = range(10, 19)
NEAR = 19
#: the lengths of the lognormal series the compiled code is written for (fixed, so that LLVM unrolls its loops)
ASYMPTOTIC_TERMS, SMALL_T_TERMS = 17, 6
#: bachelier's rational guesses, the rows of its table (coefficients lowest order first)
RATIONAL = ("far_num", "far_den", "near_num", "near_den")


def _padded(rows: Sequence[Sequence[float]], width: int) -> np.ndarray:
    out = np.zeros((len(rows), width))
    for k, row in enumerate(rows):
        out[k, : len(row)] = row
    return out


@lru_cache(maxsize=8)
def unpack(constants: tuple[tuple[str, Any], ...]) -> tuple[tuple[float, ...], tuple[np.ndarray, ...]]:
    """``(c, tables)`` for the request's ``constants``. ``tables``: lognormal ``(asymptotic, small_t,
    denominators)`` (row ``k`` of ``asymptotic`` holds ``k + 2`` coefficients; ``small_t[k, j]`` the pair
    ``(p_j, q_j)`` of the small-t series' ``c_{k+1}``, ``j <= k``); bachelier ``(rational,)``, one row per
    :data:`RATIONAL` name."""
    given = dict(constants)
    lognormal = "asymptotic" in given
    needed = SCALARS[:NEAR] if lognormal else SCALARS[:X_MAX] + SCALARS[NEAR:]
    missing = [name for name in (*needed, *(("small_t",) if lognormal else RATIONAL)) if name not in given]
    if missing:
        raise ValueError(f"the native implied-vol request lacks {', '.join(missing)}")
    c = tuple(float(given.get(name, np.nan)) for name in SCALARS)
    if lognormal:
        asym = given["asymptotic"]
        small = given["small_t"]
        pairs = np.zeros((len(small), len(small), 2))
        for k, (_, row) in enumerate(small):
            pairs[k, : len(row)] = row
        if (len(asym), len(small)) != (ASYMPTOTIC_TERMS, SMALL_T_TERMS):
            raise ValueError(f"the native kernel takes {ASYMPTOTIC_TERMS} asymptotic and {SMALL_T_TERMS} small-t terms")
        tables: tuple[np.ndarray, ...] = (_padded(asym, len(asym) + 1), pairs, np.array([d for d, _ in small], dtype=np.float64))
    else:
        tables = (_padded([given[name] for name in RATIONAL], max(len(given[name]) for name in RATIONAL)),)
    return c, tables
