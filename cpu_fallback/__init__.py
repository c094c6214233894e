"""cpu_fallback: the NumPy + SciPy backend of gpu_hedge, usable on its own (no CuPy, no JAX)."""

from ._backend import NumpyBackend
from ._executor import DEFAULT_CHUNK, default_chunk, default_threads, run_chunked

__all__ = ["DEFAULT_CHUNK", "NumpyBackend", "default_chunk", "default_threads", "run_chunked"]
