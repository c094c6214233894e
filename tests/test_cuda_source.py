"""The CuPy backend's kernels, verified on the CPU.

- The fused Black price + 5 Greeks and the scenario ladder (``gpu_hedge._backends._cuda_black``:
  Numba CUDA kernels compiled from the scalar element functions of ``cpu_fallback._black_element``)
  run in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, in a subprocess: the simulator is chosen
  when ``numba.cuda`` is first imported) on a few hundred random regular rows, bsm and black76,
  float64, and are compared here with the generic kernel every backend runs
  (``black_kernel(regular_only=True)`` on NumPy): every output within :data:`RTOL64` (1e-13) of the
  size of the terms it is computed from (:func:`_black_scales`: what any implementation can promise
  where the formula cancels or sits in a normal tail), and delta, gamma, vega, bsm rho within 1e-13
  relative (floor 1e-12 x the largest value); the ladder against ``gpu_hedge._book.risk.ladder_kernel``
  (each P&L within 1e-13 of its legs). The CuPy glue (``gpu_hedge._backends._cupy``) runs there too,
  against a stand-in ``cupy`` on NumPy arrays: subsets, broadcasting, float32 in and out, many scenarios.
- The Philox normals' CUDA C++ (``gpu_hedge._backends._cuda_src``) is built with the system C++
  compiler behind a shim that defines what CUDA provides (``__device__``, the ``f``-suffixed float
  functions, ``sincospi``) and checked against Random123's known-answer vectors, the documented bit
  layout of the normals (an independent NumPy implementation), and the stream's properties: moments
  and independence on ~1e6 draws, prefixes, ``first_path`` offsets, antithetic pairs; the glue's
  normals through a stand-in ``RawKernel`` running the real ``__global__`` code over the launch grid;
  ``nvcc`` compiles it (no device needed) and the float32 kernel's PTX holds no double-precision
  instruction.

Tests marked ``gpu`` run the real CuPy backend against the same references (skipped without a device).
Run as a script (``python tests/test_cuda_source.py --simulate OUT.npz``, with the simulator on) this
module writes the simulator's results.
"""

from __future__ import annotations

import ctypes
import importlib
import math
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import ndtr

import gpu_hedge as gh
from cpu_fallback._backend import SPECIAL
from gpu_hedge._backends import _cuda_src as src
from gpu_hedge._book.risk import Scenarios, ladder_kernel
from gpu_hedge._pricing.black_scholes import black_kernel

try:
    from cpu_fallback._black_element import MODELS, NAMES
except ImportError:  # no Numba: the simulator tests skip (their fixture needs it)
    NAMES, MODELS = ("price", "delta", "gamma", "vega", "theta", "rho"), ("bsm", "black76")

#: float64: |got - ref| <= RTOL64 x the output's condition scale (:func:`_black_scales`) for every output,
#: and <= RTOL64 x max(|ref|, 1e-12 max |ref|) for those that do not cancel (the generic kernel's
#: formulas; only the normal CDF (ndtr_from_exp against SciPy's ndtr) and the libm differ, by an ulp or so)
RTOL64 = 1e-13
NO_CANCELLATION = ("delta", "gamma", "vega")
#: float32: relative to max(|ref|, FLOOR32 x max |ref|), within RTOL32 or 1.25 x the generic kernel's own
#: float32 error (float32 rounding of d1 alone, eps32 / (vol sqrt T), exceeds 1e-5 on short, low-vol options)
RTOL32 = 1e-5
FLOOR32 = 1e-3

SUBSETS = [NAMES, ("delta",), ("price", "vega"), ("rho", "theta", "gamma")]
LADDER_PAIRS = {
    "default": tuple(Scenarios.default().pairs()),
    # unshocked vol, vols floored at 0 (discounted intrinsic value), numbered from s3
    "edge": ((0.0, 0.0), (-0.3, -5.0), (0.25, 0.0), (-0.05, 0.07), (0.1, -0.2)),
}


# --- building the source on the CPU ------------------------------------------------------------------------

SHIM = r"""
// What CUDA provides, for a C++ compiler on the host.
#include <math.h>
#include <cmath>
#define __device__
#define __global__
#define __forceinline__ inline
static inline void sincospi(double x, double* s, double* c) { *s = sin(M_PI * x); *c = cos(M_PI * x); }
static inline void sincospif(float x, float* s, float* c) { *s = sinf((float)M_PI * x); *c = cosf((float)M_PI * x); }
"""


def _compiler() -> list[str] | None:
    if shutil.which("g++"):
        return ["g++"]
    if shutil.which("gcc"):
        return ["gcc", "-x", "c++"]
    return None


CXX = _compiler()
needs_cxx = pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++ or gcc) on this machine")


def _build(directory: Path, name: str, code: str) -> ctypes.CDLL:
    """Compile ``code`` into a shared library (strict IEEE: no fast-math, no FMA contraction) and load it."""
    assert CXX is not None
    cpp, lib = directory / f"{name}.cpp", directory / f"{name}.so"
    cpp.write_text(code)
    cmd = [*CXX, "-std=c++14", "-O2", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Werror", "-Wno-unused-variable",
           "-shared", "-fPIC", str(cpp), "-o", str(lib), "-lm"]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"the CUDA source does not compile as C++:\n{res.stderr}"
    return ctypes.CDLL(str(lib))


NORMALS_LOOP = r"""
// The normals kernels' grid, as a loop: every (pair m, column j) once.
template <typename X>
static void gh_normals_cpu(X* out, unsigned long long seed, long long first_path, long long n_paths, long long count,
                           unsigned int step, int antithetic) {
  for (long long m = 0; m < (count + 1) / 2; ++m)
    for (long long j = 0; j < n_paths; ++j) gh_normals_item<X>(out, seed, first_path, n_paths, count, step, antithetic, m, j);
}
extern "C" void normals_f64(double* out, unsigned long long seed, long long first_path, long long n_paths, long long count,
                            unsigned int step, int antithetic) {
  gh_normals_cpu<double>(out, seed, first_path, n_paths, count, step, antithetic);
}
extern "C" void normals_f32(float* out, unsigned long long seed, long long first_path, long long n_paths, long long count,
                            unsigned int step, int antithetic) {
  gh_normals_cpu<float>(out, seed, first_path, n_paths, count, step, antithetic);
}
extern "C" void philox(const unsigned int* ctr, const unsigned int* key, unsigned int* out) {
  unsigned int c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
  gh_philox4x32_10(c, key[0], key[1]);
  for (int k = 0; k < 4; ++k) out[k] = c[k];
}
"""


class Normals:
    """The normals kernel's per-thread code (``MATH_SRC + PHILOX_SRC``, what NORMALS_SRC wraps in ``__global__``s) on the CPU."""

    def __init__(self, directory: Path) -> None:
        self.lib = _build(directory, "normals", SHIM + src.MATH_SRC + src.PHILOX_SRC + NORMALS_LOOP)
        u64, i64, u32, i32 = ctypes.c_ulonglong, ctypes.c_longlong, ctypes.c_uint, ctypes.c_int
        for fn in (self.lib.normals_f64, self.lib.normals_f32):
            fn.argtypes = [ctypes.c_void_p, u64, i64, i64, i64, u32, i32]

    def __call__(
        self, seed: int, step: int, count: int, n_paths: int, dtype: str = "float64", *, antithetic: bool = False, first_path: int = 0
    ) -> np.ndarray:
        """What ``CupyBackend.normals`` returns (same argument checks, same kernel code)."""
        _, (seed, first_path, n_paths, count, step) = src.normals_launch(seed, step, count, n_paths, first_path)
        out = np.full((count, n_paths), np.nan, dtype=dtype)
        fn = self.lib.normals_f64 if out.dtype == np.float64 else self.lib.normals_f32
        fn(out.ctypes.data, seed, first_path, n_paths, count, step, int(antithetic))
        return out

    def philox(self, ctr: tuple[int, ...], key: tuple[int, ...]) -> tuple[int, ...]:
        c, k, o = (ctypes.c_uint * 4)(*ctr), (ctypes.c_uint * 2)(*key), (ctypes.c_uint * 4)()
        self.lib.philox(c, k, o)
        return tuple(o)


@pytest.fixture(scope="module")
def normals(tmp_path_factory: pytest.TempPathFactory) -> Normals:
    return Normals(tmp_path_factory.mktemp("cuda_src"))


# --- references -------------------------------------------------------------------------------------------


def _book(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """tests/test_fused_black.py's realistic random positions, the call flag as phi: S, K, T, vol, r, q, phi."""
    from test_fused_black import _book as book

    *args, call = book(n, seed)
    return (*args, np.where(call, 1.0, -1.0))


def _rel(got: np.ndarray, ref: np.ndarray, floor: float = 1e-12) -> float:
    """max |got - ref| / max(|ref|, floor x max |ref|)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape and np.isfinite(got).all() and np.isfinite(ref).all()
    scale = np.maximum(np.abs(ref), floor * np.abs(ref).max() + 1e-300)
    return float(np.max(np.abs(got - ref) / scale))


def _generic_black(model: str, names: tuple[str, ...], *args: np.ndarray) -> dict[str, np.ndarray]:
    return black_kernel(model, names, regular_only=True)(np, SPECIAL, *(np.asarray(a, dtype=np.float64) for a in args))


def _black_scales(model: str, S, K, T, vol, r, q, phi) -> dict[str, np.ndarray]:
    """Per output, the size of the terms it is computed from, times (1 + d1^2) for those holding the
    density (exp(-d1^2 / 2) turns an ulp of d1 into d1^2 ulps): a few ulps of it is the best any
    implementation of the formulas can promise. Price: its legs |A| + |B|; theta: its three terms."""
    S, K, T, vol, r, q, phi = (np.asarray(a, dtype=np.float64) for a in (S, K, T, vol, r, q, phi))
    fwd = model == "black76"
    D = np.exp(-r * T)
    Dq, b = (D, 0.0) if fwd else (np.exp(-q * T), r - q)
    v = vol * np.sqrt(T)
    d1 = (np.log(S / K) + (b + 0.5 * vol * vol) * T) / v
    cond = 1.0 + d1 * d1
    A, B = S * Dq * ndtr(phi * d1), K * D * ndtr(phi * (d1 - v))
    n1 = np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    legs = A + B
    return {
        "price": legs,
        "delta": Dq * ndtr(phi * d1) * cond,
        "gamma": Dq * n1 / (S * v) * cond,
        "vega": S * Dq * n1 * np.sqrt(T) * cond,
        "theta": np.abs(r - b) * A + np.abs(r) * B + S * Dq * n1 * vol / (2 * np.sqrt(T)) * cond,
        "rho": T * legs if fwd else T * B * (1.0 + (d1 - v) ** 2),
    }


def philox_reference(ctr: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 in NumPy (uint64 products), ``ctr`` (4, n) uint32 -> (4, n) uint32."""
    c = [np.asarray(w, dtype=np.uint64) for w in ctr]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    mask = np.uint64(0xFFFFFFFF)
    for rnd in range(10):
        if rnd:
            k0, k1 = (k0 + np.uint64(0x9E3779B9)) & mask, (k1 + np.uint64(0xBB67AE85)) & mask
        p0, p1 = np.uint64(0xD2511F53) * c[0], np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & mask]
    return np.array(c, dtype=np.uint32)


def normals_reference(seed: int, step: int, count: int, n_paths: int, dtype: str = "float64", *, antithetic: bool = False,
                      first_path: int = 0) -> np.ndarray:  # fmt: skip
    """The bit layout documented in ``_cuda_src``, in NumPy: Box-Muller in float64 from the 53-bit
    (float64) or 24-bit (float32) uniforms."""
    path = np.arange(first_path, first_path + n_paths, dtype=np.uint64)
    flip = (path & np.uint64(1)).astype(bool) & antithetic
    path = path - flip.astype(np.uint64)
    out = np.empty((count, n_paths))
    for m in range((count + 1) // 2):
        words = (np.full(n_paths, m), np.full(n_paths, step), path & np.uint64(0xFFFFFFFF), path >> np.uint64(32))
        ctr = np.stack([w.astype(np.uint64) for w in words])
        x = philox_reference(ctr, (seed & 0xFFFFFFFF, seed >> 32)).astype(np.uint64)
        if np.dtype(dtype) == np.float64:
            a = (x[1] << np.uint64(21)) | (x[0] >> np.uint64(11))
            c = (x[3] << np.uint64(21)) | (x[2] >> np.uint64(11))
            u1, u2 = (a + np.uint64(1)).astype(np.float64) * 2.0**-53, c.astype(np.float64) * 2.0**-53
        else:
            a, c = x[1] >> np.uint64(8), x[3] >> np.uint64(8)
            u1, u2 = (a + np.uint64(1)).astype(np.float64) * 2.0**-24, c.astype(np.float64) * 2.0**-24
        rad = np.sqrt(-2.0 * np.log(u1))
        out[2 * m] = rad * np.cos(2.0 * np.pi * u2)
        if 2 * m + 1 < count:
            out[2 * m + 1] = rad * np.sin(2.0 * np.pi * u2)
    return np.where(flip, -out, out)


# --- Black kernel -------------------------------------------------------------------------------------------


def _check_black(model: str, got: dict, ref: dict, args: tuple, plain: bool = True, rtol: float = RTOL64) -> dict[str, float]:
    """Assert the float64 tolerances (``plain``: also the plain relative one where nothing cancels);
    return the worst conditioned error per output."""
    scales = _black_scales(model, *args)
    worst = {}
    for name in ref:
        err = np.abs(np.asarray(got[name], dtype=np.float64) - ref[name])
        worst[name] = float(np.max(np.where(err == 0, 0.0, err / np.maximum(scales[name], 1e-300))))
        assert worst[name] <= rtol, (model, name, worst[name])
        if plain and (name in NO_CANCELLATION or (name == "rho" and model == "bsm")):
            assert _rel(got[name], ref[name]) <= rtol, (model, name, _rel(got[name], ref[name]))
    return worst


def test_float32_normals_source_has_no_double_maths() -> None:
    """The float overloads call only f-suffixed functions."""
    for line in src.MATH_SRC.splitlines():
        if "float gh_" in line:
            assert "double" not in line and "f(" in line, line


# --- ladder -------------------------------------------------------------------------------------------------


def _ladder_errors(model: str, pairs: tuple, got: list[np.ndarray], ref: list[np.ndarray], args: tuple) -> float:
    """Worst |got - ref| / (|w| x (legs of the shocked price + legs of the base price)): a P&L is a
    difference of two prices, each a difference of two legs (the discounted intrinsic value's when the
    shocked vol is 0)."""
    S, K, T, vol, r, q, phi, w = (np.asarray(a, dtype=np.float64) for a in args)
    fwd = model == "black76"
    disc = np.exp(-r * T)
    s_disc, b = (disc, 0.0) if fwd else (np.exp(-q * T), r - q)

    def legs(s: np.ndarray, v: np.ndarray) -> np.ndarray:
        sv = v * np.sqrt(T)
        ok = sv > 0
        d1 = (np.log(s / K) + (b + 0.5 * v * v) * T) / np.where(ok, sv, 1.0)
        return np.where(ok, s * s_disc * ndtr(phi * d1) + K * disc * ndtr(phi * (d1 - sv)), s * s_disc + K * disc)

    base = legs(S, vol)
    worst = 0.0
    for (ds, dv), g, r_ in zip(pairs, got, ref, strict=True):
        err = np.abs(np.asarray(g, dtype=np.float64) - r_)
        scale = np.abs(w) * (legs(S * (1.0 + ds), np.maximum(vol + dv, 0.0)) + base)
        worst = max(worst, float(np.max(np.where(err == 0, 0.0, err / np.maximum(scale, 1e-300)))))
    return worst


# --- the fused Black and ladder kernels in Numba's CUDA simulator --------------------------------------------

#: rows per simulated kernel (the simulator runs each CUDA thread as Python)
SIM_ROWS = 300
#: the ladder through the glue: more scenarios than one launch of the former C++ kernels held
GLUE_PAIRS = LADDER_PAIRS["default"] + LADDER_PAIRS["edge"]


def _sim_ladder_args(seed: int) -> tuple[np.ndarray, ...]:
    w = np.random.default_rng(seed + 100).normal(0.0, 10.0, SIM_ROWS)
    return (*_book(SIM_ROWS, seed=seed), w)


def _sim_broadcast_args() -> list[Any]:
    S, K, *_ = _book(40, seed=3)
    return [S[:, None], K[:15][None, :], 0.75, 0.3, 0.02, 0.01, -1.0]  # a column, a row and scalars


def _numpy_cupy() -> types.ModuleType:
    """The part of CuPy that ``_cupy`` uses outside its raw kernels, on NumPy arrays (the simulator's
    kernels take NumPy arrays); its current stream is the default one."""
    cp = types.ModuleType("cupy")
    cp.asarray = lambda a, dtype=None: np.asarray(a, dtype=dtype)
    cp.empty, cp.where, cp.ascontiguousarray, cp.broadcast_to = np.empty, np.where, np.ascontiguousarray, np.broadcast_to
    cp.asnumpy, cp.min, cp.max = np.asarray, np.min, np.max
    stream = types.SimpleNamespace(ptr=0, synchronize=lambda: None)
    cp.cuda = types.SimpleNamespace(get_current_stream=lambda: stream)
    return cp


def _import_glue(cp: types.ModuleType) -> tuple[types.ModuleType, Any]:
    """``(module, backend)``: ``gpu_hedge._backends._cupy`` imported with ``cp`` as ``cupy``, NumPy as
    its array namespace and SciPy's special functions; sys.modules restored right after."""
    import scipy.special

    import gpu_hedge._backends as backends

    name = "gpu_hedge._backends._cupy"
    fakes = {
        "cupy": cp,
        "cupyx": types.ModuleType("cupyx"),
        "cupyx.scipy": types.ModuleType("cupyx.scipy"),
        "cupyx.scipy.special": scipy.special,
        "array_api_compat.cupy": np,
    }
    saved = {k: sys.modules.get(k) for k in [*fakes, name]}
    had_attr, old_attr = hasattr(backends, "_cupy"), getattr(backends, "_cupy", None)
    try:
        sys.modules.pop(name, None)
        sys.modules.update(fakes)
        mod = importlib.import_module(name)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
        if had_attr:
            backends._cupy = old_attr
        elif hasattr(backends, "_cupy"):
            del backends._cupy
    bk = object.__new__(mod.CupyBackend)  # no device to describe
    bk.device = "cpu (stand-in CuPy)"
    return mod, bk


def _never(*_a, **_k):
    raise AssertionError("the generic kernel ran instead of the fused one")


def _simulate() -> dict[str, np.ndarray]:
    """Every simulated result, keyed (run in the subprocess, with the simulator on)."""
    from gpu_hedge._backends import _cuda_black as cb

    assert cb.SIMULATOR, "NUMBA_ENABLE_CUDASIM=1 must be set before numba.cuda is imported"
    out: dict[str, np.ndarray] = {}
    black_args = _book(SIM_ROWS, seed=1)
    _, bk = _import_glue(_numpy_cupy())
    for model in MODELS:
        for k, names in enumerate(SUBSETS):
            res = np.full((len(names), SIM_ROWS), np.nan)
            cb.launch(cb.black_kernel(model, names), SIM_ROWS, 0, [*black_args, res])
            out[f"black_{model}_{k}"] = res
        for tag, pairs in LADDER_PAIRS.items():
            shocks = [np.array(x, dtype=np.float64) for x in zip(*[(ds, math.log1p(ds), dv) for ds, dv in pairs], strict=True)]
            res = np.full((len(pairs), SIM_ROWS), np.nan)
            cb.launch(cb.ladder_kernel(model), SIM_ROWS, 0, [*_sim_ladder_args(5), *shocks, res])
            out[f"ladder_{model}_{tag}"] = res
        # through the glue: all six, a subset, broadcast inputs, float32, the ladder
        for k in (0, 2):
            got = bk.elementwise(_never, list(black_args), SUBSETS[k], "float64", key=("x",), native=f"black:{model}")
            assert list(got) == list(SUBSETS[k])
            out.update({f"glue_black_{model}_{k}_{n}": v for n, v in got.items()})
        got = bk.elementwise(_never, _sim_broadcast_args(), ("vega", "price"), np.float64, native=f"black:{model}")
        assert all(v.flags.c_contiguous for v in got.values())
        out.update({f"glue_bcast_{model}_{n}": v for n, v in got.items()})
        got = bk.elementwise(_never, [a.astype(np.float32) for a in black_args], NAMES, "float32", native=f"black:{model}")
        out.update({f"glue_f32_{model}_{n}": v for n, v in got.items()})
        names = tuple(f"s{j}" for j in range(len(GLUE_PAIRS)))
        key = ("ladder", model, GLUE_PAIRS)
        got = bk.elementwise(_never, list(_sim_ladder_args(14)), names, "float64", key=key, native=key)
        assert list(got) == list(names)
        out[f"glue_ladder_{model}"] = np.stack([got[n] for n in names])
    return out


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """:func:`_simulate`'s results, from a subprocess with ``NUMBA_ENABLE_CUDASIM=1``."""
    pytest.importorskip("numba")
    path = tmp_path_factory.mktemp("cudasim") / "simulated.npz"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    res = subprocess.run([sys.executable, __file__, "--simulate", str(path)], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"the simulator run failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    with np.load(path) as data:
        return dict(data)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("k", range(len(SUBSETS)))
def test_black_kernel_equals_the_generic_kernel(simulated: dict, model: str, k: int) -> None:
    """All six outputs and subsets (each written to its row, nothing else stored), float64."""
    names = SUBSETS[k]
    args = _book(SIM_ROWS, seed=1)
    got = simulated[f"black_{model}_{k}"]
    assert got.shape == (len(names), SIM_ROWS) and np.isfinite(got).all()
    _check_black(model, dict(zip(names, got, strict=True)), _generic_black(model, names, *args), args)


@pytest.mark.parametrize("model", MODELS)
def test_black_kernel_agrees_with_the_numpy_backend(simulated: dict, model: str) -> None:
    """The NumPy backend's public answer (its Numba passes over the same element functions; NumPy's
    exp/log in place of math's): the conditioned check only (its ndtr comes from exp(-x^2/2))."""
    S, K, T, vol, r, q, phi = args = _book(SIM_ROWS, seed=1)
    pub = gh.greeks(S, K, T, vol, r, q, call=phi > 0, model=model, greeks=NAMES, backend="numpy")
    got = dict(zip(NAMES, simulated[f"black_{model}_0"], strict=True))
    _check_black(model, got, {n: np.asarray(pub[n]) for n in NAMES}, args, plain=False)


@pytest.mark.parametrize("model", MODELS)
def test_glue_black_runs_the_fused_kernel(simulated: dict, model: str) -> None:
    args = _book(SIM_ROWS, seed=1)
    for k in (0, 2):
        names = SUBSETS[k]
        got = {n: simulated[f"glue_black_{model}_{k}_{n}"] for n in names}
        assert all(v.shape == (SIM_ROWS,) for v in got.values())
        _check_black(model, got, _generic_black(model, names, *args), args)
    bcast = _sim_broadcast_args()
    got = {n: simulated[f"glue_bcast_{model}_{n}"] for n in ("vega", "price")}
    assert all(v.shape == (40, 15) for v in got.values())
    ref = {n: np.broadcast_to(v, (40, 15)) for n, v in _generic_black(model, ("vega", "price"), *bcast).items()}
    _check_black(model, got, ref, np.broadcast_arrays(*bcast))


@pytest.mark.parametrize("model", MODELS)
def test_glue_black_float32_in_and_out(simulated: dict, model: str) -> None:
    """float32 inputs give float32 outputs (float64 arithmetic inside, one rounding at the store): at
    least as accurate as the generic kernel run in float32, both against float64 on the same inputs."""
    args32 = [a.astype(np.float32) for a in _book(SIM_ROWS, seed=1)]
    ref = _generic_black(model, NAMES, *args32)
    generic32 = black_kernel(model, NAMES, regular_only=True)(np, SPECIAL, *args32)
    for name in NAMES:
        got = simulated[f"glue_f32_{model}_{name}"]
        assert got.dtype == np.float32
        rel, rel_generic = _rel(got, ref[name], floor=FLOOR32), _rel(generic32[name], ref[name], floor=FLOOR32)
        assert rel <= max(RTOL32, 1.25 * rel_generic), (name, rel, rel_generic)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("tag", list(LADDER_PAIRS))
def test_ladder_kernel_equals_the_generic_kernel(simulated: dict, model: str, tag: str) -> None:
    pairs = LADDER_PAIRS[tag]
    args = _sim_ladder_args(5)
    got = simulated[f"ladder_{model}_{tag}"]
    assert got.shape == (len(pairs), SIM_ROWS)
    ref = ladder_kernel(model, pairs)(np, SPECIAL, *args)
    assert _ladder_errors(model, pairs, list(got), [ref[f"s{j}"] for j in range(len(pairs))], args) <= RTOL64


@pytest.mark.parametrize("model", MODELS)
def test_glue_ladder_many_scenarios(simulated: dict, model: str) -> None:
    args = _sim_ladder_args(14)
    got = simulated[f"glue_ladder_{model}"]
    ref = ladder_kernel(model, GLUE_PAIRS)(np, SPECIAL, *args)
    assert _ladder_errors(model, GLUE_PAIRS, list(got), [ref[f"s{j}"] for j in range(len(GLUE_PAIRS))], args) <= RTOL64


def test_source_module_does_not_import_cupy() -> None:
    code = "import sys, gpu_hedge._backends._cuda_src; print('cupy' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


# --- Philox normals -------------------------------------------------------------------------------------------

#: Random123 ``tests/kat_vectors``, philox4x32 10: counter, key, output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0), (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@needs_cxx
@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox_known_answers(normals: Normals, ctr: tuple, key: tuple, expected: tuple) -> None:
    assert normals.philox(ctr, key) == expected
    assert tuple(int(x) for x in philox_reference(np.array(ctr, dtype=np.uint64)[:, None], key)[:, 0]) == expected


@needs_cxx
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_normals_follow_the_documented_bit_layout(normals: Normals, dtype: str, tol: float) -> None:
    seed = (0xDEADBEEF << 32) | 0x12345678  # both key words
    for kw in ({}, {"antithetic": True, "first_path": (1 << 32) - 6}):  # path words across the 32-bit boundary
        got = normals(seed, 17, 5, 3000, dtype, **kw)
        ref = normals_reference(seed, 17, 5, 3000, dtype, **kw)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@needs_cxx
def test_normals_moments_and_independence(normals: Normals) -> None:
    z = normals(2024, 3, 4, 250_000)  # 1e6 draws, (4, 250000)
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96 / n)
    # tails: P(|z| > 3) = 0.0026998
    assert abs(np.mean(np.abs(z) > 3.0) - 0.0026998) < 5 * math.sqrt(0.0027 / n)
    from scipy import stats

    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    m = z.shape[1]
    bound = 5 / math.sqrt(m)
    corr = np.corrcoef(z)  # the normals of one path: Box-Muller pairs (0, 1), (2, 3) and across pairs
    assert np.max(np.abs(corr - np.eye(4))) < bound
    assert abs(np.corrcoef(z[:, :-1].ravel(), z[:, 1:].ravel())[0, 1]) < 5 / math.sqrt(n)  # neighbouring paths
    other_step, other_seed = normals(2024, 4, 4, 250_000), normals(2025, 3, 4, 250_000)
    assert abs(np.corrcoef(z.ravel(), other_step.ravel())[0, 1]) < 5 / math.sqrt(n)
    assert abs(np.corrcoef(z.ravel(), other_seed.ravel())[0, 1]) < 5 / math.sqrt(n)
    # squared draws too (Box-Muller pairs share a radius)
    assert abs(np.corrcoef(z[0] ** 2, z[1] ** 2)[0, 1]) < bound


@needs_cxx
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_normals_prefixes_offsets_and_antithetic(normals: Normals, dtype: str) -> None:
    big = normals(7, 11, 3, 10_000, dtype)
    for m in (1, 2, 4095, 4097):
        np.testing.assert_array_equal(normals(7, 11, 3, m, dtype), big[:, :m])
    for first, m in ((1, 5), (4095, 3), (5000, 4999)):
        np.testing.assert_array_equal(normals(7, 11, 3, m, dtype, first_path=first), big[:, first : first + m])
    np.testing.assert_array_equal(normals(7, 11, 2, 100, dtype), big[:2, :100])  # count: a prefix of the rows too
    anti = normals(7, 11, 3, 10_000, dtype, antithetic=True)
    np.testing.assert_array_equal(anti[:, 0::2], big[:, 0::2])
    np.testing.assert_array_equal(anti[:, 1::2], -anti[:, 0::2])
    np.testing.assert_array_equal(normals(7, 11, 3, 9, dtype, antithetic=True, first_path=101), anti[:, 101:110])
    assert not np.array_equal(normals(7, 12, 3, 100, dtype), big[:, :100])
    assert not np.array_equal(normals(7 + (1 << 32), 11, 3, 100, dtype), big[:, :100])  # the seed's high word counts


@needs_cxx
def test_float32_normals_track_float64(normals: Normals) -> None:
    """Same Philox words, 24-bit uniforms: float32 draws are the float64 ones to about float precision."""
    z64, z32 = normals(5, 0, 2, 100_000), normals(5, 0, 2, 100_000, "float32")
    d = np.abs(z32 - z64)
    assert np.quantile(d, 0.999) < 1e-5 and d.max() < 1e-2


def test_normals_launch_checks_and_grid() -> None:
    assert src.normals_launch(1, 2, 3, 1000) == ((4, 2), (1, 0, 1000, 3, 2))
    assert src.normals_launch(1, 2, 0, 1000)[0] == (0, 0) and src.normals_launch(1, 2, 3, 0)[0] == (0, 0)
    assert src.normals_launch(1, 2, 1, 10**9)[0] == (65535, 1)
    for bad in ({"seed": -1}, {"seed": 1 << 64}, {"step": -1}, {"step": 1 << 32}, {"n_paths": -1}, {"first_path": 1 << 63}):
        kw = {"seed": 1, "step": 0, "count": 1, "n_paths": 10, **bad}
        with pytest.raises(ValueError):
            src.normals_launch(**kw)


# --- nvcc ---------------------------------------------------------------------------------------------------


def _nvcc_source() -> str:
    """The normals module as CuPy compiles it (``extern "C"`` kernels keep their names)."""
    return src.NORMALS_SRC


def test_cuda_source_compiles_with_nvcc(tmp_path: Path) -> None:
    """``nvcc -c`` (front end and ptxas, no device needed), all warnings as errors; then the kept PTX:
    the float32 kernels hold no double-precision instruction (nothing was promoted)."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found")
    cu = tmp_path / "kernels.cu"
    cu.write_text(_nvcc_source())
    try:
        # -Werror all-warnings, except #177 "declared but never referenced"
        flags = ["-c", "-arch=sm_90", "-std=c++14", "-Werror", "all-warnings", "-diag-suppress", "177", "-keep", "-keep-dir", str(tmp_path)]
        res = subprocess.run([nvcc, *flags, str(cu), "-o", str(tmp_path / "k.o")], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"nvcc cannot run here: {exc}")
    if res.returncode and ("error" not in res.stderr or "kernels.cu" not in res.stderr):
        pytest.skip(f"nvcc failed for an environmental reason: {res.stderr[-500:]}")
    assert res.returncode == 0, res.stderr
    entries = {e.split("(")[0]: e for e in (tmp_path / "kernels.ptx").read_text().split(".entry ")[1:]}
    assert ".f64" not in entries["gh_normals_f32"], "the float32 normals kernel does double-precision arithmetic"
    assert ".f64" in entries["gh_normals_f64"]


# --- the CuPy glue (gpu_hedge._backends._cupy) against a stand-in CuPy built on the CPU kernels ------------

GRID_SHIM = r"""
// CUDA's launch coordinates, set by the driver below before each "thread" runs.
struct gh_dim3 { unsigned int x, y, z; };
static gh_dim3 blockIdx, blockDim, gridDim, threadIdx;
"""

NORMALS_DRIVER = r"""
// A launch of gh_normals_f64 / gh_normals_f32: every thread of the grid in turn.
extern "C" void launch(int f32, unsigned int gx, unsigned int gy, unsigned int bx, void* out, unsigned long long seed,
                       long long first_path, long long n_paths, long long count, unsigned int step, int antithetic) {
  gridDim.x = gx; gridDim.y = gy; gridDim.z = 1; blockDim.x = bx; blockDim.y = 1; blockDim.z = 1;
  for (unsigned int by = 0; by < gy; ++by)
    for (unsigned int b = 0; b < gx; ++b)
      for (unsigned int t = 0; t < bx; ++t) {
        blockIdx.x = b; blockIdx.y = by; blockIdx.z = 0; threadIdx.x = t; threadIdx.y = 0; threadIdx.z = 0;
        if (f32) gh_normals_f32((float*)out, seed, first_path, n_paths, count, step, antithetic);
        else gh_normals_f64((double*)out, seed, first_path, n_paths, count, step, antithetic);
      }
}
"""


def _fake_cupy(directory: Path) -> types.ModuleType:
    """:func:`_numpy_cupy` with a ``RawKernel`` that runs the normals kernels' real ``__global__`` code
    (built with the C++ compiler) over the launch grid, checking the argument types against the
    kernel's parameters."""
    cp = _numpy_cupy()
    built: dict[str, ctypes.CDLL] = {}

    def build(code: str) -> ctypes.CDLL:
        if code not in built:
            built[code] = _build(directory, f"fake_cupy_{len(built)}", code)
        return built[code]

    class RawKernel:
        def __init__(self, code: str, name: str) -> None:
            assert code == src.NORMALS_SRC and name in src.NORMALS_KERNEL_NAMES.values()
            self.lib, self.name = build(SHIM + GRID_SHIM + code + NORMALS_DRIVER), name
            u64, i64, u32, i32 = ctypes.c_ulonglong, ctypes.c_longlong, ctypes.c_uint, ctypes.c_int
            self.lib.launch.argtypes = [ctypes.c_int, u32, u32, u32, ctypes.c_void_p, u64, i64, i64, i64, u32, i32]

        def __call__(self, grid: tuple, block: tuple, args: tuple) -> None:
            out, *scalars = args
            # the kernel's parameters: X*, unsigned long long, long long x 3, unsigned int, int
            expected = (np.uint64, np.int64, np.int64, np.int64, np.uint32, np.int32)
            assert [type(a) for a in scalars] == list(expected), [type(a) for a in scalars]
            assert out.dtype == (np.float32 if self.name.endswith("f32") else np.float64) and out.flags.c_contiguous
            gx, gy = grid
            self.lib.launch(int(self.name.endswith("f32")), gx, gy, block[0], out.ctypes.data, *(int(a) for a in scalars))

    cp.RawKernel = RawKernel
    return cp


@pytest.fixture(scope="module")
def fake_cupy(tmp_path_factory: pytest.TempPathFactory) -> tuple[types.ModuleType, Any]:
    """``(module, backend)``: the glue imported with :func:`_fake_cupy` as ``cupy`` (in this process:
    its normals and its generic path; the fused kernels run in the simulator's process)."""
    if CXX is None:
        pytest.skip("no C++ compiler (g++ or gcc) on this machine")
    return _import_glue(_fake_cupy(tmp_path_factory.mktemp("fake_cupy")))


def test_glue_black_falls_back_where_nothing_is_fused(fake_cupy) -> None:
    _, bk = fake_cupy
    args = list(_book(500, seed=13))
    generic = black_kernel("bsm", ("price", "vanna"), regular_only=True)
    for native, names, dtype in [("black:bsm", ("price", "vanna"), "float64"), ("black:bachelier", ("price",), "float64"),
                                 ("black:bsm", ("price",), "float16"), ("other", ("price",), "float64")]:  # fmt: skip
        kernel = black_kernel("bsm", names, regular_only=True) if names != ("price", "vanna") else generic
        out = bk.elementwise(kernel, args, names, dtype, native=native)
        assert list(out) == list(names)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_glue_normals_launch(fake_cupy, normals: Normals, dtype: str) -> None:
    mod, _ = fake_cupy
    seed = (0xBEEF << 32) | 99
    for kw in ({}, {"antithetic": True, "first_path": 1000}):
        got = mod.CupyBackend.normals(seed, 4, 3, 1_500, dtype, **kw)
        assert got.shape == (3, 1_500) and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, normals(seed, 4, 3, 1_500, dtype, **kw))  # the same code, through the grid
        np.testing.assert_allclose(got, normals_reference(seed, 4, 3, 1_500, dtype, **kw), rtol=2e-5, atol=2e-5)
    assert mod.CupyBackend.normals(1, 0, 2, 10, "float16").dtype == np.float16
    assert mod.CupyBackend.normals(1, 0, 0, 10).shape == (0, 10)


# --- the real CuPy backend (skipped without a CUDA device) -------------------------------------------------


@pytest.fixture
def cupy_bk():
    if "cupy" not in gh.available_backends():  # a GPU machine may have only JAX
        pytest.skip("needs CuPy with a CUDA device")
    return gh.get_backend("cupy")


#: the device against NumPy, float64: CUDA's normcdf (5 ulp), libdevice's exp/log and FMA contraction
#: differ from NumPy by a few ulps more than the CPU build does
RTOL_DEVICE = 1e-12


@pytest.mark.gpu
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cupy_native_black_matches_numpy(cupy_bk, model: str, dtype: str) -> None:
    args = _book(100_003, seed=7)
    host = [a.astype(dtype) for a in args]
    wide = tuple(a.astype(np.float64) for a in host)
    for names in SUBSETS:
        out = cupy_bk.elementwise(_never, [cupy_bk.asarray(a) for a in host], names, dtype, native=f"black:{model}")
        assert list(out) == list(names)
        got = {n: cupy_bk.to_numpy(v) for n, v in out.items()}
        assert all(v.dtype == np.dtype(dtype) and v.flags.c_contiguous and v.shape == (100_003,) for v in got.values())
        ref = _generic_black(model, names, *wide)
        if dtype == "float64":
            _check_black(model, got, ref, wide, rtol=RTOL_DEVICE)
        else:  # as accurate as the generic kernel run in float32 on the host
            generic32 = black_kernel(model, names, regular_only=True)(np, SPECIAL, *host)
            for name in names:
                rel, rel_generic = _rel(got[name], ref[name], floor=FLOOR32), _rel(generic32[name], ref[name], floor=FLOOR32)
                assert rel <= max(RTOL32, 2 * rel_generic), (name, rel, rel_generic)
    # the public entry point takes the fused kernel too
    S, K, T, vol, r, q, phi = args
    pub = gh.greeks(S, K, T, vol, r, q, call=phi > 0, model=model, greeks=NAMES, backend="cupy", dtype="float64")
    ref = _generic_black(model, NAMES, *args)
    _check_black(model, {n: gh.to_numpy(v) for n, v in pub.items()}, ref, args, rtol=RTOL_DEVICE)


@pytest.mark.gpu
def test_cupy_native_black_broadcasts(cupy_bk) -> None:
    S, K, *_ = _book(500, seed=8)
    host = [S[:, None], K[:30][None, :], 0.75, 0.3, 0.02, 0.01, -1.0]
    arrays = [cupy_bk.asarray(a) if isinstance(a, np.ndarray) else a for a in host]
    out = cupy_bk.elementwise(_never, arrays, ("price", "gamma"), "float64", native="black:bsm")
    got = {n: cupy_bk.to_numpy(v) for n, v in out.items()}
    assert all(v.shape == (500, 30) and v.flags.c_contiguous for v in got.values())
    ref = {n: np.broadcast_to(v, (500, 30)) for n, v in _generic_black("bsm", ("price", "gamma"), *host).items()}
    _check_black("bsm", got, ref, np.broadcast_arrays(*host), rtol=RTOL_DEVICE)


@pytest.mark.gpu
def test_cupy_falls_back_to_the_generic_kernel(cupy_bk) -> None:
    args = [cupy_bk.asarray(a) for a in _book(1000, seed=9)]
    called = []

    def generic(xp, sp, *a):
        called.append(True)
        return black_kernel("bsm", ("price", "vanna"), regular_only=True)(xp, sp, *a)

    cupy_bk.elementwise(generic, args, ("price", "vanna"), "float64", native="black:bsm")  # second order: not fused
    assert called


@pytest.mark.gpu
@pytest.mark.parametrize("model", MODELS)
def test_cupy_native_ladder_matches_numpy(cupy_bk, model: str) -> None:
    pairs = GLUE_PAIRS + tuple((0.01 * k, 0.0) for k in range(10))
    S, K, T, vol, r, q, phi = _book(50_000, seed=10)
    w = np.random.default_rng(11).normal(0.0, 10.0, S.size)
    args = (S, K, T, vol, r, q, phi, w)
    names = tuple(f"s{j}" for j in range(len(pairs)))
    key = ("ladder", model, pairs)
    out = cupy_bk.elementwise(_never, [cupy_bk.asarray(a) for a in args], names, "float64", key=key, native=key)
    assert list(out) == list(names)
    ref = ladder_kernel(model, pairs)(np, SPECIAL, *args)
    assert _ladder_errors(model, pairs, [cupy_bk.to_numpy(out[n]) for n in names], [ref[n] for n in names], args) <= RTOL_DEVICE


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 2e-5)])
def test_cupy_normals_follow_the_bit_layout(cupy_bk, dtype: str, tol: float) -> None:
    seed = (0xDEADBEEF << 32) | 0x12345678
    for kw in ({}, {"antithetic": True, "first_path": (1 << 32) - 6}):
        got = cupy_bk.to_numpy(cupy_bk.normals(seed, 17, 5, 3000, dtype, **kw))
        assert got.dtype == np.dtype(dtype) and got.shape == (5, 3000)
        np.testing.assert_allclose(got, normals_reference(seed, 17, 5, 3000, dtype, **kw), rtol=tol, atol=tol)


@pytest.mark.gpu
def test_cupy_normals_prefixes_offsets_antithetic_and_moments(cupy_bk) -> None:
    big = cupy_bk.to_numpy(cupy_bk.normals(3, 5, 2, 1_000_000))
    assert abs(big.mean()) < 5 / math.sqrt(big.size) and abs(big.var() - 1.0) < 5 * math.sqrt(2 / big.size)
    np.testing.assert_array_equal(cupy_bk.to_numpy(cupy_bk.normals(3, 5, 2, 4097)), big[:, :4097])
    np.testing.assert_array_equal(cupy_bk.to_numpy(cupy_bk.normals(3, 5, 2, 999, first_path=12_345)), big[:, 12_345:13_344])
    anti = cupy_bk.to_numpy(cupy_bk.normals(3, 5, 2, 10_000, antithetic=True))
    np.testing.assert_array_equal(anti[:, 0::2], big[:, :10_000:2])
    np.testing.assert_array_equal(anti[:, 1::2], -anti[:, 0::2])
    assert cupy_bk.to_numpy(cupy_bk.normals(3, 5, 0, 10)).shape == (0, 10)
    assert cupy_bk.to_numpy(cupy_bk.normals(3, 5, 2, 0)).shape == (2, 0)


if __name__ == "__main__" and sys.argv[1:2] == ["--simulate"]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    np.savez(sys.argv[2], **_simulate())
