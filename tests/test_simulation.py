"""Path simulation: distributions against closed forms, martingales, reproducibility of the
counter-based streams, streaming memory, argument checks. One body, every backend (``bk``)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import gpu_hedge
from cpu_fallback import NumpyBackend
from gpu_hedge import GBM, Heston, Merton, iter_paths, simulate
from gpu_hedge._simulation import PATH_BLOCK, pricers

GBM_RN = GBM(100.0, 0.2, rate=0.05, div=0.02)
HESTON = Heston(100.0, 0.04, 1.5, 0.04, 0.5, -0.7, rate=0.03, div=0.01)
#: Feller's condition badly violated (2 kappa theta = 0.08 < xi^2 = 0.81): QE's exponential branch.
HESTON_ROUGH = Heston(100.0, 0.04, 1.0, 0.04, 0.9, -0.8, rate=0.03, div=0.01)
MERTON = Merton(100.0, 0.2, 0.5, -0.1, 0.15, rate=0.03, div=0.01)
#: (model, scheme) for every step function.
CASES = {
    "gbm": (GBM_RN, None),
    "heston-qe": (HESTON, "qe"),
    "heston-qe-rough": (HESTON_ROUGH, "qe"),
    "heston-euler": (HESTON, "euler"),
    "merton": (MERTON, None),
}


def _np(x):
    return gpu_hedge.to_numpy(x)


def _sim(model, bk, *, n_paths, n_steps, horizon=1.0, seed=11, **kw):
    return simulate(model, n_paths=n_paths, n_steps=n_steps, horizon=horizon, seed=seed, backend=bk, **kw)


def _within(estimate, se, target, k):
    assert abs(estimate - target) < k * se, f"{estimate} vs {target}: {abs(estimate - target) / se:.2f} s.e."


# --- distributions ---------------------------------------------------------------------------


def test_gbm_log_returns_match_closed_form(bk):
    model = GBM(100.0, 0.3, rate=0.02, drift=0.12)  # real-world drift: mu = 0.12
    n, horizon = 100_000, 2.0
    paths = _sim(model, bk, n_paths=n, n_steps=4, horizon=horizon)
    spot = _np(paths.spot)
    for rows, t in (((0, 4), horizon), ((1, 2), horizon / 4)):  # the whole horizon and one step
        r = np.log(spot[rows[1]] / spot[rows[0]])
        mean, var = (model.mu - 0.5 * model.vol**2) * t, model.vol**2 * t
        _within(r.mean(), math.sqrt(var / n), mean, 5)
        _within(r.var(ddof=1), var * math.sqrt(2 / (n - 1)), var, 5)


@pytest.mark.parametrize("case", list(CASES))
def test_discounted_spot_is_martingale(bk, case):
    model, scheme = CASES[case]
    n = 50_000
    paths = _sim(model, bk, n_paths=n, n_steps=8, horizon=2.0, scheme=scheme)
    times, spot = _np(paths.times), _np(paths.spot)
    for k in (1, 4, 8):
        discounted = spot[k] * math.exp((model.div - model.rate) * times[k])
        _within(discounted.mean(), discounted.std(ddof=1) / math.sqrt(n), model.spot, 3)


@pytest.mark.parametrize("scheme", ["qe", "euler"])
def test_heston_variance_is_nonnegative_and_has_its_mean(bk, scheme):
    model, n, horizon = HESTON_ROUGH, 50_000, 1.0
    v = _np(_sim(model, bk, n_paths=n, n_steps=20, horizon=horizon, scheme=scheme).variance)
    assert v.min() >= 0.0 and v[0].tolist() == [model.v0] * n
    exact = model.theta + (model.v0 - model.theta) * math.exp(-model.kappa * horizon)
    if scheme == "qe":  # QE matches the first two conditional moments exactly
        _within(v[-1].mean(), v[-1].std(ddof=1) / math.sqrt(n), exact, 3)


def test_antithetic_pairs_negate_shocks_and_reduce_estimator_variance(bk):
    model, n = GBM_RN, 100_000
    spot = _np(_sim(model, bk, n_paths=n, n_steps=1, antithetic=True).spot)
    log_ret = np.log(spot[1] / model.spot) - (model.mu - 0.5 * model.vol**2)
    np.testing.assert_allclose(log_ret[1::2], -log_ret[0::2], rtol=0, atol=1e-12)
    plain = np.maximum(_np(_sim(model, bk, n_paths=n, n_steps=1).spot)[1] - 100.0, 0.0)
    paired = np.maximum(spot[1] - 100.0, 0.0).reshape(-1, 2).mean(axis=1)
    var_plain, var_anti = plain.var(ddof=1) / n, paired.var(ddof=1) / (n // 2)
    assert var_anti < 0.75 * var_plain  # measured 0.56 for this at-the-money call


# --- prices ----------------------------------------------------------------------------------

STRIKES = np.array([80.0, 100.0, 125.0])


def _mc_calls(terminal, strikes, discount):
    payoff = np.maximum(terminal[None, :] - strikes[:, None], 0.0) * discount
    return payoff.mean(axis=1), payoff.std(axis=1, ddof=1) / math.sqrt(terminal.size)


def test_mc_calls_match_black_scholes_under_gbm(bk):
    m, horizon = GBM_RN, 1.5
    terminal = _np(_sim(m, bk, n_paths=100_000, n_steps=3, horizon=horizon).spot)[-1]
    est, se = _mc_calls(terminal, STRIKES, math.exp(-m.rate * horizon))
    exact = _np(gpu_hedge.price(m.spot, STRIKES, horizon, m.vol, m.rate, m.div, backend="numpy"))
    for e, s, x in zip(est, se, exact, strict=True):
        _within(e, s, x, 3)


def merton_series(m: Merton, strike: np.ndarray, t: float, terms: int = 40) -> np.ndarray:
    """Merton (1976), as in Hull: sum over n of Poisson(lambda' t) weights, lambda' = lambda (1 + k),
    times Black-Scholes prices with vol_n^2 = vol^2 + n jump_std^2 / t and
    rate_n = rate - lambda k + n log(1 + k) / t (written here independently of the package)."""
    k = m.compensator
    lam = m.jump_intensity * (1.0 + k)
    total = np.zeros_like(strike)
    for n in range(terms):
        weight = math.exp(-lam * t + n * math.log(lam * t) - math.lgamma(n + 1))
        vol_n = math.sqrt(m.vol**2 + n * m.jump_std**2 / t)
        rate_n = m.rate - m.jump_intensity * k + n * (m.jump_mean + 0.5 * m.jump_std**2) / t
        bs = _np(gpu_hedge.price(m.spot, strike, t, vol_n, rate_n, m.div, backend="numpy"))
        total += weight * bs
    return total


def test_mc_calls_match_merton_series(bk):
    m, horizon = MERTON, 1.0
    terminal = _np(_sim(m, bk, n_paths=100_000, n_steps=4, horizon=horizon).spot)[-1]
    est, se = _mc_calls(terminal, STRIKES, math.exp(-m.rate * horizon))
    for e, s, x in zip(est, se, merton_series(m, STRIKES, horizon), strict=True):
        _within(e, s, x, 3)


needs_heston_price = pytest.mark.skipif(
    not hasattr(pricers, "heston_price"), reason="gpu_hedge._simulation.pricers.heston_price not written yet"
)


@needs_heston_price
def test_mc_calls_match_heston_price_with_qe(bk):
    m, horizon = HESTON_ROUGH, 1.0
    terminal = _np(_sim(m, bk, n_paths=100_000, n_steps=50, horizon=horizon, scheme="qe").spot)[-1]
    est, se = _mc_calls(terminal, STRIKES, math.exp(-m.rate * horizon))
    exact = np.asarray(pricers.heston_price(m, STRIKES, horizon))
    for e, s, x in zip(est, se, exact, strict=True):
        _within(e, s, x, 3)


@needs_heston_price
def test_qe_bias_is_below_euler_bias_at_a_coarse_step():
    m, horizon, strike = HESTON_ROUGH, 1.0, np.array([100.0])
    exact = float(np.asarray(pricers.heston_price(m, strike, horizon))[0])
    bias = {}
    for scheme in ("qe", "euler"):  # common random numbers: same seed, same shocks
        terminal = _np(_sim(m, "numpy", n_paths=100_000, n_steps=2, horizon=horizon, scheme=scheme).spot)[-1]
        est, se = _mc_calls(terminal, strike, math.exp(-m.rate * horizon))
        bias[scheme] = abs(float(est[0]) - exact)
    assert bias["qe"] < 0.5 * bias["euler"], bias


# --- reproducibility of the streams ----------------------------------------------------------


@pytest.mark.parametrize("case", ["gbm", "heston-qe", "merton"])
def test_first_paths_do_not_depend_on_the_path_count(bk, case):
    model, scheme = CASES[case]
    big = _np(_sim(model, bk, n_paths=2 * PATH_BLOCK + 10, n_steps=3, scheme=scheme).spot)
    for m in (PATH_BLOCK, 37):
        small = _np(_sim(model, bk, n_paths=m, n_steps=3, scheme=scheme).spot)
        np.testing.assert_array_equal(small, big[:, :m])


@pytest.mark.parametrize("antithetic", [False, True])
def test_path_ranges_of_workers_concatenate_to_one_run(bk, antithetic):
    # ranges straddling block edges, one inside a block, one of two paths
    ranges = [(0, PATH_BLOCK - 6), (PATH_BLOCK - 6, 2), (PATH_BLOCK - 4, PATH_BLOCK + 10), (2 * PATH_BLOCK + 6, 994)]
    kw = dict(n_steps=3, scheme="qe", antithetic=antithetic)
    whole = _sim(HESTON, bk, n_paths=2 * PATH_BLOCK + 1000, **kw)
    parts = [_sim(HESTON, bk, n_paths=n, first_path=o, **kw) for o, n in ranges]
    # same shocks exactly; XLA may round a vector loop's tail lanes differently (1 ulp) on other shapes
    rtol = 0 if bk == "numpy" else 1e-15
    np.testing.assert_allclose(np.concatenate([_np(p.spot) for p in parts], axis=1), _np(whole.spot), rtol=rtol, atol=0)
    np.testing.assert_allclose(np.concatenate([_np(p.variance) for p in parts], axis=1), _np(whole.variance), rtol=rtol, atol=1e-17)


def test_numpy_paths_do_not_depend_on_the_thread_count():
    runs = [_sim(HESTON, NumpyBackend(threads=t), n_paths=3 * PATH_BLOCK + 5, n_steps=3, antithetic=False) for t in (1, 2, 3)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.spot, runs[0].spot)
        np.testing.assert_array_equal(other.variance, runs[0].variance)


def test_same_seed_same_paths_other_seed_other_paths(bk):
    a, b, c = (_np(_sim(MERTON, bk, n_paths=1000, n_steps=5, seed=s).spot) for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.any(a[1:] == c[1:])


@pytest.mark.parametrize("case", list(CASES))
def test_reference_mode_gives_the_same_paths_on_every_backend(case):
    if "jax" not in gpu_hedge.available_backends():
        pytest.skip("JAX not installed")
    model, scheme = CASES[case]
    kw = dict(n_paths=PATH_BLOCK + 100, n_steps=6, scheme=scheme, reference=True, antithetic=True)
    ref = _sim(model, "numpy", **kw)
    np.testing.assert_array_equal(ref.spot, _sim(model, "numpy", **{**kw, "reference": False}).spot)
    other = _sim(model, "jax", **kw)
    np.testing.assert_allclose(_np(other.spot), ref.spot, rtol=1e-12, atol=0)
    if ref.variance is not None:
        np.testing.assert_allclose(_np(other.variance), ref.variance, rtol=1e-12, atol=1e-15)


# --- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["gbm", "heston-euler"])
def test_iter_paths_yields_what_simulate_returns(bk, case):
    model, scheme = CASES[case]
    kw = dict(n_paths=300, n_steps=4, horizon=0.5, seed=2, backend=bk, scheme=scheme)
    paths = simulate(model, **kw)
    steps = list(iter_paths(model, **kw))
    assert [s.index for s in steps] == list(range(5))
    np.testing.assert_array_equal([s.time for s in steps], _np(paths.times))
    np.testing.assert_array_equal(np.stack([_np(s.spot) for s in steps]), _np(paths.spot))
    np.testing.assert_array_equal(np.stack([_np(s.variance) for s in steps]), _np(paths.variance))


def test_iter_paths_memory_is_bounded_by_the_path_count():
    n_paths, n_steps = 20_000, 500
    tracemalloc.start()
    try:
        for step in iter_paths(HESTON, n_paths=n_paths, n_steps=n_steps, horizon=1.0, seed=1, backend="numpy"):
            last = step.spot
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert last.shape == (n_paths,)
    assert peak < 40 * n_paths * 8 < n_paths * n_steps * 8 / 10, peak


def test_result_shapes_times_and_dtype(bk):
    paths = _sim(HESTON, bk, n_paths=6, n_steps=4, horizon=2.0, dtype="float32")
    assert paths.spot.shape == paths.variance.shape == (5, 6) and (paths.n_steps, paths.n_paths) == (4, 6)
    assert str(paths.spot.dtype) == str(paths.variance.dtype) == "float32"
    np.testing.assert_allclose(_np(paths.times), [0.0, 0.5, 1.0, 1.5, 2.0])
    assert _sim(GBM_RN, bk, n_paths=2, n_steps=1).variance is None


# --- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kwargs", "match"),
    [
        (GBM_RN, {"n_paths": 0}, "n_paths"),
        (GBM_RN, {"n_paths": 2.5}, "n_paths"),
        (GBM_RN, {"n_steps": 0}, "n_steps"),
        (GBM_RN, {"horizon": 0.0}, "horizon"),
        (GBM_RN, {"horizon": float("nan")}, "horizon"),
        (GBM_RN, {"seed": -1}, "seed"),
        (GBM_RN, {"seed": 1.5}, "seed"),
        (HESTON, {"scheme": "milstein"}, "scheme"),
        (GBM_RN, {"scheme": "qe"}, "scheme"),
        (GBM_RN, {"n_paths": 3, "antithetic": True}, "even"),
        (GBM_RN, {"first_path": 1, "antithetic": True}, "even"),
        (GBM_RN, {"first_path": -4}, "first_path"),
        (GBM_RN, {"dtype": "int32"}, "dtype"),
        ("black-scholes", {}, "model must be one of GBM, Heston, Merton"),
    ],
)
@pytest.mark.parametrize("fn", [simulate, iter_paths])
def test_bad_arguments_raise_value_error(fn, model, kwargs, match):
    args = {"n_paths": 4, "n_steps": 2, "horizon": 1.0, "seed": 0, "backend": "numpy", **kwargs}
    with pytest.raises(ValueError, match=match):
        fn(model, **args)


def test_docstring_examples_run():
    import doctest

    import gpu_hedge._simulation.paths as mod

    failures, tried = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert tried > 0 and failures == 0
