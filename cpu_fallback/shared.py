"""What every backend shares, whatever array library it runs on: the random-stream layout and the
compiler-free ``scan``. The CuPy and JAX adapters (``gpu_hedge._backends``) import these from here, so
that the NumPy backend's own module is nobody's dependency and the stream layout is defined once.

Imports nothing (no NumPy, no ``gpu_hedge``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["PATH_BLOCK", "loop_scan"]

#: Paths per random-stream block. Block ``b`` holds paths ``[b * PATH_BLOCK, (b + 1) * PATH_BLOCK)``
#: and has its own counter-based stream, so a path's shocks depend only on (seed, path, step).
PATH_BLOCK = 4096


def loop_scan(body: Callable[[Any, Any], Any], carry: Any, xs: tuple) -> Any:
    """``Backend.scan`` without a compiler: ``carry = body(carry, x)`` along the leading axis of ``xs``."""
    for i in range(int(xs[0].shape[0])):
        carry = body(carry, tuple(x[i] for x in xs))
    return carry
