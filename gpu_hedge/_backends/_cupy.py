"""CuPy adapter. Importing this module imports CuPy; call only after the GPU probe said yes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import array_api_compat.cupy as xp_cupy
import cupy
import cupyx.scipy.special as csp
import numpy as np

from cpu_fallback._backend import PATH_BLOCK, loop_scan

SPECIAL = SimpleNamespace(
    ndtr=csp.ndtr,
    ndtri=csp.ndtri,
    log_ndtr=csp.log_ndtr,
    erfc=csp.erfc,
    erfcx=csp.erfcx,
    # Traced / asynchronous arrays cannot be inspected cheaply: compute both branches and select.
    lazy_where=lambda cond, if_true, if_false: cupy.where(cond, if_true(), if_false()),
)


class CupyBackend:
    """CuPy backend: arrays on the current CUDA device, whole-array kernels."""

    name = "cupy"
    capabilities = frozenset({"gpu"})
    xp = xp_cupy
    special = SPECIAL

    def __init__(self) -> None:
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        self.device = f"cuda:{dev.id} ({props['name'].decode()})"

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return cupy.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return cupy.asnumpy(x)

    @staticmethod
    def jit(fn: Callable) -> Callable:
        return fn

    @staticmethod
    def sync(x: Any) -> Any:
        cupy.cuda.get_current_stream().synchronize()
        return x

    @staticmethod
    def scan(body: Callable[[Any, Any], Any], carry: Any, xs: tuple) -> Any:
        return loop_scan(body, carry, xs)

    @staticmethod
    def segment_sum(codes: Any, values: Any, n: int) -> Any:
        return cupy.bincount(codes, weights=values, minlength=n)

    @staticmethod
    def min_max(x: Any) -> tuple[float, float]:
        return float(cupy.min(x)), float(cupy.max(x))

    @staticmethod
    def is_out_of_memory(exc: BaseException) -> bool:
        return isinstance(exc, cupy.cuda.memory.OutOfMemoryError)

    @staticmethod
    def normals(
        seed: int, step: int, count: int, n_paths: int, dtype: Any = "float64", *, antithetic: bool = False, first_path: int = 0
    ) -> Any:
        """Standard normals ``(count, n_paths)`` for time step ``step``: the random-stream facade.

        UNTESTED (no GPU where the suite runs): one cuRAND Philox4x32-10 stream per (seed, path
        block, step), seeded with a SplitMix64 hash of the three; whole blocks of :data:`PATH_BLOCK`
        paths, path-major, then cut, so the first ``m`` columns equal an ``m``-path draw; column ``j`` is
        path ``first_path + j``. Same
        structure as the NumPy and JAX streams, different bits: compare backends in reference mode.
        """
        out = cupy.empty((count, n_paths), dtype=dtype)
        end = first_path + n_paths
        for block in range(first_path // PATH_BLOCK, -(-end // PATH_BLOCK)):
            lo = max(block * PATH_BLOCK, first_path)
            hi = min((block + 1) * PATH_BLOCK, end)
            rs = cupy.random.RandomState(seed=_splitmix64(seed, block, step), method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            if antithetic:
                half = rs.standard_normal((PATH_BLOCK // 2, count), dtype=dtype)
                z = cupy.stack([half, -half], axis=1).reshape(PATH_BLOCK, count)
            else:
                z = rs.standard_normal((PATH_BLOCK, count), dtype=dtype)
            out[:, lo - first_path : hi - first_path] = z[lo - block * PATH_BLOCK : hi - block * PATH_BLOCK].T
        return out

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
        native: Any = None,
    ) -> dict[str, Any]:
        arrs = [cupy.asarray(a, dtype=dtype) for a in arrays]
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        res = kernel(self.xp, self.special, *arrs)
        return {n: cupy.ascontiguousarray(cupy.broadcast_to(res[n], shape)) for n in names}

    def __repr__(self) -> str:
        return f"CupyBackend(device={self.device!r})"


def _splitmix64(*words: int) -> int:
    """A 63-bit seed mixing ``words`` (SplitMix64 finaliser over each in turn)."""
    mask = (1 << 64) - 1
    h = 0
    for w in words:
        h = (h ^ w) + 0x9E3779B97F4A7C15 & mask
        h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & mask
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & mask
        h ^= h >> 31
    return h >> 1
