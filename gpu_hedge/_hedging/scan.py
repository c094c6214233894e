"""The compiled drivers of a hedging run (backends with the ``"jit"`` capability): the dates as
:meth:`Backend.scan` segments (:func:`run_scan`, prices on the device) and simulation fused with
hedging date by date (:func:`run_simulated_scan`, no path stored).

A run of decision dates over which the live options do not change is one compiled program; the
dates where an option settles cut the segments (a settlement date's decision is forced). The carry
is the :class:`~gpu_hedge._hedging.state.HedgeState` (a NamedTuple, so a pytree) plus the previous
spot (and the model's state when fused): memory O(n_paths). Same ledger as
:func:`gpu_hedge._hedging.drivers.run`.

A book holding an American option never runs here (its pricer and the per-path exercise run the
per-date loop, :func:`gpu_hedge._hedging.drivers.run`); :mod:`gpu_hedge._hedging.loop` routes it there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from .._backends import Backend
from .._types import Array
from .book import book_greeks, book_value
from .drivers import last_numbers
from .plan import Plan, StaticPlan, static_plan
from .state import STATE, HedgeState, opened
from .step import accrue, decision_core, finish

__all__ = ["fused_segment", "run_scan", "run_simulated_scan"]


@lru_cache(maxsize=32)
def segment_program(
    bk: Backend, static: StaticPlan, live: tuple[int, ...], force_first: bool = False
) -> Callable[..., tuple[HedgeState, Array]]:
    """A compiled :meth:`Backend.scan` over a run of decision dates with the options ``live``;
    ``force_first``: the run starts on a settlement date (its decision is forced, see :func:`~gpu_hedge._hedging.step.decision_core`)."""
    xp = bk.xp
    n_options = len(static.options)

    def body_of(core: Callable[..., dict]) -> Callable[[tuple, tuple], tuple]:
        def body(carry: tuple, x: tuple) -> tuple:
            st, prev = carry
            spot, k, t, dt, v, hv, f = x
            st = accrue(xp, static, st, prev, spot, dt, [f[j] for j in range(n_options)])
            out = core(xp, bk.special, spot, *st[: len(STATE)], k, t, v, hv)
            return st._replace(**out), spot

        return body

    body = body_of(decision_core(static, live))
    first = body_of(decision_core(static, live, force=True)) if force_first else None

    def segment(state: HedgeState, prev: Array, spots: Array, ks: Array, ts: Array, dts: Array, vols: Array, hvs: Array,
                flags: Array) -> tuple[HedgeState, Array]:  # fmt: skip
        xs = (spots, ks, ts, dts, vols, hvs, flags)
        carry = (state, prev)
        if first is not None:
            carry = first(carry, tuple(x[0] for x in xs))
            xs = tuple(x[1:] for x in xs)
        return bk.scan(body, carry, xs) if xs[0].shape[0] else carry

    return bk.jit(segment)


def run_scan(bk: Backend, plan: Plan, prices: Array, dtype: Any) -> HedgeState:
    """The loop as :meth:`Backend.scan` over dates (compiling backends, prices already on the device):
    one compiled program per run of dates with the same live options, every date fused; same ledger
    as :func:`gpu_hedge._hedging.drivers.run`."""
    xp = bk.xp
    times, n_times = plan.times, plan.times.size
    prices = xp.astype(prices, dtype)
    n_paths = int(prices.shape[1])
    live = tuple(range(len(plan.options)))
    zeros = xp.zeros((n_paths,), dtype=dtype)
    marks0 = plan.marks[0] if plan.marks is not None else None
    state = opened(book_value(xp, bk.special, plan, live, prices[0], times[0], plan.vols[0], marks0), zeros)
    settle_at = np.array(plan.settle_at)
    dts = np.diff(times, prepend=times[0])
    hvs = plan.hedge_option_vols if plan.hedge_option_vols is not None else np.zeros(n_times)
    # decision dates 0 ... n-2 cut into runs over which the live options do not change
    starts = [0] + sorted({int(k) for k in settle_at if 0 < k < n_times - 1})
    bounds = list(zip(starts, [*starts[1:], n_times - 1], strict=True))
    prev = prices[0]
    static = static_plan(plan)
    for a, b in bounds:
        live = tuple(j for j in range(len(plan.options)) if not 0 <= settle_at[j] <= a)
        flags = np.stack([settle_at == k for k in range(a, b)]).astype(np.float64)
        state, prev = segment_program(bk, static, live, a > 0)(
            state, prev, prices[a:b], xp.arange(a, b), bk.asarray(times[a:b], dtype=dtype), bk.asarray(dts[a:b], dtype=dtype),
            bk.asarray(plan.hedge_vols[a:b], dtype=dtype), bk.asarray(hvs[a:b], dtype=dtype), bk.asarray(flags, dtype=dtype),
        )  # fmt: skip
    k = n_times - 1
    spot = prices[k]
    state = accrue(xp, plan, state, prev, spot, float(dts[k]), [bool(s == k) for s in settle_at])
    live = tuple(j for j in range(len(plan.options)) if not 0 <= settle_at[j] <= k)
    return finish(bk, plan, state, live, spot, float(times[k]), *last_numbers(plan))


@lru_cache(maxsize=32)
def fused_segment(
    bk: Backend, static: StaticPlan, stepper: Any, n_paths: int, dtype: Any, antithetic: bool, live: tuple[int, ...],
    settling: tuple[int, ...], first: bool, last: bool, force_first: bool = False,
) -> Callable[..., Any]:  # fmt: skip
    """One compiled program for decision dates a ... b-1 (the options ``live`` throughout): a
    :meth:`Backend.scan` whose body, at date k, makes the hedging decision (``core``), draws step k's
    normals, advances the model to date k+1, observes its spot and accrues to date k+1, where the
    options ``settling`` settle on the last step (k+1 = b). ``first`` (a = 0): the program starts the
    run itself (the model's first state, the book bought at its value); ``last`` (b = n-1): it ends it
    (:func:`~gpu_hedge._hedging.step.finish`). ``force_first``: date a is a settlement date, its decision forced (see
    :func:`~gpu_hedge._hedging.step.decision_core`). The carry, O(n_paths), is ``(state, model state, spot)``; no path is stored.

    Called as ``fn(carry, seed, xs, start, end)``: ``carry`` the previous segment's (None when
    ``first``), ``seed`` a Python int (traced: one program for every seed, the same bits as the
    per-date loop's ``normals(seed, k, ...)``), ``xs`` the per-date numbers, ``start`` = (times[0],
    vols[0]) and ``end`` = (times[-1], vols[-1], hedge option vol at times[-1]) as the per-date loop
    passes them (float64 NumPy scalars and rows, a Python float), so each has the type it has there."""
    from .._simulation import random

    xp, sp = bk.xp, bk.special
    cores = (decision_core(static, live), decision_core(static, live, force=True) if force_first else None)
    final = tuple(j for j in live if j not in settling)

    def segment(carry: Any, seed: Any, xs: tuple, start: Any, end: Any) -> Any:
        if first:
            t0, vols0 = start
            sim = stepper.init(xp, n_paths, dtype)
            spot = stepper.observe(xp, sim)[0]
            value0 = book_greeks(xp, sp, static, tuple(range(len(static.options))), spot, t0, vols0)["price"]
            state = opened(value0, xp.zeros((n_paths,), dtype=dtype))
        else:
            state, sim, spot = carry

        def body(c: tuple, x: tuple, core: Callable[..., dict] = cores[0]) -> tuple:
            st, sim, spot = c
            k, t, v, hv, growth, dividend, flag = x
            st = st._replace(**core(xp, sp, spot, *st[: len(STATE)], k, t, v, hv))
            z = random.normals(bk, seed, k, stepper.n_normals, n_paths, dtype, antithetic=antithetic, reference=False)
            sim = stepper.advance(xp, sp, sim, z)
            nxt = stepper.observe(xp, sim)[0]
            settle = [flag if j in settling else False for j in range(len(static.options))]
            st = accrue(xp, static, st, spot, nxt, None, settle, factors=(growth, dividend))
            return st, sim, nxt

        carry = (state, sim, spot)
        if cores[1] is not None:
            carry = body(carry, tuple(x[0] for x in xs), cores[1])
            xs = tuple(x[1:] for x in xs)
        state, sim, spot = bk.scan(body, carry, xs) if xs[0].shape[0] else carry
        if not last:
            return state, sim, spot
        t, vols, hedge_vol = end
        return finish(bk, static, state, final, spot, t, vols, hedge_vol)

    return bk.jit(segment)


def run_simulated_scan(bk: Backend, plan: Plan, stepper: Any, n_paths: int, seed: int, dtype: Any, antithetic: bool) -> HedgeState:
    """:func:`hedge_simulated` on a compiling backend: simulation and hedging fused date by date in
    compiled :meth:`Backend.scan` segments (:func:`fused_segment`, cut where options settle, like
    :func:`run_scan`), with no per-date Python dispatch and no stored paths (memory O(n_paths)). The
    same ledger, shocks and operations as :func:`gpu_hedge._hedging.drivers.run` on :func:`gpu_hedge.iter_paths`' steps.
    Compiled once per (backend, plan, model step, n_paths, dtype, antithetic, segment); the seed,
    dates and vols are traced."""
    times, n_times = plan.times, plan.times.size
    static = static_plan(plan)
    host = np.dtype(dtype)
    settle_at = np.array(plan.settle_at)
    dts = [float(times[k + 1]) - float(times[k]) for k in range(n_times - 1)]
    # what run's accrue works out from its float dt, exactly (math, not NumPy's vectorised exp)
    growth = np.array([math.exp(plan.rate * d) for d in dts])
    dividend = np.array([math.expm1(plan.div * d) for d in dts])
    hvs = plan.hedge_option_vols if plan.hedge_option_vols is not None else np.zeros(n_times)
    starts = [0] + sorted({int(k) for k in settle_at if 0 < k < n_times - 1})
    carry: Any = None
    for a, b in zip(starts, [*starts[1:], n_times - 1], strict=True):
        live = tuple(j for j in range(len(plan.options)) if not 0 <= settle_at[j] <= a)
        settling = tuple(j for j in live if settle_at[j] == b)
        first, last = a == 0, b == n_times - 1
        flags = np.zeros(b - a, dtype=host)
        flags[-1] = 1.0
        xs = (np.arange(a, b, dtype=np.int64), times[a:b].astype(host), plan.hedge_vols[a:b].astype(host), hvs[a:b].astype(host),
              growth[a:b], dividend[a:b], flags)  # fmt: skip
        start = (times[0], plan.vols[0]) if first else None
        end = (float(times[-1]), plan.vols[-1], None if plan.hedge_option_vols is None else plan.hedge_option_vols[-1]) if last else None
        fn = fused_segment(bk, static, stepper, int(n_paths), dtype, bool(antithetic), live, settling, first, last, not first)
        carry = fn(carry, int(seed), xs, start, end)
    return carry
