"""What the device adapters (:mod:`gpu_hedge._backends._cupy`, :mod:`gpu_hedge._backends._jax`)
share: one base class for the parts of the Backend protocol they implement alike, and the
``special`` namespace's shape. Imports neither CuPy nor JAX: each adapter names its own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any


def special_namespace(where: Callable[..., Any], **functions: Callable[..., Any]) -> SimpleNamespace:
    """A backend's ``special``: ``functions`` (``ndtr``, ``ndtri``, ``log_ndtr``, ``erfc``, ``erfcx``)
    and ``lazy_where``, which on traced / asynchronous arrays (not cheap to inspect) computes both
    branches and selects with ``where``."""
    return SimpleNamespace(**functions, lazy_where=lambda cond, if_true, if_false: where(cond, if_true(), if_false()))


class DeviceBackend:
    """Base of the CuPy and JAX backends: ``array_module`` (``cupy`` / ``jax.numpy``) gives
    :meth:`asarray` and :meth:`min_max`; :meth:`elementwise` (the protocol's entry point) hands the
    call to the adapter's ``_elementwise`` with the names as a tuple."""

    name: str
    device: str
    capabilities: frozenset[str]
    xp: Any
    special: Any
    array_module: Any

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Host data (or a device array) as a device array of ``dtype``."""
        return self.array_module.asarray(x, dtype=dtype)

    def min_max(self, x: Any) -> tuple[float, float]:
        """``(min, max)`` of a non-empty array as Python floats (NaN if it holds one)."""
        return float(self.array_module.min(x)), float(self.array_module.max(x))

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
        native: Any = None,
    ) -> dict[str, Any]:
        """Run an elementwise ``kernel(xp, special, *arrays) -> {name: array}`` over broadcast inputs
        (``key``: a hashable description of ``kernel``; ``native``: a well-known kernel the backend
        may run fused), see the adapter's ``_elementwise``."""
        return self._elementwise(kernel, arrays, tuple(names), dtype, key, native)

    def _elementwise(
        self, kernel: Callable[..., Mapping[str, Any]], arrays: Sequence[Any], names: tuple[str, ...], dtype: Any, key: Any, native: Any
    ) -> dict[str, Any]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"
