"""Backend selection, fallback and the Backend surface."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import gpu_hedge
from gpu_hedge import BackendUnavailableError, get_backend
from gpu_hedge._backends import _cupy_status


def test_numpy_always_available():
    assert gpu_hedge.available_backends()[0] == "numpy"
    assert get_backend("numpy").name == "numpy"


def test_import_does_not_import_cupy_or_jax():
    code = "import sys, gpu_hedge; print('cupy' in sys.modules, 'jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_numpy_path_needs_only_numpy_and_scipy():
    """Import, pricing, implied vols, simulation, Monte Carlo and hedging on NumPy work with pandas and
    pyarrow unimportable (None in sys.modules makes their import fail) and array-api-compat not loaded;
    the risk job then says what it needs."""
    code = (
        "import sys; sys.modules['pandas'] = None; sys.modules['pyarrow'] = None\n"
        "import gpu_hedge as g; g.greeks([100.0], 100.0, 1.0, 0.2, backend='numpy');"
        "g.implied_vol(10.0, 100.0, 100.0, 1.0, backend='numpy');"
        "p = g.simulate(g.GBM(100.0, 0.2), n_paths=4, n_steps=2, horizon=1.0, seed=1, backend='numpy');"
        "g.mc_price(g.GBM(100.0, 0.2), strike=100.0, expiry=1.0, n_paths=4, n_steps=2, seed=1, backend='numpy');"
        "g.hedge(p.spot, p.times, g.Option(100.0, 1.0), vol=0.2, strategy=g.Periodic(), backend='numpy').summary()\n"
        "try:\n    g.risk\nexcept ImportError as e:\n    print('risk:', e)\n"
        "print(sorted(m for m in ('array_api_compat', 'cupy', 'jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, modules = out.strip().splitlines()
    assert first.startswith("risk: ") and "pandas" in first and modules == "[]"


def test_auto_without_gpu_is_numpy(monkeypatch):
    monkeypatch.delenv("GPU_HEDGE_BACKEND", raising=False)
    if _cupy_status()[0]:
        pytest.skip("a GPU is present: auto picks cupy")
    assert get_backend("auto").name in ("numpy", "jax")  # jax only where JAX sees a GPU
    assert get_backend(None).name == get_backend("auto").name


@pytest.mark.skipif("cupy" in gpu_hedge.available_backends(), reason="a GPU is present")
def test_explicit_cupy_without_gpu_raises_clearly():
    with pytest.raises(BackendUnavailableError, match="cupy.*cannot run here.*pip install") as info:
        get_backend("cupy")
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif("cupy" in gpu_hedge.available_backends(), reason="a GPU is present")
def test_pricing_on_cupy_without_gpu_raises_clearly():
    with pytest.raises(BackendUnavailableError, match="cupy"):
        gpu_hedge.price(100.0, 100.0, 1.0, 0.2, backend="cupy")


def test_env_override(monkeypatch, bk):
    monkeypatch.setenv("GPU_HEDGE_BACKEND", bk)
    assert get_backend("auto").name == bk
    monkeypatch.setenv("GPU_HEDGE_BACKEND", "auto")
    assert get_backend("auto").name in gpu_hedge.available_backends()


def test_env_override_unknown_is_an_error(monkeypatch):
    monkeypatch.setenv("GPU_HEDGE_BACKEND", "tpu")
    with pytest.raises(ValueError, match="GPU_HEDGE_BACKEND"):
        get_backend("auto")


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        get_backend("torch")


def test_backend_instance_passes_through(bk):
    b = get_backend(bk)
    assert get_backend(b) is b
    out = gpu_hedge.price(100.0, 100.0, 1.0, 0.2, backend=b)
    assert np.isfinite(gpu_hedge.to_numpy(out))


def test_backend_surface(bk):
    b = get_backend(bk)
    assert b.name == bk
    assert isinstance(b, gpu_hedge.Backend)
    x = b.asarray([1.0, 2.0], dtype="float64")
    y = b.to_numpy(b.sync(b.special.ndtr(x)))
    np.testing.assert_allclose(y, [0.8413447460685429, 0.9772498680518208], rtol=1e-15)
    assert b.xp.exp(x).shape == (2,)


def test_results_live_on_the_chosen_backend(bk):
    out = gpu_hedge.price([100.0, 110.0], 100.0, 1.0, 0.2, backend=bk)
    mod = type(out).__module__.split(".")[0]
    assert mod == {"numpy": "numpy", "jax": "jaxlib", "cupy": "cupy"}[bk] or (bk == "jax" and mod == "jax")
    assert isinstance(gpu_hedge.to_numpy(out), np.ndarray)


def test_jax_float64_is_on():
    if "jax" not in gpu_hedge.available_backends():
        pytest.skip("JAX not installed")
    import jax

    get_backend("jax")
    assert jax.config.jax_enable_x64
    assert gpu_hedge.price(100.0, 100.0, 1.0, 0.2, backend="jax").dtype == np.float64


def test_autodiff_on_numpy_is_a_clear_error():
    with pytest.raises(ValueError, match="autodiff.*JAX"):
        gpu_hedge.greeks(100.0, 100.0, 1.0, 0.2, method="autodiff", backend="numpy")


def test_chunked_executor_is_independent_of_chunk_and_threads():
    from cpu_fallback import NumpyBackend

    rng = np.random.default_rng(1)
    S = rng.uniform(50, 150, 10_001)
    ref = gpu_hedge.greeks(S, 100.0, 0.5, 0.3, 0.01, backend=NumpyBackend(chunk=10**9, threads=1))
    for chunk, threads in [(1, 1), (7, 2), (4096, 2), (333, 4)]:
        got = gpu_hedge.greeks(S, 100.0, 0.5, 0.3, 0.01, backend=NumpyBackend(chunk=chunk, threads=threads))
        for k in ref:
            np.testing.assert_array_equal(got[k], ref[k])


@pytest.mark.gpu
def test_cupy_matches_numpy():
    if "cupy" not in gpu_hedge.available_backends():
        pytest.skip("CuPy cannot run here (the GPU is JAX's)")
    rng = np.random.default_rng(2)
    S = rng.uniform(50, 150, 1000)
    a = gpu_hedge.greeks(S, 100.0, 0.5, 0.3, 0.01, backend="numpy")
    b = gpu_hedge.greeks(S, 100.0, 0.5, 0.3, 0.01, backend="cupy")
    for k in a:
        np.testing.assert_allclose(gpu_hedge.to_numpy(b[k]), a[k], rtol=1e-12, atol=1e-300)


def test_gpu_probe_survives_a_broken_cupy(monkeypatch):
    """A CuPy that imports but has no usable driver makes the probe say no, with the reason; never raise."""
    import importlib.util
    import types

    import gpu_hedge._backends as backends

    def no_driver():
        raise RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient")

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "cupy" else real_find_spec(name, *a))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backends._cupy_status.cache_clear()
    backends._make.cache_clear()
    try:
        ok, reason = backends._cupy_status()
        assert not ok and "insufficient" in reason
        assert "cupy" not in gpu_hedge.available_backends()
        monkeypatch.delenv("GPU_HEDGE_BACKEND", raising=False)
        assert get_backend("auto").name in ("numpy", "jax")
        with pytest.raises(BackendUnavailableError, match="insufficient"):
            get_backend("cupy")
    finally:
        backends._cupy_status.cache_clear()
        backends._make.cache_clear()


@pytest.mark.parametrize("pattern", ["none", "all", "mixed"])
def test_lazy_where_selects_like_where_and_skips_unneeded_branches(bk, pattern):
    b = get_backend(bk)
    x = b.asarray(np.linspace(-1.0, 1.0, 9), dtype="float64")
    cond = {"none": x > 5.0, "all": x > -5.0, "mixed": x > 0.0}[pattern]
    calls = []

    def branch(tag, value):
        def f():
            calls.append(tag)
            return value

        return f

    got = b.special.lazy_where(cond, branch("t", x * 2.0), branch("f", x - 1.0))
    np.testing.assert_array_equal(b.to_numpy(got), np.where(b.to_numpy(cond), b.to_numpy(x) * 2.0, b.to_numpy(x) - 1.0))
    if bk == "numpy":  # the chunked CPU backend skips a branch no element needs
        assert calls == {"none": ["f"], "all": ["t"], "mixed": ["t", "f"]}[pattern]


def test_each_backend_recognises_only_its_allocation_failures(bk):
    backend = get_backend(bk)
    own = {
        "numpy": MemoryError("Unable to allocate 7.63 MiB"),
        "jax": RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8000000 bytes."),
    }.get(bk)
    if own is not None:
        assert backend.is_out_of_memory(own)
    assert not backend.is_out_of_memory(ValueError("strike[3] = -1.0 is invalid"))
    assert not backend.is_out_of_memory(RuntimeError("something else"))


def test_scan_and_segment_sum_agree_across_backends(bk):
    backend = get_backend(bk)
    xs = (backend.asarray(np.arange(5.0)), backend.asarray(np.arange(5.0) ** 2))
    last = backend.scan(lambda c, x: (c[0] + x[0], c[1] * 2 + x[1]), (backend.asarray(0.0), backend.asarray(1.0)), xs)
    assert float(last[0]) == 10.0 and float(last[1]) == ((((1 * 2 + 0) * 2 + 1) * 2 + 4) * 2 + 9) * 2 + 16
    codes = backend.asarray(np.array([2, 0, 2, 1, 2]))
    sums = gpu_hedge.to_numpy(backend.segment_sum(codes, backend.asarray(np.array([1.0, 2.0, 3.0, 4.0, 5.0])), 4))
    np.testing.assert_array_equal(sums, [2.0, 4.0, 9.0, 0.0])


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_numpy_min_max_in_parts_equals_whole_array(threads):
    from cpu_fallback import NumpyBackend

    bk = NumpyBackend(threads=threads)
    x = np.random.default_rng(4).normal(size=(3, 700_001))  # over the 2^20 threshold, uneven parts
    assert bk.min_max(x) == (float(x.min()), float(x.max()))
    x[2, 699_999] = np.nan  # in the last part
    lo, hi = bk.min_max(x)
    assert np.isnan(lo) and np.isnan(hi)
    assert bk.min_max(np.array([2.0, -1.0])) == (-1.0, 2.0)


def test_every_backend_has_min_max():
    for name in gpu_hedge.available_backends():
        bk = get_backend(name)
        assert bk.min_max(bk.asarray(np.array([3.0, -2.0, 5.0]))) == (-2.0, 5.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_call_flags_become_signs_in_any_chunking(dtype):
    """Boolean call flags -> +1 / -1 (the NumPy backend's large-chunk "call_sign" kernel), the same
    whatever the chunk and thread count, for 0-d, 1-d and 2-d flags."""
    from cpu_fallback import NumpyBackend
    from gpu_hedge._pricing._inputs import to_phi

    rng = np.random.default_rng(5)
    for flags in (np.array(True), np.array(False), rng.random(70_001) < 0.3, rng.random((300, 7)) < 0.6):
        want = np.where(flags, 1.0, -1.0).astype(dtype)
        for bk in (NumpyBackend(), NumpyBackend(chunk=7, threads=3), NumpyBackend(threads=1)):
            got = to_phi(flags, np.dtype(dtype), bk)
            assert got.dtype == np.dtype(dtype) and got.shape == flags.shape
            np.testing.assert_array_equal(got, want)
