"""The NumPy backend's vectorised normal CDF (cpu_fallback._ndtr) against mpmath and SciPy."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
import scipy.special as sc

from cpu_fallback import NumpyBackend, _ndtr, _ndtr_kernel

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tools/ (build-time code generation) is in the checkout, not in the installed package
    sys.path.insert(0, str(ROOT))
from tools import gen_special_tables  # noqa: E402


def _exact(x: np.ndarray) -> np.ndarray:
    with mpmath.workdps(40):
        return np.array([float(mpmath.ncdf(mpmath.mpf(float(v)))) for v in x])


def test_the_backend_uses_the_compiled_kernel() -> None:
    assert NumpyBackend().special.ndtr is _ndtr.ndtr
    assert _ndtr._loop(), "numba is a dependency: the vectorised kernel must compile here"


def test_against_mpmath() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate(
        [
            np.linspace(-37.0, 9.0, 1501),
            rng.uniform(-3.0, 3.0, 500),
            np.nextafter(np.array([-1.0, 1.0, -1.0, 1.0]), np.array([-2.0, 2.0, 0.0, 0.0])),  # both sides of the switch
        ]
    )
    got, exact = _ndtr.ndtr(x), _exact(x)
    rel = np.abs(got - exact) / exact
    assert rel[np.abs(x) <= 10.0].max() <= 1e-14
    # below -10 both this kernel and SciPy are limited by the rounding of x^2 inside exp
    assert rel.max() <= 1e-13
    assert rel.max() <= np.max(np.abs(sc.ndtr(x) - exact) / exact)
    assert np.abs(got - exact).max() <= 1e-15


def test_agrees_with_scipy_and_keeps_shape() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 400)) * 4.0
    got = _ndtr.ndtr(x)
    assert got.shape == x.shape
    assert np.abs(got - sc.ndtr(x)).max() <= 1e-15
    view = x[::3, 1::2]  # not contiguous
    np.testing.assert_array_equal(_ndtr.ndtr(view), got[::3, 1::2])


def test_special_values() -> None:
    x = np.array([np.nan, -np.inf, np.inf, 0.0, -0.0, -40.0, 40.0] * 20)
    got = _ndtr.ndtr(x)[:7]
    assert math.isnan(got[0])
    # N(-40) ~ 3.7e-350 underflows, as in SciPy
    assert list(got[1:]) == [0.0, 1.0, 0.5, 0.5, 0.0, 1.0] == list(sc.ndtr(x[1:7]))


def test_a_value_does_not_depend_on_the_array_around_it() -> None:
    x = np.random.default_rng(5).standard_normal(1000) * 3.0
    whole = _ndtr.ndtr(x)
    assert [_ndtr.ndtr(float(v)) for v in x[:50]] == list(whole[:50])
    assert isinstance(_ndtr.ndtr(0.3), np.float64)
    assert type(_ndtr.ndtr(np.array(0.3))) is type(sc.ndtr(np.array(0.3))) is np.float64
    np.testing.assert_array_equal(np.concatenate([_ndtr.ndtr(x[i : i + 7]) for i in range(0, 1000, 7)]), whole)


@pytest.mark.parametrize("x", [np.linspace(-2, 2, 100, dtype=np.float32), np.arange(-3, 4), [0.1, 0.2]])
def test_other_dtypes_go_to_scipy(x) -> None:
    got = _ndtr.ndtr(x)
    np.testing.assert_array_equal(got, sc.ndtr(x))
    assert np.asarray(got).dtype == np.asarray(sc.ndtr(x)).dtype


def test_without_numba_it_is_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ndtr, "_compiled", False)
    x = np.linspace(-8.0, 8.0, 1000)
    np.testing.assert_array_equal(_ndtr.ndtr(x), sc.ndtr(x))


def test_committed_kernel_is_the_fit() -> None:
    """The generated file matches its generator, and its coefficients are the Chebyshev fit (to
    rounding: SciPy's erfcx may differ in the last bit between releases)."""
    tail, taylor = gen_special_tables.fit_ndtr()
    np.testing.assert_allclose(_ndtr_kernel.TAIL, tail, rtol=1e-12, atol=1e-20)
    np.testing.assert_allclose(_ndtr_kernel.TAYLOR, taylor, rtol=1e-15, atol=0)
    text = gen_special_tables.KERNEL_FILE.read_text()
    assert text == gen_special_tables.kernel_source(_ndtr_kernel.TAIL, _ndtr_kernel.TAYLOR)


def test_taylor_coefficients_are_the_series() -> None:
    # N(x) - 1/2 = phi(0) sum_n (-1)^n x^(2n+1) / (2^n n! (2n+1)): d/dx of the series is phi(x)
    _, taylor = gen_special_tables.fit_ndtr()
    x = 0.37
    s = 0.5 * x * x
    series = sum(c * s**n for n, c in enumerate(taylor)) * x + 0.5
    assert series == pytest.approx(float(_exact(np.array([x]))[0]), rel=2e-16, abs=0)


def test_environment_switch_turns_the_kernel_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ndtr, "_compiled", None)
    monkeypatch.setenv("GPU_HEDGE_NUMBA", "0")
    assert _ndtr._loop() is False
    x = np.linspace(-8.0, 8.0, 1000)
    np.testing.assert_array_equal(_ndtr.ndtr(x), sc.ndtr(x))


def test_a_numba_failure_falls_back_to_scipy_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    class Broken(types.ModuleType):
        def __getattr__(self, name: str):
            raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(_ndtr, "_compiled", None)
    monkeypatch.setitem(sys.modules, "cpu_fallback._ndtr_kernel", Broken("cpu_fallback._ndtr_kernel"))
    with pytest.warns(RuntimeWarning, match="Numba kernels unavailable.*no locator"):
        assert _ndtr._loop() is False
    x = np.linspace(-8.0, 8.0, 1000)
    np.testing.assert_array_equal(_ndtr.ndtr(x), sc.ndtr(x))
