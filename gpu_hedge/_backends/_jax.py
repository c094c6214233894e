"""JAX adapter. Importing this module imports JAX and switches on float64 (the one place we do).

JAX runs the generic array kernels (``gpu_hedge._pricing.black_scholes`` and the others: the
reference definitions), jitted per kernel; it has no fused ``native`` kernels. What it shares with
the CuPy adapter (``asarray``, ``min_max``, the ``elementwise`` entry point, ``special``'s shape)
is in :mod:`gpu_hedge._backends._device`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)
assert jax.config.jax_enable_x64, "gpu_hedge needs JAX float64 (jax_enable_x64)"

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jsp  # noqa: E402
import numpy as np  # noqa: E402

from cpu_fallback.shared import PATH_BLOCK  # noqa: E402

from ._device import DeviceBackend, special_namespace  # noqa: E402


def _ndtr(x: Any) -> Any:
    """N(x) as ``erfc(-x / sqrt(2)) / 2``: within one rounding (2.2e-16 float64) of
    ``jax.scipy.special.ndtr``, which selects between erf and erfc branches, at a seventh of its
    cost on the CPU, where XLA's erfc is one vectorised polynomial."""
    return 0.5 * jsp.erfc(x * -0.7071067811865476)


def _scan(body: Callable[[Any, Any], Any], carry: Any, xs: tuple) -> Any:
    """``jax.lax.scan`` over the leading axis of ``xs``, returning the last carry: a loop a kernel
    compiles once (``special.scan``; the ALO fixed point's identical steps)."""
    return jax.lax.scan(lambda c, x: (body(c, x), None), carry, xs)[0]


SPECIAL = special_namespace(jnp.where, ndtr=_ndtr, ndtri=jsp.ndtri, log_ndtr=jsp.log_ndtr, erfc=jsp.erfc, erfcx=jsp.erfcx, scan=_scan)


def gpu_devices() -> list:
    """JAX's GPU devices, or [] where it has none (never raises)."""
    try:
        return list(jax.devices("gpu"))
    except RuntimeError:
        return []


class JaxBackend(DeviceBackend):
    """JAX backend (CPU or GPU): jitted kernels, float64, autodiff Greeks."""

    name = "jax"
    capabilities = frozenset({"autodiff", "jit", "immutable"})
    xp = jnp
    special = SPECIAL
    array_module = jnp

    def __init__(self) -> None:
        dev = jax.devices()[0]
        self.device = f"{dev.platform}:{dev.id} ({getattr(dev, 'device_kind', dev.platform)})"
        self._compiled: dict[Any, Callable] = {}

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return np.asarray(x)

    @staticmethod
    def jit(fn: Callable, **kwargs: Any) -> Callable:
        return jax.jit(fn, **kwargs)

    @staticmethod
    def sync(x: Any) -> Any:
        return jax.block_until_ready(x)

    scan = staticmethod(_scan)

    @staticmethod
    def segment_sum(codes: Any, values: Any, n: int) -> Any:
        return jax.ops.segment_sum(values, codes, num_segments=n)

    @staticmethod
    def is_out_of_memory(exc: BaseException) -> bool:
        """XLA reports a failed allocation as RESOURCE_EXHAUSTED."""
        return "RESOURCE_EXHAUSTED" in str(exc)

    @staticmethod
    def jvp(fn: Callable, primals: tuple, tangents: tuple) -> tuple[Any, Any]:
        """Forward-mode derivative: ``(fn(*primals), d fn . tangents)`` (``jax.jvp``)."""
        return jax.jvp(fn, primals, tangents)

    @staticmethod
    def normals(
        seed: int, step: int, count: int, n_paths: int, dtype: Any = "float64", *, antithetic: bool = False, first_path: int = 0
    ) -> Any:
        """Standard normals ``(count, n_paths)`` for time step ``step``: the random-stream facade.

        Path block ``b`` (:data:`PATH_BLOCK` paths) at step ``k`` draws from
        ``fold_in(fold_in(key(seed), b), k)``, path-major, always a whole block (then cut), so the
        first ``m`` columns equal an ``m``-path draw; column ``j`` is path ``first_path + j``. Jitted
        once per shape and block offset; ``seed`` and ``step`` are traced (usable inside ``lax.scan``).
        """
        return _normals(
            seed, step, count=count, n_paths=n_paths, dtype=jnp.dtype(dtype), antithetic=antithetic, first_path=first_path
        )

    def _elementwise(
        self, kernel: Callable[..., Mapping[str, Any]], arrays: Sequence[Any], names: tuple[str, ...], dtype: Any, key: Any, native: Any
    ) -> dict[str, Any]:
        """Jit ``kernel`` once per ``key`` (a hashable description of it) and run it on whole arrays."""
        cache_key = (key, names) if key is not None else None
        fn = self._compiled.get(cache_key) if cache_key is not None else None
        if fn is None:
            fn = jax.jit(partial(_run_broadcast, kernel, names))
            if cache_key is not None:
                self._compiled[cache_key] = fn
        return fn(*[jnp.asarray(a, dtype=dtype) for a in arrays])


@partial(jax.jit, static_argnames=("count", "n_paths", "dtype", "antithetic", "first_path"))
def _normals(seed: Any, step: Any, *, count: int, n_paths: int, dtype: Any, antithetic: bool, first_path: int) -> Any:
    root = jax.random.key(seed)

    def block(b: Any) -> Any:
        key = jax.random.fold_in(jax.random.fold_in(root, b), step)
        if antithetic:
            half = jax.random.normal(key, (PATH_BLOCK // 2, count), dtype)
            return jnp.stack([half, -half], axis=1).reshape(PATH_BLOCK, count)
        return jax.random.normal(key, (PATH_BLOCK, count), dtype)

    first_block = first_path // PATH_BLOCK
    n_blocks = -(-(first_path + n_paths) // PATH_BLOCK) - first_block
    z = jax.vmap(block)(first_block + jnp.arange(n_blocks, dtype=jnp.uint32))
    start = first_path - first_block * PATH_BLOCK
    return z.reshape(n_blocks * PATH_BLOCK, count)[start : start + n_paths].T


def _run_broadcast(kernel: Callable, names: tuple[str, ...], *arrays: Any) -> dict[str, Any]:
    shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    res = kernel(jnp, SPECIAL, *arrays)
    return {n: jnp.broadcast_to(res[n], shape) for n in names}
