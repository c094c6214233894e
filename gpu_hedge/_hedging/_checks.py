"""Argument checks shared by the hedging modules: numbers taken as stated or refused.

A boolean is not a number here (``True`` would silently be 1.0), nor is a string (``"0.2"`` would
silently parse): both are refused with a ValueError naming the argument as the caller spelled it.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._backends import to_numpy

__all__ = ["is_real", "real_array", "real_scalar"]


def is_real(value: Any) -> bool:
    """A real number (Python or NumPy int/float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _kind_error(name: str, kind: str, dtype: Any) -> str | None:
    if kind in "iuf":
        return None
    what = {
        "b": "booleans", "U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers",
        "M": "dates (datetime64)", "m": "durations (timedelta64)",
    }.get(kind, f"values of dtype {dtype}")  # fmt: skip
    return f"{name} holds {what}; expected real numbers (float or int)"


def check_dtype(name: str, dtype: Any) -> None:
    """Refuse an array dtype that is not an integer or a float (bool, strings, objects, complex, dates)."""
    try:
        d = np.dtype(dtype)
    except TypeError:  # a pandas extension dtype, say
        raise ValueError(f"{name} has dtype {dtype}; expected real numbers (float or int)") from None
    msg = _kind_error(name, d.kind, d)
    if msg:
        raise ValueError(msg)


def real_array(name: str, value: Any) -> np.ndarray:
    """``value`` (scalar, sequence or any backend's array) as a float64 NumPy array, refusing
    booleans, strings and anything else that is not an integer or a float."""
    if isinstance(value, str | bytes):
        raise ValueError(f"{name} = {value!r} is a string; expected a number or an array of numbers")
    a = to_numpy(value) if hasattr(value, "dtype") else np.asarray(value)
    a = np.asarray(a)
    check_dtype(name, a.dtype)
    return np.asarray(a, dtype=np.float64)


def real_scalar(name: str, value: Any, rule: str = "a finite number") -> float:
    """``value`` as a finite float (a Python or NumPy real, or a 0-d array of one), else ValueError."""
    ok = is_real(value)
    if not ok and hasattr(value, "dtype") and getattr(value, "ndim", None) == 0:
        ok = np.dtype(value.dtype).kind in "iuf"
    if not ok or not math.isfinite(float(value)):
        raise ValueError(f"{name} = {value!r} must be {rule}")
    return float(value)
