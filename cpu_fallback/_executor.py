"""The CPU executor: evaluate an elementwise kernel over cache-sized chunks on a thread pool.

NumPy ufuncs and ``scipy.special`` ufuncs release the GIL inside their loops, so plain threads
run the chunks in parallel. Working on one chunk at a time keeps every temporary the kernel
makes inside the CPU caches, and the results are written into preallocated output arrays, so
peak memory is the outputs plus ``threads x chunk`` worth of temporaries, whatever the size of
the batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np

#: Elements per chunk. 8192 float64 = 64 KiB per temporary: the kernel's ~30 temporaries stay
#: near L2, and each stays below glibc's default 128 KiB mmap threshold, so temporaries come from
#: the heap instead of fresh zeroed pages. Measured: 16384-element chunks (128 KiB) ran 1.5-1.8x
#: slower than 8192 whenever the allocator had not yet raised its threshold.
DEFAULT_CHUNK = 8192


def default_threads() -> int:
    """Threads used by default: ``GPU_HEDGE_NUM_THREADS`` or the CPUs this process may use."""
    env = os.environ.get("GPU_HEDGE_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_chunk() -> int:
    """Chunk length used by default: ``GPU_HEDGE_CHUNK`` or :data:`DEFAULT_CHUNK`."""
    env = os.environ.get("GPU_HEDGE_CHUNK")
    return max(1, int(env)) if env else DEFAULT_CHUNK


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gpu_hedge-cpu")


def run_chunked(
    kernel: Callable[..., Mapping[str, np.ndarray]],
    arrays: Sequence[np.ndarray],
    names: Sequence[str],
    dtype: np.dtype,
    *,
    chunk: int | None = None,
    threads: int | None = None,
    into: bool = False,
) -> dict[str, np.ndarray]:
    """Evaluate ``kernel(*arrays)`` elementwise and return ``{name: array}`` of the broadcast shape.

    ``kernel`` must be elementwise: output element ``i`` depends only on input element ``i``.
    0-d inputs are passed to every chunk as they are (never materialised); inputs of the full
    broadcast shape are sliced without copying; only partially broadcast inputs are expanded.
    ``into=True``: ``kernel(*chunk_arrays, out={name: output slice})`` writes the chunk's results
    itself (no copy from temporaries).
    """
    chunk = chunk or default_chunk()
    threads = threads or default_threads()
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    size = int(np.prod(shape, dtype=np.int64))
    flat = []
    for a in arrays:
        a = np.asarray(a)
        if a.ndim == 0:
            flat.append(a)
        elif a.shape == shape:
            flat.append(np.ascontiguousarray(a).reshape(-1))
        else:
            flat.append(np.broadcast_to(a, shape).reshape(-1))
    outs = {name: np.empty(size, dtype=dtype) for name in names}

    def work(start: int) -> None:
        stop = min(start + chunk, size)
        args = [a if a.ndim == 0 else a[start:stop] for a in flat]
        if into:
            kernel(*args, out={name: outs[name][start:stop] for name in names})
            return
        res = kernel(*args)
        for name in names:
            outs[name][start:stop] = res[name]

    if threads > 1 and size > chunk:
        # equal chunks, their count a multiple of the threads: 1e5 rows in 65,536-row chunks would
        # give one thread 65,536 rows and the other 34,464, and the call would wait on the first
        n_chunks = -(-size // chunk)
        n_chunks = -(-n_chunks // threads) * threads
        even = -(-size // n_chunks)
        # whole cache lines per chunk (64 elements) where that stays within the asked-for chunk
        chunk = min(chunk, -(-even // 64) * 64) if chunk >= 4096 else even
    starts = range(0, size, chunk)
    if threads == 1 or size <= chunk:
        for s in starts:
            work(s)
    else:
        # list() propagates the first exception raised in a worker.
        list(_pool(threads).map(work, starts))
    return {name: out.reshape(shape) for name, out in outs.items()}
