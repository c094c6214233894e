"""The NumPy backend's compiled hedging step (cpu_fallback._hedge) against the generic step."""

from __future__ import annotations

import numpy as np
import pytest

import gpu_hedge as gh
from cpu_fallback import _hedge
from gpu_hedge._hedging import loop

FIELDS = ("pnl", "hedging_error", "costs", "n_trades", "turnover", "unhedged")
BOOK = [gh.Option(100.0, 1.0, call=True, quantity=-10), gh.Option(90.0, 0.5, call=False, quantity=5, multiplier=100)]
RULES = [
    (gh.Periodic(), gh.Costs(proportional=1e-4)),
    (gh.Periodic(3), gh.Costs(per_trade=1.0, per_share=0.01, min_per_trade=2.0, proportional=2e-4, impact=0.1, adv=1e5)),
    (gh.DeltaBand(5.0), gh.Costs(proportional=1e-3)),
    (gh.DeltaBand(0.1, relative=True, to_edge=True), gh.Costs(per_trade=1.0)),
    (gh.StaticHedge(), gh.Costs()),
    (gh.NoHedge(), gh.Costs(proportional=1e-3)),
    (gh.Leland(2), gh.Costs(proportional=1e-3)),
]


@pytest.fixture(scope="module")
def paths():
    return gh.simulate(gh.GBM(100.0, 0.25, rate=0.03, div=0.01), n_paths=30_011, n_steps=52, horizon=1.0, seed=5, backend="numpy")


def _both(monkeypatch, run):
    native = run()
    with monkeypatch.context() as m:
        m.setattr(loop, "_native_step", lambda *a: None)
        generic = run()
    return native, generic


@pytest.mark.parametrize("strategy,costs", RULES, ids=[type(s).__name__ for s, _ in RULES])
def test_same_results_as_the_generic_step(paths, strategy, costs, monkeypatch):
    calls = []
    real = _hedge.book_delta
    monkeypatch.setattr(_hedge, "book_delta", lambda *a: calls.append(1) or real(*a))
    kw = dict(vol=0.25, rate=0.03, div=0.01, strategy=strategy, costs=costs, backend="numpy")
    native, generic = _both(monkeypatch, lambda: gh.hedge(paths.spot, paths.times, BOOK, **kw))
    assert calls or isinstance(strategy, gh.NoHedge), "the compiled step was not used"
    for f in FIELDS:
        a, b = getattr(native, f), getattr(generic, f)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9 * np.abs(b).max(), err_msg=f)
    assert native.n_trades.sum() == generic.n_trades.sum()


def test_hedge_simulated_uses_it_too(monkeypatch):
    kw = dict(n_paths=5_000, n_steps=30, horizon=0.5, seed=2, vol=0.2, strategy=gh.Periodic(), costs=gh.Costs(proportional=1e-3))
    native, generic = _both(
        monkeypatch, lambda: gh.hedge_simulated(gh.GBM(100.0, 0.2), gh.Option(100.0, 0.5, quantity=-1), backend="numpy", **kw)
    )
    np.testing.assert_allclose(native.pnl, generic.pnl, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "extra",
    [dict(lot_size=1), dict(max_position=5.0), dict(strategy=gh.WhalleyWilmott(1.0)), dict(strategy=gh.DeltaGamma(gh.Option(100.0, 2.0)))],
    ids=["lots", "limit", "whalley-wilmott", "delta-gamma"],
)
def test_other_rules_run_the_generic_step(extra, monkeypatch):
    called = []
    monkeypatch.setattr(_hedge, "book_delta", lambda *a: called.append(1))
    kw = dict(vol=0.2, strategy=gh.Periodic(), costs=gh.Costs(proportional=1e-3), backend="numpy") | extra
    p = gh.simulate(gh.GBM(100.0, 0.2), n_paths=200, n_steps=10, horizon=0.5, seed=1, backend="numpy")
    res = gh.hedge(p.spot, p.times, gh.Option(100.0, 1.0, quantity=-3), **kw)
    assert not called and np.isfinite(res.pnl).all()
