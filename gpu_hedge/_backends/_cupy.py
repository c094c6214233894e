"""CuPy adapter. Importing this module imports CuPy; call only after the GPU probe said yes.

Fused kernels: the Black price + first-order Greeks and the risk job's scenario ladder are Numba
CUDA kernels (:mod:`gpu_hedge._backends._cuda_black`, imported on the first fused call: it imports
``numba.cuda``, from the ``numba-cuda`` package of the ``cuda12`` / ``cuda13`` extras) compiled from
the scalar element functions the NumPy backend's Numba passes call (:mod:`cpu_fallback._black_element`:
each formula written once), launched on CuPy's arrays and current stream, one pass over memory.
The counter-based Philox4x32-10 normals are a raw kernel (C++ source in
:mod:`gpu_hedge._backends._cuda_src`, compiled by CuPy/NVRTC on first use; one launch per time step).
What this adapter shares with the JAX one is in :mod:`gpu_hedge._backends._device`.

NOT YET RUN ON A DEVICE: this module was written where no GPU was available. The kernels are checked
on the CPU (``tests/test_cuda_source.py``: the Numba kernels and this glue in Numba's CUDA simulator
against the generic NumPy kernels; the normals' C++ built with g++ against Random123's known answers,
and ``nvcc -c``), but they first run on a device in ``python -m benchmarks.gpu_suite`` (CuPy against
NumPy float64) and in the ``gpu``-marked tests of ``tests/test_cuda_source.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import array_api_compat.cupy as xp_cupy
import cupy
import cupyx.scipy.special as csp
import numpy as np

from cpu_fallback._black_element import MODELS
from cpu_fallback._black_element import NAMES as BLACK_NAMES
from cpu_fallback.shared import loop_scan

from . import _cuda_src
from ._device import DeviceBackend, special_namespace

SPECIAL = special_namespace(cupy.where, ndtr=csp.ndtr, ndtri=csp.ndtri, log_ndtr=csp.log_ndtr, erfc=csp.erfc, erfcx=csp.erfcx)


class CupyBackend(DeviceBackend):
    """CuPy backend: arrays on the current CUDA device, whole-array kernels."""

    name = "cupy"
    capabilities = frozenset({"gpu"})
    xp = xp_cupy
    special = SPECIAL
    array_module = cupy

    def __init__(self) -> None:
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        self.device = f"cuda:{dev.id} ({props['name'].decode()})"

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

    def _elementwise(
        self, kernel: Callable[..., Mapping[str, Any]], arrays: Sequence[Any], names: tuple[str, ...], dtype: Any, key: Any, native: Any
    ) -> dict[str, Any]:
        """Whole-array CuPy operations; ``native`` ``"black:bsm"`` / ``"black:black76"`` (outputs a
        subset of price, delta, gamma, vega, theta, rho) and ``("ladder", model, pairs)`` (outputs
        ``s0 ... s<m-1>``) in float32 or float64 run as fused Numba CUDA kernels instead (NOT YET RUN
        ON A DEVICE, see the module docstring). Outputs are C-contiguous arrays of the broadcast shape."""
        arrs = [cupy.asarray(a, dtype=dtype) for a in arrays]
        if native is not None:
            fused = _run_native(native, arrs, names, np.dtype(dtype))
            if fused is not None:
                return fused
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        res = kernel(self.xp, self.special, *arrs)
        return {n: cupy.ascontiguousarray(cupy.broadcast_to(res[n], shape)) for n in names}


@cache
def _normals_kernel(kind: str) -> Any:
    """The Philox normals kernel for ``kind`` ("float64" or "float32")."""
    return cupy.RawKernel(_cuda_src.NORMALS_SRC, _cuda_src.NORMALS_KERNEL_NAMES[kind])


def _flat(a: Any, shape: tuple[int, ...]) -> Any:
    """An input as the 1-d array the fused kernels read: length 1 for a scalar (broadcast in the
    kernel), the array's own memory where it already has the broadcast shape, else a broadcast copy."""
    if a.size == 1:
        return a.reshape(1)
    if a.shape == shape and a.flags.c_contiguous:
        return a.reshape(-1)
    return cupy.ascontiguousarray(cupy.broadcast_to(a, shape)).reshape(-1)


def _run_native(native: Any, arrs: list[Any], names: tuple[str, ...], dtype: np.dtype) -> dict[str, Any] | None:
    """The fused kernel's outputs ``{name: array}`` for a well-known ``native`` kernel, or None (run the generic one).

    Numba CUDA kernels (:mod:`gpu_hedge._backends._cuda_black`, imported here on first use) on CuPy's
    current stream; each output is a row of one ``(len(names), n)`` block, reshaped to the broadcast shape.
    """
    if dtype not in (np.float32, np.float64):
        return None
    if isinstance(native, str) and native.startswith("black:"):
        model = native.removeprefix("black:")
        known = bool(names) and len(set(names)) == len(names) and set(names) <= set(BLACK_NAMES)
        if model not in MODELS or len(arrs) != 7 or not known:
            return None
        from . import _cuda_black as cb

        kernel, extra = cb.black_kernel(model, names), []
    elif isinstance(native, tuple) and len(native) == 3 and native[0] == "ladder":
        model, pairs = native[1], tuple((float(ds), float(dv)) for ds, dv in native[2])
        if model not in MODELS or len(arrs) != 8 or not pairs or names != tuple(f"s{j}" for j in range(len(pairs))):
            return None
        from . import _cuda_black as cb

        shocks = ([ds for ds, _ in pairs], [math.log1p(ds) for ds, _ in pairs], [dv for _, dv in pairs])  # as the generic kernel
        kernel, extra = cb.ladder_kernel(model), [cupy.asarray(np.array(x, dtype=np.float64)) for x in shocks]
    else:
        return None
    shape = tuple(np.broadcast_shapes(*(a.shape for a in arrs)))
    n = math.prod(shape)
    out = cupy.empty((len(names), n), dtype=dtype)
    cb.launch(kernel, n, cupy.cuda.get_current_stream().ptr, [*(_flat(a, shape) for a in arrs), *extra, out])
    return {name: out[k].reshape(shape) for k, name in enumerate(names)}
