"""The NumPy backend's native (Numba) Heston QE step against the generic step every backend runs."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge as gh
from cpu_fallback import NumpyBackend
from cpu_fallback import _backend as numpy_backend
from gpu_hedge._simulation import paths as sim_paths
from gpu_hedge._simulation.heston import HestonQEStep
from gpu_hedge._simulation.merton import MertonStep

MODELS = {
    "equity": gh.Heston(100.0, 0.04, 1.5, 0.04, 0.5, -0.7, rate=0.03, div=0.01),
    "no Feller": gh.Heston(100.0, 0.09, 0.5, 0.04, 1.2, -0.9),
    "variance at zero": gh.Heston(100.0, 0.0, 2.0, 0.0, 0.3, 0.5),  # mean 0: the variance stays at 0
    "rho > 0, big vol of vol": gh.Heston(50.0, 0.04, 1.0, 0.04, 2.0, 0.9),  # mostly the exponential branch
    "no K0*": gh.Heston(50.0, 0.01, 3.0, 0.04, 3.0, 0.9),  # with 5-year steps: A >= beta, K0 used
}
#: (n_steps, horizon) per model; 24 steps over 2 years unless named
STEPS = {"no K0*": (2, 10.0)}


def _simulate(model: gh.Heston, bk, **kw) -> gh.Paths:
    name = next(k for k, m in MODELS.items() if m == model)
    n_steps, horizon = STEPS.get(name, (24, 2.0))
    return gh.simulate(model, n_paths=10_000, n_steps=n_steps, horizon=horizon, seed=11, backend=bk, **kw)


def _generic(monkeypatch: pytest.MonkeyPatch, fn, *args, **kw):
    """``fn(*args, **kw)`` with the native kernels switched off: the generic step, chunked."""
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "native_kernel", lambda *a, **k: None)
        sim_paths._compiled_step.cache_clear()
        try:
            return fn(*args, **kw)
        finally:
            sim_paths._compiled_step.cache_clear()


def test_the_native_step_is_offered() -> None:
    step = HestonQEStep(MODELS["equity"], 0.01)
    assert numpy_backend.native_kernel(step.native, ("s0", "s1"), "float64") is not None
    assert numpy_backend.native_kernel(step.native, ("s0", "s1"), "float32") is not None  # worked in float64
    assert numpy_backend.native_kernel(step.native, ("s0", "s1"), "float16") is None
    assert numpy_backend.native_kernel(step.native, ("s0",), "float64") is None


@pytest.mark.parametrize("name", list(MODELS))
def test_equals_the_generic_step(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bit for bit: the same operations in the same order, the CDF, logs and exps by the same
    NumPy/Numba kernels, no fused multiply-adds."""
    model = MODELS[name]
    got = _simulate(model, NumpyBackend(threads=2))
    ref = _generic(monkeypatch, _simulate, model, NumpyBackend(threads=2))
    assert np.all(np.isfinite(got.spot)) and np.all(got.variance >= 0.0)
    np.testing.assert_array_equal(got.spot, ref.spot)
    np.testing.assert_array_equal(got.variance, ref.variance)
    if name == "variance at zero":
        assert np.all(got.variance == 0.0) and np.all(got.spot == ref.spot)


@pytest.mark.parametrize("name", ["rho > 0, big vol of vol", "no K0*"])
def test_both_branches_and_the_missing_k0_star_are_exercised(name: str) -> None:
    """The cases above reach the exponential branch and paths where K0* does not exist."""
    model = MODELS[name]
    n_steps, horizon = STEPS.get(name, (24, 2.0))
    decay, theta, var1, var2, psi_c, big_a, *_ = HestonQEStep(model, horizon / n_steps).constants()
    v = _simulate(model, "numpy").variance[:-1]
    mean = theta + (v - theta) * decay
    psi = (v * var1 + var2) / mean**2
    quadratic = psi <= psi_c
    two_over_psi = 2.0 / np.clip(psi, 1e-300, psi_c)
    b2 = two_over_psi - 1.0 + np.sqrt(two_over_psi) * np.sqrt(two_over_psi - 1.0)
    p = (psi - 1.0) / (psi + 1.0)
    no_k0_star = np.where(quadratic, 1.0 - 2.0 * big_a * mean / (1.0 + b2) <= 0, (1.0 - p) / mean <= big_a)
    if name == "no K0*":
        assert no_k0_star.mean() > 0.5
    else:  # both branches, on thousands of path-steps each
        assert 0.01 < quadratic.mean() < 0.99 and not no_k0_star.any()


def test_chunks_and_threads_do_not_change_paths() -> None:
    model = MODELS["no Feller"]
    ref = _simulate(model, NumpyBackend(threads=1))
    for bk in (NumpyBackend(chunk=7, threads=2), NumpyBackend(chunk=4096, threads=3)):
        got = _simulate(model, bk)
        np.testing.assert_array_equal(got.spot, ref.spot)
        np.testing.assert_array_equal(got.variance, ref.variance)


@pytest.mark.parametrize("name", ["equity", "rho > 0, big vol of vol"])
def test_float32_is_the_float64_step_rounded(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """float32: each step worked in float64 from the float32 state and stored in float32, so the
    paths stay within a few float32 roundings per step of the float64 paths, closer than the
    generic step run in float32 arithmetic."""
    model = MODELS[name]
    f32 = _simulate(model, "numpy", dtype="float32")
    f64 = _simulate(model, "numpy")
    generic32 = _generic(monkeypatch, _simulate, model, "numpy", dtype="float32")
    assert f32.spot.dtype == np.float32 and f32.variance.dtype == np.float32
    err = np.max(np.abs(f32.spot - f64.spot) / f64.spot)
    assert err < 24 * 4 * np.finfo(np.float32).eps
    assert err <= np.max(np.abs(generic32.spot - f64.spot) / f64.spot)


@pytest.mark.skipif("jax" not in gh.available_backends(), reason="JAX not installed")
def test_agrees_with_jax_on_the_same_shocks() -> None:
    """A second backend, running the generic step on the same (host-drawn) shocks."""
    model = MODELS["equity"]
    a = _simulate(model, "numpy", reference=True)
    b = _simulate(model, "jax", reference=True)
    np.testing.assert_allclose(a.spot, gh.to_numpy(b.spot), rtol=1e-12)
    assert np.max(np.abs(a.variance - gh.to_numpy(b.variance))) <= 1e-12 * model.v0


def test_hedging_on_simulated_heston_paths_uses_it() -> None:
    """hedge_simulated (blocks of paths, one thread each) equals hedging the stored paths."""
    model = MODELS["equity"]
    kw = dict(n_paths=3000, n_steps=20, horizon=0.5, seed=5)
    opt = gh.Option(100.0, 0.5, quantity=-1)
    a = gh.hedge_simulated(model, opt, vol=0.2, strategy=gh.Periodic(), backend="numpy", **kw)
    p = gh.simulate(model, backend="numpy", **kw)
    b = gh.hedge(p.spot, p.times, opt, vol=0.2, rate=model.rate, div=model.div, strategy=gh.Periodic(), backend="numpy")
    np.testing.assert_allclose(a.pnl, b.pnl, rtol=0, atol=1e-12)


MERTON = {
    "equity jumps": gh.Merton(100.0, 0.2, 0.5, -0.1, 0.15, rate=0.03, div=0.01),
    "frequent jumps": gh.Merton(50.0, 0.3, 40.0, 0.02, 0.05),  # several jumps per step: the count's tail matters
    "no jumps": gh.Merton(100.0, 0.2, 0.0, -0.1, 0.15),
}


@pytest.mark.parametrize("name", list(MERTON))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_merton_equals_the_generic_step(name: str, dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """float64 bit for bit; float32 the float64 step rounded once, so within float32 roundings."""
    model = MERTON[name]
    kw = dict(n_paths=10_000, n_steps=24, horizon=2.0, seed=11)
    got = gh.simulate(model, backend=NumpyBackend(threads=2), dtype=dtype, **kw)
    ref = _generic(monkeypatch, gh.simulate, model, backend=NumpyBackend(threads=2), dtype=dtype, **kw)
    assert got.spot.dtype == np.dtype(dtype)
    if dtype == "float64":
        np.testing.assert_array_equal(got.spot, ref.spot)
    else:
        np.testing.assert_allclose(got.spot, ref.spot, rtol=24 * 4 * np.finfo(np.float32).eps)
    if name == "frequent jumps":  # the count reaches several jumps in a step
        step = MertonStep(model, 2.0 / 24)
        assert len(step.constants()) > 4 + 5


def test_merton_native_is_offered() -> None:
    step = MertonStep(MERTON["equity jumps"], 0.01)
    assert numpy_backend.native_kernel(step.native, ("s0",), "float64") is not None
    assert numpy_backend.native_kernel(step.native, ("s0", "s1"), "float64") is None


@pytest.mark.parametrize("name", ["equity", "no Feller", "variance at zero"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_heston_euler_equals_the_generic_step(name: str, dtype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """float64 bit for bit (including the negative variance states full truncation allows)."""
    model = MODELS[name]
    kw = dict(n_paths=10_000, n_steps=24, horizon=2.0, seed=11, scheme="euler")
    got = gh.simulate(model, backend=NumpyBackend(threads=2), dtype=dtype, **kw)
    ref = _generic(monkeypatch, gh.simulate, model, backend=NumpyBackend(threads=2), dtype=dtype, **kw)
    if dtype == "float64":
        np.testing.assert_array_equal(got.spot, ref.spot)
        np.testing.assert_array_equal(got.variance, ref.variance)
    else:  # near the float64 paths, typically closer than float32 arithmetic; both part where v nears 0
        f64 = gh.simulate(model, backend="numpy", **kw).spot
        err, err_generic = (np.abs(x - f64) / f64 for x in (got.spot, ref.spot))
        assert np.median(err) <= np.median(err_generic)
        assert np.quantile(err, 0.999) < 24 * 4 * np.finfo(np.float32).eps
        assert np.max(err) < 1e-3
    if name == "no Feller":  # the state went negative somewhere (observed variance is its positive part)
        from gpu_hedge._simulation.heston import HestonEulerStep

        step = HestonEulerStep(model, 2.0 / 24)
        state = step.init(np, 10_000, np.float64)
        for k in range(24):
            z = gh.get_backend("numpy").normals(11, k, 2, 10_000)
            state = step.advance(np, gh.get_backend("numpy").special, state, z)
            if (state[1] < 0).any():
                break
        assert (state[1] < 0).any()
