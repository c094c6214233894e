"""Device batches: the shapes rows are sent to a backend in, and what happens when they do not fit.

Compiling backends (capability ``"jit"``) compile once per input shape, so rows are padded to a power
of two (:func:`device_size`, :func:`pad`) with rows that contribute nothing (weight 0). When the
device runs out of memory the work is split and retried, never lost: :func:`split_on_oom` halves a
partition recursively and merges the halves in order; :func:`each_slice` walks rows in slices that
halve on the error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .._backends import bucket, device_size

__all__ = ["bucket", "device_size", "each_slice", "pad", "split_on_oom"]

T = TypeVar("T")


def pad(a: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``a`` lengthened to ``size`` rows with ``fill`` (``a`` itself when it has ``size`` rows)."""
    if a.shape[0] == size:
        return a
    out = np.full(size, fill, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


def split_on_oom(
    run: Callable[[Any, int], T], frame: Any, first_row: int, is_oom: Callable[[BaseException], bool], merge: Callable[[T, T], T]
) -> T:
    """``run(frame, first_row)``; when it raises an out-of-memory error (``is_oom``) and ``frame``
    (anything with ``len`` and ``iloc``) has two rows or more, the two halves are run the same way
    (recursively) and their results merged in order with ``merge(first_half, second_half)``."""
    try:
        return run(frame, first_row)
    except Exception as exc:  # noqa: BLE001 - only allocation failures are retried
        if not is_oom(exc) or len(frame) < 2:
            raise
    half = len(frame) // 2
    a = split_on_oom(run, frame.iloc[:half], first_row, is_oom, merge)
    b = split_on_oom(run, frame.iloc[half:], first_row + half, is_oom, merge)
    return merge(a, b)


def each_slice(n: int, size: int, work: Callable[[int, int], None], is_oom: Callable[[BaseException], bool]) -> None:
    """``work(lo, hi)`` over consecutive slices of ``n`` rows, ``size`` rows at a time; on an
    out-of-memory error (``is_oom``) the slice halves and is retried (down to one row)."""
    lo, size = 0, max(1, size)
    while lo < n:
        hi = min(lo + size, n)
        try:
            work(lo, hi)
        except Exception as exc:  # noqa: BLE001 - only allocation failures are retried
            if not is_oom(exc) or size == 1:
                raise
            size = max(1, size // 2)
            continue
        lo = hi
