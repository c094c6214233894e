"""The Backend protocol: the small surface every pricing kernel is written against."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


class BackendUnavailableError(RuntimeError):
    """A backend was asked for explicitly but cannot run here (the message says why and how to fix)."""


@runtime_checkable
class Backend(Protocol):
    """What a kernel may touch. Nothing else is backend-specific.

    - ``name``: "numpy", "cupy" or "jax"; ``device``: where arrays live, in words.
    - ``xp``: array-API namespace (NumPy itself, jax.numpy, array-api-compat's CuPy); ``special``: ``ndtr``, ``ndtri``,
      ``log_ndtr``, ``erfc``, ``erfcx`` for that namespace, and ``lazy_where(cond, if_true,
      if_false)`` (callables): NumPy computes only the branch a chunk needs when ``cond`` is
      uniform over it; JAX and CuPy compute both and select.
    - ``capabilities``: e.g. {"autodiff", "jit", "immutable"} (JAX; "immutable": no in-place writes),
      {"gpu"} (CuPy), {"chunked", "threads", "path_blocks", "native_hedge"} (NumPy). Optional methods
      go with a capability and are called only after asking for it: ``"path_blocks"``:
      ``map_path_blocks(fn, n_paths)`` runs ``fn(lo, hi, serial)`` over cache-sized blocks of paths on
      the backend's threads; ``"native_hedge"``: ``native_hedge(band, costs)``, a fused delta-hedging
      step or None (see ``cpu_fallback.NumpyBackend``).
    - ``asarray`` (host to device), ``to_numpy`` (the only way back), ``jit``, ``sync`` (for timing).
    - ``elementwise(kernel, arrays, names, dtype, key, native=None)``: run an elementwise kernel
      ``kernel(xp, special, *arrays) -> {name: array}`` over broadcast inputs the way this backend
      does it best: chunked on a thread pool (NumPy), jitted and cached by ``key`` (JAX), whole
      arrays (CuPy). This is the one entry point the pricing layer uses to run maths. ``native``
      names a well-known kernel (``"black:bsm"``: price and first-order Greeks, regular region;
      ``("ladder", model, pairs)``: the risk job's scenario ladder; ``("implied_vol", model, constants)``;
      simulation steps such as ``("heston_qe", constants)``; ``"call_sign"``; the list is in
      docs/ARCHITECTURE.md) that a backend may replace by its own fused implementation of the same
      formulas (NumPy: Numba passes; CuPy: Numba CUDA kernels, both compiled from the scalar element
      functions of ``cpu_fallback._black_element``); a backend without one runs ``kernel``.
    - ``normals(seed, step, count, n_paths, dtype, antithetic=False, first_path=0)``: the random-stream
      facade, standard normals of shape ``(count, n_paths)`` for time step ``step``, column ``j`` being
      path ``first_path + j`` (workers take disjoint path ranges of one run). Counter-based: NumPy
      and JAX cut paths into blocks of ``PATH_BLOCK`` (4096), each block has its own stream keyed by
      ``(seed, block)`` and addressed by ``step`` (NumPy: Philox key and counter; JAX: ``fold_in``),
      draws path-major; CuPy runs Philox4x32-10 keyed by the seed with (normal pair, step, path) in
      the counter, one kernel launch per step, no blocks. Either way a path's shocks
      depend only on (seed, path, step): not on the path count (prefixes agree), thread count or
      grouping of blocks. ``antithetic``: path ``2i + 1`` gets minus path ``2i``'s draws. Backends
      draw different bits; the simulation layer's reference mode draws on the host with NumPy's
      streams for identical shocks everywhere.
    - ``scan(body, carry, xs)``: ``carry = body(carry, x)`` for each ``x`` along the leading axis of
      ``xs`` (a tuple of arrays), returning the last carry: a compiled ``lax.scan`` on JAX (one
      program for the whole loop, differentiable), a Python loop elsewhere.
    - ``segment_sum(codes, values, n)``: per-code sums of ``values`` (codes 0 ... n-1) on the device.
    - ``min_max(x)``: ``(min, max)`` of a non-empty array as Python floats, NaN if it holds one (input
      validation; NumPy splits large arrays over its threads).
    - ``is_out_of_memory(exc)``: whether ``exc`` is this backend's allocation failure (so callers can
      shrink their work and retry without knowing the backend's exception types).
    """

    name: str
    device: str
    capabilities: frozenset[str]
    xp: Any
    special: Any

    def asarray(self, x: Any, dtype: Any = None) -> Any: ...

    def to_numpy(self, x: Any) -> Any: ...

    def jit(self, fn: Callable) -> Callable: ...

    def sync(self, x: Any) -> Any: ...

    def normals(
        self, seed: int, step: int, count: int, n_paths: int, dtype: Any = "float64", *, antithetic: bool = False, first_path: int = 0
    ) -> Any: ...

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
        native: Any = None,
    ) -> dict[str, Any]: ...

    def scan(self, body: Callable[[Any, Any], Any], carry: Any, xs: tuple) -> Any: ...

    def segment_sum(self, codes: Any, values: Any, n: int) -> Any: ...

    def min_max(self, x: Any) -> tuple[float, float]: ...

    def is_out_of_memory(self, exc: BaseException) -> bool: ...
