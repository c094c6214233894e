"""Rows of the risk job whose underlying pays a cash dividend before expiry: Greeks, sums per
underlying and scenario ladders by the escrowed-dividend model
(:func:`gpu_hedge._pricing.dividends.dividend_greeks`: the closed form on ``S - PV`` for European
rows, the Crank-Nicolson grid for American ones), Greeks in the quoted spot.

The same contracts as :func:`.reductions.greek_sums` / :func:`.reductions.ladder_sums` (backend
arrays ``args`` = S, K, T, vol, r, q, phi; weights ``w``; underlying codes ``c``) plus each row's
host :class:`~gpu_hedge._pricing.dividends.DividendSchedule`, its exercise (host bool per row) and
the table's volatility adjustment. A ladder scenario moves the quoted spot to ``S (1 + ds)`` and the
vol to ``max(vol + dv, 0)`` (or the moved vol of a sticky-moneyness smile); the cash amounts stay.
Scenarios are stacked, several per pricing call of at most :data:`STACK_ROWS` rows (American rows
are solved on the grid in slices of :data:`gpu_hedge._pricing.dividends.GRID_ROWS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backends import Backend
from .._pricing.cn_grid import exercised_now
from .._pricing.dividends import DividendSchedule, dividend_greeks
from .american_rows import stacked_ladder
from .dividend_table import dividends_pv
from .reductions import GREEKS, segment_sum
from .scenarios import spot_shocks
from .sources import BookError

__all__ = ["STACK_ROWS", "dividend_greek_sums", "dividend_inputs", "dividend_ladder_sums"]

#: rows per pricing call of a ladder (scenarios stacked)
STACK_ROWS = 1 << 16


def _price(bk: Backend, args: Sequence[Any], names: Sequence[str], dt: Any, schedule: DividendSchedule, american: np.ndarray,
           vol_adjust: str) -> dict[str, Any]:  # fmt: skip
    S, K, T, vol, r, q, phi = args
    return dividend_greeks(bk, S, K, T, vol, r, q, phi, names, schedule, american=american, vol_adjust=vol_adjust, dtype=dt)


def dividend_inputs(market: Any, codes: np.ndarray, american: np.ndarray, size: int) -> tuple[DividendSchedule, np.ndarray]:
    """The schedules (from ``market.dividends`` by underlying code) and exercise of rows ``codes``,
    lengthened to ``size`` rows as :func:`.batches.pad` does (padding: no dividends, European)."""
    sched = market.dividends.schedule(np.asarray(codes, dtype=np.int64))
    m = int(codes.size)
    am = np.zeros(size, dtype=bool)
    am[:m] = american
    if size > m:
        extra = np.zeros((size - m, sched.times.shape[1]))
        sched = DividendSchedule(np.concatenate([sched.times, extra]), np.concatenate([sched.amounts, extra]))
    return sched, am


def dividend_greek_sums(
    bk: Backend, args: list[Any], w: Any, c: Any, n_u: int, dt: Any, schedule: DividendSchedule, american: np.ndarray,
    vol_adjust: str, slope: Any = None,
) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    """:data:`GREEKS` and ``early_exercise`` (American rows whose price is their intrinsic value)
    of dividend-paying ``bsm`` rows, and the weighted sums of :data:`GREEKS` per underlying code,
    ``(len(GREEKS), n_u)`` on the host (one more row, the shadow delta, with ``slope``)."""
    out = dict(_price(bk, args, GREEKS, dt, schedule, american, vol_adjust))
    am = bk.asarray(np.asarray(american, dtype=bool))
    out["early_exercise"] = exercised_now(bk.xp, args[0], args[1], args[6], out["price"], am)
    rows = [segment_sum(bk, c, out[name] * w, n_u) for name in GREEKS]
    if slope is not None:
        rows.append(segment_sum(bk, c, (out["delta"] + out["vega"] * slope) * w, n_u))
    return out, np.stack(rows)


def _check_shocks(bk: Backend, args: Sequence[Any], schedule: DividendSchedule, shocks: Sequence[float]) -> None:
    """Raise naming the first spot shock that leaves a row's spot ``S (1 + ds)`` at or below the
    present value of its dividends before expiry (the escrowed spot must stay > 0)."""
    S, T, r = (np.asarray(bk.to_numpy(args[i]), dtype=np.float64) for i in (0, 2, 4))
    pv = dividends_pv(T, r, schedule)
    for ds in sorted(shocks):
        bad = np.flatnonzero(~(S * (1.0 + ds) > pv) & (pv > 0))
        if bad.size:
            i = int(bad[0])
            raise BookError(
                f"ladder: the spot shock {ds:+g} leaves the spot of {bad.size} row(s) at or below the present value of their cash "
                f"dividends before expiry (S (1 + ds) = {S[i] * (1.0 + ds):.6g} against PV {pv[i]:.6g}); the escrowed spot "
                "S (1 + ds) - PV must be > 0: use smaller down shocks or check the dividend table"
            )


def dividend_ladder_sums(
    bk: Backend, pairs: Sequence[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, dt: Any,
    schedule: DividendSchedule, american: np.ndarray, vol_adjust: str, moved: list[Any] | None = None,
) -> np.ndarray:  # fmt: skip
    """Weighted scenario P&L ``w x (V(S (1 + ds), vol') - V(S, vol))`` of dividend-paying rows per
    underlying code, ``(len(pairs), n_u)`` on the host; ``vol' = max(vol + dv, 0)`` with ``vol`` the
    row's or its vol after that spot move from ``moved`` (one array per :func:`spot_shocks` entry)."""
    if not int(args[0].shape[0]) or not len(pairs):
        return np.zeros((len(pairs), n_u))
    _check_shocks(bk, args, schedule, spot_shocks(pairs))
    am = np.asarray(american, dtype=bool)

    def price(stacked: list[Any], g: int) -> Any:
        sched = DividendSchedule(np.tile(schedule.times, (g, 1)), np.tile(schedule.amounts, (g, 1)))
        return _price(bk, stacked, ("price",), dt, sched, np.tile(am, g), vol_adjust)["price"]

    return stacked_ladder(bk, pairs, args, w, c, n_u, moved, STACK_ROWS, price)
