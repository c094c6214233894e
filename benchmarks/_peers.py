"""Loading the third-party peers the benchmarks compare against, with the workarounds they need.

Each ``load_*`` returns ``(module, None)`` when the peer works, or ``(None, reason)`` when it is not
installed or cannot be made to work; it never raises. See /work/shared/PEERS.md for the defects.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any

# Modules whose plain-Python functions py_lets_be_rational's numba-compiled code calls. cody_special
# 1.0 (and piecewise_rational 1.0) ship them without the ``@jit`` they had inside py_lets_be_rational
# before 1.1, so numba's nopython mode cannot type the calls (TypingError on first use).
_UNJITTED = ("cody_special.erf_cody", "cody_special.normaldistribution", "piecewise_rational.rationalcubic")
_REEXPORTS = ("cody_special", "piecewise_rational")  # packages whose names get rebound


def _njit_modules(njit: Any, modnames: tuple[str, ...], packages: tuple[str, ...]) -> int:
    """Replace every plain function defined in ``modnames`` by ``njit(function)``, and rebind every name
    that refers to one of them in any loaded module of ``packages`` (``from .erf_cody import erfc_cody``
    in a sibling module, the packages' re-exports). Returns how many functions were wrapped.

    Numba resolves a callee through the caller's module globals when it compiles, so rebinding the
    module attributes is enough, provided it happens before py_lets_be_rational does its
    ``from cody_special import ...``."""
    jitted: dict[int, Any] = {}
    for modname in modnames:
        mod = importlib.import_module(modname)
        for obj in list(vars(mod).values()):
            if isinstance(obj, types.FunctionType) and obj.__module__ == mod.__name__:
                jitted[id(obj)] = njit(obj)
    for modname, mod in list(sys.modules.items()):
        if mod is None or modname.split(".")[0] not in packages:
            continue
        for name, obj in list(vars(mod).items()):
            if id(obj) in jitted and isinstance(obj, types.FunctionType):
                setattr(mod, name, jitted[id(obj)])
    return len(jitted)


def load_py_vollib_vectorized() -> tuple[types.ModuleType | None, str | None]:
    """Import ``py_vollib_vectorized`` with the workaround it needs with current dependencies.

    1. ``PY_LETS_BE_RATIONAL_ENABLE_NUMBA=1`` before py_lets_be_rational is imported (>= 1.1 only
       jit-compiles its functions when asked to; py_vollib_vectorized's own jitted code calls them);
    2. ``numba.njit`` re-applied to cody_special's erf / normal-distribution functions (and
       piecewise_rational's rational-cubic helpers) before py_lets_be_rational imports them;
    3. a smoke test (ATM call, known vol) that forces compilation and checks the answer."""
    try:
        import numba
    except ImportError as e:
        return None, f"numba not installed ({e})"
    if importlib.util.find_spec("py_vollib_vectorized") is None:
        return None, "py_vollib_vectorized not installed (pip install py_vollib_vectorized)"
    if "py_vollib_vectorized" not in sys.modules:
        if "py_lets_be_rational" in sys.modules and os.environ.get("PY_LETS_BE_RATIONAL_ENABLE_NUMBA") != "1":
            return None, "py_lets_be_rational was already imported without numba; the workaround must run first"
        os.environ["PY_LETS_BE_RATIONAL_ENABLE_NUMBA"] = "1"
        try:
            present = tuple(m for m in _UNJITTED if importlib.util.find_spec(m.split(".")[0]) is not None)
            _njit_modules(numba.njit, present, _REEXPORTS)
        except Exception as e:  # noqa: BLE001 - any failure means "peer unavailable"
            return None, f"could not re-jit cody_special / piecewise_rational: {type(e).__name__}: {e}"
    try:
        import numpy as np
        import py_vollib_vectorized as pvv

        iv = pvv.vectorized_implied_volatility(
            np.array([10.450583572185565]), 100.0, 100.0, 1.0, 0.05, "c", q=0.0,
            model="black_scholes_merton", return_as="numpy", on_error="ignore",
        )  # fmt: skip
        if not abs(float(np.asarray(iv).ravel()[0]) - 0.2) < 1e-8:
            return None, f"py_vollib_vectorized smoke test failed: iv = {iv!r}, expected 0.2"
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()
        return None, f"py_vollib_vectorized unusable even with the workaround: {type(e).__name__}: {msg[0] if msg else ''}"
    return pvv, None


def load_quantlib() -> tuple[types.ModuleType | None, str | None]:
    """Import QuantLib and check ``blackFormulaImpliedStdDev`` on one ATM call."""
    try:
        import QuantLib as ql
    except ImportError as e:
        return None, f"QuantLib not installed ({e}; pip install QuantLib)"
    try:
        import math

        df = math.exp(-0.05)
        fwd = 100.0 * math.exp(0.05)
        sd = ql.blackFormulaImpliedStdDev(ql.Option.Call, 100.0, fwd, 10.450583572185565, df, 0.0, 0.2, 1e-12, 100)
        if not abs(sd - 0.2) < 1e-8:
            return None, f"QuantLib smoke test failed: std dev {sd}, expected 0.2"
    except Exception as e:  # noqa: BLE001
        return None, f"QuantLib blackFormulaImpliedStdDev failed: {type(e).__name__}: {e}"
    return ql, None


def dist_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def load_pfhedge() -> tuple[types.ModuleType | None, str | None]:
    """Import ``pfhedge.stochastic`` (CPU torch) and check ``generate_geometric_brownian`` on 2 paths.

    pfhedge's generators return ``(n_paths, n_steps)`` tensors whose column 0 is the initial state,
    so ``n_steps`` columns hold ``n_steps - 1`` steps: a run of N steps of ``dt`` asks for N + 1."""
    try:
        import torch
    except ImportError as e:
        return None, f"torch not installed ({e}; pip install torch, then pfhedge)"
    try:
        import pfhedge.stochastic as stochastic
    except ImportError as e:
        return None, f"pfhedge not installed ({e}; pip install pfhedge)"
    except Exception as e:  # noqa: BLE001 - any failure means "peer unavailable"
        return None, f"pfhedge import failed: {type(e).__name__}: {e}"
    try:
        x = stochastic.generate_geometric_brownian(2, 3, init_state=(100.0,), sigma=0.2, dt=0.5, dtype=torch.float64)
        if tuple(x.shape) != (2, 3) or not bool(torch.all(x[:, 0] == 100.0)) or not bool(torch.all(x > 0)):
            return None, f"pfhedge smoke test failed: generate_geometric_brownian(2, 3) gave {x!r}"
    except Exception as e:  # noqa: BLE001
        return None, f"pfhedge generate_geometric_brownian failed: {type(e).__name__}: {e}"
    return stochastic, None
