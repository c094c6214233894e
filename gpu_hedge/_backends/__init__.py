"""Backend selection: the ONLY place that imports CuPy or JAX, and only when asked.

``get_backend("auto")`` picks CuPy when a CUDA device is usable, else JAX when JAX sees a GPU,
else NumPy. ``GPU_HEDGE_BACKEND`` (numpy | cupy | jax | auto) overrides "auto" and counts as an
explicit request. Probes are lazy, cached, and never raise.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from typing import Any

import numpy as np

from cpu_fallback.shared import PATH_BLOCK

from ._base import Backend, BackendUnavailableError

__all__ = [
    "PATH_BLOCK",
    "Backend",
    "BackendUnavailableError",
    "array_backend",
    "available_backends",
    "backend_with",
    "bucket",
    "device_array_kind",
    "device_size",
    "get_backend",
    "host_backend",
    "kernel_cache_dir",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "jax")
ENV_VAR = "GPU_HEDGE_BACKEND"

_INSTALL_HINT = {
    "cupy": "install CuPy for your CUDA version: pip install 'gpu_hedge[cuda12]' or 'gpu_hedge[cuda13]', "
    "and run on a machine with an NVIDIA GPU and driver",
    "jax": "install JAX: pip install 'gpu_hedge[jax]'",
    "numpy": "reinstall gpu_hedge (numpy and scipy are core dependencies)",
}


@cache
def _cupy_status() -> tuple[bool, str]:
    """(usable, reason). Imports CuPy only if it is installed; touches the GPU once."""
    if importlib.util.find_spec("cupy") is None:
        return False, "CuPy is not installed"
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return False, "CuPy found no CUDA device"
        cupy.asarray([1.0]).sum().item()  # a real allocation and kernel launch
        return True, f"{n} CUDA device(s)"
    except Exception as exc:  # driver missing, CUDA mismatch, ... : never crash the probe
        return False, f"CuPy cannot use a CUDA device: {type(exc).__name__}: {exc}"


@cache
def _jax_status() -> tuple[bool, str]:
    if importlib.util.find_spec("jax") is None:
        return False, "JAX is not installed"
    try:
        from . import _jax  # noqa: F401
    except Exception as exc:
        return False, f"JAX failed to import: {type(exc).__name__}: {exc}"
    return True, "JAX importable"


def _jax_plugin_installed() -> bool:
    """Whether a JAX GPU plugin is installed, checked without importing JAX."""
    return any(
        importlib.util.find_spec(m) is not None
        for m in ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin", "jax_rocm7_plugin")
    )


@cache
def _jax_gpu_status() -> bool:
    if not _jax_plugin_installed() or not _jax_status()[0]:
        return False
    from ._jax import gpu_devices

    return bool(gpu_devices())


def _status(name: str) -> tuple[bool, str]:
    if name == "numpy":
        return True, "always available"
    if name == "cupy":
        return _cupy_status()
    return _jax_status()


def available_backends() -> tuple[str, ...]:
    """Names of the backends usable on this machine, NumPy first."""
    return tuple(n for n in BACKEND_NAMES if _status(n)[0])


@cache
def _make(name: str) -> Any:
    if name == "numpy":
        from cpu_fallback import NumpyBackend

        return NumpyBackend()
    if name == "cupy":
        from ._cupy import CupyBackend

        return CupyBackend()
    from ._jax import JaxBackend

    return JaxBackend()


def _auto() -> str:
    if _cupy_status()[0]:
        return "cupy"
    if _jax_gpu_status():
        return "jax"
    return "numpy"


def get_backend(name: str | Backend | None = "auto") -> Backend:
    """Return the backend called ``name`` ("auto", "numpy", "cupy", "jax"), or ``name`` itself if it is one.

    "auto" (or None) consults ``GPU_HEDGE_BACKEND`` first, then picks CuPy with a usable CUDA
    device, else JAX with a GPU, else NumPy, silently. An explicit name that cannot run raises
    :class:`BackendUnavailableError` with the reason and the install hint.
    """
    if name is not None and not isinstance(name, str):
        if isinstance(name, Backend):
            return name
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    requested = (name or "auto").strip().lower()
    if requested == "auto":
        env = os.environ.get(ENV_VAR, "").strip().lower()
        if env and env != "auto":
            if env not in BACKEND_NAMES:
                raise ValueError(f"{ENV_VAR}={env!r} is not a backend; expected one of auto, {', '.join(BACKEND_NAMES)}")
            requested = env
        else:
            return _make(_auto())
    if requested not in BACKEND_NAMES:
        raise ValueError(f"unknown backend {name!r}; expected one of auto, {', '.join(BACKEND_NAMES)}")
    ok, reason = _status(requested)
    if not ok:
        raise BackendUnavailableError(f"backend {requested!r} cannot run here: {reason}; {_INSTALL_HINT[requested]}")
    return _make(requested)


def host_backend() -> Backend:
    """The backend whose arrays are host NumPy arrays (the CPU backend), for work that is host-side by
    nature: reference draws, one path's ledger, the semi-analytic pricers. Domain code asks for this
    instead of naming a backend."""
    return _make("numpy")


def backend_with(capability: str) -> Backend:
    """The backend "auto" picks if it has ``capability`` (e.g. ``"autodiff"``), else the first usable one
    that has it; :class:`BackendUnavailableError` naming the capability when none does."""
    first = get_backend("auto")
    if capability in first.capabilities:
        return first
    for name in available_backends():
        bk = get_backend(name)
        if capability in bk.capabilities:
            return bk
    hint = "; install JAX: pip install 'gpu_hedge[jax]'" if capability == "autodiff" else ""
    raise BackendUnavailableError(f"no usable backend here has the capability {capability!r}{hint}")


def kernel_cache_dir() -> Any:
    """Where the CPU backend caches its compiled kernels (a ``Path``), or None when caching is off."""
    from cpu_fallback._jit import cache_dir

    return cache_dir()


_HOST_TYPES = (int, float, bool, complex, str, bytes, list, tuple, np.ndarray, np.generic)


def array_backend(x: Any) -> str | None:
    """"numpy", "cupy" or "jax" for an array of that library, None for anything else (scalars, lists).

    Host objects are recognised without importing anything; array-api-compat (which never imports
    CuPy or JAX itself) is consulted only for other objects.
    """
    if isinstance(x, np.ndarray):
        return "numpy"
    if isinstance(x, _HOST_TYPES) or x is None:
        return None
    from array_api_compat import is_cupy_array, is_jax_array

    if is_cupy_array(x):
        return "cupy"
    if is_jax_array(x):
        return "jax"
    return None


def device_array_kind(x: Any) -> str | None:
    """The backend name of ``x`` when it is a device array (CuPy, JAX: its backend's own, converted only
    through the host), None for host data (NumPy arrays, scalars, lists). Domain code uses this to
    tell the two apart, and compares the result with ``bk.name``, never with a literal name."""
    kind = array_backend(x)
    return None if kind in (None, "numpy") else kind


def to_numpy(x: Any) -> Any:
    """Any backend's array (or a mapping of them) as NumPy, copying from the device when needed."""
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if array_backend(x) == "cupy":
        return x.get()  # CuPy refuses implicit conversion
    return np.asarray(x)


def bucket(n: int, minimum: int = 1024) -> int:
    """The next power of two >= n (at least ``minimum``): few distinct shapes for compiling backends."""
    return max(minimum, 1 << (int(n) - 1).bit_length())


def device_size(bk: Backend, n: int, minimum: int = 1024) -> int:
    """How many rows to send ``bk`` for ``n`` rows: :func:`bucket` on a compiling backend (capability
    ``"jit"``: one compilation per shape), else ``n``."""
    return bucket(n, minimum) if "jit" in bk.capabilities else n
