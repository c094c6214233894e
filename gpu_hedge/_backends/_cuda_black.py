"""The CuPy backend's fused Black and ladder kernels: Numba CUDA kernels compiled from the same
scalar element functions as the NumPy backend's Numba passes (:mod:`cpu_fallback._black_element`).

Importing this module imports ``numba.cuda`` (the ``numba-cuda`` package of the ``cuda12`` /
``cuda13`` extras): :mod:`gpu_hedge._backends._cupy` imports it on the first fused call only. The
element functions' Python source (the njit dispatchers' ``.py_func``) becomes CUDA device functions
(:func:`device_function`, with the normal CDF :func:`cpu_fallback._ndtr_kernel.ndtr_from_exp`
rebound to its device twin); a kernel computes the exponentials the CPU path leaves to NumPy with
``math.exp`` / ``math.log`` / ``math.sqrt`` and calls them. Nothing of the formulas is written here.

- :func:`black_kernel`: price + first-order Greeks (any subset, written to the rows of one
  ``(len(names), n)`` output), ``bsm`` or ``black76``, one thread per element, grid-stride;
- :func:`ladder_kernel`: the scenario ladder of ``gpu_hedge._book.risk.ladder_kernel``, the shocks
  passed as arrays, every scenario of an element in one thread (output ``(m, n)``).

Inputs: 1-d arrays of length ``n`` or 1 (a broadcast scalar: :func:`_at` reads element 0), one float
type (float32 or float64; the arithmetic is float64 either way, the outputs are of the input type).
With ``NUMBA_ENABLE_CUDASIM=1`` set before Numba is imported the same kernels run on NumPy arrays
in Numba's CUDA simulator (``tests/test_cuda_kernels.py``); :func:`launch` accepts NumPy arrays there.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from numba import cuda

from cpu_fallback import _black_element as el
from cpu_fallback._ndtr_kernel import ndtr_from_exp

#: threads per block of both kernels
BLOCK = 256
#: at most this many blocks per launch (the kernels stride over the rest)
MAX_BLOCKS = 1 << 16
#: whether this is Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``: kernels run on NumPy arrays on the CPU)
SIMULATOR = hasattr(cuda, "FakeCUDAKernel")


def device_function(dispatcher: Any, **deps: Any) -> Any:
    """``cuda.jit(device=True)`` of an njit dispatcher's Python function, its global names in
    ``deps`` (other device functions) rebound: the same source compiled for the device."""
    py = dispatcher.py_func
    scope = {**py.__globals__, **deps}
    fn = types.FunctionType(py.__code__, scope, py.__name__, py.__defaults__, py.__closure__)
    fn.__doc__, fn.__module__ = py.__doc__, py.__module__
    return cuda.jit(device=True)(fn)


@cache
def _device() -> types.SimpleNamespace:
    """The element functions as device functions (compiled on first use)."""
    ndtr = device_function(ndtr_from_exp)
    return types.SimpleNamespace(
        ndtr_from_exp=ndtr,
        black_exponents=device_function(el.black_exponents),
        black_element=device_function(el.black_element, ndtr_from_exp=ndtr),
        ladder_shock=device_function(el.ladder_shock),
        ladder_exponents=device_function(el.ladder_exponents),
        ladder_price=device_function(el.ladder_price, ndtr_from_exp=ndtr),
    )


@cuda.jit(device=True)
def _at(a: Any, i: int) -> Any:  # pragma: no cover - device code
    """``a[i]``, or ``a[0]`` for a broadcast scalar (length 1)."""
    return a[min(i, a.shape[0] - 1)]


def _check_model(model: str) -> bool:
    if model not in el.MODELS:
        raise ValueError(f"no fused kernel for model {model!r}; expected one of {el.MODELS}")
    return model == "black76"


@cache
def black_kernel(model: str, names: tuple[str, ...]) -> Callable[..., Any]:
    """``kernel[grid, block, stream](S, K, T, vol, r, q, phi, out)`` writing output ``names[k]`` (a
    subset of :data:`cpu_fallback._black_element.NAMES`) to ``out[k]``; the others are not stored."""
    forward = _check_model(model)
    if not names or not set(names) <= set(el.NAMES) or len(set(names)) != len(names):
        raise ValueError(f"names must be distinct names from {el.NAMES}, got {names}")
    # the output row of each of the six results, -1: not stored (a compile-time constant)
    rows = tuple(names.index(n) if n in names else -1 for n in el.NAMES)
    dev = _device()
    exponents, element = dev.black_exponents, dev.black_element

    @cuda.jit
    def kernel(S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, out: Any) -> None:  # pragma: no cover - device code
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.shape[1], stride):
            s, k, t, v, rr, qq, p = _at(S, i), _at(K, i), _at(T, i), _at(vol, i), _at(r, i), _at(q, i), _at(phi, i)
            sqrtT, d1, w1, w2, wD, wDq = exponents(math.log(s / k), t, v, rr, qq, forward)
            res = element(s, k, t, v, rr, qq, p, forward, sqrtT, d1, math.exp(w1), math.exp(w2), math.exp(wD), math.exp(wDq))
            for m in range(6):
                if rows[m] >= 0:
                    out[rows[m], i] = res[m]

    return kernel


@cache
def ladder_kernel(model: str) -> Callable[..., Any]:
    """``kernel[grid, block, stream](S, K, T, vol, r, q, phi, w, ds, log1p_ds, dv, out)``:
    ``out[j] = w (V(S (1 + ds_j), max(vol + dv_j, 0)) - V(S, vol))`` for each scenario j (float64
    shock arrays, ``log1p_ds`` from ``math.log1p`` as the generic kernel)."""
    forward = _check_model(model)
    dev = _device()
    shock, exponents, price = dev.ladder_shock, dev.ladder_exponents, dev.ladder_price

    @cuda.jit
    def kernel(  # pragma: no cover - device code
        S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, w: Any, ds: Any, log1p_ds: Any, dv: Any, out: Any
    ) -> None:
        start, stride = cuda.grid(1), cuda.gridsize(1)
        for i in range(start, out.shape[1], stride):
            s, k, t, v, rr, qq, p, wi = _at(S, i), _at(K, i), _at(T, i), _at(vol, i), _at(r, i), _at(q, i), _at(phi, i), _at(w, i)
            # the shared terms, as the generic kernel and the CPU path compute them
            sqrtT = math.sqrt(t)
            disc = math.exp(-rr * t)
            s_disc = disc if forward else math.exp(-qq * t)
            b = 0.0 if forward else rr - qq
            k_disc = k * disc
            lnsk = math.log(s / k)
            w1, w2 = exponents(lnsk, v, b, t, sqrtT)
            base = price(s, lnsk, v, b, t, sqrtT, k_disc, s_disc, p, math.exp(w1), math.exp(w2))
            for j in range(ds.shape[0]):
                sj, lm, vj = shock(s, lnsk, v, ds[j], log1p_ds[j], dv[j])
                w1, w2 = exponents(lm, vj, b, t, sqrtT)
                out[j, i] = (price(sj, lm, vj, b, t, sqrtT, k_disc, s_disc, p, math.exp(w1), math.exp(w2)) - base) * wi

    return kernel


def launch_grid(n: int) -> int:
    """Blocks of :data:`BLOCK` threads for ``n`` elements (at least 1, at most :data:`MAX_BLOCKS`)."""
    return max(1, min(-(-n // BLOCK), MAX_BLOCKS))


def as_device(a: Any) -> Any:
    """A device array (CuPy's, by ``__cuda_array_interface__``) as Numba's view of it, no copy and no
    synchronisation (the kernel runs on the array's stream); anything else (NumPy arrays in the
    simulator) as it is."""
    if hasattr(a, "__cuda_array_interface__") and not SIMULATOR:
        return cuda.as_cuda_array(a, sync=False)
    return a


def stream(ptr: int) -> Any:
    """Numba's handle on the CUDA stream ``ptr`` (CuPy's current stream: same ordering as CuPy's
    own operations); 0: the default stream."""
    if SIMULATOR:
        return 0
    return cuda.external_stream(ptr) if ptr else cuda.default_stream()


def launch(kernel: Any, n: int, stream_ptr: int, args: Sequence[Any]) -> None:
    """Run ``kernel`` over ``n`` elements on stream ``stream_ptr`` (nothing for ``n == 0``)."""
    if n:
        kernel[launch_grid(n), BLOCK, stream(stream_ptr)](*(as_device(a) for a in args))
