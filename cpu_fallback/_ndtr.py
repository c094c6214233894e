"""The standard normal CDF ``ndtr`` for float64 arrays, vectorised with Numba: 3-4x SciPy's.

SciPy's ``ndtr`` (Cephes) is scalar C with branches; with several calls per option (delta, price,
the hedging loop's every path and date) it is the largest single cost of the NumPy backend. This
module computes the same function with one SIMD pass (AVX2/AVX-512 through LLVM) plus NumPy's own
vectorised ``exp``:

- ``|x| < 1``: ``N(x) = 1/2 + x phi0 sum_n (-x^2/2)^n / (n! (2n + 1))`` (the erf Taylor series,
  15 terms, exact coefficients; the last term is below 1e-17 relative);
- ``|x| >= 1``: with ``z = |x|/sqrt(2)``, ``t = 2 / (2 + z)`` (``t`` in ``(0, 0.739]``),
  ``N(-|x|) = exp(-x^2/2) t F(t) / 2`` where ``F(t) = erfcx(z) / t`` is smooth on ``[0, 0.739]``;
  ``F`` is a degree-20 polynomial (a Chebyshev interpolant, see ``tools/gen_special_tables.py``);
  ``N(x) = 1 - N(-x)`` for ``x > 0``.

Accuracy against mpmath (``tests/test_ndtr.py``): relative error <= 1e-14 for ``|x| <= 10``, <= 1e-13
down to ``x = -37`` (there both this and SciPy are limited by the rounding of ``x^2`` inside ``exp``;
this one is the more accurate of the two), absolute error <= 1e-15 everywhere. NaN in, NaN out;
``N(-inf) = 0``, ``N(inf) = 1``.

The loop itself is generated into ``_ndtr_kernel.py`` by ``tools/gen_special_tables.py`` (with every
Horner step written out: Numba vectorises a loop only when its body is straight-line code; a test
checks that the committed file is the generator's output). The scalar ``ndtr``, ``erfcx`` and
``ndtri`` of the option-by-option kernels are in :mod:`cpu_fallback._special`.

Without Numba (it is a dependency, but an import can fail on an unusual platform), or with the
environment variable ``GPU_HEDGE_NUMBA=0``, SciPy's ``ndtr`` is used. Numba and LLVM add about
100 MB of resident memory once the kernel is loaded (first call: about 0.4 s from Numba's on-disk
cache, a few seconds the very first time); ``GPU_HEDGE_NUMBA=0`` is the low-memory setting.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np
import scipy.special as sc

#: |x| below which the Taylor series is used
CENTRAL = 1.0
#: the tail polynomial's degree and the Taylor series' number of terms (the generator's layout)
DEGREE, TERMS = 20, 15
#: upper end of t = 2 / (2 + z) on the tail (z = CENTRAL / sqrt(2))
T_MAX = 2.0 / (2.0 + CENTRAL * math.sqrt(0.5))


_lock = threading.Lock()
_compiled: Any = None


def _loop() -> Any:
    """The compiled loop (Numba, cached on disk), or False without Numba or with ``GPU_HEDGE_NUMBA=0``.
    Other kernels of this package inline ``_ndtr_kernel.ndtr_from_exp``; they check this first."""
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None and os.environ.get("GPU_HEDGE_NUMBA", "1").strip() == "0":
                _compiled = False
            elif _compiled is None:
                try:
                    from ._ndtr_kernel import ndtr_loop
                except Exception as exc:  # no Numba, or Numba cannot compile or cache here
                    import warnings

                    warnings.warn(
                        f"gpu_hedge: Numba kernels unavailable ({type(exc).__name__}: {exc}); using SciPy's ndtr and the "
                        "generic NumPy kernels (slower; set GPU_HEDGE_NUMBA=0 to silence this)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    _compiled = False
                else:
                    _compiled = ndtr_loop
    return _compiled


def ndtr(x: Any) -> Any:
    """Standard normal CDF, elementwise. float64 input (arrays of any size and shape, NumPy and
    Python floats) takes the vectorised kernel, so a value never depends on how an array was cut
    into chunks; anything else (float32, integers, complex) SciPy's ``ndtr``."""
    loop = _loop()
    scalar = isinstance(x, float)  # np.float64 is a float too
    if not loop or not (scalar or (isinstance(x, np.ndarray) and x.dtype == np.float64)):
        return sc.ndtr(x)
    arr = np.asarray(x, dtype=np.float64)
    flat = np.ascontiguousarray(arr).reshape(-1)
    e = np.square(flat)
    e *= -0.5
    np.exp(e, out=e)
    out = np.empty_like(flat)
    loop(flat, e, out)
    return np.float64(out[0]) if scalar or arr.ndim == 0 else out.reshape(arr.shape)  # 0-d in, scalar out, as a ufunc
