"""The NumPy backend's native (Numba, option by option) implied-vol kernels (cpu_fallback._iv) against
the generic array kernels of gpu_hedge._pricing.implied_vol, which every backend runs.

The native kernels make the same decisions with the same arithmetic; they differ from the generic ones
only in the special functions inside the solver (their own erfcx, ndtri and scalar ndtr and libm's exp
against SciPy's erfcx / ndtri and NumPy's exp), by a few ulps, which the conditioning of the inverse
problem can magnify. Hence the tolerance: 1e-13 relative, or 10 times the vol change of a 4-ulp price
change where that is larger (only near the identifiability limit, where the vol is not better known).
Seen on the grids below: identical status codes, largest difference 5e-15 relative.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.special as sc

import gpu_hedge as gh
from cpu_fallback import NumpyBackend, _erfcx_table, _iv, _iv_constants, _ndtr
from cpu_fallback import _backend as numpy_backend
from cpu_fallback._ndtr_kernel import ndtr_loop
from gpu_hedge import IVStatus
from gpu_hedge._pricing.implied_vol import native_request

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tools/ (build-time code generation) is in the checkout, not in the installed package
    sys.path.insert(0, str(ROOT))
from tools import gen_iv_constants, gen_special_tables  # noqa: E402

EPS = 2.0**-52
MODELS = ("bsm", "black76", "bachelier")
NAMES = ("vol", "status")


def _extreme(model: str, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """(price, spot, strike, expiry, rate, div, call, true vol): expiries 1e-6..100 y and 0, vols 1e-4..20
    (normal vols much wider), strikes to +-40 sd and to |ln F/K| = 1000 (beyond the exponent range),
    strikes 0 (lognormal), calls and puts; prices from gpu_hedge.price, 7 % moved to, onto or beyond
    the bounds (negative, below intrinsic, at the discounted forward or strike, a few ulps off)."""
    rng = np.random.default_rng(seed)
    T = np.exp(rng.uniform(np.log(1e-6), np.log(100.0), n))
    T[rng.random(n) < 0.01] = 0.0
    V = np.exp(rng.uniform(np.log(1e-4), np.log(20.0), n))
    r = rng.uniform(-0.05, 0.2, n)
    q = rng.uniform(-0.05, 0.1, n) if model == "bsm" else np.zeros(n)
    C = rng.random(n) < 0.5
    if model == "bachelier":
        S = rng.normal(0.0, 2.0, n)
        V = V * np.exp(rng.uniform(-5.0, 3.0, n))
        K = S + rng.uniform(-40, 40, n) * V * np.sqrt(T) * rng.choice([1.0, 0.01, 0.0], n, p=[0.8, 0.15, 0.05])
    else:
        S = np.exp(rng.uniform(np.log(1e-3), np.log(1e5), n))
        lk = rng.uniform(-40, 40, n) * V * np.sqrt(T)
        wild = rng.random(n) < 0.03
        lk[wild] = rng.uniform(-1000.0, 1000.0, wild.sum())
        K = np.exp(np.clip(np.log(S) + lk, -700.0, 700.0))
        K[rng.random(n) < 0.01] = 0.0
    with np.errstate(all="ignore"):
        P = gh.to_numpy(gh.price(S, K, T, V, r, q, call=C, model=model, backend="numpy"))
    u = rng.random(n)
    P = np.where(u < 0.03, P * (1 + rng.normal(0.0, 1e-3, n)), P)
    P = np.where((u >= 0.03) & (u < 0.05), -np.abs(P) * rng.random(n), P)
    P = np.where((u >= 0.05) & (u < 0.06), P * (1 + EPS * rng.integers(-8, 8, n)), P)
    if model != "bachelier":
        F = S * np.exp((r - q) * T)
        cap = np.exp(-r * T) * np.where(C, F, K)
        P = np.where((u >= 0.06) & (u < 0.07), cap * (1 + EPS / 2 * rng.integers(-20, 20, n)), P)
    return P, S, K, T, r, q, C, V


def _realistic(model: str, n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    """As benchmarks/implied_vol.py: +-3 sd, vols 5-150 % (normal vols 20-300 bp), 1 day - 5 years."""
    rng = np.random.default_rng(seed)
    T = np.exp(rng.uniform(np.log(1 / 365), np.log(5.0), n))
    r = rng.uniform(-0.01, 0.08, n)
    C = rng.random(n) < 0.5
    if model == "bachelier":
        S = rng.uniform(-0.01, 0.06, n)
        V = rng.uniform(0.002, 0.03, n)
        K = S + rng.uniform(-3, 3, n) * V * np.sqrt(T)
        q = np.zeros(n)
    else:
        S = np.exp(rng.uniform(np.log(5.0), np.log(1000.0), n))
        V = rng.uniform(0.05, 1.5, n)
        q = rng.uniform(0.0, 0.05, n) if model == "bsm" else np.zeros(n)
        K = S * np.exp((r - q) * T) * np.exp(rng.uniform(-3, 3, n) * V * np.sqrt(T))
    P = gh.to_numpy(gh.price(S, K, T, V, r, q, call=C, model=model, backend="numpy"))
    return P, S, K, T, r, q, C, V


def _solve(model: str, P, S, K, T, r, q, C, bk=None, **kw) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(all="ignore"):
        vol, status = gh.implied_vol(P, S, K, T, r, q, call=C, model=model, backend=bk or NumpyBackend(), return_status=True, **kw)
    return gh.to_numpy(vol), gh.to_numpy(status)


def _generic(monkeypatch: pytest.MonkeyPatch, *args, **kw) -> tuple[np.ndarray, np.ndarray]:
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "native_kernel", lambda *a, **k: None)
        return _solve(*args, **kw)


def _native_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every native implied-vol kernel the backend builds."""
    calls: list[str] = []
    real = _iv.implied_vol_kernel
    monkeypatch.setattr(_iv, "implied_vol_kernel", lambda model, constants: calls.append(model) or real(model, constants))
    return calls


def _agree(model: str, args: tuple, got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> float:
    """Same status codes, NaN exactly where not OK, vols within the module docstring's tolerance; returns
    the largest relative difference."""
    (vol, status), (ref_vol, ref_status) = got, ref
    np.testing.assert_array_equal(status, ref_status)
    ok = ref_status == IVStatus.OK
    assert np.isnan(vol[~ok]).all() and np.isfinite(vol[ok]).all()
    P, S, K, T, r, q, C, _ = args
    with np.errstate(all="ignore"):
        vega = gh.greeks(S[ok], K[ok], T[ok], ref_vol[ok], r[ok], q[ok], call=C[ok], model=model, greeks="vega", backend="numpy")
    sensitivity = 4 * EPS * np.abs(P[ok]) / np.maximum(gh.to_numpy(vega["vega"]), 1e-300)
    diff = np.abs(vol[ok] - ref_vol[ok])
    assert np.all(diff <= np.maximum(1e-13 * ref_vol[ok], 10 * sensitivity))
    return float(np.max(diff / ref_vol[ok]))


def test_the_compiled_constants_are_the_generators_output() -> None:
    """cpu_fallback/_iv_constants.py is tools/gen_iv_constants.py's output for the pricing layer's
    constants as they are now (a change there without regenerating fails here), and holds exactly
    what each model's native request sends."""
    families = gen_iv_constants.requests()
    assert gen_iv_constants.source(families) == open(_iv_constants.__file__).read()
    for model in MODELS:
        assert native_request(model)[2] == (_iv_constants.BACHELIER if model == "bachelier" else _iv_constants.LOGNORMAL)
    assert _iv.REGENERATE == f"python tools/{Path(gen_iv_constants.__file__).name}" == gen_iv_constants.COMMAND


@pytest.mark.parametrize("model", MODELS)
def test_a_request_with_other_constants_is_refused(model: str) -> None:
    """A stale _iv_constants.py never computes with constants other than the request's: the backend
    refuses, naming the differing constants and the regeneration command."""
    _, name, constants = native_request(model)
    changed = tuple((k, v * (1 + 1e-15) if k == "converged" else v) for k, v in constants)
    with pytest.raises(RuntimeError, match=r"converged\).*python tools/gen_iv_constants\.py"):
        numpy_backend.native_kernel(("implied_vol", name, changed), NAMES, "float64")
    table = "far_num" if model == "bachelier" else "asymptotic"
    changed = tuple((k, v[:-1] if k == table else v) for k, v in constants)
    with pytest.raises(RuntimeError, match=table):
        numpy_backend.native_kernel(("implied_vol", name, changed), NAMES, "float64")
    with pytest.raises(RuntimeError, match="vol_tol"):
        numpy_backend.native_kernel(("implied_vol", name, tuple(p for p in constants if p[0] != "vol_tol")), NAMES, "float64")
    assert numpy_backend.native_kernel(("implied_vol", name, tuple(reversed(constants))), NAMES, "float64") is not None


def test_the_native_kernels_are_offered() -> None:
    for model in MODELS:
        assert numpy_backend.native_kernel(native_request(model), NAMES, "float64") is not None
    assert numpy_backend.native_kernel(native_request("bsm"), NAMES, "float32") is None  # float32: generic
    assert numpy_backend.native_kernel(native_request("bsm"), ("vol",), "float64") is None
    assert numpy_backend.native_kernel(("implied_vol", "heston", native_request("bsm")[2]), NAMES, "float64") is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the generic kernels' overflows on these inputs, in the pool's threads
@pytest.mark.parametrize("model", MODELS)
def test_equals_the_generic_kernel_on_extreme_inputs(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _extreme(model, 40_000, seed=MODELS.index(model))
    calls = _native_calls(monkeypatch)
    got = _solve(model, *args[:-1])
    assert calls == [model]
    ref = _generic(monkeypatch, model, *args[:-1])
    assert _agree(model, args, got, ref) <= 1e-13
    counts = np.bincount(ref[1].astype(np.int64), minlength=4)
    # every outcome is exercised: OK, below intrinsic, above the maximum (lognormal), not identifiable
    assert counts[IVStatus.OK] > 10_000 and counts[IVStatus.BELOW_INTRINSIC] > 500 and counts[IVStatus.NOT_IDENTIFIABLE] > 5_000
    assert (counts[IVStatus.ABOVE_MAX] > 50) if model != "bachelier" else counts[IVStatus.ABOVE_MAX] == 0


@pytest.mark.parametrize("model", MODELS)
def test_equals_the_generic_kernel_and_round_trips_on_realistic_inputs(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _realistic(model, 30_000)
    P, S, K, T, r, q, C, V = args
    vol, status = got = _solve(model, *args[:-1])
    _agree(model, args, got, _generic(monkeypatch, model, *args[:-1]))
    ok = status == IVStatus.OK
    assert ok.mean() > 0.95
    # the true vol back, 1e-10 (absolute for the lognormal models, relative for bachelier), and the price
    err = np.abs(vol[ok] - V[ok]) / (V[ok] if model == "bachelier" else 1.0)
    assert err.max() <= 1e-10
    again = gh.to_numpy(gh.price(S[ok], K[ok], T[ok], vol[ok], r[ok], q[ok], call=C[ok], model=model, backend="numpy"))
    vega = gh.to_numpy(gh.greeks(S[ok], K[ok], T[ok], V[ok], r[ok], q[ok], call=C[ok], model=model, greeks="vega", backend="numpy")["vega"])
    assert np.all(np.abs(again - P[ok]) <= 1e-10 * vega * (V[ok] if model == "bachelier" else 1.0) + 64 * EPS * P[ok])


def test_scalars_broadcasting_chunks_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """0-d inputs (spot, rate, div, call flag), a (2, n) broadcast, any chunking: the same numbers."""
    rng = np.random.default_rng(4)
    K = 100.0 * np.exp(rng.uniform(-0.5, 0.5, (2, 1)) + rng.uniform(-0.5, 0.5, 5_000))  # (2, n)
    T, V = rng.uniform(0.1, 3.0, 5_000), rng.uniform(0.1, 0.8, 5_000)
    P = gh.to_numpy(gh.price(100.0, K, T, V, 0.02, 0.01, call="put", backend="numpy"))
    kw = dict(call="put", return_status=True)
    ref = gh.implied_vol(P, 100.0, K, T, 0.02, 0.01, backend=NumpyBackend(chunk=10**9, threads=1), **kw)
    ok = ref[1] == IVStatus.OK  # the rest: deep in-the-money puts at low vols, not identifiable
    assert ref[0].shape == (2, 5_000) and ok.mean() > 0.9
    np.testing.assert_allclose(ref[0][ok], np.broadcast_to(V, (2, 5_000))[ok], rtol=0.0, atol=1e-10)
    for chunk, threads in [(1, 1), (777, 2), (8192, 2)]:
        got = gh.implied_vol(P, 100.0, K, T, 0.02, 0.01, backend=NumpyBackend(chunk=chunk, threads=threads), **kw)
        np.testing.assert_array_equal(got[0], ref[0])
        np.testing.assert_array_equal(got[1], ref[1])
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "native_kernel", lambda *a, **k: None)
        generic = gh.implied_vol(P, 100.0, K, T, 0.02, 0.01, backend=NumpyBackend(), **kw)
    np.testing.assert_array_equal(generic[1], ref[1])
    np.testing.assert_allclose(generic[0], ref[0], rtol=1e-13)


@pytest.mark.parametrize("model", MODELS)
def test_invalid_rows_with_on_invalid_nan(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _native_calls(monkeypatch)
    spot = [100.0, -1.0, 100.0, 100.0] if model != "bachelier" else [0.02, math.inf, 0.02, 0.02]
    vol, status = gh.implied_vol(
        [float("nan"), 1.0, 1.0, -1.0], spot, 100.0 if model != "bachelier" else 0.02, [1.0, 1.0, -2.0, 1.0], 0.01,
        model=model, backend="numpy", return_status=True, on_invalid="nan",
    )  # fmt: skip
    assert calls == [model]
    assert [IVStatus(int(c)) for c in gh.to_numpy(status)] == [IVStatus.INVALID_INPUT] * 3 + [IVStatus.BELOW_INTRINSIC]
    assert np.isnan(gh.to_numpy(vol)).all()


def test_switched_off_the_generic_kernel_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ndtr, "_compiled", None)
    monkeypatch.setenv("GPU_HEDGE_NUMBA", "0")
    for model in MODELS:
        assert numpy_backend.native_kernel(native_request(model), NAMES, "float64") is None

    def refuse(model: str, constants: tuple):
        raise AssertionError("the native kernel must not be built with GPU_HEDGE_NUMBA=0")

    monkeypatch.setattr(_iv, "implied_vol_kernel", refuse)
    p = 10.450583572185565  # bsm call, S = K = 100, T = 1, vol = 0.2, r = 0.05
    vol, status = gh.implied_vol([p, 1.0], 100.0, 100.0, 1.0, 0.05, backend="numpy", return_status=True)
    assert abs(float(vol[0]) - 0.2) < 1e-12 and [IVStatus(int(c)) for c in status] == [IVStatus.OK, IVStatus.BELOW_INTRINSIC]


# ---- the special functions ----------------------------------------------------------------------------


def _mp_erfcx(x: float) -> float:
    if x > 1e6:  # mpmath's erfc gives up on huge arguments: the asymptotic series, far below an ulp here
        z = mpmath.mpf(x)
        return float(1 / (mpmath.sqrt(mpmath.pi) * z) * (1 - 1 / (2 * z * z) + 3 / (4 * z**4)))
    return float(mpmath.exp(mpmath.mpf(x) ** 2) * mpmath.erfc(mpmath.mpf(x)))


def test_erfcx_against_mpmath_and_scipy() -> None:
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [
            np.linspace(0.0, 10.0, 2001),
            np.exp(rng.uniform(np.log(1e-12), np.log(1e300), 1500)),
            np.arange(41) / 8.0,  # piece ends
            np.nextafter(4.0, 0.0) * np.ones(1),
        ]
    )
    erfcx = np.vectorize(_iv.erfcx)
    with mpmath.workdps(40):
        exact = np.array([_mp_erfcx(v) for v in x])
    ulps = np.abs(erfcx(x) - exact) / np.spacing(exact)
    assert ulps[x < 4.0].max() <= 1.0 and ulps.max() <= 2.0  # SciPy's on the same points: up to 6
    # x < 0: 2 exp(x^2) - erfcx(-x), as SciPy computes it (both limited by the rounding of x^2)
    neg = -np.exp(rng.uniform(np.log(1e-12), np.log(26.6), 1500))
    np.testing.assert_allclose(erfcx(neg), sc.erfcx(neg), rtol=8 * EPS)
    assert _iv.erfcx(-27.0) == math.inf and _iv.erfcx(math.inf) == 0.0 and math.isnan(_iv.erfcx(math.nan))
    assert _iv.erfcx(0.0) == 1.0


def test_the_erfcx_table_is_the_fit() -> None:
    assert gen_special_tables.fit_erfcx() == _erfcx_table.ERFCX_TABLE
    assert gen_special_tables.table_source(_erfcx_table.ERFCX_TABLE) == open(_erfcx_table.__file__).read()


def test_ndtri_against_mpmath_and_scipy() -> None:
    rng = np.random.default_rng(12)
    p = np.concatenate(
        [
            np.exp(rng.uniform(np.log(2.2250738585072014e-308), np.log(0.5), 1500)),
            rng.uniform(0.0, 1.0, 1500),
            0.5 + np.exp(rng.uniform(-40.0, -2.0, 200)) * rng.choice([-1.0, 1.0], 200),
            [0.2, 0.8, 0.5 - 1e-17, 1.0 - 2.0**-53],
        ]
    )
    ndtri = np.vectorize(_iv.ndtri)
    got = ndtri(p)
    np.testing.assert_allclose(got, sc.ndtri(p), rtol=4 * EPS, atol=0.0)
    with mpmath.workdps(60):
        sample = p[::20]
        exact = np.array([float(mpmath.findroot(lambda x, v=v: mpmath.ncdf(x) - mpmath.mpf(v), float(sc.ndtri(v)))) for v in sample])
    assert np.max(np.abs(ndtri(sample) - exact) / np.spacing(np.abs(exact))) <= 2.0
    assert _iv.ndtri(0.5) == 0.0 and _iv.ndtri(0.0) == -math.inf and _iv.ndtri(1.0) == math.inf
    assert math.isnan(_iv.ndtri(-0.1)) and math.isnan(_iv.ndtri(1.5)) and math.isnan(_iv.ndtri(math.nan))


def test_scalar_ndtr_is_the_vectorised_kernel() -> None:
    """Bit for bit ``ndtr_from_exp`` given the same ``exp(-x^2/2)`` (here libm's, as the scalar one uses)."""
    rng = np.random.default_rng(13)
    edges = [0.0, 1.0, -1.0, np.nextafter(1.0, 0.0), np.inf, -np.inf]
    x = np.concatenate([rng.normal(0.0, 3.0, 20_000), rng.uniform(-40.0, 10.0, 5_000), edges])
    e = np.array([math.exp(-0.5 * (v * v)) for v in x])
    ref = np.empty_like(x)
    ndtr_loop(x, e, ref)
    np.testing.assert_array_equal(np.vectorize(_iv.ndtr)(x), ref)
    np.testing.assert_allclose(np.vectorize(_iv.ndtr)(x), _ndtr.ndtr(x), rtol=1e-14, atol=1e-300)  # NumPy's exp
