"""The scalar Black and ladder element functions (``cpu_fallback._black_element``): the one definition
the NumPy backend's Numba passes and the CuPy backend's CUDA kernels both compile.

- their plain-Python source (what ``numba.cuda`` compiles: the dispatchers' ``.py_func``) run row by
  row, with ``math.exp`` / ``math.log``, equals the generic reference kernels to ~1e-13;
- the Numba-compiled CPU kernels (``cpu_fallback._black``) give what the Python source gives, to a few
  ulps (FMA contraction and NumPy's exp/log are the only differences);
- the formulas are written nowhere else: neither the CPU passes nor the CUDA module calls the normal
  CDF, and the CuPy adapter imports ``numba.cuda`` only lazily (on its first fused call).
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

from cpu_fallback import _black_element as el  # noqa: E402
from cpu_fallback._backend import SPECIAL  # noqa: E402
from cpu_fallback._black import black_greeks, black_ladder  # noqa: E402
from gpu_hedge._book.risk import Scenarios, ladder_kernel  # noqa: E402
from gpu_hedge._pricing.black_scholes import black_kernel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N = 400
PAIRS = (*Scenarios.default().pairs()[:6], (0.0, 0.0), (-0.3, -5.0), (0.1, -0.2))


def _rows(seed: int = 0) -> tuple[np.ndarray, ...]:
    from test_fused_black import _book

    *args, call = _book(N, seed)
    return (*args, np.where(call, 1.0, -1.0))


def _python_black(model: str, S, K, T, vol, r, q, phi) -> dict[str, np.ndarray]:
    """The element functions' Python source, row by row, exponentials by ``math``."""
    fwd = model == "black76"
    out = np.empty((6, S.size))
    for i in range(S.size):
        st, d1, w1, w2, wD, wDq = el.black_exponents.py_func(math.log(S[i] / K[i]), T[i], vol[i], r[i], q[i], fwd)
        e = (math.exp(w1), math.exp(w2), math.exp(wD), math.exp(wDq))
        out[:, i] = el.black_element.py_func(S[i], K[i], T[i], vol[i], r[i], q[i], phi[i], fwd, st, d1, *e)
    return dict(zip(el.NAMES, out, strict=True))


def _python_price(s: float, lm: float, v: float, b: float, T: float, st: float, k_disc: float, s_disc: float, phi: float) -> float:
    e = [math.exp(x) for x in el.ladder_exponents.py_func(lm, v, b, T, st)]
    return el.ladder_price.py_func(s, lm, v, b, T, st, k_disc, s_disc, phi, *e)


def _python_ladder(model: str, pairs: tuple, S, K, T, vol, r, q, phi, w) -> np.ndarray:
    """The ladder element functions' Python source, row by row, the shared terms by ``math``."""
    fwd = model == "black76"
    out = np.empty((len(pairs), S.size))
    for i in range(S.size):
        st, disc = math.sqrt(T[i]), math.exp(-r[i] * T[i])
        s_disc, b = (disc, 0.0) if fwd else (math.exp(-q[i] * T[i]), r[i] - q[i])
        lnsk, k_disc = math.log(S[i] / K[i]), K[i] * disc
        terms = (b, T[i], st, k_disc, s_disc, phi[i])
        base = _python_price(S[i], lnsk, vol[i], *terms)
        for j, (ds, dv) in enumerate(pairs):
            s, lm, v = el.ladder_shock.py_func(S[i], lnsk, vol[i], ds, math.log1p(ds), dv)
            out[j, i] = (_python_price(s, lm, v, *terms) - base) * w[i]
    return out


def _rel(got: np.ndarray, ref: np.ndarray) -> float:
    scale = np.maximum(np.abs(ref), 1e-9 * np.abs(ref).max() + 1e-300)
    return float(np.max(np.abs(got - ref) / scale))


@pytest.mark.parametrize("model", el.MODELS)
def test_python_source_equals_the_reference(model: str) -> None:
    args = _rows(1)
    got = _python_black(model, *args)
    ref = black_kernel(model, el.NAMES, regular_only=True)(np, SPECIAL, *args)
    for name in el.NAMES:
        assert _rel(got[name], ref[name]) < 1e-11, (name, _rel(got[name], ref[name]))


@pytest.mark.parametrize("model", el.MODELS)
def test_cpu_passes_equal_the_python_source(model: str) -> None:
    args = _rows(2)
    out = {name: np.empty(N) for name in el.NAMES}
    black_greeks(model == "black76")(*args, out=out)
    py = _python_black(model, *args)
    for name in el.NAMES:
        assert _rel(out[name], py[name]) < 1e-12, (name, _rel(out[name], py[name]))


@pytest.mark.parametrize("model", el.MODELS)
def test_ladder_python_source_and_cpu_passes(model: str) -> None:
    args = (*_rows(3), np.random.default_rng(4).normal(0.0, 10.0, N))
    py = _python_ladder(model, PAIRS, *args)
    ref = ladder_kernel(model, PAIRS)(np, SPECIAL, *args)
    out = {f"s{j}": np.empty(N) for j in range(len(PAIRS))}
    black_ladder(model == "black76", PAIRS)(*args, out=out)
    legs = np.abs(args[-1]) * (args[0] + args[1])  # |w| (S + K): the size of the terms of each P&L
    for j in range(len(PAIRS)):
        assert np.max(np.abs(py[j] - ref[f"s{j}"]) / legs) < 1e-13, j
        assert np.max(np.abs(out[f"s{j}"] - py[j]) / legs) < 1e-13, j


def _calls(path: Path, name: str) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def test_the_formulas_are_written_once() -> None:
    """Only the element module (and the generated CDF itself) evaluates the normal CDF; the CPU
    passes and the CUDA kernels call the element functions."""
    for rel in ("cpu_fallback/_black.py", "gpu_hedge/_backends/_cuda_black.py", "gpu_hedge/_backends/_cupy.py"):
        assert not _calls(ROOT / rel, "ndtr_from_exp"), rel
    assert _calls(ROOT / "cpu_fallback/_black_element.py", "ndtr_from_exp")
    src = (ROOT / "gpu_hedge/_backends/_cuda_src.py").read_text(encoding="utf-8")
    assert "normcdf" not in src and "gh_black" not in src


def test_cupy_adapter_imports_numba_cuda_lazily() -> None:
    """``numba.cuda`` (the numba-cuda package) is imported on the first fused call, never at import."""
    tree = ast.parse((ROOT / "gpu_hedge/_backends/_cupy.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not any(x.startswith("numba") or x == "_cuda_black" for x in names), names
