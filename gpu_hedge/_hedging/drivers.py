"""The per-date drivers of a hedging run: dates outer (:func:`run`), and paths outer in cache-sized
blocks on a backend's thread pool (:func:`run_blocks`, backends with the ``"path_blocks"``
capability). The compiled scans are in :mod:`gpu_hedge._hedging.scan`.

A driver reads the prices one date at a time (memory O(n_paths)), opens the book at t_0, then at each
date accrues (:func:`~gpu_hedge._hedging.step.accrue`), decides (a date step of
:mod:`gpu_hedge._hedging.step`) and at the last date unwinds (:func:`~gpu_hedge._hedging.step.finish`),
returning the final :class:`~gpu_hedge._hedging.state.HedgeState`.

A book holding an American option runs this loop on every backend (never a fused native step or a
compiled scan): each date after its accrual first settles the options exercised there
(:func:`~gpu_hedge._hedging.step.exercise`, the per-path ``alive`` mask of the state), then decides
(:func:`~gpu_hedge._hedging.step.american_step`) or, at the last date, unwinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._backends import Backend
from .._types import Array
from .book import book_value
from .engine import per_date
from .plan import Plan, static_plan
from .state import HedgeState, opened
from .step import accrue, american_step, cash_dividends, date_step, exercise, finish, jitted_step

__all__ = ["last_numbers", "run", "run_blocks"]


def last_numbers(plan: Plan) -> tuple[Any, Any, Any]:
    """What :func:`~gpu_hedge._hedging.step.finish` reads of the plan at the last date: the vols, the
    hedge option's vol and the marks (None when the plan has none)."""
    hv = plan.hedge_option_vols[-1] if plan.hedge_option_vols is not None else None
    return plan.vols[-1], hv, plan.marks[-1] if plan.marks is not None else None


def run(
    bk: Backend, plan: Plan, row: Callable[[int], Array], n_paths: int, dtype: Any, record: Callable[..., None] | None = None,
    direct: bool = False, native: Callable[..., Any] | None = None,
) -> HedgeState:  # fmt: skip
    """The loop over dates; ``row(k)`` gives the prices at date k as a backend array (n_paths,);
    ``record`` (ledger) is called after each date as ``record(k, t, spot, state, live)``; ``direct``
    and ``native``: see :func:`~gpu_hedge._hedging.step.date_step`. American books: every date runs
    :func:`~gpu_hedge._hedging.step.american_step` (exercise, then the decision) on plain arrays."""
    xp, sp = bk.xp, bk.special
    times, n_times = plan.times, plan.times.size
    zeros = xp.zeros((n_paths,), dtype=dtype)
    live = tuple(range(len(plan.options)))
    spot = row(0)
    marks0 = plan.marks[0] if plan.marks is not None else None
    american = per_date(plan)  # American options or cash dividends: the pricers on bk, the alive mask
    alive = xp.ones((n_paths, len(plan.options)), dtype=dtype) if american else None
    state = opened(book_value(xp, sp, plan, live, spot, times[0], plan.vols[0], marks0, bk=bk), zeros, alive)
    prev = spot
    steps: dict[tuple[tuple[int, ...], bool], Callable[..., Any]] = {}
    jit = "jit" in bk.capabilities and not american
    # the dates' numbers as Python floats once, and the settlement dates as a set: the per-date Python
    # work is what a backend's path-block threads share under the GIL
    t_list, settles = [float(t) for t in times], frozenset(plan.settle_at)
    no_settlement = [False] * len(plan.options)
    for k in range(n_times):
        t = t_list[k]
        force = False
        if k > 0:
            spot = row(k)
            force = k in settles  # an option settled: the hedge is rebalanced to what is left
            flags = [s == k for s in plan.settle_at] if force else no_settlement
            state = accrue(xp, plan, state, prev, spot, t - t_list[k - 1], flags)
            if plan.dividends is not None:
                state = cash_dividends(plan, state, t_list[k - 1], t)
            if force:
                live = tuple(j for j in live if plan.settle_at[j] != k)
        if k < n_times - 1:
            hv = plan.hedge_option_vols[k] if plan.hedge_option_vols is not None else 0.0
            key = (live, force)
            if key not in steps:
                steps[key] = (
                    american_step(bk, plan, live, force) if american
                    else jitted_step(bk, static_plan(plan), live, force) if jit
                    else date_step(bk, plan, live, direct=direct, force=force, native=native)
                )  # fmt: skip
            if american:
                state = steps[key](state, spot, k, t, plan.hedge_vols[k], hv, plan.vols[k])
            elif jit:  # the date's numbers in the run's dtype: a float64 scalar would promote a float32 run
                numbers = (bk.asarray(t, dtype), bk.asarray(plan.hedge_vols[k], dtype), bk.asarray(hv, dtype))
                state = steps[key](state, spot, k, *numbers)
            else:
                state = steps[key](state, spot, k, t, plan.hedge_vols[k], hv)
        else:
            if american:  # exercised now or marked: the same value (an exercised option is worth its intrinsic value)
                state = exercise(bk, plan, state, live, spot, t, [float(v) for v in plan.vols[k]])[0]
            state = finish(bk, plan, state, live, spot, t, *last_numbers(plan))
        if record is not None:
            record(k, t, spot, state, live)
        prev = spot
    return state


def run_blocks(
    bk: Backend, plan: Plan, rows_of: Callable[[int, int, Backend], Callable[[int], np.ndarray]], n_paths: int, dtype: Any,
    native: Callable[..., Any] | None = None,
) -> HedgeState:  # fmt: skip
    """Paths outer, on a backend with the ``"path_blocks"`` capability (NumPy): the paths are cut into
    blocks small enough to stay in cache and each block runs all dates
    (:meth:`map_path_blocks`, on the backend's thread pool). ``rows_of(lo, hi, serial)`` returns the
    block's ``row(k)`` (prices of paths lo ... hi-1 at date k, read in date order; ``serial`` a
    one-thread copy of the backend for work inside a block). Per-path results do not depend on the
    block size or the thread count. American books run as one block (see the comment below)."""

    if per_date(plan):
        # the American pricer runs its own threaded executor (bk.elementwise): one block of all paths,
        # on the backend itself (a pool thread calling into the same pool could wait on itself)
        return run(bk, plan, rows_of(0, n_paths, bk), n_paths, dtype, direct=True)

    def one(lo: int, hi: int, serial: Backend) -> HedgeState:
        return run(bk, plan, rows_of(lo, hi, serial), hi - lo, dtype, direct=True, native=native)

    states = bk.map_path_blocks(one, n_paths)  # type: ignore[attr-defined]
    if len(states) == 1:
        return states[0]
    return HedgeState(*(None if parts[0] is None else bk.xp.concatenate(parts) for parts in zip(*states, strict=True)))
