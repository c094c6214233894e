"""The public hedging API, ``hedge`` and ``hedge_simulated``: check the arguments once, pick the driver
for the backend, return a :class:`HedgeResult`.

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
- American options (``Option(exercise="american")``): priced, marked and hedged with the package's
  American Greeks; at each date t_k (k = 0 ... n, after the accrual), on each path where immediate
  exercise is optimal for the holder (the pricer's ``early_exercise`` at that spot and remaining
  expiry), the option settles at intrinsic value (we exercise a long one, a short one is assigned)
  and is dead on that path from then on; that date's decision is forced on those paths, as on a
  settlement date (the hedge rebalanced to what is still alive; with nothing left, closed out,
  costs charged). Such books run the generic per-date loop on every backend (not NumPy's fused
  Numba step, not JAX's compiled scans); a hedge option must be European, and the delta ``"bs"``.
- ``pnl`` is the cash at t_n; ``hedging_error = pnl + costs`` (P&L before costs); ``unhedged`` is
  the same book's P&L with no hedge (premium accrued plus settlement).

Greeks are the package's Black-Scholes-Merton closed forms at each date (American options: the
package's American pricer, :func:`gpu_hedge._pricing.american_greeks.american_greeks`). Memory is O(n_paths):
prices are read one date at a time; a per-date ledger is built only for the path asked for.

The engine by concept: :mod:`.plan` (inputs checked into a Plan), :mod:`.state` (the per-path
state, immutable), :mod:`.book` (the book's values and Greeks), :mod:`.step` (one date: decision,
accrual, unwind), :mod:`.drivers` (the per-date loop, NumPy's path blocks), :mod:`.scan` (compiled
scans, simulation fused), :mod:`.ledger` (one path replayed). This module also holds the hooks tests
turn, ``_FUSED`` and ``_native_step``, read at call time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backends import Backend, get_backend, host_backend, to_numpy
from .._types import Array
from ._checks import check_dtype, real_scalar
from .costs import Costs
from .drivers import run, run_blocks
from .engine import Option, per_date
from .plan import Plan as Plan
from .plan import check_prices, prices_shape
from .plan import make_plan as make_plan  # tests build plans through loop
from .result import HedgeResult
from .scan import fused_segment, run_scan, run_simulated_scan
from .state import STATE as STATE  # benchmarks size the carry with it
from .state import HedgeState
from .step import native_step
from .strategies import Strategy

__all__ = ["hedge", "hedge_simulated"]

#: ``hedge_simulated`` on compiling backends runs :func:`run_simulated_scan`; False: the per-date
#: loop over :func:`gpu_hedge.iter_paths` (kept to compare the two; CuPy always runs it). Read at call time.
_FUSED = True

#: the fused step offered to the path-block driver (``(bk, plan, live, force) -> step | None``, see
#: :func:`gpu_hedge._hedging.step.native_step`); read at call time, so a test may swap it for ``lambda *a: None``
_native_step = native_step

#: the compiled segment programs of :func:`run_simulated_scan` (its cache is what tests inspect)
_fused_segment = fused_segment

#: the arguments :func:`hedge` and :func:`hedge_simulated` share, passed to :func:`make_plan` as given
_PLAN_ARGS = ("options", "vol", "strategy", "costs", "option_costs", "lot_size", "max_position", "delta", "mv")


def _start(backend: Any, dtype: str) -> tuple[Backend, Any]:
    """The run's backend and dtype (``"float32"`` or ``"float64"``, else ValueError), first of all checks."""
    bk = get_backend(backend)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    return bk, getattr(bk.xp, dtype)


def _plan(args: dict[str, Any], times: Any, n_times: int, **extra: Any) -> Plan:
    """:func:`make_plan` from a public function's arguments (``args``: its ``locals()`` on entry)."""
    return make_plan(times, n_times, **{name: args[name] for name in _PLAN_ARGS}, **extra)


def _prices(bk: Backend, prices: Any) -> tuple[Any, int, int, bool, bool]:
    """``prices`` checked (real, finite, > 0, 1-D or 2-D, >= 2 dates) as ``(prices, n_times, n_paths,
    one_d, host)``; host data becomes a float64 NumPy array, device arrays stay where they are."""
    if isinstance(prices, str | bytes):
        raise ValueError(f"prices = {prices!r} is a string; expected an array of prices")
    if getattr(prices, "dtype", None) is None or not hasattr(prices, "shape"):  # lists, DataFrames ...
        prices = np.asarray(prices)
    check_dtype("prices", prices.dtype)
    if isinstance(prices, np.ndarray) and prices.dtype != np.float64:
        prices = prices.astype(np.float64)
    n_times, n_paths, one_d = prices_shape(prices)
    host = isinstance(prices, np.ndarray)
    check_prices(host_backend() if host else bk, prices)
    return prices, n_times, n_paths, one_d, host


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
    dividends: Any = None,
    vol_adjust: str = "beneder_vorst",
) -> HedgeResult:
    """Hedge a book of options (European, or American with ``Option(exercise="american")``) along
    price paths and return per-path P&L and statistics.

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

    American options (``Option(..., exercise="american")``) are priced and hedged with American
    Greeks and, on each path, exercised (long) or assigned (short) at intrinsic value on the first
    date where immediate exercise is optimal for the holder; the hedge is rebalanced there, as on a
    settlement date, and ``ledger(path)`` marks that date (``exercised``, ``exercise_cash``). Such
    books run the generic per-date loop on every backend (NumPy's fused Numba step and JAX's
    compiled scans do not price American options) and, for now, at the American pricer's speed.

    Cash dividends (``dividends``: ``(time, amount)`` pairs, ex-times in years on the clock of
    ``times``; amounts per share in the price's currency): ``prices`` are then the stock's own
    (ex-dividend) prices, which drop at each ex-date. The shares held over an interval receive its
    dividends (paid into the cash at the ex-time and grown at ``rate`` to the next date; the
    ledger's ``dividend_cash``), and every option with a dividend still to go ex before its expiry
    is priced, hedged and marked by the escrowed-dividend model (``gh.greeks(..., dividends=)``:
    European closed form with ``vol_adjust``, default ``"beneder_vorst"``, so ``vol`` stays the
    stock's own; American options on the Crank-Nicolson grid). Early exercise is decided on the dates
    of ``times``: give a date just before an ex-date (the cum-dividend close) for a call to be
    exercised for its dividend. Such runs take the per-date loop, as American books do; dividends
    on or before the first date are left out.

    Memory O(n_paths): one date's prices at a time (device arrays are sliced, host arrays copied a
    row at a time), state and results per path only.

    >>> import gpu_hedge as gh
    >>> paths = gh.simulate(gh.GBM(100.0, 0.2), n_paths=2000, n_steps=52, horizon=1.0, seed=1, backend="numpy")
    >>> res = gh.hedge(paths.spot, paths.times, gh.Option(100.0, 1.0, quantity=-1), vol=0.2,
    ...                strategy=gh.Periodic(), backend="numpy")
    >>> abs(float(res.pnl.mean())) < 0.05, 0.9 < float(res.pnl.std()) < 1.3
    (True, True)
    """
    args = dict(locals())
    bk, dt = _start(backend, dtype)
    prices, n_times, n_paths, one_d, host = _prices(bk, prices)
    plan = _plan(args, times, n_times, rate=rate, div=div, marks=marks, dividends=dividends, vol_adjust=vol_adjust)

    def row(k: int) -> Array:
        return bk.asarray(prices[k] if not one_d else prices[k : k + 1], dtype=dt)

    if "jit" in bk.capabilities and not host and not one_d and not per_date(plan):  # American / dividend books: the per-date loop
        state = run_scan(bk, plan, prices, dt)
    elif "path_blocks" in bk.capabilities and host and not one_d:
        state = run_blocks(bk, plan, lambda lo, hi, serial: lambda k: bk.asarray(prices[k, lo:hi], dtype=dt), n_paths, dt,
                           native=_native_step)  # fmt: skip
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
    from .._simulation.paths import check_run, iter_paths, simulate

    args = dict(locals())
    bk, dt = _start(backend, dtype)
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
    plan = _plan(args, times, times.size, rate=rate, div=div, marks=None, grid=(horizon, n_steps))
    sim = dict(n_steps=n_steps, horizon=horizon, seed=seed, dtype=dtype, antithetic=antithetic, scheme=scheme)
    state: HedgeState
    if "jit" in bk.capabilities and _FUSED and not per_date(plan):  # American books: the per-date loop below
        # every model, scheme, strategy, cost, limit and hedge option fuses (hedge_simulated has no
        # marks and no reference shocks); backends without a compiler (CuPy) run the loop below
        state = run_simulated_scan(bk, plan, stepper, int(n_paths), checked_seed, dt, bool(antithetic))
    elif "path_blocks" in bk.capabilities:  # each block simulated on one thread: the blocks are the parallelism

        def rows_of(lo: int, hi: int, serial: Backend) -> Callable[[int], Array]:
            steps = iter(iter_paths(model, n_paths=hi - lo, first_path=lo, backend=serial, **sim))
            return lambda k: next(steps).spot

        state = run_blocks(bk, plan, rows_of, int(n_paths), dt, native=_native_step)
    else:
        steps = iter(iter_paths(model, n_paths=n_paths, backend=bk, **sim))
        state = run(bk, plan, lambda k: next(steps).spot, int(n_paths), dt)

    def source(path: int) -> np.ndarray:
        first = path - path % 2 if antithetic else path
        p = simulate(model, n_paths=2 if antithetic else 1, first_path=first, backend=bk, **sim)
        return to_numpy(p.spot)[:, path - first]

    return HedgeResult.from_state(state, plan, source)
