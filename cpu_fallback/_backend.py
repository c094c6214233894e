"""The NumPy + SciPy backend. Imports neither CuPy nor JAX."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import array_api_compat.numpy as xp_numpy
import numpy as np
import scipy.special as sc

from ._executor import run_chunked


def lazy_where(cond: np.ndarray, if_true: Callable[[], Any], if_false: Callable[[], Any]) -> Any:
    """``where(cond, if_true(), if_false())``, calling a branch only when some element needs it.

    On a chunk where ``cond`` is uniform (the usual case for rare regions such as asymptotic
    expansions) only one branch is computed.
    """
    if not cond.any():
        return if_false()
    if cond.all():
        return if_true()
    return np.where(cond, if_true(), if_false())


SPECIAL = SimpleNamespace(
    ndtr=sc.ndtr, ndtri=sc.ndtri, log_ndtr=sc.log_ndtr, erfc=sc.erfc, erfcx=sc.erfcx, lazy_where=lazy_where
)


class NumpyBackend:
    """CPU backend: NumPy arrays, SciPy special functions, chunked multi-threaded evaluation.

    ``chunk`` (elements per chunk) and ``threads`` default to the ``GPU_HEDGE_CHUNK`` and
    ``GPU_HEDGE_NUM_THREADS`` environment variables, else 8192 and the usable CPU count.
    """

    name = "numpy"
    device = "cpu"
    capabilities = frozenset({"chunked", "threads"})
    xp = xp_numpy
    special = SPECIAL

    def __init__(self, *, chunk: int | None = None, threads: int | None = None) -> None:
        self.chunk = chunk
        self.threads = threads

    def asarray(self, x: Any, dtype: Any = None) -> np.ndarray:
        """Host data (or a NumPy array) as a NumPy array of ``dtype``."""
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def jit(fn: Callable) -> Callable:
        """Identity: NumPy has no compiler; speed comes from :meth:`elementwise`'s chunking."""
        return fn

    @staticmethod
    def sync(x: Any) -> Any:
        return x

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
    ) -> dict[str, np.ndarray]:
        """Run an elementwise ``kernel(xp, special, *arrays) -> {name: array}`` over broadcast inputs.

        ``key`` identifies the kernel for caching on compiling backends; unused here.
        """
        return run_chunked(
            lambda *a: kernel(self.xp, self.special, *a),
            arrays,
            names,
            np.dtype(dtype),
            chunk=self.chunk,
            threads=self.threads,
        )

    def __repr__(self) -> str:
        return f"NumpyBackend(chunk={self.chunk}, threads={self.threads})"
