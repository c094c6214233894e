"""The NumPy + SciPy backend. Imports neither CuPy nor JAX."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.special as sc

from ._executor import _pool, default_chunk, default_threads, run_chunked
from ._ndtr import ndtr
from .shared import PATH_BLOCK, loop_scan


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


def block_normals(seed: int, block: int, step: int, count: int, size: int, antithetic: bool = False) -> np.ndarray:
    """Standard normals ``(count, size)`` (float64) of path block ``block`` at time step ``step``.

    Philox4x64 keyed by ``(seed, block)`` with its counter started at ``(0, 0, step, 0)``: each
    (seed, block, step) is its own stream, reachable without drawing the steps before it. Draws are
    path-major (path ``i`` takes draws ``i * count ... i * count + count - 1``), so the first ``size``
    paths of a block are the same whatever ``size`` is. ``antithetic``: path ``2i + 1`` is minus path
    ``2i`` (``size`` even).
    """
    bits = np.random.Philox(key=np.array([seed, block], dtype=np.uint64), counter=np.array([0, 0, step, 0], dtype=np.uint64))
    gen = np.random.Generator(bits)
    if antithetic:
        half = gen.standard_normal((size // 2, count))
        return np.stack([half, -half], axis=1).reshape(size, count).T
    return gen.standard_normal((size, count)).T


def _alo_sums(drift: Any, sm: Any, cq: Any, cr: Any) -> Any:
    from ._alo import alo_sums

    return alo_sums(drift, sm, cq, cr)


def _tridiag_obstacle(sub: Any, dg: Any, sup: Any, rhs: Any, bc0: Any, bc1: Any, ex: Any) -> Any:
    from ._tridiag import tridiag_obstacle

    return tridiag_obstacle(sub, dg, sup, rhs, bc0, bc1, ex)


#: ``ndtr`` is the vectorised float64 kernel of :mod:`cpu_fallback._ndtr` (SciPy's for anything else);
#: ``alo_sums`` the fused inner step of the American fixed point (:mod:`cpu_fallback._alo`; None where it cannot run);
#: ``tridiag_obstacle`` the Crank-Nicolson grid's solve (:mod:`cpu_fallback._tridiag`; None where it cannot run)
SPECIAL = SimpleNamespace(
    ndtr=ndtr, ndtri=sc.ndtri, log_ndtr=sc.log_ndtr, erfc=sc.erfc, erfcx=sc.erfcx, lazy_where=lazy_where, alo_sums=_alo_sums,
    tridiag_obstacle=_tridiag_obstacle,
)


#: minimum chunk (elements) for native (compiled) kernels when the backend sets none
NATIVE_CHUNK = 65536


def native_kernel(native: Any, names: Sequence[str], dtype: Any) -> Callable[..., None] | None:
    """The NumPy backend's own implementation of a well-known kernel, or None (run the generic one).

    - ``"black:bsm"`` / ``"black:black76"``: the generalised Black formula's price and first-order
      Greeks in the regular region, float64, any subset of ``cpu_fallback._black.NAMES``.
    - ``("ladder", model, pairs)``: ``gpu_hedge._book.risk.ladder_kernel(model, pairs)``'s weighted
      scenario P&L ``s0 ... s<m-1>``, float64.
    - ``"call_sign"``: boolean call flags as ``phi`` = +1.0 / -1.0 (``gpu_hedge._pricing._inputs``),
      any float dtype, with or without Numba: two NumPy calls per chunk, in large chunks (in the
      generic kernel's 8,192-row chunks the thread pool's per-task cost made it slower on two
      threads than on one).
    - ``("heston_qe", constants)``: one Heston QE simulation step (``HestonQEStep.native``), state
      ``s0`` (spot), ``s1`` (variance), float64, or float32 worked in float64 (:mod:`cpu_fallback._steps`);
      ``("heston_euler", constants)`` and ``("merton", constants)`` (``s0``) likewise for those steps.
    - ``("implied_vol", model, constants)``, model bsm, black76 or bachelier:
      ``gpu_hedge._pricing.implied_vol``'s kernels (outputs ``vol``, ``status``) with the caller's
      constants, float64, one option at a time, each taking only its own branch (:mod:`cpu_fallback._iv`).

    The others are Numba passes around NumPy's ``log``/``exp`` (:mod:`cpu_fallback._black`): None
    without Numba or with ``GPU_HEDGE_NUMBA=0``.
    """
    if native == "call_sign":
        return _call_sign if tuple(names) == ("phi",) else None
    from ._ndtr import _loop

    dt, names = np.dtype(dtype), tuple(names)
    if not _loop() or dt not in (np.float64, np.float32):
        return None  # everything below is Numba
    kind = native[0] if isinstance(native, tuple) else native.partition(":")[0] if isinstance(native, str) else None
    if kind in ("heston_qe", "heston_euler", "merton") and len(native) == 2:
        from ._steps import STEPS

        make, want = STEPS[kind]
        return make(tuple(native[1])) if names == want else None
    if dt != np.float64:
        return None
    if kind == "implied_vol" and isinstance(native, tuple) and len(native) == 3:
        from ._iv import MODELS, implied_vol_kernel

        return implied_vol_kernel(native[1], native[2]) if native[1] in MODELS and names == ("vol", "status") else None
    from ._black import NAMES, black_greeks, black_ladder

    if kind == "ladder" and len(native) == 3 and native[1] in ("bsm", "black76"):
        pairs = tuple(native[2])
        return black_ladder(native[1] == "black76", pairs) if names == tuple(f"s{j}" for j in range(len(pairs))) else None
    if kind == "black" and native in ("black:bsm", "black:black76"):
        return black_greeks(native == "black:black76") if set(names) <= set(NAMES) else None
    return None


def _call_sign(call: np.ndarray, out: Mapping[str, np.ndarray]) -> None:
    phi = out["phi"]
    np.multiply(call, 2.0, out=phi)
    phi -= 1.0


class NumpyBackend:
    """CPU backend: NumPy arrays, SciPy special functions, chunked multi-threaded evaluation.

    ``chunk`` (elements per chunk) and ``threads`` default to the ``GPU_HEDGE_CHUNK`` and
    ``GPU_HEDGE_NUM_THREADS`` environment variables, else 8192 and the usable CPU count.

    Capabilities beyond the protocol (the domain asks ``"<name>" in bk.capabilities``; other backends
    lack them and run the generic code):

    - ``"path_blocks"``: :meth:`map_path_blocks`, a job cut into cache-sized blocks of paths run on
      the thread pool (the hedging engine's paths-outer driver).
    - ``"native_hedge"``: :meth:`native_hedge`, the fused delta-hedging step of one decision date
      (:mod:`cpu_fallback._hedge`, Numba), or None where it cannot run.
    """

    name = "numpy"
    device = "cpu"
    capabilities = frozenset({"chunked", "threads", "path_blocks", "native_hedge"})
    xp = np  # NumPy >= 2.1 implements the array API standard itself
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

    scan = staticmethod(loop_scan)

    @staticmethod
    def segment_sum(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
        """Per-code sums (``np.bincount`` with weights), float64."""
        return np.bincount(codes, weights=values, minlength=n)

    @staticmethod
    def is_out_of_memory(exc: BaseException) -> bool:
        return isinstance(exc, MemoryError)

    def min_max(self, x: np.ndarray) -> tuple[float, float]:
        """``(min, max)`` of a non-empty array, NaN if it holds one; large arrays in parts on the
        thread pool (input validation would otherwise be the serial part of a threaded job)."""
        threads = self.threads or default_threads()
        if x.size < (1 << 20) or threads == 1:
            return float(np.min(x)), float(np.max(x))
        flat = x.reshape(-1)
        step = -(-flat.size // threads)
        parts = list(_pool(threads).map(lambda a: (np.min(flat[a : a + step]), np.max(flat[a : a + step])), range(0, flat.size, step)))
        return float(np.min([p[0] for p in parts])), float(np.max([p[1] for p in parts]))  # NaN propagates

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
        native: Any = None,
    ) -> dict[str, np.ndarray]:
        """Run an elementwise ``kernel(xp, special, *arrays) -> {name: array}`` over broadcast inputs.

        ``key`` identifies the kernel for caching on compiling backends; unused here. ``native``
        names a kernel this backend may run natively instead (see :func:`native_kernel`).
        """
        fused = native_kernel(native, names, dtype) if native else None
        if fused is not None:
            # a compiled kernel makes a few calls per chunk, not ~60: bigger chunks keep the GIL-held
            # share small enough for the threads to scale (measured 1.07x -> 1.84x on 2 threads)
            chunk = self.chunk or getattr(fused, "chunk", max(default_chunk(), NATIVE_CHUNK))
            return run_chunked(fused, arrays, names, np.dtype(dtype), chunk=chunk, threads=self.threads, into=True)
        return run_chunked(
            lambda *a: kernel(self.xp, self.special, *a),
            arrays,
            names,
            np.dtype(dtype),
            chunk=self.chunk,
            threads=self.threads,
        )

    def normals(
        self, seed: int, step: int, count: int, n_paths: int, dtype: Any = "float64", *, antithetic: bool = False, first_path: int = 0
    ) -> np.ndarray:
        """Standard normals ``(count, n_paths)`` for time step ``step`` and paths ``first_path ...
        first_path + n_paths - 1``: the random-stream facade.

        Paths are cut into blocks of :data:`PATH_BLOCK`, each drawn from its own counter-based
        stream (:func:`block_normals`), on the thread pool; the result does not depend on the
        thread count, column ``j`` is path ``first_path + j`` of the seed's one infinite set of paths
        (so a worker given a range of paths draws exactly that slice of a single big run).
        """
        out = np.empty((count, n_paths), dtype=dtype)
        end = first_path + n_paths

        def fill(block: int) -> None:
            lo = max(block * PATH_BLOCK, first_path)
            hi = min((block + 1) * PATH_BLOCK, end)
            z = block_normals(seed, block, step, count, hi - block * PATH_BLOCK, antithetic)
            out[:, lo - first_path : hi - first_path] = z[:, lo - block * PATH_BLOCK :]

        blocks = range(first_path // PATH_BLOCK, -(-end // PATH_BLOCK))
        threads = self.threads or default_threads()
        if threads == 1 or len(blocks) == 1:
            for b in blocks:
                fill(b)
        else:
            # one task per thread, each a run of consecutive blocks: a task per 4,096-path block left
            # the threads queueing for the GIL between their short draws (two threads drew no faster
            # than one)
            per = -(-len(blocks) // threads)
            runs = [blocks[i : i + per] for i in range(0, len(blocks), per)]
            list(_pool(threads).map(lambda run: [fill(b) for b in run], runs))
        return out

    def map_path_blocks(self, fn: Callable[[int, int, NumpyBackend], Any], n_paths: int, chunks: int = 3) -> list[Any]:
        """``[fn(lo, hi, serial) for each block]``: paths ``0 ... n_paths - 1`` cut into consecutive
        blocks ``lo ... hi - 1`` of about ``chunks`` elementwise chunks each (small enough to stay in
        cache), run on the thread pool; ``serial`` is a one-thread copy of this backend for the work
        inside a block (the blocks are the parallelism). Blocks are equal, as many as needed rounded up
        to a multiple of the threads (1e5 paths, 2 threads: 6 x 16,667 rather than 4 x 24,576 + 1,696,
        which left one thread a block behind). Results in block order."""
        # a hedging date touches ~10 arrays of the block; 3 elementwise chunks (24,576 paths, 192 KiB
        # per array) measured fastest: fewer Python calls per path than one chunk, still within L2/L3
        block = max(1, chunks * (self.chunk or default_chunk()))
        threads = self.threads or default_threads()
        n_blocks = -(-n_paths // block)
        n_blocks = -(-n_blocks // threads) * threads if n_blocks > 1 else 1
        block = -(-n_paths // n_blocks)
        serial = NumpyBackend(chunk=self.chunk, threads=1)

        def one(lo: int) -> Any:
            return fn(lo, min(lo + block, n_paths), serial)

        starts = range(0, n_paths, block)
        if threads == 1 or len(starts) == 1:
            return [one(lo) for lo in starts]
        return list(_pool(threads).map(one, starts))

    @staticmethod
    def native_hedge(band: tuple[float, bool, bool] | None, costs: Any) -> Callable[..., tuple[np.ndarray, ...]] | None:
        """The fused step of one delta-hedging date (:func:`cpu_fallback._hedge.make_step`), or None
        without Numba (or with ``GPU_HEDGE_NUMBA=0``): ``step(spot, legs, holding, cash, costs,
        n_trades, turnover) -> (holding, cash, costs, n_trades, turnover)`` (new float64 arrays of the
        block's paths) trading the shares towards minus the book's Black-Scholes-Merton delta, inside
        ``band = (width, relative, to_edge)`` holding; ``legs`` one ``(strike, c, v, phi, scale,
        units)`` per live option (:func:`cpu_fallback._hedge.book_delta`), ``costs`` a
        ``gpu_hedge.Costs``."""
        from ._ndtr import _loop

        if not _loop():
            return None
        from . import _hedge

        return _hedge.make_step(band, costs)

    def __repr__(self) -> str:
        return f"NumpyBackend(chunk={self.chunk}, threads={self.threads})"
