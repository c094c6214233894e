"""The per-date ledger of one path of a hedging run: the run replayed on that path alone, on the host
backend, with each date's book value, Greeks, trade, cost, cash and a P&L attribution recorded.

Used by :meth:`gpu_hedge.HedgeResult.ledger`; it drives :func:`gpu_hedge._hedging.drivers.run` with
a ``record`` callback, so the ledger is the run's own arithmetic, not a second implementation of it.
A book holding American options adds two columns: ``exercised`` (True on the date an option was
exercised or assigned on this path, a change of the state's ``alive`` mask) and ``exercise_cash``
(what that settlement paid into the cash: units x intrinsic value, negative when assigned). A run
with cash dividends (``hedge(dividends=)``) adds ``dividend_cash``: what the shares held since the
last date received (grown at the rate to this date), also counted in ``carry``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._backends import host_backend, to_numpy
from .book import KERNEL, book_greeks, settle
from .drivers import run
from .engine import has_american
from .plan import Plan
from .state import HedgeState
from .step import dividends_between

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["ledger"]


def ledger(plan: Plan, prices: Any, path: int, n_paths: int) -> pd.DataFrame:
    """The ledger of ``path`` (see :meth:`gpu_hedge.HedgeResult.ledger` for the columns): ``prices``
    is the run's price matrix ``(n_times, n_paths)`` or series ``(n_times,)``, or a callable
    ``path -> (n_times,)`` prices that regenerates a streamed path."""
    import pandas as pd

    if not 0 <= path < n_paths:
        raise IndexError(f"path = {path} is outside 0 ... {n_paths - 1}")
    bk = host_backend()
    xp, sp = bk.xp, bk.special
    if callable(prices):  # streamed paths: regenerate this one
        column = np.asarray(prices(path), dtype=np.float64)
    else:
        column = np.asarray(to_numpy(prices if len(prices.shape) == 1 else prices[:, path]), dtype=np.float64)

    def row(k: int) -> Any:
        return column[k : k + 1]

    rows: list[dict[str, float]] = []
    american = has_american(plan)
    was_alive = [np.ones(len(plan.options))]  # the previous date's mask (American books)

    def record(k: int, t: float, spot: Any, state: HedgeState, live: tuple[int, ...]) -> None:
        s = float(spot[0])
        final = k == plan.times.size - 1
        if final:  # everything has been settled, marked or unwound into cash
            live = ()
        alive = state.alive
        if plan.marks is not None:
            value = sum(plan.options[j].units * float(plan.marks[k, j]) * (float(alive[0, j]) if alive is not None else 1.0) for j in live)
            g = book_greeks(xp, sp, plan, live, spot, t, plan.vols[k], bk=bk, alive=alive)
        else:
            g = book_greeks(xp, sp, plan, live, spot, t, plan.vols[k], bk=bk, alive=alive)
            value = float(g["price"][0]) if live else 0.0
        hedge_value = 0.0
        h_opt = plan.hedge_option
        units = float(state.hedge_units[0])
        if h_opt is not None and not final:
            gh = KERNEL(
                xp,
                sp,
                spot,
                h_opt.strike,
                h_opt.expiry - t,
                plan.hedge_option_vols[k],
                plan.rate,
                plan.div,
                1.0 if h_opt.call else -1.0,
            )
            hedge_value = units * h_opt.multiplier * float(gh["price"][0])
            for name in ("delta", "gamma", "vega", "theta"):
                g[name] = g[name] + units * h_opt.multiplier * gh[name]
        last = rows[-1] if rows else None
        holding, cash, cost_total = float(state.holding[0]), float(state.cash[0]), float(state.costs[0])
        pnl = cash + holding * s + value + hedge_value
        r = {
            "time": t, "spot": s, "option_value": value, "hedge_option_units": units,
            "delta": float(g["delta"][0]), "gamma": float(g["gamma"][0]), "vega": float(g["vega"][0]), "theta": float(g["theta"][0]),
            "holding": holding, "trade": holding - (last["holding"] if last else 0.0),
            "cost": cost_total - (last["_costs"] if last else 0.0), "cash": cash, "pnl": pnl, "_costs": cost_total,
        }  # fmt: skip
        if american:
            now = np.asarray(alive[0], dtype=np.float64)
            gone = [j for j in range(len(plan.options)) if was_alive[0][j] > now[j]]
            r["exercised"] = bool(gone)
            r["exercise_cash"] = sum(float(settle(xp, plan.options[j], spot)[0]) for j in gone)
            was_alive[0] = now
        if last is None:
            r.update(step_pnl=pnl, delta_pnl=0.0, gamma_pnl=0.0, theta_pnl=0.0, vega_pnl=0.0, carry=0.0)
        else:
            ds, dt = s - last["spot"], t - last["time"]
            dvol = float(np.mean(plan.vols[k] - plan.vols[k - 1]))
            held = last["holding"]
            paid = held * dividends_between(plan, last["time"], t) if plan.dividends is not None else 0.0
            r.update(
                step_pnl=pnl - last["pnl"],
                delta_pnl=(last["delta"] + held) * ds,
                gamma_pnl=0.5 * last["gamma"] * ds * ds,
                theta_pnl=last["theta"] * dt,
                vega_pnl=last["vega"] * dvol,
                carry=last["cash"] * math.expm1(plan.rate * dt) + held * last["spot"] * math.expm1(plan.div * dt) + paid,
            )
        if plan.dividends is not None:
            r["dividend_cash"] = paid if last is not None else 0.0
        r["residual"] = r["step_pnl"] - (r["delta_pnl"] + r["gamma_pnl"] + r["theta_pnl"] + r["vega_pnl"] + r["carry"] - r["cost"])
        rows.append(r)

    run(bk, plan, row, 1, np.float64, record=record)
    frame = pd.DataFrame(rows).drop(columns="_costs")
    return frame.set_index("time")
