"""``hedge_simulated`` on JAX: simulation and hedging fused in compiled ``lax.scan`` segments
(``loop.run_simulated_scan``) against the per-date loop over ``iter_paths`` it replaced
(``loop._FUSED = False``) and against ``hedge(simulate(...).spot, ...)`` on JAX.

The fused program contracts multiplies and adds and folds divisions by a scalar as XLA does inside
one program, where the per-date loop runs accrual, the premium and the final unwind op by op: the
numbers agree to a few ulps (1e-12 relative to the field's scale asked), the trade counts exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

import gpu_hedge as gh  # noqa: E402
from gpu_hedge._hedging import loop  # noqa: E402
from gpu_hedge._simulation.gbm import GBMStep  # noqa: E402

if "jax" not in gh.available_backends():  # pragma: no cover - JAX importable but not usable
    pytest.skip("the JAX backend is not available", allow_module_level=True)

FLOATS = ("pnl", "hedging_error", "costs", "turnover", "unhedged", "premium")
COUNTS = ("n_trades", "limited")
HORIZON, N_STEPS = 0.4, 20
HESTON = gh.Heston(100.0, 0.05, 1.5, 0.04, 0.5, -0.7, rate=0.02, div=0.01)
MERTON = gh.Merton(100.0, 0.2, jump_intensity=2.0, jump_mean=-0.08, jump_std=0.12, rate=0.02, div=0.01)
GBM = gh.GBM(100.0, 0.25, rate=0.02, div=0.01)
# settles at the last date, and after it (marked): one compiled segment
BOOK = [gh.Option(102.0, HORIZON, quantity=-1), gh.Option(95.0, 0.5, call=False, quantity=2, multiplier=10)]
# and one settling inside the run (date 10): a second segment, the live options change
SPLIT = [gh.Option(100.0, HORIZON / 2, quantity=-3), *BOOK]
COSTS = gh.Costs(per_trade=0.1, per_share=0.01, proportional=1e-3)

CASES = {
    "gbm-delta-gamma-split": dict(model=GBM, strategy=gh.DeltaGamma(gh.Option(105.0, 0.6), every=3), book=SPLIT,
                                  option_costs=gh.Costs(proportional=2e-3)),
    "gbm-delta-vega-lots-limit": dict(model=GBM, strategy=gh.DeltaVega(gh.Option(100.0, 0.7)), lot_size=1.0, max_position=4.0),
    "heston-qe-band": dict(model=HESTON, scheme="qe", strategy=gh.DeltaBand(0.05, relative=True, to_edge=True)),
    "heston-euler-leland-antithetic": dict(model=HESTON, scheme="euler", strategy=gh.Leland(2), antithetic=True),
    "merton-whalley-wilmott": dict(model=MERTON, strategy=gh.WhalleyWilmott(0.5)),
}  # fmt: skip


def _run(case: dict, *, fused: bool = True, n_paths: int = 256, seed: int = 2**63 - 1, dtype: str = "float64"):
    kw = dict(case)
    model, book = kw.pop("model"), kw.pop("book", BOOK)
    loop_fused, loop._FUSED = loop._FUSED, fused
    try:
        return gh.hedge_simulated(model, book, n_paths=n_paths, n_steps=N_STEPS, horizon=HORIZON, seed=seed, vol=0.25,
                                  costs=COSTS, backend="jax", dtype=dtype, **kw)  # fmt: skip
    finally:
        loop._FUSED = loop_fused


def _stored(case: dict, *, n_paths: int = 256, seed: int = 2**63 - 1, dtype: str = "float64", hedge_dtype: str | None = None):
    """``hedge`` on the same paths simulated and stored on JAX (``run_scan``)."""
    kw = dict(case)
    model, scheme, antithetic, book = kw.pop("model"), kw.pop("scheme", None), kw.pop("antithetic", False), kw.pop("book", BOOK)
    p = gh.simulate(model, n_paths=n_paths, n_steps=N_STEPS, horizon=HORIZON, seed=seed, backend="jax", dtype=dtype,
                    antithetic=antithetic, scheme=scheme)  # fmt: skip
    return gh.hedge(p.spot, np.linspace(0.0, HORIZON, N_STEPS + 1), book, vol=0.25, rate=model.rate, div=model.div,
                    costs=COSTS, backend="jax", dtype=hedge_dtype or dtype, **kw)  # fmt: skip


def _assert_same(res, ref, rtol: float = 1e-12, counts: bool = True) -> None:
    for name in FLOATS:
        a, b = getattr(res, name), getattr(ref, name)
        scale = max(float(np.max(np.abs(b))), 1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)
    if counts:
        for name in COUNTS:
            np.testing.assert_array_equal(getattr(res, name), getattr(ref, name), err_msg=name)


@pytest.mark.parametrize("name", list(CASES))
def test_fused_equals_the_per_date_loop(name):
    case = CASES[name]
    fused, unfused = _run(case), _run(case, fused=False)
    _assert_same(fused, unfused)
    assert float(np.std(fused.pnl)) > 0 and np.all(np.isfinite(fused.pnl))
    assert float(np.mean(fused.n_trades)) > 2


def test_the_limits_bind():
    res = _run(CASES["gbm-delta-vega-lots-limit"])
    assert res.limited.sum() > 0 and res.n_trades.sum() > 0


@pytest.mark.parametrize("name", ["gbm-delta-gamma-split", "heston-euler-leland-antithetic"])
def test_fused_equals_hedging_the_stored_paths(name):
    _assert_same(_run(CASES[name]), _stored(CASES[name]))


@pytest.mark.parametrize("seed", [0, 12_345, 2**40 + 7, 2**63 - 1])
def test_every_seed_draws_the_same_shocks(seed):
    # the seed is traced in the fused program, a Python int in the per-date draws: the same paths
    # (unhedged: premium and payoff only); a seed that differs in bit 62 alone draws other paths
    case = dict(model=GBM, strategy=gh.NoHedge(), book=BOOK[:1])
    fused = _run(case, seed=seed)
    _assert_same(fused, _run(case, seed=seed, fused=False))
    assert not np.array_equal(fused.unhedged, _run(case, seed=seed ^ (1 << 62)).unhedged)


def test_float32():
    case = dict(model=GBM, strategy=gh.Periodic(2))
    res = _run(case, dtype="float32")
    # the per-date loop in float32: rounding differences only
    _assert_same(res, _run(case, dtype="float32", fused=False), rtol=1e-5)
    # the same float32 paths hedged in float64
    _assert_same(res, _stored(case, dtype="float32", hedge_dtype="float64"), rtol=1e-4, counts=False)


def test_a_second_call_does_not_recompile(monkeypatch):
    traces = []
    advance = GBMStep.advance  # called once per trace of the scan body, never when it runs compiled
    monkeypatch.setattr(GBMStep, "advance", lambda *a: traces.append(1) or advance(*a))
    case = dict(model=GBM, strategy=gh.Periodic(), antithetic=True)
    first = _run(case, seed=1, n_paths=94)  # a shape no other test compiles
    assert len(traces) == 1
    hits = loop._fused_segment.cache_info().hits
    again = _run(case, seed=2, n_paths=94)  # another seed: traced, the same program
    assert len(traces) == 1 and loop._fused_segment.cache_info().hits == hits + 1
    assert np.all(np.isfinite(again.pnl)) and not np.array_equal(first.pnl, again.pnl)
