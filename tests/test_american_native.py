"""The NumPy backend's fused fixed-point step (cpu_fallback._alo) against the array code it replaces."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cpu_fallback._alo import alo_sums
from cpu_fallback._backend import SPECIAL
from cpu_fallback._ndtr import _loop
from gpu_hedge._pricing._alo_scheme import REFERENCE, Scheme
from gpu_hedge._pricing.american import put_boundary

pytestmark = pytest.mark.skipif(not _loop(), reason="Numba kernels unavailable here")

#: the same special functions without the fused step: put_boundary then runs its array code
PLAIN = SimpleNamespace(**{k: getattr(SPECIAL, k) for k in ("ndtr", "ndtri", "log_ndtr", "erfc", "erfcx", "lazy_where")})


def _rows(n: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    T = np.concatenate([rng.uniform(1 / 365, 5.0, n - 4), [1 / 365, 5.0, 0.25, 2.0]])
    r = np.concatenate([rng.uniform(1e-4, 0.1, n - 4), [0.1, 1e-4, 0.05, 0.08]])
    q = np.concatenate([rng.uniform(0.0, 0.1, n - 4), [0.0, 0.1, 0.05, 0.0]])  # q > r, q == r, q = 0
    vol = np.concatenate([rng.uniform(0.05, 1.5, n - 4), [1.5, 0.05, 0.3, 0.05]])
    return T, r, q, vol


@pytest.mark.parametrize("scheme", [Scheme(16, 32, 9, 48), Scheme(7, 12, 4, 20), REFERENCE], ids=["default", "small", "reference"])
def test_fused_step_gives_the_array_codes_boundary(scheme):
    T, r, q, vol = _rows(300, seed=7)
    fused, _ = put_boundary(np, SPECIAL, T, r, q, vol, scheme)
    plain, _ = put_boundary(np, PLAIN, T, r, q, vol, scheme)
    assert np.all(np.isfinite(fused)) and np.max(fused) > 0.1  # a real boundary, not a zero one
    # the same products summed by the same reduction: equal to the last bit (a rounding allowed)
    np.testing.assert_allclose(fused, plain, rtol=4e-16, atol=0.0)


def test_fused_step_sums_match_a_direct_evaluation():
    # an independent check of the step itself: N(d) by SciPy, the sums by a plain loop over points
    from scipy.special import ndtr

    rng = np.random.default_rng(3)
    rows, nodes, points = 5, 4, 6
    drift, cq, cr = (rng.normal(size=(rows, nodes, points)) for _ in range(3))
    sm = rng.uniform(0.05, 2.0, size=(rows, nodes, points))
    root_b = rng.uniform(0.0, 1.5, size=(rows, nodes))
    M = rng.normal(size=(3, nodes * points))
    Y = rng.uniform(0.0, 1.0, size=(rows, 3))
    yq = Y @ M
    sum_q, sum_r = alo_sums(drift, sm, cq, cr)(Y, M, root_b)
    dp = (np.sqrt(np.maximum(yq.reshape(rows, nodes, points), 0.0)) - root_b[:, :, None] + drift) / sm + 0.5 * sm
    np.testing.assert_allclose(sum_q, np.sum(cq * ndtr(dp), axis=2), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(sum_r, np.sum(cr * ndtr(dp - sm), axis=2), rtol=1e-13, atol=1e-14)


def test_fused_step_declines_what_it_cannot_run():
    a = np.ones((2, 3, 4), dtype=np.float32)
    assert alo_sums(a, a, a, a) is None  # float32: the caller runs its array code
