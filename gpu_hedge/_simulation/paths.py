"""Path simulation: one step function per model, streamed step by step or collected into arrays."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

import numpy as np

from .._backends import Backend, get_backend
from .._types import Array
from . import random
from .gbm import GBMStep
from .heston import HestonEulerStep, HestonQEStep
from .merton import MertonStep
from .models import GBM, Heston, Merton

__all__ = ["PathStep", "Paths", "iter_paths", "simulate"]

#: Discretisation schemes by model type; the first is the default.
SCHEMES: dict[type, dict[str, type]] = {
    GBM: {"exact": GBMStep},
    Heston: {"qe": HestonQEStep, "euler": HestonEulerStep},
    Merton: {"exact": MertonStep},
}


class Stepper(Protocol):
    """A model's step of fixed length: pure functions of arrays, written against ``xp`` only."""

    n_normals: int

    def init(self, xp: Any, n_paths: int, dtype: Any) -> tuple[Array, ...]: ...

    def advance(self, xp: Any, special: Any, state: tuple[Array, ...], z: Array) -> tuple[Array, ...]: ...

    def observe(self, xp: Any, state: tuple[Array, ...]) -> tuple[Array, Array | None]: ...


class PathStep(NamedTuple):
    """The paths at one time: ``index`` (0 ... n_steps), ``time`` (years), ``spot`` ``(n_paths,)``
    and ``variance`` ``(n_paths,)`` (Heston) or None, arrays on the backend."""

    index: int
    time: float
    spot: Array
    variance: Array | None


@dataclass(frozen=True)
class Paths:
    """Simulated paths, arrays on the backend.

    Shape:
        ``times`` ``(n_steps + 1,)`` in years, from 0 to the horizon;
        ``spot`` ``(n_steps + 1, n_paths)``, row 0 the model's spot;
        ``variance`` ``(n_steps + 1, n_paths)`` (Heston: the instantaneous variance) or None.
    """

    times: Array
    spot: Array
    variance: Array | None

    @property
    def n_paths(self) -> int:
        return int(self.spot.shape[1])

    @property
    def n_steps(self) -> int:
        return int(self.spot.shape[0]) - 1


def _count(name: str, value: Any, minimum: int = 1) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} = {value!r} must be an integer >= {minimum}") from None
    if n < minimum:
        raise ValueError(f"{name} = {value!r} must be an integer >= {minimum}")
    return n


def _stepper(model: Any, scheme: str | None, dt: float) -> Stepper:
    schemes = SCHEMES.get(type(model))
    if schemes is None:
        raise ValueError(f"model must be one of {', '.join(t.__name__ for t in SCHEMES)}, got {type(model).__name__}")
    name = next(iter(schemes)) if scheme is None else scheme
    if name not in schemes:
        raise ValueError(f"scheme = {scheme!r} is not available for {type(model).__name__}; expected one of {', '.join(schemes)}")
    return schemes[name](model, dt)


def check_run(
    model: Any, n_paths: Any, n_steps: Any, horizon: Any, seed: Any, antithetic: bool, first_path: Any, dtype: Any, scheme: str | None
) -> tuple[int, int, float, int, int, Stepper]:
    """The checked arguments of a simulation run, ``(n_paths, n_steps, horizon, seed, first_path,
    stepper)``; a ValueError names the first bad one."""
    n_paths = _count("n_paths", n_paths)
    n_steps = _count("n_steps", n_steps)
    if isinstance(horizon, bool | np.bool_) or not isinstance(horizon, numbers.Real):
        raise ValueError(f"horizon must be a number of years; got {type(horizon).__name__} {horizon!r:.60}")
    horizon = float(horizon)
    if not (math.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon = {horizon!r} must be a finite number of years > 0")
    seed = random.check_seed(seed)
    first_path = _count("first_path", first_path, minimum=0)
    if antithetic and (n_paths % 2 or first_path % 2):
        raise ValueError(f"antithetic paths come in pairs: n_paths = {n_paths} and first_path = {first_path} must be even")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    return n_paths, n_steps, horizon, seed, first_path, _stepper(model, scheme, horizon / n_steps)


@lru_cache(maxsize=64)
def _compiled_step(backend: Backend, stepper: Stepper) -> Any:
    """``(state, z) -> (state, spot, variance)``, jitted where the backend compiles (fixed shapes)."""

    native = getattr(stepper, "native", None)
    if native is not None and "chunked" in backend.capabilities:
        # a step the backend may run natively (NumPy: the Heston QE step in Numba), through
        # elementwise; the generic step, chunked, where it has none (float32, no Numba)
        names = tuple(f"s{j}" for j in range(len(stepper.init(backend.xp, 1, "float64"))))

        def kernel(xp: Any, sp: Any, *arrays: Array) -> dict[str, Array]:
            n = len(names)
            z = xp.stack(xp.broadcast_arrays(*arrays[n:]))  # one array of shocks, as the steps expect
            return dict(zip(names, stepper.advance(xp, sp, arrays[:n], z), strict=True))

        def chunked(state: tuple[Array, ...], z: Array) -> tuple[tuple[Array, ...], Array, Array | None]:
            out = backend.elementwise(kernel, (*state, *z), names, z.dtype, native=native)
            state = tuple(out[n] for n in names)
            return (state, *stepper.observe(backend.xp, state))

        return chunked

    def step(state: tuple[Array, ...], z: Array) -> tuple[tuple[Array, ...], Array, Array | None]:
        state = stepper.advance(backend.xp, backend.special, state, z)
        return (state, *stepper.observe(backend.xp, state))

    return backend.jit(step)


def iter_paths(
    model: GBM | Heston | Merton,
    *,
    n_paths: int,
    n_steps: int,
    horizon: float,
    seed: int,
    backend: Any = "auto",
    dtype: str = "float64",
    antithetic: bool = False,
    reference: bool = False,
    scheme: str | None = None,
    first_path: int = 0,
) -> Iterator[PathStep]:
    """Simulate ``n_paths`` paths of ``model`` over ``n_steps`` equal steps to ``horizon`` (years),
    yielding a :class:`PathStep` per time (``n_steps + 1`` of them, time 0 first); memory is
    O(``n_paths``) whatever ``n_steps`` is.

    Steps: GBM exact log-normal (drift ``model.mu``); Heston ``scheme="qe"`` (Andersen 2008 with
    martingale correction, the default) or ``"euler"`` (full truncation); Merton exact (GBM part,
    Poisson jump count, log-normal jump sizes, compensated drift). Shocks are counter-based
    (see :mod:`gpu_hedge._simulation.random`): the same ``seed`` gives the same paths whatever the
    thread count, and the first ``m`` paths of a run equal an ``m``-path run. ``first_path``: this run
    is paths ``first_path ... first_path + n_paths - 1`` of the seed's paths, so workers given
    disjoint ranges together reproduce one big run exactly. ``antithetic`` pairs path ``2i + 1`` with
    minus the shocks of path ``2i`` (``n_paths`` and ``first_path`` even). ``reference`` draws the
    shocks on the host with NumPy, so every backend gives the same paths to rounding.

    >>> from gpu_hedge import GBM, iter_paths
    >>> steps = list(iter_paths(GBM(100.0, 0.2), n_paths=4, n_steps=2, horizon=1.0, seed=1, backend="numpy"))
    >>> [s.time for s in steps], steps[0].spot.tolist()
    ([0.0, 0.5, 1.0], [100.0, 100.0, 100.0, 100.0])
    """
    n_paths, n_steps, horizon, seed, first_path, stepper = check_run(
        model, n_paths, n_steps, horizon, seed, antithetic, first_path, dtype, scheme
    )
    bk = get_backend(backend)
    return _iterate(bk, stepper, n_paths, n_steps, horizon, seed, getattr(bk.xp, dtype), antithetic, reference, first_path)


def _iterate(
    bk: Backend,
    stepper: Stepper,
    n_paths: int,
    n_steps: int,
    horizon: float,
    seed: int,
    dtype: Any,
    antithetic: bool,
    reference: bool,
    first_path: int = 0,
) -> Iterator[PathStep]:
    times = np.linspace(0.0, horizon, n_steps + 1)
    step = _compiled_step(bk, stepper)
    state = stepper.init(bk.xp, n_paths, dtype)
    yield PathStep(0, 0.0, *stepper.observe(bk.xp, state))
    for k in range(n_steps):
        z = random.normals(
            bk, seed, k, stepper.n_normals, n_paths, dtype, antithetic=antithetic, reference=reference, first_path=first_path
        )
        state, spot, variance = step(state, z)
        yield PathStep(k + 1, float(times[k + 1]), spot, variance)


class _Rows:
    """Rows gathered into one ``shape`` array: written in place where arrays are mutable (NumPy,
    CuPy), else kept and stacked once at the end (JAX)."""

    def __init__(self, bk: Any, shape: tuple[int, int], dtype: Any) -> None:
        self.xp = bk.xp
        immutable = "immutable" in bk.capabilities
        self.out = None if immutable else bk.xp.empty(shape, dtype=dtype)
        self.rows: list[Array] | None = [] if immutable else None

    def put(self, k: int, row: Array) -> None:
        if self.rows is None:
            self.out[k] = row
        else:
            self.rows.append(row)

    def array(self) -> Array:
        return self.out if self.rows is None else self.xp.stack(self.rows)


def simulate(
    model: GBM | Heston | Merton,
    *,
    n_paths: int,
    n_steps: int,
    horizon: float,
    seed: int,
    backend: Any = "auto",
    dtype: str = "float64",
    antithetic: bool = False,
    reference: bool = False,
    scheme: str | None = None,
    first_path: int = 0,
) -> Paths:
    """All of :func:`iter_paths` (same arguments, same values) as one :class:`Paths`.

    Memory: ``(n_steps + 1) x n_paths`` per output array; stream with :func:`iter_paths` instead
    when only a running quantity is needed.

    >>> from gpu_hedge import Heston, simulate
    >>> p = simulate(Heston(100.0, 0.04, 1.5, 0.04, 0.5, -0.7), n_paths=8, n_steps=3, horizon=1.0,
    ...              seed=7, backend="numpy")
    >>> p.spot.shape, p.variance.shape, p.times.tolist()[-1]
    ((4, 8), (4, 8), 1.0)
    """
    steps = iter_paths(
        model, n_paths=n_paths, n_steps=n_steps, horizon=horizon, seed=seed, backend=backend,
        dtype=dtype, antithetic=antithetic, reference=reference, scheme=scheme, first_path=first_path,
    )  # fmt: skip
    bk = get_backend(backend)
    dt = getattr(bk.xp, dtype)
    shape = (operator.index(n_steps) + 1, operator.index(n_paths))
    spot, variance, times = _Rows(bk, shape, dt), None, []
    for s in steps:
        times.append(s.time)
        spot.put(s.index, s.spot)
        if s.variance is not None:
            variance = variance or _Rows(bk, shape, dt)
            variance.put(s.index, s.variance)
    return Paths(bk.asarray(np.array(times), dtype=dt), spot.array(), None if variance is None else variance.array())
