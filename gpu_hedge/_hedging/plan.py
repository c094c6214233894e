"""The hedging run's plan: every input checked once, before any work, into a :class:`Plan` (host
NumPy arrays and Python scalars) and its hashable part :class:`StaticPlan` (what compiled code may
close over).

Checks name the argument as the caller spelled it (``options[1].expiry``, ``times[3]``, ``vol[2, 0]``)
and refuse what would silently mean something else (booleans, strings, dates read as numbers, an
expiry between two dates). Times are years; dates are read as years since the first date, ACT/365.
"""

from __future__ import annotations

import datetime
import math
from collections import namedtuple
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backends import Backend, to_numpy
from .._pricing.dividends import DEFAULT_VOL_ADJUST, VOL_ADJUSTS, check_dividends
from ._checks import check_dtype, real_array, real_scalar
from .costs import Costs
from .engine import Option, check_limits
from .smile import is_surface, resolve_delta, surface_vols
from .strategies import Leland, Strategy, leland_vol

__all__ = ["STATIC_FIELDS", "Plan", "StaticPlan", "check_prices", "make_plan", "prices_shape", "static_plan"]

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
    #: the stock's cash dividends ``(ex-times on the run's clock, amounts)`` after the first date, or None
    dividends: tuple[np.ndarray, np.ndarray] | None = None
    vol_adjust: str = DEFAULT_VOL_ADJUST  # the escrowed model's vol adjustment (gpu_hedge._pricing.dividends)


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


def prices_shape(prices: Any) -> tuple[int, int, bool]:
    shape = tuple(prices.shape)
    if len(shape) not in (1, 2):
        raise ValueError(f"prices has shape {shape}; expected (n_times,) (one series) or (n_times, n_paths)")
    if shape[0] < 2:
        raise ValueError(f"prices has {shape[0]} date(s); hedging needs at least 2")
    if len(shape) == 2 and shape[1] < 1:
        raise ValueError("prices has no paths")
    return shape[0], (shape[1] if len(shape) == 2 else 1), len(shape) == 1


def check_prices(bk: Backend, prices: Any) -> None:
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


def _dividends(dividends: Any, vol_adjust: str, t: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``hedge(dividends=)``: ``(time, amount)`` pairs on the clock of ``times`` (years), checked as
    :func:`gpu_hedge.price` checks them; those on or before the first date have been paid (left out)."""
    if vol_adjust not in VOL_ADJUSTS:
        raise ValueError(f"vol_adjust = {vol_adjust!r} must be one of {', '.join(VOL_ADJUSTS)}")
    if dividends is None:
        return None
    sched = check_dividends(dividends, 1)
    times, amounts = sched.times[0], sched.amounts[0]
    keep = (times > t[0]) & (amounts > 0)
    return (np.ascontiguousarray(times[keep]), np.ascontiguousarray(amounts[keep])) if keep.any() else None


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
    dividends: Any = None,
    vol_adjust: str = DEFAULT_VOL_ADJUST,
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
    american = [names[i] for i, o in enumerate(opts) if o.american]
    if american and model != "bs":
        raise ValueError(
            f"{american[0]} is American: its delta is the American pricer's, so delta must be 'bs' (the default), "
            f"not {delta!r} (smile and minimum-variance deltas are European corrections)"
        )
    divs = _dividends(dividends, vol_adjust, t)
    if divs is not None and model != "bs":
        raise ValueError(f"with cash dividends the delta is the escrowed model's, so delta must be 'bs' (the default), not {delta!r}")
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
        if h_opt.american:
            raise ValueError(
                "the strategy's hedge_option must be European (exercise='european'); an American hedge option is not supported"
            )
        if divs is not None:
            raise ValueError("the strategy's hedge_option is priced without cash dividends: not supported with dividends=")
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
        costs if option_costs is None else option_costs, lot_size, max_position, m, h_opt, h_vols, model, divs, vol_adjust,
    )  # fmt: skip


#: the fields of a :class:`Plan` that hold no arrays (hashable: compiled code keys its caches on them)
STATIC_FIELDS = ("options", "rate", "div", "strategy", "costs", "option_costs", "lot_size", "max_position", "hedge_option", "delta")


class StaticPlan(namedtuple("StaticPlan", STATIC_FIELDS)):
    """The hashable part of a :class:`Plan` (what compiled code may close over): its
    :data:`STATIC_FIELDS`, with the same meaning and types."""

    __slots__ = ()


def static_plan(plan: Plan) -> StaticPlan:
    """The fields of ``plan`` that compiled code keys its caches on (no arrays)."""
    return StaticPlan(*(getattr(plan, f) for f in STATIC_FIELDS))
