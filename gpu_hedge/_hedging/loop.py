"""``hedge``: the streaming hedging loop over dates, on simulated paths or a historical series.

Ledger conventions (per path, currency units):

- t_0: the book's options are bought or sold at their value (model value at the pricing vol, or
  ``marks[0]``): ``cash = -sum(quantity x multiplier x value)`` (a short option brings its premium in).
- each date t_k, k >= 1: cash accrues from t_{k-1} at ``rate`` and earns the continuous dividend
  ``div`` on the shares held (paid on the price at t_{k-1}); options expiring at t_k settle at
  intrinsic value on the spot of t_k (cash-settled). An expiry inside the run must be a date of
  ``times`` (an expiry between two dates is refused: the payoff needs the spot at expiry and no
  spot is interpolated). An expiry after the last date: the option is marked there (below).
- settlement date t_k (k < n): the decision is forced, whatever the strategy's schedule or
  no-trade band (NoHedge excepted, it never trades): the hedge option, then the shares, are
  rebalanced to what the options still alive need, so the settled option's hedge is unwound then;
  with no option left the hedge is closed out, its cost charged, and the later dates only carry
  cash (interest). Hedging a 1-year option over 2 years is hedging it to its expiry and then
  holding the cash.
- each decision date t_k, k = 0 ... n-1: a hedge option first (DeltaGamma/DeltaVega), then the
  underlying, each trade paid at the observed price plus its cost.
- t_n: options expiring then settle at intrinsic value, the others are marked (model value at the
  last vol, or ``marks[-1]``); the hedge (and any hedge option) is unwound at the last price, its cost charged.
- ``pnl`` is the cash at t_n; ``hedging_error = pnl + costs`` (P&L before costs); ``unhedged`` is
  the same book's P&L with no hedge (premium accrued plus settlement).

Greeks are the package's Black-Scholes-Merton closed forms at each date. Memory is O(n_paths):
prices are read one date at a time; a per-date ledger is built only for the path asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from .._backends import Backend, get_backend, to_numpy
from .._pricing.black_scholes import black_kernel
from .._types import Array
from ._checks import check_dtype, real_array, real_scalar
from .costs import Costs
from .engine import Option, _round_and_limit, check_limits
from .result import HedgeResult
from .smile import is_surface, minimum_variance_delta, resolve_delta, smile_delta, surface_vols
from .strategies import Context, DeltaBand, Leland, NoHedge, Periodic, StaticHedge, Strategy, WhalleyWilmott, leland_vol

__all__ = ["hedge", "hedge_simulated"]

_ALL = ("price", "delta", "gamma", "vega", "theta")
_KERNEL = black_kernel("bsm", _ALL)


@lru_cache(maxsize=64)
def _kernel(names: tuple[str, ...]) -> Callable[..., dict]:
    """The Black-Scholes-Merton kernel for ``names``, regular region only (expiry, vol, strike > 0:
    the loop prices options strictly before their expiry, with vols checked > 0)."""
    return black_kernel("bsm", names, regular_only=True)


#: tolerance (years) for an expiry to fall on a date of ``times`` (about 0.03 s)
_ON_GRID = 1e-9


@dataclass(frozen=True)
class Plan:
    """Everything the loop needs, checked once (host NumPy arrays and Python scalars)."""

    times: np.ndarray  # (n_times,)
    options: tuple[Option, ...]
    vols: np.ndarray  # (n_times, n_options): pricing vols
    hedge_vols: np.ndarray  # (n_times, n_options): vols of the deltas the strategy hedges (Leland)
    settle_at: tuple[int, ...]  # per option: date index of settlement, or -1 (marked at the end)
    rate: float
    div: float
    strategy: Strategy
    costs: Costs
    option_costs: Costs
    lot_size: float | None
    max_position: float | None
    marks: np.ndarray | None  # (n_times, n_options)
    hedge_option: Option | None
    hedge_option_vols: np.ndarray | None  # (n_times,)
    #: the delta decisions hedge: "bs", "smile" (hedge_vols then (n_times, 2 n_options): the vols, then
    #: each option's slope d sigma / dk) or a smile.MinimumVariance
    delta: Any = "bs"


# --- checks ---------------------------------------------------------------------------------------


def _options(options: Any) -> tuple[Option, ...]:
    opts = (options,) if isinstance(options, Option) else tuple(options) if isinstance(options, Sequence) else ()
    if not opts or not all(isinstance(o, Option) for o in opts):
        raise ValueError("options must be one gpu_hedge.Option or a non-empty sequence of them")
    return opts


def _dates_as_years(t: np.ndarray) -> np.ndarray:
    """Dates (datetime64, or date/datetime objects) as years since the first date, ACT/365:
    ``(date - first date) / 365 days`` (fractional days kept: intraday stamps stay distinct). For
    whole days this is :func:`gpu_hedge.read_prices`' clock exactly."""
    t = np.asarray(t, dtype="datetime64[ns]")
    nat = np.flatnonzero(np.isnat(t))
    if nat.size:
        raise ValueError(f"times[{nat[0]}] is NaT (not a date)")
    return (t - t[0]) / np.timedelta64(1, "D") / 365.0


def _times(times: Any, n_times: int) -> np.ndarray:
    import datetime

    if isinstance(times, str | bytes):
        raise ValueError(f"times = {times!r} is a string; expected ({n_times},) years or dates")
    raw = np.asarray(to_numpy(times) if hasattr(times, "dtype") else times)
    if raw.dtype.kind == "O" and raw.size and all(isinstance(x, datetime.date) for x in raw.ravel()):
        raw = raw.astype("datetime64[ns]")
    if raw.dtype.kind == "M":
        if raw.shape != (n_times,):
            raise ValueError(f"times has shape {raw.shape}; prices have {n_times} dates, so times must have shape ({n_times},)")
        t = _dates_as_years(raw)
    else:
        check_dtype("times", raw.dtype)
        t = np.asarray(raw, dtype=np.float64)
    if t.shape != (n_times,):
        raise ValueError(f"times has shape {t.shape}; prices have {n_times} dates, so times must have shape ({n_times},)")
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise ValueError(f"times[{bad[0]}] = {t[bad[0]]!r} must be finite (years)")
    step = np.flatnonzero(np.diff(t) <= 0)
    if step.size:
        i = int(step[0]) + 1
        if raw.dtype.kind == "M":
            raise ValueError(f"times must be strictly increasing: times[{i}] = {raw[i]} <= times[{i - 1}] = {raw[i - 1]}")
        raise ValueError(f"times must be strictly increasing: times[{i}] = {t[i]!r} <= times[{i - 1}] = {t[i - 1]!r}")
    return t


def _per_date(name: str, value: Any, n_times: int, n_options: int) -> np.ndarray:
    """A vol (scalar, (n_times,) or (n_times, n_options)) as an (n_times, n_options) array > 0."""
    v = real_array(name, value)
    if v.ndim == 1 and v.shape[0] == n_times:
        v = v[:, None]
    if v.ndim > 2 or (v.ndim >= 1 and v.shape[0] not in (1, n_times)) or (v.ndim == 2 and v.shape[1] not in (1, n_options)):
        raise ValueError(
            f"{name} has shape {v.shape}; expected a scalar, ({n_times},) per date or ({n_times}, {n_options}) per date and option"
        )
    v = np.broadcast_to(v, (n_times, n_options))
    bad = np.argwhere(~(np.isfinite(v) & (v > 0)))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"{name}[{i}, {j}] = {v[i, j]!r} must be finite and > 0")
    return v


def _prices_shape(prices: Any) -> tuple[int, int, bool]:
    shape = tuple(prices.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"prices has shape {shape}; expected (n_times,) (one series) or (n_times, n_paths)")
    if shape[0] < 2:
        raise ValueError(f"prices has {shape[0]} date(s); hedging needs at least 2")
    if len(shape) == 2 and shape[1] < 1:
        raise ValueError("prices has no paths")
    return shape[0], (shape[1] if len(shape) == 2 else 1), len(shape) == 1


def _check_prices(bk: Backend, prices: Any) -> None:
    """Finite and > 0 everywhere, on the prices' own device, a few dates at a time (no full-size temporaries)."""
    xp = bk.xp
    n = int(prices.shape[0])
    step = max(1, (1 << 20) // max(1, int(np.prod(prices.shape[1:], dtype=np.int64))))
    for a in range(0, n, step):
        chunk = prices[a : a + step]
        # two reductions, no temporaries: a NaN makes both NaN, which fails both comparisons
        ok = (xp.min(chunk) > 0) & (xp.max(chunk) < math.inf)
        if not bool(to_numpy(ok)):
            bad = ~(np.isfinite(to_numpy(chunk)) & (to_numpy(chunk) > 0))
            i = int(np.flatnonzero(np.ravel(bad))[0])
            idx = list(np.unravel_index(i, bad.shape))
            idx[0] += a
            value = np.ravel(to_numpy(chunk))[i]
            raise ValueError(f"prices[{', '.join(map(str, idx))}] = {value!r} must be finite and > 0")


def _settlement(options: tuple[Option, ...], times: np.ndarray, names: tuple[str, ...], grid: tuple[float, int] | None) -> tuple[int, ...]:
    """Per option, the index of the date it settles on (its expiry, which must be a date of
    ``times``), or -1 when it expires after the last date (marked there)."""
    out = []
    for i, o in enumerate(options):
        if o.expiry <= times[0]:
            first = f"the first date, {float(times[0])!r}" if grid is not None else f"the first date times[0] = {float(times[0])!r}"
            raise ValueError(f"{names[i]}.expiry = {o.expiry!r} is not after {first}")
        if o.expiry > times[-1] + _ON_GRID:
            out.append(-1)
            continue
        k = int(np.argmin(np.abs(times - o.expiry)))
        if abs(times[k] - o.expiry) > _ON_GRID:
            hi = int(np.searchsorted(times, o.expiry))
            if grid is None:
                where = f"times[{hi - 1}] = {float(times[hi - 1])!r} and times[{hi}] = {float(times[hi])!r}"
                fix = "make the expiry one of times"
            else:
                horizon, n_steps = grid
                where = f"the dates {float(times[hi - 1])!r} and {float(times[hi])!r} (horizon = {horizon!r}, n_steps = {n_steps!r})"
                fix = "choose n_steps so that the expiry is a whole number of steps of horizon / n_steps"
            raise ValueError(
                f"{names[i]}.expiry = {o.expiry!r} falls between {where}: an option expiring inside the run settles at its expiry, "
                f"on the spot of that date, so the expiry must be a date of the run (no spot is interpolated); {fix}"
            )
        out.append(k)
    return tuple(out)


def make_plan(
    times: np.ndarray,
    n_times: int,
    options: Any,
    *,
    vol: Any,
    rate: float,
    div: float,
    strategy: Strategy,
    costs: Costs,
    option_costs: Costs | None,
    lot_size: float | None,
    max_position: float | None,
    marks: Any,
    grid: tuple[float, int] | None = None,
    delta: Any = "bs",
    mv: Any = None,
) -> Plan:
    """The checked plan; ``grid`` = ``(horizon, n_steps)`` when ``times`` was built by
    :func:`hedge_simulated` from them (messages then name those, not ``times``). ``vol`` may be a
    surface (see :mod:`gpu_hedge._hedging.smile`), ``delta`` / ``mv`` the delta model."""
    opts = _options(options)
    names = ("options",) if isinstance(options, Option) else tuple(f"options[{i}]" for i in range(len(opts)))
    if not isinstance(strategy, Strategy):
        raise ValueError(f"strategy must be a gpu_hedge strategy (Periodic, DeltaBand, ...), got {type(strategy).__name__}")
    if not isinstance(costs, Costs) or not (option_costs is None or isinstance(option_costs, Costs)):
        raise ValueError("costs and option_costs must be gpu_hedge.Costs")
    src = "the model's " if grid is not None else ""
    rate, div = (real_scalar(f"{src}{name}", v) for name, v in (("rate", rate), ("div", div)))
    check_limits(lot_size, max_position)
    t = _times(times, n_times)
    model = resolve_delta(delta, mv)
    surface = is_surface(vol)
    if surface:
        vols, slopes = surface_vols(vol, t, [o.strike for o in opts], [o.expiry for o in opts])
    else:
        vols = _per_date("vol", vol, n_times, len(opts)).copy()
        slopes = np.zeros_like(vols)
    for j, o in enumerate(opts):
        if o.vol is not None:
            vols[:, j] = o.vol
            slopes[:, j] = 0.0
    hedge_vols = vols
    if isinstance(strategy, Leland):
        dt = float(np.mean(np.diff(t))) * strategy.every
        hedge_vols = np.array(
            [[leland_vol(v, costs.proportional, dt, short=o.quantity < 0) for v, o in zip(row, opts, strict=True)] for row in vols]
        )
    h_opt, h_vols = strategy.hedge_option, None
    if h_opt is not None:
        if not isinstance(h_opt, Option):
            raise ValueError("the strategy's hedge_option must be a gpu_hedge.Option")
        if h_opt.expiry <= t[-1] + _ON_GRID:
            last = f"horizon = {grid[0]!r}" if grid is not None else f"the last date times[-1] = {float(t[-1])!r}"
            raise ValueError(f"hedge_option.expiry = {h_opt.expiry!r} must be after {last}")
        if h_opt.vol is not None:
            h_vols = np.full(n_times, h_opt.vol)
        elif surface:
            h_vols = surface_vols(vol, t, [h_opt.strike], [h_opt.expiry])[0][:, 0].copy()
        else:
            h_vols = _per_date("vol", vol, n_times, len(opts))[:, 0].copy()
    if model == "smile":  # the decisions read each option's slope after the vols (see _book_greeks)
        hedge_vols = np.concatenate([hedge_vols, slopes], axis=1)
    m = None
    if marks is not None:
        m = real_array("marks", marks)
        if m.ndim == 1 and m.shape[0] == n_times:
            m = m[:, None]
        if m.shape != (n_times, len(opts)):
            raise ValueError(f"marks has shape {m.shape}; expected ({n_times},) for one option or ({n_times}, {len(opts)})")
        bad = np.argwhere(~(np.isfinite(m) & (m >= 0)))
        if bad.size:
            i, j = bad[0]
            raise ValueError(f"marks[{i}, {j}] = {m[i, j]!r} must be finite and >= 0")
    return Plan(
        t, opts, vols, hedge_vols, _settlement(opts, t, names, grid), float(rate), float(div), strategy, costs,
        costs if option_costs is None else option_costs, lot_size, max_position, m, h_opt, h_vols, model,
    )  # fmt: skip


# --- one date -------------------------------------------------------------------------------------


class State(dict):
    """Per-path running arrays (holding, hedge_units, cash, costs, n_trades, turnover, unhedged, limited)."""


def _book_greeks(
    xp: Any, sp: Any, plan: Plan, live: tuple[int, ...], spot: Array, t: Any, vols: Any, names: tuple[str, ...] = _ALL,
    hedge: bool = False,
) -> dict[str, Array]:  # fmt: skip
    """Sums over the live options of units x Greeks ``names`` at ``vols`` (per option), at dates before
    expiry: the package's Black-Scholes-Merton kernel (regular region only; with the date's expiry and
    vol as scalars, what is common to all paths is computed once, and only what ``names`` need).

    ``hedge``: the Greeks a decision hedges, whose delta is the plan's delta model
    (:mod:`gpu_hedge._hedging.smile`): ``"smile"`` reads each option's slope d sigma / dk at
    ``vols[n_options + j]`` (the plan's hedge vols carry them after the vols), ``MinimumVariance``
    the Hull-White correction; both need the options' vegas (computed, not returned)."""
    model = getattr(plan, "delta", "bs") if hedge and "delta" in names else "bs"
    kernel = _kernel(names if model == "bs" else tuple(dict.fromkeys((*names, "vega"))))
    n_opt = len(plan.options)
    total: dict[str, Array] = {}
    for j in live:
        o = plan.options[j]
        g = kernel(xp, sp, spot, o.strike, o.expiry - t, vols[j], plan.rate, plan.div, 1.0 if o.call else -1.0)
        if model == "smile":
            g = {**g, "delta": smile_delta(g["delta"], g["vega"], spot, vols[n_opt + j])}
        elif model != "bs":
            d = minimum_variance_delta(g["delta"], g["vega"], spot, o.expiry - t, model.of(o.call), bool(o.call), plan.div, xp)
            g = {**g, "delta": d}
        for name in names:
            term = g[name] if o.units == 1 else o.units * g[name]
            total[name] = total[name] + term if name in total else term
    if not total:
        total = dict.fromkeys(names, xp.zeros_like(spot))
    return total


#: the per-path running arrays a decision date updates, in this order
STATE = ("holding", "hedge_units", "cash", "costs", "n_trades", "turnover", "limited")


def _compiled(
    bk: Backend, plan: Plan, live: tuple[int, ...], raw: bool = False, direct: bool = False, force: bool = False
) -> Callable[..., dict]:
    """``(state, spot, k, t, vols, hedge_vol) -> state``: one decision date. Only the Greeks the
    strategy looks at are computed (delta; gamma or vega for the band and two-instrument rules).
    ``force``: the date an option settled on (before the last date): whatever the strategy's
    schedule or band, the hedge (a hedge option, then the shares) is rebalanced to the options still
    ``live``, so the settled option's hedge is unwound then (with none live: closed out); NoHedge
    never trades.
    JAX: one jitted function with the date's numbers traced. NumPy: the backend's chunked,
    multi-threaded elementwise executor (every operation here is per path), or with ``direct`` plain
    NumPy calls (a block of paths already sized for the cache). ``raw``: the pure
    ``core(xp, sp, spot, *state, k, t, vols, hedge_vol)`` itself."""
    strategy, costs = plan.strategy, plan.costs
    h_opt = plan.hedge_option
    tau_last = max((plan.options[j].expiry for j in live), default=0.0)
    force = force and not isinstance(strategy, NoHedge)
    needs = ("delta",) + (("gamma",) if isinstance(strategy, WhalleyWilmott) else ())
    if h_opt is not None:
        needs = tuple(dict.fromkeys((*needs, "gamma", strategy.neutralise)))
    h_kernel = _kernel(tuple(dict.fromkeys(("price", "delta", "gamma", strategy.neutralise or "gamma"))))

    def core(xp: Any, sp: Any, spot: Array, holding: Array, hedge_units: Array, cash: Array, paid: Array, n_trades: Array,
             turnover: Array, limited: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> dict:  # fmt: skip
        g = _book_greeks(xp, sp, plan, live, spot, t, vols, needs, hedge=True)
        exposure, gamma = g["delta"], g.get("gamma", 0.0)
        if h_opt is not None:
            gh = h_kernel(xp, sp, spot, h_opt.strike, h_opt.expiry - t, hedge_vol, plan.rate, plan.div, 1.0 if h_opt.call else -1.0)
            per = gh[strategy.neutralise] * h_opt.multiplier
            ok = (True if force else strategy.trades_at(xp, k)) & (per != 0)
            target = xp.where(ok, -g[strategy.neutralise] / xp.where(per != 0, per, 1.0), hedge_units)
            trade_o = target - hedge_units
            unit_price = gh["price"] * h_opt.multiplier
            c_o = plan.option_costs(xp, trade_o, unit_price)
            cash, paid, hedge_units = cash - trade_o * unit_price - c_o, paid + c_o, target
            exposure = exposure + target * h_opt.multiplier * gh["delta"]
            gamma = gamma + target * h_opt.multiplier * gh["gamma"]
        ctx = Context(k, exposure, holding, spot, gamma, tau_last - t, plan.rate, costs.proportional)
        wanted = -exposure if force else strategy.decide(xp, ctx)
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

    if raw:
        return core
    if "jit" in bk.capabilities:
        jitted = bk.jit(lambda state, spot, k, t, vols, hv: core(bk.xp, bk.special, spot, *(state[n] for n in STATE), k, t, vols, hv))

        def step(state: dict, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> dict:
            return {**state, **jitted({n: state[n] for n in STATE}, spot, k, t, vols, hedge_vol)}

        return step

    if direct:
        native = _native_step(plan, live, force) if bk.name == "numpy" and not raw else None
        if native is not None:
            return native

        def step(state: dict, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> dict:  # type: ignore[no-redef]
            return {**state, **core(bk.xp, bk.special, spot, *(state[n] for n in STATE), k, float(t), [float(v) for v in vols], hedge_vol)}

        return step

    def step(state: dict, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> dict:  # type: ignore[no-redef]
        t, vols = float(t), [float(v) for v in vols]

        def kernel(xp: Any, sp: Any, *arrays: Array) -> dict:
            return core(xp, sp, *arrays, k, t, vols, hedge_vol)

        out = bk.elementwise(kernel, [spot, *(state[n] for n in STATE)], STATE, spot.dtype)
        return {**state, **out}

    return step


def _native_step(plan: Plan, live: tuple[int, ...], force: bool = False) -> Callable[..., dict] | None:
    """The NumPy backend's compiled step (:mod:`cpu_fallback._hedge`) for the common rules: delta
    hedging of a book of options with Periodic, Leland, StaticHedge, NoHedge or DeltaBand, any
    :class:`Costs`, no lot rounding, position limit or hedge option; None otherwise (or without
    Numba, or with ``GPU_HEDGE_NUMBA=0``). Same formulas and order of operations as ``core``;
    ``force`` as there (a settlement date: trade to the live options' target, no band)."""
    from cpu_fallback._ndtr import _loop

    s = plan.strategy
    if plan.hedge_option is not None or plan.lot_size is not None or plan.max_position is not None or not _loop():
        return None
    if plan.delta != "bs":  # the compiled step computes the BS delta only: smile and MV deltas run ``core``
        return None
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
    from cpu_fallback import _hedge

    r, q = plan.rate, plan.div

    def step(state: dict, spot: Array, k: Any, t: Any, vols: Any, hedge_vol: Any) -> dict:
        if not trades(k):
            return state
        legs = []
        for j in live:
            o, T, vol = plan.options[j], plan.options[j].expiry - float(t), float(vols[j])
            # the scalars exactly as black_kernel computes them for a scalar expiry and vol
            v = vol * np.sqrt(T)
            phi = 1.0 if o.call else -1.0
            legs.append((o.strike, (r - q + 0.5 * vol * vol) * T, v, phi, phi * np.exp(-q * T), o.units))
        # no option left (all settled): the book's delta is 0 (book_delta of no legs is not defined)
        exposure = _hedge.book_delta(spot, legs) if legs else np.zeros(spot.shape[0])
        return {**state, **_hedge.trade(exposure, spot, state, band, plan.costs)}

    return step


def _settle(xp: Any, o: Option, spot: Array) -> Array:
    phi = 1.0 if o.call else -1.0
    return o.units * xp.maximum(phi * (spot - o.strike), 0.0)


def run(
    bk: Backend, plan: Plan, row: Callable[[int], Array], n_paths: int, dtype: Any, record: Callable[..., None] | None = None,
    direct: bool = False,
) -> State:  # fmt: skip
    """The loop; ``row(k)`` gives the prices at date k as a backend array (n_paths,); ``record``
    (ledger) is called after each date with the state and that date's numbers; ``direct``: see
    :func:`_compiled`."""
    xp, sp = bk.xp, bk.special
    times, n_times = plan.times, plan.times.size
    zeros = xp.zeros((n_paths,), dtype=dtype)
    live = tuple(range(len(plan.options)))
    spot = row(0)
    if plan.marks is not None:
        value0 = sum(o.units * float(plan.marks[0, j]) for j, o in enumerate(plan.options)) + zeros
    else:
        value0 = _book_greeks(xp, sp, plan, live, spot, times[0], plan.vols[0])["price"]
    state = State(
        holding=zeros, hedge_units=zeros, cash=-value0, costs=zeros, n_trades=zeros, turnover=zeros, limited=zeros,
        unhedged=-value0, premium=value0,
    )  # fmt: skip
    prev = spot
    steps: dict[tuple[tuple[int, ...], bool], Callable[..., Any]] = {}
    jit = "jit" in bk.capabilities
    for k in range(n_times):
        t = float(times[k])
        force = False
        if k > 0:
            spot = row(k)
            state = State(_accrue(xp, plan, state, prev, spot, t - float(times[k - 1]), [s == k for s in plan.settle_at]))
            force = k in plan.settle_at  # an option settled: the hedge is rebalanced to what is left
            live = tuple(j for j in live if plan.settle_at[j] != k)
        if k < n_times - 1:
            hv = plan.hedge_option_vols[k] if plan.hedge_option_vols is not None else 0.0
            key = (live, force)
            if key not in steps:
                steps[key] = (
                    _jitted_step(bk, static_plan(plan), live, force) if jit else _compiled(bk, plan, live, direct=direct, force=force)
                )
            if jit:  # the date's numbers in the run's dtype: a float64 scalar would promote a float32 run
                numbers = (bk.asarray(t, dtype), bk.asarray(plan.hedge_vols[k], dtype), bk.asarray(hv, dtype))
                state = State(steps[key](dict(state), spot, k, *numbers))
            else:
                state = State(steps[key](dict(state), spot, k, t, plan.hedge_vols[k], hv))
        else:
            _finish(bk, plan, state, live, spot, t)
        if record is not None:
            record(k, t, spot, state, live)
        prev = spot
    return state


def run_blocks(plan: Plan, rows_of: Callable[[int, int], Callable[[int], np.ndarray]], n_paths: int, dtype: Any) -> State:
    """NumPy, paths outer: the paths are cut into blocks small enough to stay in cache
    (3 x ``GPU_HEDGE_CHUNK`` paths, 24,576 by default) and each block runs all dates on the thread pool.
    ``rows_of(lo, hi)`` returns the block's ``row(k)`` (prices of paths lo ... hi-1 at date k, read
    in date order). Per-path results do not depend on the block size or the thread count."""
    from cpu_fallback._executor import _pool, default_chunk, default_threads

    bk = get_backend("numpy")
    # a date touches ~10 arrays of the block; 3 elementwise chunks (24,576 paths, 192 KiB per array)
    # measured fastest here: fewer Python calls per path than one chunk, still within L2/L3
    block = max(1, 3 * (bk.chunk or default_chunk()))
    threads = bk.threads or default_threads()
    # equal blocks, as many as needed rounded up to a multiple of the threads (1e5 paths, 2 threads:
    # 6 x 16,667 rather than 4 x 24,576 + 1,696, which left one thread a block behind)
    n_blocks = -(-n_paths // block)
    n_blocks = -(-n_blocks // threads) * threads if n_blocks > 1 else 1
    block = -(-n_paths // n_blocks)
    starts = list(range(0, n_paths, block))

    def one(lo: int) -> State:
        hi = min(lo + block, n_paths)
        return run(bk, plan, rows_of(lo, hi), hi - lo, dtype, direct=True)

    states = [one(lo) for lo in starts] if threads == 1 or len(starts) == 1 else list(_pool(threads).map(one, starts))
    if len(states) == 1:
        return states[0]
    return State({key: np.concatenate([st[key] for st in states]) for key in states[0]})


def _accrue(xp: Any, plan: Plan, state: dict, prev: Array, spot: Array, dt: Any, settle: Any, factors: Any = None) -> dict:
    """Date k > 0 before its decision: interest and dividends since the last date, then the options
    with ``settle[j]`` true settle at intrinsic value. ``factors``: ``(exp(rate dt), expm1(div dt))``
    worked out on the host in float64 from a float ``dt`` and traced (the fused simulation scan), each
    cast to the dtype of the array it scales as a Python float is: the numbers of ``dt`` as a float."""
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

    state = dict(state)
    if grows:
        state["cash"] = scaled(state["cash"], growth)
        state["unhedged"] = scaled(state["unhedged"], growth)
    if pays:
        state["cash"] = state["cash"] + scaled(state["holding"] * prev, dividend)
    for j, o in enumerate(plan.options):
        if settle[j] is False:
            continue
        payoff = _settle(xp, o, spot) * (1.0 if settle[j] is True else settle[j])
        state["cash"] = state["cash"] + payoff
        state["unhedged"] = state["unhedged"] + payoff
    return state


class StaticPlan(NamedTuple):
    """The hashable part of a :class:`Plan` (what compiled code may close over)."""

    options: tuple[Option, ...]
    rate: float
    div: float
    strategy: Strategy
    costs: Costs
    option_costs: Costs
    lot_size: float | None
    max_position: float | None
    hedge_option: Option | None
    delta: Any = "bs"


def static_plan(plan: Plan) -> StaticPlan:
    return StaticPlan(*(getattr(plan, f) for f in StaticPlan._fields))


@lru_cache(maxsize=32)
def _jitted_step(bk: Backend, static: StaticPlan, live: tuple[int, ...], force: bool = False) -> Callable[..., dict]:
    """:func:`_compiled`'s jitted step, compiled once per (backend, plan, live options) rather than
    once per call of :func:`run` (``hedge_simulated`` on JAX used to recompile every call)."""
    return _compiled(bk, static, live, force=force)  # type: ignore[arg-type]


@lru_cache(maxsize=32)
def _segment(bk: Backend, static: StaticPlan, live: tuple[int, ...], force_first: bool = False) -> Callable[..., tuple[dict, Array]]:
    """A compiled :meth:`Backend.scan` over a run of decision dates with the options ``live``;
    ``force_first``: the run starts on a settlement date (its decision is forced, see :func:`_compiled`)."""
    xp = bk.xp
    n_options = len(static.options)

    def body_of(core: Callable[..., dict]) -> Callable[[tuple, tuple], tuple]:
        def body(carry: tuple, x: tuple) -> tuple:
            st, prev = carry
            spot, k, t, dt, v, hv, f = x
            st = _accrue(xp, static, st, prev, spot, dt, [f[j] for j in range(n_options)])
            out = core(xp, bk.special, spot, *(st[n] for n in STATE), k, t, v, hv)
            return {**st, **out}, spot

        return body

    body = body_of(_compiled(bk, static, live, raw=True))  # type: ignore[arg-type]
    first = body_of(_compiled(bk, static, live, raw=True, force=True)) if force_first else None  # type: ignore[arg-type]

    def segment(state: dict, prev: Array, spots: Array, ks: Array, ts: Array, dts: Array, vols: Array, hvs: Array,
                flags: Array) -> tuple[dict, Array]:  # fmt: skip
        xs = (spots, ks, ts, dts, vols, hvs, flags)
        carry = (state, prev)
        if first is not None:
            carry = first(carry, tuple(x[0] for x in xs))
            xs = tuple(x[1:] for x in xs)
        return bk.scan(body, carry, xs) if xs[0].shape[0] else carry

    return bk.jit(segment)


def run_scan(bk: Backend, plan: Plan, prices: Array, dtype: Any) -> State:
    """The loop as :meth:`Backend.scan` over dates (compiling backends, prices already on the device):
    one compiled program per run of dates with the same live options, every date fused; same ledger
    as :func:`run`."""
    xp = bk.xp
    times, n_times = plan.times, plan.times.size
    prices = xp.astype(prices, dtype)
    n_paths = int(prices.shape[1])
    live = tuple(range(len(plan.options)))
    zeros = xp.zeros((n_paths,), dtype=dtype)
    if plan.marks is not None:
        value0 = sum(o.units * float(plan.marks[0, j]) for j, o in enumerate(plan.options)) + zeros
    else:
        value0 = _book_greeks(xp, bk.special, plan, live, prices[0], times[0], plan.vols[0])["price"]
    state = dict(holding=zeros, hedge_units=zeros, cash=-value0, costs=zeros, n_trades=zeros, turnover=zeros, limited=zeros,
                 unhedged=-value0, premium=value0)  # fmt: skip
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
        state, prev = _segment(bk, static, live, a > 0)(
            state, prev, prices[a:b], xp.arange(a, b), bk.asarray(times[a:b], dtype=dtype), bk.asarray(dts[a:b], dtype=dtype),
            bk.asarray(plan.hedge_vols[a:b], dtype=dtype), bk.asarray(hvs[a:b], dtype=dtype), bk.asarray(flags, dtype=dtype),
        )  # fmt: skip
    k = n_times - 1
    spot = prices[k]
    state = _accrue(xp, plan, state, prev, spot, float(dts[k]), [bool(s == k) for s in settle_at])
    live = tuple(j for j in range(len(plan.options)) if not 0 <= settle_at[j] <= k)
    state = State(state)
    _finish(bk, plan, state, live, spot, float(times[k]))
    return state


def _finish(bk: Backend, plan: Plan, state: State, live: tuple[int, ...], spot: Array, t: float) -> None:
    xp, sp = bk.xp, bk.special
    # options still alive are marked: real marks or the model at the last vol
    if live:
        if plan.marks is not None:
            mark = sum(plan.options[j].units * float(plan.marks[-1, j]) for j in live) + xp.zeros_like(spot)
        else:
            mark = _book_greeks(xp, sp, plan, live, spot, t, plan.vols[-1])["price"]
        state["cash"] = state["cash"] + mark
        state["unhedged"] = state["unhedged"] + mark
    holding = state["holding"]
    c = plan.costs(xp, -holding, spot)
    state["cash"] = state["cash"] + holding * spot - c
    state["costs"] = state["costs"] + c
    state["n_trades"] = state["n_trades"] + xp.astype(holding != 0, spot.dtype)
    state["turnover"] = state["turnover"] + xp.abs(holding) * spot
    state["holding"] = xp.zeros_like(holding)
    h_opt = plan.hedge_option
    if h_opt is not None:
        gh = _KERNEL(
            xp, sp, spot, h_opt.strike, h_opt.expiry - t, plan.hedge_option_vols[-1], plan.rate, plan.div, 1.0 if h_opt.call else -1.0
        )
        units = state["hedge_units"]
        unit_price = gh["price"] * h_opt.multiplier
        c_o = plan.option_costs(xp, -units, unit_price)
        state["cash"] = state["cash"] + units * unit_price - c_o
        state["costs"] = state["costs"] + c_o
        state["hedge_units"] = xp.zeros_like(units)


# --- simulation and hedging fused (compiling backends) --------------------------------------------

#: ``hedge_simulated`` on compiling backends runs :func:`run_simulated_scan`; False: the per-date
#: loop over :func:`gpu_hedge.iter_paths` (kept to compare the two; CuPy always runs it)
_FUSED = True


@lru_cache(maxsize=32)
def _fused_segment(
    bk: Backend, static: StaticPlan, stepper: Any, n_paths: int, dtype: Any, antithetic: bool, live: tuple[int, ...],
    settling: tuple[int, ...], first: bool, last: bool, force_first: bool = False,
) -> Callable[..., Any]:  # fmt: skip
    """One compiled program for decision dates a ... b-1 (the options ``live`` throughout): a
    :meth:`Backend.scan` whose body, at date k, makes the hedging decision (``core``), draws step k's
    normals, advances the model to date k+1, observes its spot and accrues to date k+1, where the
    options ``settling`` settle on the last step (k+1 = b). ``first`` (a = 0): the program starts the
    run itself (the model's first state, the book bought at its value); ``last`` (b = n-1): it ends it
    (:func:`_finish`). ``force_first``: date a is a settlement date, its decision forced (see
    :func:`_compiled`). The carry, O(n_paths), is ``(state, model state, spot)``; no path is stored.

    Called as ``fn(carry, seed, xs, start, end)``: ``carry`` the previous segment's (None when
    ``first``), ``seed`` a Python int (traced: one program for every seed, the same bits as the
    per-date loop's ``normals(seed, k, ...)``), ``xs`` the per-date numbers, ``start`` = (times[0],
    vols[0]) and ``end`` = (times[-1], vols[-1], hedge option vol at times[-1]) as the per-date loop
    passes them (float64 NumPy scalars and rows, a Python float), so each has the type it has there."""
    from types import SimpleNamespace

    from .._simulation import random

    xp, sp = bk.xp, bk.special
    forced = _compiled(bk, static, live, raw=True, force=True) if force_first else None  # type: ignore[arg-type]
    cores = (_compiled(bk, static, live, raw=True), forced)  # type: ignore[arg-type]
    final = tuple(j for j in live if j not in settling)

    def segment(carry: Any, seed: Any, xs: tuple, start: Any, end: Any) -> Any:
        if first:
            t0, vols0 = start
            sim = stepper.init(xp, n_paths, dtype)
            spot = stepper.observe(xp, sim)[0]
            zeros = xp.zeros((n_paths,), dtype=dtype)
            value0 = _book_greeks(xp, sp, static, tuple(range(len(static.options))), spot, t0, vols0)["price"]  # type: ignore[arg-type]
            state = dict(holding=zeros, hedge_units=zeros, cash=-value0, costs=zeros, n_trades=zeros, turnover=zeros,
                         limited=zeros, unhedged=-value0, premium=value0)  # fmt: skip
        else:
            state, sim, spot = carry

        def body(c: tuple, x: tuple, core: Callable[..., dict] = cores[0]) -> tuple:
            st, sim, spot = c
            k, t, v, hv, growth, dividend, flag = x
            st = {**st, **core(xp, sp, spot, *(st[n] for n in STATE), k, t, v, hv)}
            z = random.normals(bk, seed, k, stepper.n_normals, n_paths, dtype, antithetic=antithetic, reference=False)
            sim = stepper.advance(xp, sp, sim, z)
            nxt = stepper.observe(xp, sim)[0]
            settle = [flag if j in settling else False for j in range(len(static.options))]
            st = _accrue(xp, static, st, spot, nxt, None, settle, factors=(growth, dividend))  # type: ignore[arg-type]
            return st, sim, nxt

        carry = (state, sim, spot)
        if cores[1] is not None:
            carry = body(carry, tuple(x[0] for x in xs), cores[1])
            xs = tuple(x[1:] for x in xs)
        state, sim, spot = bk.scan(body, carry, xs) if xs[0].shape[0] else carry
        if not last:
            return state, sim, spot
        t, vols, hedge_vol = end
        plan = SimpleNamespace(**static._asdict(), marks=None, vols=vols[None],
                               hedge_option_vols=None if hedge_vol is None else hedge_vol[None])  # fmt: skip
        state = State(state)
        _finish(bk, plan, state, final, spot, t)  # type: ignore[arg-type]
        return dict(state)

    return bk.jit(segment)


def run_simulated_scan(bk: Backend, plan: Plan, stepper: Any, n_paths: int, seed: int, dtype: Any, antithetic: bool) -> State:
    """:func:`hedge_simulated` on a compiling backend: simulation and hedging fused date by date in
    compiled :meth:`Backend.scan` segments (:func:`_fused_segment`, cut where options settle, like
    :func:`run_scan`), with no per-date Python dispatch and no stored paths (memory O(n_paths)). The
    same ledger, shocks and operations as :func:`run` on :func:`gpu_hedge.iter_paths`' steps.
    Compiled once per (backend, plan, model step, n_paths, dtype, antithetic, segment); the seed,
    dates and vols are traced."""
    times, n_times = plan.times, plan.times.size
    static = static_plan(plan)
    host = np.dtype(dtype)
    settle_at = np.array(plan.settle_at)
    dts = [float(times[k + 1]) - float(times[k]) for k in range(n_times - 1)]
    # what run's _accrue works out from its float dt, exactly (math, not NumPy's vectorised exp)
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
        fn = _fused_segment(bk, static, stepper, int(n_paths), dtype, bool(antithetic), live, settling, first, last, not first)
        carry = fn(carry, int(seed), xs, start, end)
    return State(carry)


# --- public ---------------------------------------------------------------------------------------


def hedge(
    prices: Any,
    times: Any,
    options: Option | Sequence[Option],
    *,
    vol: Any,
    rate: float = 0.0,
    div: float = 0.0,
    strategy: Strategy,
    costs: Costs = Costs(),  # noqa: B008 - frozen
    option_costs: Costs | None = None,
    lot_size: float | None = None,
    max_position: float | None = None,
    backend: Any = "auto",
    dtype: str = "float64",
    marks: Any = None,
    delta: Any = "bs",
    mv: Any = None,
) -> HedgeResult:
    """Hedge a book of European options along price paths and return per-path P&L and statistics.

    ``prices``: ``(n_times, n_paths)`` simulated paths (e.g. ``simulate(...).spot``) or a 1-D
    historical series (one path); ``times``: ``(n_times,)`` strictly increasing, years, on the same
    clock as each option's ``expiry``. ``options``: one or more :class:`Option` (negative quantity =
    short). ``vol``: the pricing vol, a scalar, one per date ``(n_times,)`` or per date and option
    ``(n_times, n_options)`` (an option's own ``vol`` overrides it). ``strategy`` decides the trades
    at dates 0 ... n-1 (see :mod:`gpu_hedge` strategies); ``costs`` prices trades in the underlying,
    ``option_costs`` (default ``costs``) trades in a hedge option. ``lot_size`` rounds share trades
    (None: fractional); ``max_position`` caps the holding (counted in ``result.limited``). ``marks``:
    real option values per date (``(n_times,)`` or ``(n_times, n_options)``) for the premium, the
    final mark and the ledger instead of the model. See the module notes for the ledger.

    ``times`` may also be dates (NumPy ``datetime64``, a pandas ``DatetimeIndex``, ``datetime``
    objects): they are read as years since the first date, ACT/365 (``(date - first date) / 365
    days``, the clock of :func:`gpu_hedge.read_prices`), so each option's ``expiry`` counts from the
    first date. Booleans, strings and durations are refused (as for ``prices``, ``vol``, ``marks``).

    Smile (:mod:`gpu_hedge._hedging.smile`): ``vol`` may be a volatility surface (``.vol(strike,
    expiry_years)``, e.g. a fitted ``VolSurface``), a sequence of one surface per date or a callable
    ``date_index -> surface`` (refitted daily); each option is priced at the date's surface at its
    strike and remaining time to expiry. ``delta`` is the delta the decisions hedge: ``"bs"``
    (Black-Scholes-Merton at the option's vol; the default, the engine's historical behaviour),
    ``"smile"`` (sticky moneyness: ``delta_BS - vega (d sigma / dk) / S``, the slope from the
    surface) or ``"minimum_variance"`` with ``mv=`` Hull-White coefficients (or ``delta=`` a
    ``MinimumVariance`` / ``MVCoefficients``; see ``fit_minimum_variance``). A surface with
    ``delta="bs"`` runs every path a flat vol runs; ``"smile"`` and ``"minimum_variance"`` run the
    generic per-path step (``core``: NumPy's chunked executor, JAX's jitted scan) rather than NumPy's
    compiled Numba step, which computes the BS delta only.

    Past expiry: an option whose expiry falls inside the run settles at its intrinsic value on the
    date of ``times`` equal to its expiry (paid into the cash there; an expiry strictly between two
    dates raises ValueError, no spot is interpolated), and that date's hedge is rebalanced to the
    options still alive whatever the strategy's schedule (with none left: closed out, costs
    charged); from then on the settled option contributes nothing and the cash only earns ``rate``.
    Options of a book (``options`` a sequence) each settle at their own expiry.

    Memory O(n_paths): one date's prices at a time (device arrays are sliced, host arrays copied a
    row at a time), state and results per path only.

    >>> import gpu_hedge as gh
    >>> paths = gh.simulate(gh.GBM(100.0, 0.2), n_paths=2000, n_steps=52, horizon=1.0, seed=1, backend="numpy")
    >>> res = gh.hedge(paths.spot, paths.times, gh.Option(100.0, 1.0, quantity=-1), vol=0.2,
    ...                strategy=gh.Periodic(), backend="numpy")
    >>> abs(float(res.pnl.mean())) < 0.05, 0.9 < float(res.pnl.std()) < 1.3
    (True, True)
    """
    bk = get_backend(backend)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    if isinstance(prices, str | bytes):
        raise ValueError(f"prices = {prices!r} is a string; expected an array of prices")
    if getattr(prices, "dtype", None) is None or not hasattr(prices, "shape"):  # lists, DataFrames ...
        prices = np.asarray(prices)
    check_dtype("prices", prices.dtype)
    if isinstance(prices, np.ndarray) and prices.dtype != np.float64:
        prices = prices.astype(np.float64)
    n_times, n_paths, one_d = _prices_shape(prices)
    host = isinstance(prices, np.ndarray)
    _check_prices(get_backend("numpy") if host else bk, prices)
    plan = make_plan(
        times, n_times, options, vol=vol, rate=rate, div=div, strategy=strategy, costs=costs, option_costs=option_costs,
        lot_size=lot_size, max_position=max_position, marks=marks, delta=delta, mv=mv,
    )  # fmt: skip
    dt = getattr(bk.xp, dtype)

    def row(k: int) -> Array:
        r = prices[k] if not one_d else prices[k : k + 1]
        return bk.asarray(r, dtype=dt)

    if "jit" in bk.capabilities and not host and not one_d:
        state = run_scan(bk, plan, prices, dt)
    elif bk.name == "numpy" and host and not one_d:
        state = run_blocks(plan, lambda lo, hi: lambda k: np.asarray(prices[k, lo:hi], dtype=dt), n_paths, dt)
    else:
        state = run(bk, plan, row, n_paths, dt)
    return HedgeResult.from_state(state, plan, prices)


def hedge_simulated(
    model: Any,
    options: Option | Sequence[Option],
    *,
    n_paths: int,
    n_steps: int,
    horizon: float,
    seed: int,
    vol: Any,
    strategy: Strategy,
    costs: Costs = Costs(),  # noqa: B008 - frozen
    option_costs: Costs | None = None,
    lot_size: float | None = None,
    max_position: float | None = None,
    backend: Any = "auto",
    dtype: str = "float64",
    antithetic: bool = False,
    scheme: str | None = None,
    delta: Any = "bs",
    mv: Any = None,
) -> HedgeResult:
    """:func:`hedge` on paths of ``model`` simulated as they are consumed, never stored: the same
    numbers as ``hedge(simulate(model, ...).spot, ...)`` with memory O(block) on NumPy (each block of
    paths is simulated and hedged in cache on the thread pool) and O(n_paths) elsewhere. On JAX each
    date's simulation step and hedging decision run fused in compiled ``lax.scan`` segments
    (:func:`run_simulated_scan`), compiled once per shape and reused across calls.

    ``rate`` and ``div`` of the ledger are the model's. ``times`` are the ``n_steps + 1`` equally
    spaced dates from 0 to ``horizon``. ``ledger(path)`` regenerates the path it shows.

    ``vol`` (a surface too), ``delta`` and ``mv`` as in :func:`hedge`.

    ``horizon`` past an option's expiry: the option settles at its intrinsic value at its expiry,
    which must be one of the dates (``expiry`` a whole number of steps ``horizon / n_steps``; else
    ValueError), the hedge is closed out there (costs charged; with several options it is
    rebalanced to those still alive) and the rest of the run only carries cash: with the same
    ``seed`` and step, ``horizon=2.0`` on a 1-year option gives per path the P&L of ``horizon=1.0``
    grown at the model's rate for a year. Arguments are taken as given or refused by name
    (``horizon=True`` or ``vol="0.2"`` raise ValueError).

    >>> import gpu_hedge as gh
    >>> res = gh.hedge_simulated(gh.GBM(100.0, 0.2), gh.Option(100.0, 1.0, quantity=-1), n_paths=2000, n_steps=52,
    ...                          horizon=1.0, seed=1, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    >>> 0.9 < float(res.pnl.std()) < 1.3
    True
    """
    from cpu_fallback import NumpyBackend

    from .._simulation.paths import check_run, iter_paths, simulate

    bk = get_backend(backend)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    # the run's own arguments first, named as given (not as the dates built from them)
    real_scalar("horizon", horizon, "a finite number of years > 0")
    if not horizon > 0:
        raise ValueError(f"horizon = {horizon!r} must be a finite number of years > 0")
    if not isinstance(antithetic, bool | np.bool_):
        raise ValueError(f"antithetic = {antithetic!r} must be True or False")
    # argument errors (n_paths, n_steps, seed, antithetic pairs ...) before any work, without simulating
    _, n_steps, horizon, checked_seed, _, stepper = check_run(model, n_paths, n_steps, horizon, seed, antithetic, 0, dtype, scheme)
    times = np.linspace(0.0, horizon, n_steps + 1)
    rate, div = getattr(model, "rate", 0.0), getattr(model, "div", 0.0)
    plan = make_plan(
        times, times.size, options, vol=vol, rate=rate, div=div, strategy=strategy, costs=costs, option_costs=option_costs,
        lot_size=lot_size, max_position=max_position, marks=None, grid=(horizon, n_steps), delta=delta, mv=mv,
    )  # fmt: skip
    sim = dict(n_steps=n_steps, horizon=horizon, seed=seed, dtype=dtype, antithetic=antithetic, scheme=scheme)
    dt = getattr(bk.xp, dtype)
    if "jit" in bk.capabilities and _FUSED:
        # every model, scheme, strategy, cost, limit and hedge option fuses (hedge_simulated has no
        # marks and no reference shocks); backends without a compiler (CuPy) run the loop below
        state = run_simulated_scan(bk, plan, stepper, int(n_paths), checked_seed, dt, bool(antithetic))
    elif bk.name == "numpy":
        inner = NumpyBackend(threads=1)  # the blocks are the parallelism

        def rows_of(lo: int, hi: int) -> Callable[[int], np.ndarray]:
            steps = iter(iter_paths(model, n_paths=hi - lo, first_path=lo, backend=inner, **sim))
            return lambda k: next(steps).spot

        state = run_blocks(plan, rows_of, int(n_paths), dt)
    else:
        steps = iter(iter_paths(model, n_paths=n_paths, backend=bk, **sim))
        state = run(bk, plan, lambda k: next(steps).spot, int(n_paths), dt)

    def source(path: int) -> np.ndarray:
        first = path - path % 2 if antithetic else path
        p = simulate(model, n_paths=2 if antithetic else 1, first_path=first, backend=bk, **sim)
        return to_numpy(p.spot)[:, path - first]

    return HedgeResult.from_state(state, plan, source)
