"""Numba's ``njit`` with its on-disk cache kept out of the installed package.

``numba.njit(cache=True)`` writes its compiled kernels (``*.nbi`` / ``*.nbc``) into the
``__pycache__`` folder beside the source file whenever that folder is writable, which for a
regular ``pip install`` is ``site-packages/cpu_fallback/__pycache__/``. pip's uninstall removes
only the files it installed, so after ``pip uninstall`` (or an editable install over a regular
one) that folder survives holding only Numba's files, and Python then imports ``cpu_fallback``
as a namespace package that hides the real one (``ImportError: cannot import name
'NumpyBackend' from 'cpu_fallback' (unknown location)``).

Here every kernel of this package is cached in one per-user directory instead, never beside the
sources:

1. ``GPU_HEDGE_CACHE_DIR``, when set: that directory (``0``, ``off``, ``none`` or an empty
   value: no on-disk cache, every process compiles its kernels again);
2. else ``NUMBA_CACHE_DIR``, when set (Numba's own setting, honoured as Numba would);
3. else the platform's per-user cache directory (``platformdirs.user_cache_dir("gpu_hedge")``:
   ``~/.cache/gpu_hedge`` on Linux, ``~/Library/Caches/gpu_hedge`` on macOS, ``%LOCALAPPDATA%``
   on Windows), under ``numba/``.

Inside it each source folder has its own subfolder (named after the folder and a hash of its
path, as Numba names them), and every entry is keyed by a hash of the content of every source file
of its package (a kernel inlines functions from other modules), so two installs never read each
other's kernels and an edit anywhere in ``cpu_fallback`` compiles the kernels again. A directory
that cannot be created or written means no on-disk cache (the kernels still compile and run).
Deleting the directory at any time is safe.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numba
from numba.core import caching

_OFF = {"", "0", "off", "none", "false", "no"}


def cache_dir() -> Path | None:
    """The directory the compiled kernels are cached in, or None where on-disk caching is off."""
    own = os.environ.get("GPU_HEDGE_CACHE_DIR")
    if own is not None:
        return None if own.strip().lower() in _OFF else Path(own).expanduser()
    numba_dir = os.environ.get("NUMBA_CACHE_DIR", "").strip()
    if numba_dir:
        return Path(numba_dir).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("gpu_hedge", appauthor=False)) / "numba"


@cache
def _package_stamp(folder: str) -> str:
    """SHA-256 of every ``.py`` file in ``folder`` (names and contents): a kernel's cache entry is stale
    once any source it may have inlined changes, not only its own file (the Black passes inline
    :mod:`cpu_fallback._black_element`, the IV loops :mod:`cpu_fallback._lbr` and :mod:`cpu_fallback._special`)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _Locator(caching._CacheLocator):
    """Numba cache locator for this package's kernels: :func:`cache_dir`, keyed by content."""

    def __init__(self, py_func: Any, py_file: str, root: Path) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(root / self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> Any:
        return _package_stamp(str(Path(self._py_file).parent))

    def get_disambiguator(self) -> str:
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> _Locator | None:
        root = cache_dir()
        if root is None or not os.path.exists(py_file):
            return None
        self = cls(py_func, py_file, root)
        try:
            self.ensure_cache_path()
        except OSError:  # not creatable or not writable: no on-disk cache
            return None
        return self


class _Impl(caching.CompileResultCacheImpl):
    _locator_classes = [_Locator]


class _FunctionCache(caching.FunctionCache):
    _impl_class = _Impl


def _attach_cache(dispatcher: Any) -> None:
    """Give ``dispatcher`` the on-disk cache of :func:`cache_dir` (what ``cache=True`` does, with
    our locator in place of Numba's, which would write beside the source)."""
    try:
        dispatcher._cache = _FunctionCache(dispatcher.py_func)
    except RuntimeError:  # "no locator available": caching off or the directory not writable
        pass


def njit(*, cache: bool = True, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(**options)`` whose on-disk cache (``cache=True``, the default) lives in
    :func:`cache_dir`, never inside the package."""

    def wrap(fn: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**options)(fn)
        if cache:
            _attach_cache(dispatcher)
        return dispatcher

    return wrap
