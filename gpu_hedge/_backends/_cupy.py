"""CuPy adapter. Importing this module imports CuPy; call only after the GPU probe said yes.

Fused kernels (source in :mod:`gpu_hedge._backends._cuda_src`, compiled by CuPy/NVRTC on first use
and cached per kernel, dtype and device): the Black price + first-order Greeks and the risk job's
scenario ladder as ``cupy.ElementwiseKernel``s (one pass over memory), and the counter-based
Philox4x32-10 normals as a raw kernel (one launch per time step).

NOT YET RUN ON A DEVICE: this module was written where no GPU was available. The CUDA source is
compiled and checked on the CPU (``tests/test_cuda_source.py``: a C++ build of the same strings
against the NumPy kernels and Random123's known answers, and ``nvcc -c``), but the CuPy glue here
first runs in ``python -m benchmarks.gpu_suite`` (CuPy against NumPy float64) and in the ``gpu``-marked
tests of ``tests/test_cuda_source.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from types import SimpleNamespace
from typing import Any

import array_api_compat.cupy as xp_cupy
import cupy
import cupyx.scipy.special as csp
import numpy as np

from cpu_fallback.shared import loop_scan

from . import _cuda_src

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

        NOT YET RUN ON A DEVICE (the kernel's code is checked on the CPU, see the module docstring).
        One launch of the Philox4x32-10 kernel of :mod:`gpu_hedge._backends._cuda_src` writes the
        block: normals ``2m`` and ``2m + 1`` of path ``p`` come from Philox4x32-10 with key
        ``(seed mod 2^32, seed >> 32)`` and counter ``(m, step, p mod 2^32, p >> 32)`` through
        Box-Muller (float64: 53-bit uniforms ``u1 = (x1 2^21 + (x0 >> 11) + 1) 2^-53`` in (0, 1],
        ``u2 = (x3 2^21 + (x2 >> 11)) 2^-53``; float32: ``u1 = ((x1 >> 8) + 1) 2^-24``,
        ``u2 = (x3 >> 8) 2^-24``; ``z = sqrt(-2 ln u1) (cos, sin)(2 pi u2)``). A path's shocks depend
        only on (seed, path, step, index): the first ``m`` columns equal an ``m``-path draw and column
        ``j`` is path ``first_path + j``. ``antithetic``: odd path ``2i + 1`` is minus path ``2i``.
        Other bits than the NumPy and JAX streams: compare backends in reference mode.
        """
        dt = np.dtype(dtype)
        kind = dt.name if dt.name in _cuda_src.NORMALS_KERNEL_NAMES else "float64"
        grid, (seed, first_path, n_paths, count, step) = _cuda_src.normals_launch(seed, step, count, n_paths, first_path)
        out = cupy.empty((count, n_paths), dtype=kind)
        if grid[0]:
            args = (np.uint64(seed), np.int64(first_path), np.int64(n_paths), np.int64(count), np.uint32(step), np.int32(bool(antithetic)))
            _normals_kernel(kind)(grid, (_cuda_src.NORMALS_BLOCK,), (out, *args))
        return out if kind == dt.name else out.astype(dt)

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
        native: Any = None,
    ) -> dict[str, Any]:
        """Run an elementwise ``kernel(xp, special, *arrays) -> {name: array}`` over broadcast inputs.

        ``native`` ``"black:bsm"`` / ``"black:black76"`` (outputs a subset of price, delta, gamma, vega,
        theta, rho) and ``("ladder", model, pairs)`` (outputs ``s0 ... s<m-1>``) in float32 or float64
        run as fused ``cupy.ElementwiseKernel``s (NOT YET RUN ON A DEVICE, see the module docstring);
        anything else runs ``kernel`` as whole-array CuPy operations. Outputs are C-contiguous arrays of
        the broadcast shape.
        """
        arrs = [cupy.asarray(a, dtype=dtype) for a in arrays]
        if native is not None:
            fused = _run_native(native, arrs, tuple(names), np.dtype(dtype))
            if fused is not None:
                return fused
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        res = kernel(self.xp, self.special, *arrs)
        return {n: cupy.ascontiguousarray(cupy.broadcast_to(res[n], shape)) for n in names}

    def __repr__(self) -> str:
        return f"CupyBackend(device={self.device!r})"


def _elementwise(spec: _cuda_src.KernelSpec) -> Any:
    return cupy.ElementwiseKernel(spec.in_params, spec.out_params, spec.body, spec.name, preamble=spec.preamble)


@cache
def _black_kernel(model: str, names: tuple[str, ...]) -> Any:
    """The fused Black kernel writing ``names`` (CuPy compiles it once per dtype and device)."""
    return _elementwise(_cuda_src.black_kernel_spec(model, names))


@cache
def _ladder_kernels(model: str, pairs: tuple[tuple[float, float], ...]) -> tuple[Any, ...]:
    """The ladder's kernels, one per group of at most ``LADDER_GROUP`` scenarios."""
    step = _cuda_src.LADDER_GROUP
    return tuple(_elementwise(_cuda_src.ladder_kernel_spec(model, pairs[i : i + step], first=i)) for i in range(0, len(pairs), step))


@cache
def _normals_kernel(kind: str) -> Any:
    """The Philox normals kernel for ``kind`` ("float64" or "float32")."""
    return cupy.RawKernel(_cuda_src.NORMALS_SRC, _cuda_src.NORMALS_KERNEL_NAMES[kind])


def _outputs(res: Any) -> tuple[Any, ...]:
    """An ElementwiseKernel's result as a tuple (it returns a bare array for one output)."""
    return res if isinstance(res, tuple) else (res,)


def _run_native(native: Any, arrs: list[Any], names: tuple[str, ...], dtype: np.dtype) -> dict[str, Any] | None:
    """The fused kernel's outputs ``{name: array}`` for a well-known ``native`` kernel, or None (run the generic one)."""
    if dtype not in (np.float32, np.float64):
        return None
    if isinstance(native, str) and native.startswith("black:"):
        model = native.removeprefix("black:")
        known = bool(names) and len(set(names)) == len(names) and set(names) <= set(_cuda_src.NAMES)
        if model not in _cuda_src.MODELS or len(arrs) != 7 or not known:
            return None
        return dict(zip(names, _outputs(_black_kernel(model, names)(*arrs)), strict=True))
    if isinstance(native, tuple) and len(native) == 3 and native[0] == "ladder":
        model, pairs = native[1], tuple((float(ds), float(dv)) for ds, dv in native[2])
        if model not in _cuda_src.MODELS or len(arrs) != 8 or not pairs or names != tuple(f"s{j}" for j in range(len(pairs))):
            return None
        out: dict[str, Any] = {}
        step = _cuda_src.LADDER_GROUP
        for g, k in enumerate(_ladder_kernels(model, pairs)):
            out.update(zip(names[g * step : (g + 1) * step], _outputs(k(*arrs)), strict=True))
        return out
    return None
