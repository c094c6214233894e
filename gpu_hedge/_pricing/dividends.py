"""Discrete cash dividends: the schedule, the escrowed-dividend model and its Greeks in the quoted spot.

**Model (escrowed dividends; Hull, *Options, Futures and Other Derivatives*, "known dividends").**
The present value at valuation of the cash dividends going ex in ``(0, T]``,
``PV = sum_i D_i exp(-r t_i)``, is taken out of the quoted spot; the rest, ``S* = S - PV``, follows
geometric Brownian motion with carry ``r - q`` and volatility ``vol*``. A European option is the
Black-Scholes-Merton value on ``(S*, vol*)``; an American one is priced on a Crank-Nicolson grid in
``log S*`` whose exercise value is the quoted spot ``S* + PV(t) - K`` (:mod:`.cn_grid`). A dividend
at exactly ``T`` counts (the holder at expiry gets the stock ex-dividend); one at ``t <= 0`` has gone.

**Volatility adjustment** (``vol_adjust``). With the escrowed model the input vol is the vol of
``S*``; the stock's own vol (the spot-jump model, in which ``S`` has vol ``vol`` and drops by ``D_i``
at ``t_i``) makes ``S*`` more volatile before each dividend, by ``S / (S - PV_remaining)``:

- ``"none"``: ``vol* = vol`` (Hull's textbook model: the input is the vol of ``S*``).
- ``"simple"``: ``vol* = vol S / (S - PV)`` over the whole life (overstates the variance of the
  time after the last dividend).
- ``"beneder_vorst"`` (default): the time-weighted adjustment of Beneder and Vorst (2001, "Options
  on dividend paying stocks", in *Recent Developments in Mathematical Finance*, World Scientific),
  in the multi-dividend form given by Haug, Haug and Lewis (2003, "Back to basics: a new approach
  to the discrete dividend problem", *Wilmott Magazine*, Sept. 2003)::

      vol*^2 T = vol^2 sum_j (t_j - t_{j-1}) (S / (S - R_j))^2,   t_0 = 0, t_{m+1} = T,

  where ``R_j`` is the PV of the dividends still to come in ``[t_{j-1}, t_j)``. It approximates the
  spot-jump model's European value by the escrowed closed form: the input ``vol`` keeps its
  meaning as the stock's own volatility (the vol the simulation and hedging layers give the
  stock), whatever the dividend dates. Default for that reason; ``"none"`` reproduces Hull.
  Checked against QuantLib 1.44's spot-jump FD engine (``tests/test_dividends.py``; S=100, K=100,
  vol 25 %, r=5 %, 2 at days 91 and 273 of 365, European call 10.1993): 10.1957 here, against
  10.0065 without an adjustment and 10.3902 with the simple one.

**Greeks are with respect to the quoted spot** (the trap of QuantLib issue #203): with
``V = F(S*, vol*(S, t, r, vol), T, r)``, ``dS*/dS = 1``, so ``delta = F_S + F_vol dvol*/dS``,
``gamma = F_SS + 2 F_Svol dvol*/dS + F_volvol (dvol*/dS)^2 + F_vol d2vol*/dS2``; ``vega = F_vol
dvol*/dvol``; ``rho = F_r - F_S dPV/dr + F_vol dvol*/dr``. **Theta** is ``dV/dt`` per year with the
quoted spot and the dividends' calendar dates fixed: expiry and every time-to-dividend shrink, so
``dPV/dt = r PV`` and ``theta = F_t - F_S r PV + F_vol dvol*/dt``. ``dividend_rho`` is ``dV/dq``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from .black_scholes import black_kernel

VOL_ADJUSTS = ("none", "simple", "beneder_vorst")
DEFAULT_VOL_ADJUST = "beneder_vorst"
#: American rows per Crank-Nicolson solve (its arrays are ``(n_space, rows x variants)``: bounded memory)
GRID_ROWS = 4096
#: the Greeks :func:`dividend_greeks` offers (in the quoted spot)
DIVIDEND_GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


@dataclass(frozen=True)
class DividendSchedule:
    """Cash dividends per row: ``times`` (years from valuation) and ``amounts``, both ``(n_rows, m)``
    float64, each row sorted by time and padded with amount 0 (at the row's last time)."""

    times: np.ndarray
    amounts: np.ndarray

    def __post_init__(self) -> None:
        if self.times.shape != self.amounts.shape or self.times.ndim != 2:
            raise ValueError(f"dividend times {self.times.shape} and amounts {self.amounts.shape} must be 2-D of one shape")

    @property
    def n_rows(self) -> int:
        return int(self.times.shape[0])

    def take(self, idx: np.ndarray) -> DividendSchedule:
        """The schedule of rows ``idx`` (host indices), in that order."""
        return DividendSchedule(np.ascontiguousarray(self.times[idx]), np.ascontiguousarray(self.amounts[idx]))


def _entries(entries: Any, row: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One schedule (sequence of ``(time, amount)`` pairs, a dict ``{time: amount}`` or an ``(m, 2)``
    array) as checked, time-sorted ``(times, amounts)``; errors name ``row`` and the entry."""
    where = "" if row is None else f"row {row}: "
    if isinstance(entries, Mapping):
        entries = list(entries.items())
    try:
        arr = np.asarray(entries, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dividends {where}expected (time_years, amount) pairs; got {entries!r} ({exc})") from None
    if arr.size == 0:
        return np.zeros(0), np.zeros(0)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"dividends {where}expected (time_years, amount) pairs (an (m, 2) array); got shape {arr.shape}")
    for j, (t, a) in enumerate(arr.tolist()):
        what = f"dividends {where}entry {j} (time {t!r}, amount {a!r}): "
        if not (math.isfinite(t) and math.isfinite(a)):
            raise ValueError(what + "time and amount must be finite numbers (no NaN or inf)")
        if t < 0:
            raise ValueError(what + "time must be >= 0 years from valuation (paid dividends are left out)")
        if a < 0:
            raise ValueError(what + "amount must be >= 0 (a cash dividend)")
    order = np.argsort(arr[:, 0], kind="stable")
    return arr[order, 0], arr[order, 1]


def _pad(rows: list[tuple[np.ndarray, np.ndarray]]) -> DividendSchedule:
    m = max((len(t) for t, _ in rows), default=0)
    times, amounts = np.zeros((len(rows), m)), np.zeros((len(rows), m))
    for i, (t, a) in enumerate(rows):
        times[i, : len(t)], amounts[i, : len(t)] = t, a
        times[i, len(t) :] = t[-1] if len(t) else 0.0
    return DividendSchedule(times, amounts)


def _is_schedule(x: Any) -> bool:
    """Whether ``x`` looks like one schedule of pairs (not a per-row list of schedules)."""
    if isinstance(x, Mapping):
        return True
    return isinstance(x, (list, tuple)) and (len(x) == 0 or all(np.ndim(e) == 1 and np.size(e) == 2 for e in x))


def check_dividends(dividends: Any, shape_or_n: int | tuple[int, ...]) -> DividendSchedule | None:
    """Check ``dividends`` for ``shape_or_n`` rows (an int, or the broadcast input shape, rows in C order).

    Accepts ``None`` (no dividends; returns None), one schedule for all rows (a sequence of
    ``(time_years, amount)`` pairs, a dict ``{time: amount}`` or an ``(m, 2)`` array), a list of
    ``n`` such schedules (one per row), a tuple of two 2-D arrays ``(times, amounts)`` of shape
    ``(n, m)`` or ``(1, m)``, or a :class:`DividendSchedule`. Raises ValueError naming the row and
    the entry for NaN/inf, negative time, negative amount, and for mismatched shapes.
    """
    n = int(shape_or_n) if np.ndim(shape_or_n) == 0 else int(np.prod(shape_or_n, dtype=np.int64))
    if dividends is None:
        return None
    if isinstance(dividends, DividendSchedule):
        dividends = (dividends.times, dividends.amounts)
    if isinstance(dividends, tuple) and len(dividends) == 2 and all(isinstance(d, np.ndarray) for d in dividends):
        times, amounts = (np.asarray(d, dtype=np.float64) for d in dividends)
        if times.ndim != 2 or times.shape != amounts.shape:
            raise ValueError(f"dividends (times, amounts) must be two 2-D arrays of one shape; got {times.shape} and {amounts.shape}")
        if times.shape[0] not in (1, n):
            raise ValueError(f"dividends (times, amounts) have {times.shape[0]} rows; the inputs have {n} (or pass 1 row for all)")
        rows = [_entries(np.stack([t, a], axis=1), i) for i, (t, a) in enumerate(zip(times, amounts, strict=True))]
        sched = _pad(rows)
    elif isinstance(dividends, np.ndarray) and dividends.ndim == 2 or _is_schedule(dividends):
        sched = _pad([_entries(dividends, None)])
    elif isinstance(dividends, Sequence) and not isinstance(dividends, (str, bytes)):
        if len(dividends) != n:
            raise ValueError(f"dividends: a per-row list needs one schedule per row ({n}); got {len(dividends)}")
        sched = _pad([_entries(d, i) for i, d in enumerate(dividends)])
    else:
        raise ValueError(f"dividends: expected None, (time, amount) pairs, a per-row list of them or (times, amounts); got {dividends!r}")
    if sched.n_rows == 1 and n != 1:
        sched = DividendSchedule(
            np.broadcast_to(sched.times, (n, sched.times.shape[1])), np.broadcast_to(sched.amounts, (n, sched.times.shape[1]))
        )
    return sched


def dividend_rows(expiry: Any, schedule: DividendSchedule | None) -> np.ndarray:
    """Host bool per row: a dividend with a positive amount goes ex in ``(0, T]`` (rows without one
    take the plain no-dividend pricer)."""
    T = np.asarray(expiry, dtype=np.float64).reshape(-1, 1)
    if schedule is None:
        return np.zeros(T.shape[0], dtype=bool)
    t, a = schedule.times, schedule.amounts
    return np.any((t > 0) & (t <= T) & (a > 0), axis=1)


class Escrowed(NamedTuple):
    """:func:`escrowed_inputs`: ``pv`` of the dividends in ``(0, T]``, ``spot`` = S - pv, ``vol`` =
    vol*, and the partials the Greeks need (``pv_r`` = dPV/dr; ``k`` = vol*/vol and its partials in
    S, S twice, t (calendar dates fixed) and r)."""

    pv: Any
    spot: Any
    vol: Any
    pv_r: Any
    k: Any
    k_S: Any
    k_SS: Any
    k_t: Any
    k_r: Any


def escrowed_inputs(
    xp: Any, spot: Any, expiry: Any, rate: Any, vol: Any, schedule: DividendSchedule, vol_adjust: str = DEFAULT_VOL_ADJUST
) -> Escrowed:
    """Escrowed spot and adjusted vol per row (1-D arrays of ``n`` rows; ``schedule`` of ``n`` rows).

    ``pv = sum D_i exp(-r t_i)`` over ``t_i`` in ``(0, T]``; ``spot = S - pv``; ``vol = vol * k`` with
    ``k = 1`` (``"none"``), ``S / (S - pv)`` (``"simple"``) or ``sqrt(sum_j w_j (S / (S - R_j))^2 / T)``
    (``"beneder_vorst"``, see the module docstring). Rows without a dividend get ``pv = 0`` and
    ``k = 1`` exactly (all partials 0), so their values are the plain ones bit for bit.
    """
    if vol_adjust not in VOL_ADJUSTS:
        raise ValueError(f"unknown vol_adjust {vol_adjust!r}; expected one of {', '.join(VOL_ADJUSTS)}")
    t = xp.asarray(np.ascontiguousarray(schedule.times), dtype=spot.dtype)
    a = xp.asarray(np.ascontiguousarray(schedule.amounts), dtype=spot.dtype)
    return Escrowed(*_escrowed(xp, vol_adjust, spot, expiry, rate, vol, t, a))


def _escrowed(xp: Any, vol_adjust: str, spot: Any, expiry: Any, rate: Any, vol: Any, t: Any, a: Any) -> tuple:
    """:func:`escrowed_inputs` on arrays (``t``, ``a``: the schedule on the backend), jit-able."""
    T, r = expiry[:, None], rate[:, None]
    live = (t > 0) & (t <= T)
    tau = xp.minimum(xp.maximum(t, 0.0), T)  # sorted, as the schedule is
    pvi = xp.where(live, a, 0.0) * xp.exp(-r * tau)
    pv = xp.sum(pvi, axis=1)
    pv_r = -xp.sum(tau * pvi, axis=1)
    zero = 0.0 * spot
    if vol_adjust == "none":
        one = zero + 1.0
        return (pv, spot - pv, vol, pv_r, one, zero, zero, zero, zero)
    S, r1 = spot[:, None], rate[:, None]
    Tsafe = xp.where(expiry > 0, expiry, 1.0)
    if vol_adjust == "simple":
        R, Rr, w, w_t = pv[:, None], pv_r[:, None], Tsafe[:, None], zero[:, None] - 1.0
    else:
        m = int(t.shape[1])
        # R_j: PV of the dividends still to come in interval j = [tau_{j-1}, tau_j), j = 1 ... m + 1
        rem, rem_r, acc, acc_r = [zero], [zero], zero, zero
        for i in range(m - 1, -1, -1):
            acc, acc_r = acc + pvi[:, i], acc_r - tau[:, i] * pvi[:, i]
            rem.append(acc)
            rem_r.append(acc_r)
        R, Rr = xp.stack(rem[::-1], axis=1), xp.stack(rem_r[::-1], axis=1)
        edges = xp.concatenate([zero[:, None], tau, expiry[:, None]], axis=1)
        w = edges[:, 1:] - edges[:, :-1]
        # calendar dates fixed: every edge in the future moves with valuation time at -1
        moving = xp.concatenate([zero[:, None], xp.where(t > 0, -1.0, 0.0), zero[:, None] - 1.0], axis=1)
        w_t = moving[:, 1:] - moving[:, :-1]
    X = S - R
    u = S / X
    u_S, u_SS = -R / (X * X), 2.0 * R / (X * X * X)
    u_r, u_t = S * Rr / (X * X), S * r1 * R / (X * X)
    A = xp.sum(w * u * u, axis=1)
    A_S = xp.sum(2.0 * w * u * u_S, axis=1)
    A_SS = xp.sum(2.0 * w * (u_S * u_S + u * u_SS), axis=1)
    A_r = xp.sum(2.0 * w * u * u_r, axis=1)
    A_t = xp.sum(w_t * u * u + 2.0 * w * u * u_t, axis=1)
    k = xp.sqrt(A / Tsafe)
    k_S = A_S / (2.0 * k * Tsafe)
    k_SS = (A_SS / (2.0 * Tsafe) - k_S * k_S) / k
    k_r = A_r / (2.0 * k * Tsafe)
    k_t = (A_t + k * k) / (2.0 * k * Tsafe)
    has = pv > 0
    k, k_S, k_SS, k_t, k_r = (xp.where(has, v, d) for v, d in ((k, 1.0), (k_S, 0.0), (k_SS, 0.0), (k_t, 0.0), (k_r, 0.0)))
    return (pv, spot - pv, vol * k, pv_r, k, k_S, k_SS, k_t, k_r)


#: the partials of the escrowed-coordinate value F(S*, vol*, t, r, q) the chain rule uses, per Greek
_PARTIALS = {
    "price": ("price",),
    "delta": ("delta", "vega"),
    "gamma": ("gamma", "vanna", "volga", "vega"),
    "vega": ("vega",),
    "theta": ("theta", "delta", "vega"),
    "rho": ("rho", "delta", "vega"),
    "dividend_rho": ("dividend_rho",),
}


def partials_needed(names: Sequence[str], vol_adjust: str) -> tuple[str, ...]:
    """The escrowed-coordinate partials the Greeks ``names`` need under ``vol_adjust``."""
    bad = [n for n in names if n not in DIVIDEND_GREEKS]
    if bad:
        raise ValueError(f"greek(s) {bad} are not offered with discrete dividends; valid names: {', '.join(DIVIDEND_GREEKS)}")
    out: list[str] = []
    for n in names:
        for p in _PARTIALS[n]:
            if vol_adjust == "none" and p in ("vanna", "volga", "vega") and n != "vega":
                continue
            if p not in out:
                out.append(p)
    return tuple(out)


def quoted_greeks(
    xp: Any, F: Mapping[str, Any], esc: Escrowed, vol: Any, rate: Any, names: Sequence[str], vol_adjust: str
) -> dict[str, Any]:
    """Greeks in the quoted spot from the partials ``F`` of the escrowed-coordinate value (chain rule
    through ``S* = S - PV`` and ``vol* = vol k``; see the module docstring)."""
    adj = vol_adjust != "none"
    g_S, g_SS, g_t, g_r = vol * esc.k_S, vol * esc.k_SS, vol * esc.k_t, vol * esc.k_r
    out: dict[str, Any] = {}
    for n in names:
        if n == "price":
            v = F["price"]
        elif n == "delta":
            v = F["delta"] + F["vega"] * g_S if adj else F["delta"]
        elif n == "gamma":
            v = F["gamma"] + (2.0 * F["vanna"] * g_S + F["volga"] * g_S * g_S + F["vega"] * g_SS if adj else 0.0)
        elif n == "vega":
            v = F["vega"] * esc.k
        elif n == "theta":
            v = F["theta"] - F["delta"] * rate * esc.pv + (F["vega"] * g_t if adj else 0.0)
        elif n == "rho":
            v = F["rho"] - F["delta"] * esc.pv_r + (F["vega"] * g_r if adj else 0.0)
        else:
            v = F["dividend_rho"]
        out[n] = v
    return out


_COMPILED: dict[tuple, tuple[Any, Any]] = {}


def _quoted_plain(xp: Any, vol_adjust: str, names: tuple[str, ...], F: Mapping[str, Any], esc: Escrowed, vol: Any, rate: Any) -> dict:
    """:func:`quoted_greeks` where a row has dividends, the plain partials (bit for bit) where not."""
    out = quoted_greeks(xp, F, esc, vol, rate, names, vol_adjust)
    return {k: xp.where(esc.pv > 0, out[k], F[k]) for k in names}


def _compiled(bk: Any, what: str, vol_adjust: str, names: tuple[str, ...] = ()) -> Any:
    """The escrowed inputs or the chain rule as one compiled program per backend (``Backend.jit``)."""
    key = (id(bk), what, vol_adjust, names)
    if key not in _COMPILED:
        if what == "escrowed":
            fn = partial(_escrowed, bk.xp, vol_adjust)
        else:
            fn = partial(_quoted_plain, bk.xp, vol_adjust, names)
        _COMPILED[key] = (bk, bk.jit(fn))
    return _COMPILED[key][1]


def _row_error(bk: Any, spot: Any, esc: Escrowed) -> None:
    """Raise naming the first row whose dividends' PV is not below its spot (S* <= 0)."""
    if int(esc.spot.shape[0]) == 0:
        return
    lo, _ = bk.min_max(esc.spot)
    if lo > 0:
        return
    s = bk.to_numpy(esc.spot)
    i = int(np.argmax(~(s > 0)))
    raise ValueError(
        f"dividends row {i}: the present value of the dividends before expiry ({float(bk.to_numpy(esc.pv)[i])!r}) "
        f"is not below the spot ({float(bk.to_numpy(spot)[i])!r}); the escrowed spot S - PV must be > 0"
    )


def dividend_greeks(
    bk: Any, spot: Any, strike: Any, expiry: Any, vol: Any, rate: Any, div: Any, call: Any, names: Sequence[str],
    schedule: DividendSchedule | None, *, american: Any, vol_adjust: str = DEFAULT_VOL_ADJUST, model: str = "bsm",
    dtype: Any = np.float64, n_space: int | None = None, n_time: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Price and Greeks ``names`` (of :data:`DIVIDEND_GREEKS`) with discrete cash dividends, in the
    quoted spot, as backend arrays of the inputs' broadcast shape.

    Inputs are validated backend arrays (or scalars) that broadcast together; ``call`` is a bool or
    +-1 per row; ``schedule`` from :func:`check_dividends` for the broadcast size (rows in C order);
    ``american`` a bool or bool array per row. European rows: the Black-Scholes-Merton closed form
    on the escrowed inputs (:func:`escrowed_inputs`). American rows: the Crank-Nicolson grid of
    :mod:`.cn_grid` on the same escrowed model (``n_space``/``n_time``: its sizes), except calls
    without a dividend before expiry with ``q <= 0 <= r`` (never exercised early: the European value)
    and rows with zero vol or expiry (the European limit; no early-exercise premium). Rows without
    a dividend in ``(0, T]`` give exactly the no-dividend closed form (European) values.
    """
    if model != "bsm":
        raise ValueError(f"discrete dividends need model='bsm' (a spot price); got model={model!r}")
    names = tuple(dict.fromkeys(names))
    need = partials_needed(names, vol_adjust)
    xp = bk.xp
    phi_in = xp.where(xp.asarray(call) > 0, 1.0, -1.0)
    arrs = xp.broadcast_arrays(*(bk.asarray(a, dtype=dtype) for a in (spot, strike, expiry, vol, rate, div, phi_in)))
    shape = tuple(arrs[0].shape)
    S, K, T, v, r, q, phi = (xp.reshape(a, (-1,)) for a in arrs)
    n = int(S.shape[0])
    if schedule is None:
        schedule = DividendSchedule(np.zeros((n, 0)), np.zeros((n, 0)))
    if schedule.n_rows != n:
        raise ValueError(f"dividend schedule has {schedule.n_rows} rows; the inputs broadcast to {n} ({shape})")
    if vol_adjust not in VOL_ADJUSTS:
        raise ValueError(f"unknown vol_adjust {vol_adjust!r}; expected one of {', '.join(VOL_ADJUSTS)}")
    t, a = (bk.asarray(np.ascontiguousarray(x), dtype=dtype) for x in (schedule.times, schedule.amounts))
    esc = Escrowed(*_compiled(bk, "escrowed", vol_adjust)(S, T, r, v, t, a))
    _row_error(bk, S, esc)
    kern = black_kernel("bsm", need)
    F = bk.elementwise(kern, [esc.spot, K, T, esc.vol, r, q, phi], need, dtype, key=("dividends", need, str(np.dtype(dtype))))
    out = _compiled(bk, "quoted", vol_adjust, names)(F, esc, v, r)
    am = np.broadcast_to(np.asarray(bk.to_numpy(american) if not isinstance(american, bool) else american, dtype=bool), shape).reshape(-1)
    if am.any():
        h = {k: np.asarray(bk.to_numpy(a)).reshape(-1) for k, a in (("T", T), ("v", v), ("r", r), ("q", q), ("phi", phi))}
        has_h = np.asarray(bk.to_numpy(esc.pv)) > 0
        never = (h["phi"] > 0) & ~has_h & (h["q"] <= 0) & (h["r"] >= 0)
        grid_rows = np.flatnonzero(am & ~never & (h["v"] > 0) & (h["T"] > 0))
        if grid_rows.size:
            out = _american(bk, out, grid_rows, esc, S, K, T, v, r, q, phi, schedule, names, need, vol_adjust, dtype, n_space, n_time)
    return {k: xp.reshape(out[k], shape) for k in names}


def _american(bk, out, rows, esc, S, K, T, v, r, q, phi, schedule, names, need, vol_adjust, dtype, n_space, n_time):  # noqa: ANN001, ANN202
    """The grid rows ``rows`` (host indices) priced on :mod:`.cn_grid` and put back into ``out``."""
    from . import cn_grid

    xp = bk.xp
    sizes = {"n_space": n_space or cn_grid.N_SPACE, "n_time": n_time or cn_grid.N_TIME}
    parts: list[dict[str, Any]] = []
    for lo in range(0, rows.size, GRID_ROWS):  # bounded grids: (n_space, rows x bumped variants) per solve
        sub_rows = rows[lo : lo + GRID_ROWS]
        idx = bk.asarray(sub_rows)
        take = lambda a, idx=idx: xp.take(a, idx, axis=0)  # noqa: E731
        F = cn_grid.cn_partials(
            bk, take(esc.spot), take(K), take(T), take(esc.vol), take(r), take(q), take(phi), np.ones(sub_rows.size, dtype=bool),
            np.ascontiguousarray(schedule.times[sub_rows]), np.ascontiguousarray(schedule.amounts[sub_rows]), need, dtype=dtype, **sizes,
        )  # fmt: skip
        sub = Escrowed(*(take(a) for a in esc))
        parts.append(quoted_greeks(xp, F, sub, take(v), take(r), names, vol_adjust))
    g = {k: xp.concatenate([p[k] for p in parts]) if len(parts) > 1 else parts[0][k] for k in names}
    n = int(S.shape[0])
    inv = np.arange(n)
    inv[rows] = n + np.arange(rows.size)
    inv_d = bk.asarray(inv)
    return {k: xp.take(xp.concatenate([out[k], g[k]]), inv_d, axis=0) for k in names}
