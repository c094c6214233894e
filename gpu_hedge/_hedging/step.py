"""One date of a hedging run: the decision (trade the hedge option, then the underlying), the accrual
between dates (interest, dividends, settlements) and the final unwind, as functions of the previous
:class:`~gpu_hedge._hedging.state.HedgeState` returning the next.

The decision core is one pure function of per-path arrays and the date's numbers
(:func:`decision_core`); :func:`date_step` wraps it the way a backend runs it best (jitted, the
chunked elementwise executor, plain array calls on a cache-sized block, or the backend's own fused
step when it has the ``"native_hedge"`` capability, see :func:`native_step`). Units: shares,
currency, years; see :mod:`gpu_hedge._hedging.loop` for the ledger.

American options: at each date (after the accrual, before the decision or the final unwind)
:func:`exercise` settles at intrinsic value, on each path, the American options whose immediate
exercise is optimal for their holder (ours exercised, short ones assigned) and marks them dead
there (``state.alive``); the date's decision is then forced on those paths (as on a settlement
date), so their hedge unwinds at once. :func:`american_step` is that date; such plans never take
the fused native step or a compiled scan.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from .._backends import Backend
from .._types import Array
from .book import KERNEL, american_terms, book_greeks, book_value, kernel, remaining, settle
from .engine import _round_and_limit, per_date
from .plan import StaticPlan
from .state import STATE, HedgeState
from .strategies import Context, DeltaBand, Leland, NoHedge, Periodic, StaticHedge, WhalleyWilmott

__all__ = ["accrue", "american_step", "date_step", "decision_core", "exercise", "finish", "jitted_step", "native_step"]

#: a date's step: ``(state, spot, k, t, vols, hedge_vol) -> state``
Step = Callable[[HedgeState, Array, Any, Any, Any, Any], HedgeState]


def decision_core(plan: Any, live: tuple[int, ...], force: bool = False, bk: Any = None) -> Callable[..., dict]:
    """The pure ``core(xp, sp, spot, *state[:7], k, t, vols, hedge_vol) -> {name: array}`` of one
    decision date (the new values of :data:`STATE`). Only the Greeks the strategy looks at are
    computed (delta; gamma or vega for the band and two-instrument rules). ``force``: the date an
    option settled on (before the last date): whatever the strategy's schedule or band, the hedge (a
    hedge option, then the shares) is rebalanced to the options still ``live``, so the settled
    option's hedge is unwound then (with none live: closed out); NoHedge never trades.

    American books (``bk``: the backend their pricer runs on): ``core`` also takes ``alive`` (the
    state's mask), ``hit`` (per path, 1 where an option was exercised this date: the decision is
    forced there) and ``pre`` (options' outputs already computed, see :func:`book_greeks`); the
    Greeks the core needs are ``core.needs``."""
    strategy, costs = plan.strategy, plan.costs
    h_opt = plan.hedge_option
    tau_last = max((plan.options[j].expiry for j in live), default=0.0)
    force = force and not isinstance(strategy, NoHedge)
    needs = ("delta",) + (("gamma",) if isinstance(strategy, WhalleyWilmott) else ())
    if h_opt is not None:
        needs = tuple(dict.fromkeys((*needs, "gamma", strategy.neutralise)))
    h_kernel = kernel(tuple(dict.fromkeys(("price", "delta", "gamma", strategy.neutralise or "gamma"))))

    def core(xp: Any, sp: Any, spot: Array, holding: Array, hedge_units: Array, cash: Array, paid: Array, n_trades: Array,
             turnover: Array, limited: Array, k: Any, t: Any, vols: Any, hedge_vol: Any, alive: Any = None, hit: Any = None,
             pre: Any = None) -> dict:  # fmt: skip
        if bk is None:
            g = book_greeks(xp, sp, plan, live, spot, t, vols, needs, hedge=True)
        else:
            g = book_greeks(xp, sp, plan, live, spot, t, vols, needs, hedge=True, bk=bk, alive=alive, pre=pre)
        exposure, gamma = g["delta"], g.get("gamma", 0.0)
        # paths where an American option was exercised this date: the hedge is rebalanced there
        hit_paths = hit > 0 if hit is not None and not isinstance(strategy, NoHedge) and not force else None
        if h_opt is not None:
            gh = h_kernel(xp, sp, spot, h_opt.strike, h_opt.expiry - t, hedge_vol, plan.rate, plan.div, 1.0 if h_opt.call else -1.0)
            per = gh[strategy.neutralise] * h_opt.multiplier
            ok = True if force else strategy.trades_at(xp, k)
            if hit_paths is not None:
                ok = hit_paths | ok
            ok = ok & (per != 0)
            target = xp.where(ok, -g[strategy.neutralise] / xp.where(per != 0, per, 1.0), hedge_units)
            trade_o = target - hedge_units
            unit_price = gh["price"] * h_opt.multiplier
            c_o = plan.option_costs(xp, trade_o, unit_price)
            cash, paid, hedge_units = cash - trade_o * unit_price - c_o, paid + c_o, target
            exposure = exposure + target * h_opt.multiplier * gh["delta"]
            gamma = gamma + target * h_opt.multiplier * gh["gamma"]
        ctx = Context(k, exposure, holding, spot, gamma, tau_last - t, plan.rate, costs.proportional)
        wanted = -exposure if force else strategy.decide(xp, ctx)
        if hit_paths is not None:
            wanted = xp.where(hit_paths, -exposure, wanted)
        new, cut = _round_and_limit(xp, wanted, holding, plan.lot_size, plan.max_position)
        trade = new - holding
        size = xp.abs(trade)
        notional = size * spot
        c = costs.of_size(xp, size, spot, notional)
        return {
            "holding": new, "hedge_units": hedge_units, "cash": cash - (trade * spot + c), "costs": paid + c,
            "n_trades": n_trades + xp.astype(size > 0, spot.dtype), "turnover": turnover + notional,
            "limited": limited + xp.astype(cut, spot.dtype) if plan.max_position is not None else limited,
        }  # fmt: skip

    core.needs = needs  # type: ignore[attr-defined]
    return core


def exercise(
    bk: Backend, plan: Any, state: HedgeState, live: tuple[int, ...], spot: Array, t: float, vols: Any, names: tuple[str, ...] = ()
) -> tuple[HedgeState, Array | None, dict[int, dict[str, Array]]]:
    """Early exercise at date ``t`` (after its accrual): for each live American option, on each path
    where it is alive and immediate exercise is optimal for its holder (the pricer's
    ``early_exercise`` at this spot, remaining expiry and pricing ``vols``), the option settles at
    intrinsic value, ``units x max(phi (S - K), 0)`` into the cash (and the unhedged book's), as at
    expiry (:func:`settle`), and is dead there from now on (``alive[:, j] = 0``). The same condition
    for a long option (we exercise) and a short one (the holder exercises: we are assigned). With
    cash dividends a call is also exercised on the last date before an ex-date where its value is
    that of exercise on the eve of the dividend (:func:`_exercise_before_dividend`).

    Returns ``(state, hit, outputs)``: ``hit`` per path 1 where some option was exercised now (None
    when the book has no live American option), ``outputs[j]`` option j's outputs ``names`` computed
    in the same pricer call (so a decision at the same vols need not price again)."""
    xp = bk.xp
    if state.alive is None:
        return state, None, {}
    cols = [state.alive[:, j] for j in range(len(plan.options))]
    cash, unhedged = state.cash, state.unhedged
    hit = None
    outputs: dict[int, dict[str, Array]] = {}
    for j in live:
        o = plan.options[j]
        if not o.american:
            continue
        wanted = tuple(dict.fromkeys(("early_exercise", *names)))
        divs = remaining(plan, o, t)
        extra = (divs, plan.vol_adjust) if divs is not None else ()
        g = american_terms(bk, o, spot, o.expiry - t, vols[j], plan.rate, plan.div, wanted, *extra)
        outputs[j] = g
        early = g["early_exercise"] != 0
        if divs is not None and o.call and float(divs[0][0]) <= _next_date(plan, t) - t:
            early = early | _exercise_before_dividend(xp, o, spot, g["price"], plan.rate, float(divs[0][0]))
        now = xp.astype(early, spot.dtype) * cols[j]
        payoff = settle(xp, o, spot) * now
        cash, unhedged = cash + payoff, unhedged + payoff
        cols[j] = cols[j] - now
        hit = now if hit is None else xp.maximum(hit, now)
    if hit is None:
        return state, None, outputs
    return state._replace(cash=cash, unhedged=unhedged, alive=xp.stack(cols, axis=1)), hit, outputs


def _next_date(plan: Any, t: float) -> float:
    later = plan.times[plan.times > t + 1e-12]
    return float(later[0]) if later.size else math.inf


#: how close (relative to the strike) the price must be to the value of exercising on the eve of the
#: dividend: the Crank-Nicolson grid's accuracy (its price there is within about 2e-6 K; holding
#: instead would gain at most this much)
_EVE_TOL = 2e-5


def _exercise_before_dividend(xp: Any, o: Any, spot: Array, price: Array, rate: float, to_ex: float) -> Array:
    """Per path: an American call whose value is that of exercise just before the next ex-date,
    ``S - K exp(-r to_ex)`` (the continuous-exercise pricer's optimum when the dividend is worth
    more than the interest on the strike), when that ex-date comes before the next hedge date: the
    holder cannot wait for the eve, so exercises now (the last chance before the stock goes ex)."""
    eve = spot - o.strike * math.exp(-rate * to_ex)
    return (spot > o.strike) & (price <= eve + _EVE_TOL * o.strike)


#: an American book's date: ``(state, spot, k, t, hedge_vols, hedge_vol, pricing_vols) -> state``
AmericanStep = Callable[[HedgeState, Array, Any, Any, Any, Any, Any], HedgeState]


def american_step(bk: Backend, plan: Any, live: tuple[int, ...], force: bool = False) -> AmericanStep:
    """One date of a book holding American options: :func:`exercise` at the pricing vols, then the
    decision (:func:`decision_core` on plain backend arrays, forced where an option was just
    exercised). The American pricer runs on ``bk`` itself (its chunked executor, or its compiled
    kernel), so the core runs outside any jit or chunked executor: the generic per-date loop."""
    core = decision_core(plan, live, force, bk=bk)
    needs = core.needs  # type: ignore[attr-defined]

    def step(state: HedgeState, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any, pricing_vols: Any) -> HedgeState:
        t, vols, pv = float(t), [float(v) for v in vols], [float(v) for v in pricing_vols]
        state, hit, outputs = exercise(bk, plan, state, live, spot, t, pv, needs)
        pre = {j: g for j, g in outputs.items() if pv[j] == vols[j]}
        out = core(bk.xp, bk.special, spot, *state[: len(STATE)], k, t, vols, hedge_vol, alive=state.alive, hit=hit, pre=pre)
        return state._replace(**out)

    return step


def date_step(
    bk: Backend, plan: Any, live: tuple[int, ...], direct: bool = False, force: bool = False, native: Callable[..., Any] | None = None
) -> Step:
    """One decision date as ``step(state, spot, k, t, vols, hedge_vol) -> state``. Compiling
    backends: one jitted function with the date's numbers traced. Others: the backend's chunked
    elementwise executor (every operation is per path), or with ``direct`` plain array calls (a block
    of paths already sized for the cache), where ``native(bk, plan, live, force)`` (e.g.
    :func:`native_step`) may offer the backend's own fused step instead."""
    core = decision_core(plan, live, force)
    if "jit" in bk.capabilities:
        jitted = bk.jit(lambda arrays, spot, k, t, vols, hv: core(bk.xp, bk.special, spot, *arrays, k, t, vols, hv))

        def step(state: HedgeState, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> HedgeState:
            return state._replace(**jitted(tuple(state[: len(STATE)]), spot, k, t, vols, hedge_vol))

        return step

    if direct:
        fused = native(bk, plan, live, force) if native is not None else None
        if fused is not None:
            return fused

        def step(state: HedgeState, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> HedgeState:  # type: ignore[no-redef]
            t, vols = float(t), [float(v) for v in vols]
            return state._replace(**core(bk.xp, bk.special, spot, *state[: len(STATE)], k, t, vols, hedge_vol))

        return step

    def step(state: HedgeState, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> HedgeState:  # type: ignore[no-redef]
        t, vols = float(t), [float(v) for v in vols]

        def fn(xp: Any, sp: Any, *arrays: Array) -> dict:
            return core(xp, sp, *arrays, k, t, vols, hedge_vol)

        return state._replace(**bk.elementwise(fn, [spot, *state[: len(STATE)]], STATE, spot.dtype))

    return step


@lru_cache(maxsize=32)
def jitted_step(bk: Backend, static: StaticPlan, live: tuple[int, ...], force: bool = False) -> Step:
    """:func:`date_step` on a compiling backend, compiled once per (backend, plan, live options)
    rather than once per run (``hedge_simulated`` on JAX used to recompile every call)."""
    return date_step(bk, static, live, force=force)


def native_step(bk: Backend, plan: Any, live: tuple[int, ...], force: bool = False) -> Step | None:
    """The backend's fused delta-hedging step (capability ``"native_hedge"``, :meth:`native_hedge`:
    the NumPy backend's Numba passes) for the common rules: delta hedging of a book of options with
    Periodic, Leland, StaticHedge, NoHedge or DeltaBand, any :class:`Costs`, the Black-Scholes delta,
    no lot rounding, position limit or hedge option; None otherwise (or when the backend declines,
    e.g. without Numba). Same formulas and order of operations as :func:`decision_core`; ``force``
    as there (a settlement date: trade to the live options' target, no band)."""
    s = plan.strategy
    if "native_hedge" not in bk.capabilities or per_date(plan):
        return None  # American options (their pricer, exercise) run the generic loop
    if plan.hedge_option is not None or plan.lot_size is not None or plan.max_position is not None or plan.delta != "bs":
        return None  # the fused step computes the BS delta of the shares' trade only: the rest runs ``core``
    band: tuple[float, bool, bool] | None = None
    if type(s) in (Periodic, Leland):
        every = s.every
        trades = lambda k: k % every == 0  # noqa: E731
    elif type(s) is StaticHedge:
        trades = lambda k: k == 0  # noqa: E731
    elif type(s) is NoHedge:
        trades = lambda k: False  # noqa: E731
    elif type(s) is DeltaBand:
        band = (float(s.width), bool(s.relative), bool(s.to_edge))
        trades = lambda k: True  # noqa: E731
    else:
        return None
    if force and type(s) is not NoHedge:
        band = None
        trades = lambda k: True  # noqa: E731
    fused = bk.native_hedge(band, plan.costs)  # type: ignore[attr-defined]
    if fused is None:
        return None
    r, q = plan.rate, plan.div

    def step(state: HedgeState, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> HedgeState:
        if not trades(k):
            return state
        legs = []
        for j in live:
            o, T, vol = plan.options[j], plan.options[j].expiry - float(t), float(vols[j])
            # the scalars exactly as black_kernel computes them for a scalar expiry and vol
            v = vol * math.sqrt(T)  # correctly rounded, as np.sqrt
            phi = 1.0 if o.call else -1.0
            legs.append((o.strike, (r - q + 0.5 * vol * vol) * T, v, phi, phi * np.exp(-q * T), o.units))
        holding, cash, paid, n_trades, turnover = fused(spot, legs, state.holding, state.cash, state.costs, state.n_trades, state.turnover)
        # built field by field: a date's Python work is what the blocks' threads share under the GIL
        return HedgeState(
            holding, state.hedge_units, cash, paid, n_trades, turnover, state.limited, state.unhedged, state.premium, state.alive
        )

    return step


def accrue(xp: Any, plan: Any, state: HedgeState, prev: Array, spot: Array, dt: Any, settle_flags: Any, factors: Any = None) -> HedgeState:
    """Date k > 0 before its decision: interest and dividends since the last date (``dt`` years),
    then the options with ``settle_flags[j]`` true settle at intrinsic value (an American option only
    on the paths where it is still alive). ``factors``:
    ``(exp(rate dt), expm1(div dt))`` worked out on the host in float64 from a float ``dt`` and traced
    (the fused simulation scan), each cast to the dtype of the array it scales as a Python float is:
    the numbers of ``dt`` as a float."""
    if factors is None:
        growth = xp.exp(plan.rate * dt) if not isinstance(dt, float) else math.exp(plan.rate * dt)
        dividend = xp.expm1(plan.div * dt) if not isinstance(dt, float) else math.expm1(plan.div * dt)
        grows, pays = plan.rate or not isinstance(dt, float), plan.div or not isinstance(dt, float)

        def scaled(a: Array, f: Any) -> Array:
            return a * f
    else:
        (growth, dividend), grows, pays = factors, bool(plan.rate), bool(plan.div)

        def scaled(a: Array, f: Any) -> Array:
            return a * xp.astype(f, a.dtype)

    if not (grows or pays or any(f is not False for f in settle_flags)):
        return state  # nothing accrues between these dates
    cash, unhedged = state.cash, state.unhedged
    if grows:
        cash, unhedged = scaled(cash, growth), scaled(unhedged, growth)
    if pays:
        cash = cash + scaled(state.holding * prev, dividend)
    for j, o in enumerate(plan.options):
        if settle_flags[j] is False:
            continue
        payoff = settle(xp, o, spot) * (1.0 if settle_flags[j] is True else settle_flags[j])
        if o.american and state.alive is not None:
            payoff = payoff * state.alive[:, j]
        cash, unhedged = cash + payoff, unhedged + payoff
    return state._replace(cash=cash, unhedged=unhedged)


def dividends_between(plan: Any, t_prev: float, t: float) -> float:
    """Cash per share the stock paid in ``(t_prev, t]`` (``hedge(dividends=)``), each amount grown at
    ``rate`` from its ex-date to ``t``: what a share held over the interval has earned by ``t``."""
    times, amounts = plan.dividends
    sel = (times > t_prev) & (times <= t)
    return float(np.sum(amounts[sel] * np.exp(plan.rate * (t - times[sel])))) if sel.any() else 0.0


def cash_dividends(plan: Any, state: HedgeState, t_prev: float, t: float) -> HedgeState:
    """The stock's cash dividends going ex in ``(t_prev, t]`` paid on the holding carried over the
    interval into the cash (:func:`dividends_between`); the unhedged book holds no shares."""
    per_share = dividends_between(plan, t_prev, t)
    return state._replace(cash=state.cash + state.holding * per_share) if per_share else state


def finish(
    bk: Backend, plan: Any, state: HedgeState, live: tuple[int, ...], spot: Array, t: float, vols: Any, hedge_vol: Any, marks: Any = None
) -> HedgeState:
    """The last date t_n (after its accrual): the options still ``live`` are marked (``marks``, that
    date's row of real values, or the model at ``vols``), the shares and any hedge option (at
    ``hedge_vol``) unwound at the last price, their costs charged. Everything is cash afterwards."""
    xp, sp = bk.xp, bk.special
    cash, unhedged = state.cash, state.unhedged
    if live:
        mark = book_value(xp, sp, plan, live, spot, t, vols, marks, bk=bk, alive=state.alive)
        cash, unhedged = cash + mark, unhedged + mark
    holding = state.holding
    c = plan.costs(xp, -holding, spot)
    cash = cash + holding * spot - c
    paid = state.costs + c
    state = state._replace(
        unhedged=unhedged, costs=paid, n_trades=state.n_trades + xp.astype(holding != 0, spot.dtype),
        turnover=state.turnover + xp.abs(holding) * spot, holding=xp.zeros_like(holding),
    )  # fmt: skip
    h_opt = plan.hedge_option
    if h_opt is not None:
        gh = KERNEL(xp, sp, spot, h_opt.strike, h_opt.expiry - t, hedge_vol, plan.rate, plan.div, 1.0 if h_opt.call else -1.0)
        units = state.hedge_units
        unit_price = gh["price"] * h_opt.multiplier
        c_o = plan.option_costs(xp, -units, unit_price)
        cash = cash + units * unit_price - c_o
        state = state._replace(costs=state.costs + c_o, hedge_units=xp.zeros_like(units))
    return state._replace(cash=cash)
