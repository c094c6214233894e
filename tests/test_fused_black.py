"""The NumPy backend's native (Numba) Black kernel against the generic kernel every backend runs."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge as gh
from cpu_fallback import NumpyBackend
from cpu_fallback import _backend as numpy_backend
from cpu_fallback._black import NAMES

RTOL = {"price": 1e-11, "theta": 1e-10}  # cancellations (A - B, theta's three terms); the rest 1e-13


def _book(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    S = np.exp(rng.uniform(np.log(5.0), np.log(1000.0), n))
    K = S * np.exp(rng.uniform(-0.6, 0.6, n))
    T = np.exp(rng.uniform(np.log(1 / 365), np.log(5.0), n))
    vol = rng.uniform(0.05, 1.5, n)
    r = rng.uniform(-0.02, 0.1, n)
    q = rng.uniform(0.0, 0.06, n)
    call = rng.random(n) < 0.5
    return S, K, T, vol, r, q, call


def _generic(monkeypatch: pytest.MonkeyPatch, *args, **kw) -> dict[str, np.ndarray]:
    with monkeypatch.context() as m:
        m.setattr(numpy_backend, "native_kernel", lambda *a, **k: None)
        return gh.greeks(*args, **kw)


def _close(got: dict, ref: dict) -> None:
    for name, r in ref.items():
        scale = np.maximum(np.abs(r), 1e-12 * np.abs(r).max() + 1e-300)
        rel = np.max(np.abs(got[name] - r) / scale)
        assert rel <= RTOL.get(name, 1e-13), (name, rel)


def test_the_native_kernel_is_used() -> None:
    assert numpy_backend.native_kernel("black:bsm", NAMES, "float64") is not None
    assert numpy_backend.native_kernel("black:bsm", (*NAMES, "vanna"), "float64") is None  # second order: generic
    assert numpy_backend.native_kernel("black:bsm", NAMES, "float32") is None
    assert numpy_backend.native_kernel("bachelier", NAMES, "float64") is None


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_equals_the_generic_kernel(model: str, monkeypatch: pytest.MonkeyPatch) -> None:
    S, K, T, vol, r, q, call = _book(30_011)
    bk = NumpyBackend(chunk=4096)
    kw = dict(call=call, model=model, greeks=NAMES, backend=bk)
    _close(gh.greeks(S, K, T, vol, r, q, **kw), _generic(monkeypatch, S, K, T, vol, r, q, **kw))


@pytest.mark.parametrize("subset", [("delta",), ("price", "vega"), ("rho", "theta", "gamma")])
def test_scalars_broadcast_and_subsets(subset: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    S, K, *_ = _book(5_000, seed=2)
    bk = NumpyBackend(chunk=1000)
    args = (S[:, None], K[:50][None, :], 0.75, 0.3, 0.02, 0.01)  # (5000, 50) from a column and a row
    kw = dict(call=False, greeks=subset, backend=bk)
    got = gh.greeks(*args, **kw)
    assert list(got) == list(subset) and got[subset[0]].shape == (5000, 50)
    _close(got, _generic(monkeypatch, *args, **kw))


def test_does_not_depend_on_chunks_or_threads() -> None:
    S, K, T, vol, r, q, call = _book(20_000, seed=3)
    ref = gh.greeks(S, K, T, vol, r, q, call=call, greeks=NAMES, backend=NumpyBackend(chunk=10**9, threads=1))
    for chunk, threads in [(1, 1), (777, 2), (8192, 2)]:
        got = gh.greeks(S, K, T, vol, r, q, call=call, greeks=NAMES, backend=NumpyBackend(chunk=chunk, threads=threads))
        for name in NAMES:
            np.testing.assert_array_equal(got[name], ref[name])


def test_finite_difference_delta_and_parity() -> None:
    """Independent of either kernel's formulas: put-call parity and a central difference."""
    S, K, T, vol, r, q, _ = _book(2_000, seed=4)
    bk = NumpyBackend()
    c = gh.greeks(S, K, T, vol, r, q, call=True, greeks=NAMES, backend=bk)
    p = gh.greeks(S, K, T, vol, r, q, call=False, greeks=NAMES, backend=bk)
    fwd = S * np.exp(-q * T) - K * np.exp(-r * T)
    assert np.all(np.abs(c["price"] - p["price"] - fwd) <= 1e-12 * np.abs(fwd) + 1e-13 * S)
    np.testing.assert_allclose(c["delta"] - p["delta"], np.exp(-q * T), rtol=1e-13, atol=1e-15)

    def central(h: np.ndarray) -> np.ndarray:
        up, dn = (gh.greeks(S + s * h, K, T, vol, r, q, call=True, greeks=("price",), backend=bk)["price"] for s in (1, -1))
        return (up - dn) / (2 * h)

    h = 1e-3 * S * vol * np.sqrt(T)  # a thousandth of a standard deviation of the price
    richardson = (4 * central(h / 2) - central(h)) / 3  # error O(h^4)
    np.testing.assert_allclose(richardson, c["delta"], rtol=1e-6, atol=1e-8)


def test_switched_off_with_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from cpu_fallback import _ndtr

    monkeypatch.setattr(_ndtr, "_compiled", None)
    monkeypatch.setenv("GPU_HEDGE_NUMBA", "0")
    assert numpy_backend.native_kernel("black:bsm", NAMES, "float64") is None


@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_native_ladder_equals_the_generic_ladder(model: str) -> None:
    from gpu_hedge._book.risk import ladder_kernel

    S, K, T, vol, r, q, call = _book(20_003, seed=6)
    phi = np.where(call, 1.0, -1.0)
    w = np.random.default_rng(7).normal(0.0, 100.0, S.size)
    # includes vol shocks that floor the vol at 0 (intrinsic value) and a zero spot shock
    pairs = [(ds, dv) for ds in (-0.3, -0.05, 0.0, 0.1) for dv in (-2.0, -0.04, 0.0, 0.25)]
    names = [f"s{j}" for j in range(len(pairs))]
    bk = NumpyBackend(chunk=3000)
    args = [S, K, T, vol, r, q, phi, w]
    key = ("ladder", model, tuple(pairs))
    assert numpy_backend.native_kernel(key, names, "float64") is not None
    native = bk.elementwise(ladder_kernel(model, pairs), args, names, "float64", key=key, native=key)
    generic = bk.elementwise(ladder_kernel(model, pairs), args, names, "float64", key=key)
    scale = np.abs(w) * (S + K)  # the size of the two legs each P&L is a difference of
    for name in names:
        assert np.all(np.abs(native[name] - generic[name]) <= 1e-13 * scale), name
