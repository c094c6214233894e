"""JAX adapter. Importing this module imports JAX and switches on float64 (the one place we do)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import SimpleNamespace
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)
assert jax.config.jax_enable_x64, "gpu_hedge needs JAX float64 (jax_enable_x64)"

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jsp  # noqa: E402
import numpy as np  # noqa: E402

SPECIAL = SimpleNamespace(
    ndtr=jsp.ndtr,
    ndtri=jsp.ndtri,
    log_ndtr=jsp.log_ndtr,
    erfc=jsp.erfc,
    erfcx=jsp.erfcx,
    # Traced / asynchronous arrays cannot be inspected cheaply: compute both branches and select.
    lazy_where=lambda cond, if_true, if_false: jnp.where(cond, if_true(), if_false()),
)


def gpu_devices() -> list:
    """JAX's GPU devices, or [] where it has none (never raises)."""
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []


class JaxBackend:
    """JAX backend (CPU or GPU): jitted kernels, float64, autodiff Greeks."""

    name = "jax"
    capabilities = frozenset({"autodiff", "jit"})
    xp = jnp
    special = SPECIAL

    def __init__(self) -> None:
        dev = jax.devices()[0]
        self.device = f"{dev.platform}:{dev.id} ({getattr(dev, 'device_kind', dev.platform)})"
        self._compiled: dict[Any, Callable] = {}

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return jnp.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def jit(fn: Callable, **kwargs: Any) -> Callable:
        return jax.jit(fn, **kwargs)

    @staticmethod
    def sync(x: Any) -> Any:
        return jax.block_until_ready(x)

    @staticmethod
    def jvp(fn: Callable, primals: tuple, tangents: tuple) -> tuple[Any, Any]:
        """Forward-mode derivative: ``(fn(*primals), d fn . tangents)`` (``jax.jvp``)."""
        return jax.jvp(fn, primals, tangents)

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
    ) -> dict[str, Any]:
        """Jit ``kernel`` once per ``key`` (a hashable description of it) and run it on whole arrays."""
        names = tuple(names)
        cache_key = (key, names) if key is not None else None
        fn = self._compiled.get(cache_key) if cache_key is not None else None
        if fn is None:
            fn = jax.jit(partial(_run_broadcast, kernel, names))
            if cache_key is not None:
                self._compiled[cache_key] = fn
        return fn(*[jnp.asarray(a, dtype=dtype) for a in arrays])

    def __repr__(self) -> str:
        return f"JaxBackend(device={self.device!r})"


def _run_broadcast(kernel: Callable, names: tuple[str, ...], *arrays: Any) -> dict[str, Any]:
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    res = kernel(jnp, SPECIAL, *arrays)
    return {n: jnp.broadcast_to(res[n], shape) for n in names}
