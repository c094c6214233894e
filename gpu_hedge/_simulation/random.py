"""Counter-based random shocks for path simulation: the backend's stream, or the host reference.

Every backend's ``normals(seed, step, count, n_paths, dtype, antithetic=...)`` (the random-stream
facade, see :class:`gpu_hedge.Backend`) cuts paths into blocks of :data:`PATH_BLOCK`, each with its own
stream keyed by ``(seed, block)`` and addressed by the time step, so a path's shocks depend only on
(seed, path, step): not on how many paths are drawn, on threads, or on how blocks are grouped.
Backends draw different bits; ``reference=True`` draws on the host with NumPy's streams and ships
the shocks to the device, so every backend sees the same numbers (for tests and cross-checks).
"""

from __future__ import annotations

import operator
from typing import Any

from .._backends import PATH_BLOCK, Backend, host_backend
from .._types import Array

__all__ = ["MAX_SEED", "PATH_BLOCK", "check_seed", "normals"]

#: Seeds are integers in ``[0, MAX_SEED)`` (JAX keys take a signed 64-bit seed).
MAX_SEED = 2**63


def check_seed(seed: Any) -> int:
    """``seed`` as an int in ``[0, MAX_SEED)``, else ValueError."""
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = operator.index(seed)
    except TypeError:
        raise ValueError(f"seed = {seed!r} must be an integer in [0, 2**63)") from None
    if not 0 <= value < MAX_SEED:
        raise ValueError(f"seed = {seed!r} must be an integer in [0, 2**63)")
    return value


def normals(
    backend: Backend, seed: int, step: int, count: int, n_paths: int, dtype: Any, *, antithetic: bool, reference: bool, first_path: int = 0
) -> Array:
    """Standard normals ``(count, n_paths)`` for time step ``step`` and paths ``first_path ...`` on ``backend``.

    ``reference``: drawn on the host by the NumPy backend's streams and copied to ``backend``
    (identical shocks on every backend); else drawn by ``backend`` itself.
    """
    if reference:
        host = host_backend().normals(seed, step, count, n_paths, "float64", antithetic=antithetic, first_path=first_path)
        return backend.asarray(host, dtype=dtype)
    return backend.normals(seed, step, count, n_paths, dtype, antithetic=antithetic, first_path=first_path)
