"""What a hedging run returns: per-path arrays, a summary of risk and cost, and a per-date ledger."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._backends import get_backend, to_numpy

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .loop import Plan

__all__ = ["HedgeResult", "risk_summary"]


def _tail(losses: np.ndarray, level: float) -> tuple[float, float]:
    """(VaR, expected shortfall) at ``level`` of a loss sample (positive = loss): the ``level``
    quantile and the mean of the losses at or beyond it."""
    var = float(np.quantile(losses, level))
    tail = losses[losses >= var]
    return var, float(tail.mean()) if tail.size else var


def risk_summary(pnl: np.ndarray, *, costs: np.ndarray | None = None, unhedged: np.ndarray | None = None, premium: float | None = None,
                 discount: float = 1.0) -> dict[str, float]:  # fmt: skip
    """Mean, std, VaR and expected shortfall (95 %, 99 %; losses positive) of ``pnl`` per path, plus
    (when given) the mean cost, Hull's performance measure std(discounted P&L) / |premium| and the
    hedge effectiveness 1 - var(pnl) / var(unhedged)."""
    pnl = np.asarray(pnl, dtype=np.float64)
    n = pnl.size
    out: dict[str, float] = {"n_paths": float(n), "mean": float(pnl.mean()), "std": float(pnl.std(ddof=1)) if n > 1 else math.nan}
    out["stderr_mean"] = out["std"] / math.sqrt(n) if n > 1 else math.nan
    for level in (0.95, 0.99):
        var, es = _tail(-pnl, level)
        out[f"var_{round(level * 100)}"], out[f"es_{round(level * 100)}"] = var, es
    out["p05"], out["p95"] = float(np.quantile(pnl, 0.05)), float(np.quantile(pnl, 0.95))
    if costs is not None:
        out["mean_cost"] = float(np.mean(costs))
    if premium is not None and premium != 0 and n > 1:
        out["hull_ratio"] = float(np.std(pnl * discount, ddof=1) / abs(premium))
    if unhedged is not None and n > 1:
        v = float(np.var(unhedged, ddof=1))
        out["effectiveness"] = 1.0 - float(np.var(pnl, ddof=1)) / v if v > 0 else math.nan
    return out


@dataclass
class HedgeResult:
    """Per-path results of :func:`gpu_hedge.hedge` (NumPy arrays, shape ``(n_paths,)``):

    ``pnl`` (final cash, currency), ``hedging_error`` (``pnl + costs``, P&L before costs), ``costs``
    (total transaction costs), ``n_trades`` (trades in the underlying, the final unwind included),
    ``turnover`` (traded notional in the underlying), ``unhedged`` (the book's P&L with no hedge),
    ``limited`` (dates where ``max_position`` cut a trade), ``premium`` (the book's value at t_0;
    positive = the book cost money).
    """

    pnl: np.ndarray
    hedging_error: np.ndarray
    costs: np.ndarray
    n_trades: np.ndarray
    turnover: np.ndarray
    unhedged: np.ndarray
    limited: np.ndarray
    premium: np.ndarray
    _plan: Any = field(repr=False)
    _prices: Any = field(repr=False)

    @classmethod
    def from_state(cls, state: dict, plan: Plan, prices: Any) -> HedgeResult:
        """Per-path results from the loop's final state, copied to the host as float64."""
        h = {k: np.asarray(to_numpy(v), dtype=np.float64) for k, v in state.items()}
        return cls(
            h["cash"], h["cash"] + h["costs"], h["costs"], h["n_trades"].astype(np.int64), h["turnover"], h["unhedged"],
            h["limited"].astype(np.int64), h["premium"], plan, prices,
        )  # fmt: skip

    @property
    def n_paths(self) -> int:
        return int(self.pnl.size)

    def summary(self) -> dict[str, float]:
        """Mean, std, 95/99 % VaR and expected shortfall of the P&L (losses positive), mean cost and
        trade count, Hull's performance measure (std of the discounted hedged P&L over the option's
        price) and effectiveness 1 - var(hedged) / var(unhedged)."""
        t = self._plan.times
        premium = float(np.mean(self.premium))
        out = risk_summary(self.pnl, costs=self.costs, unhedged=self.unhedged, premium=premium,
                           discount=math.exp(-self._plan.rate * (t[-1] - t[0])))  # fmt: skip
        out["mean_trades"] = float(np.mean(self.n_trades))
        out["mean_turnover"] = float(np.mean(self.turnover))
        out["premium"] = premium
        return out

    def ledger(self, path: int = 0) -> pd.DataFrame:
        """Per-date ledger of one path (re-run on that path alone, NumPy): time, spot, option_value
        (the book at the pricing vol or the marks), delta / gamma / vega / theta (the book's, shares
        and currency units), holding (after the date's trade), trade, cost, cash, pnl (mark to market:
        cash + shares + options), step_pnl and its attribution: delta_pnl ((book delta + holding) x dS),
        gamma_pnl (gamma dS^2 / 2), theta_pnl (theta dt), vega_pnl (vega x change of vol, averaged
        over options), carry
        (interest and dividends), cost (with a minus sign in step_pnl) and residual."""
        import pandas as pd

        from .loop import _KERNEL, _book_greeks, run

        if not 0 <= path < self.n_paths:
            raise IndexError(f"path = {path} is outside 0 ... {self.n_paths - 1}")
        bk = get_backend("numpy")
        xp, sp = bk.xp, bk.special
        plan = self._plan
        prices = self._prices
        if callable(prices):  # streamed paths: regenerate this one
            column = np.asarray(prices(path), dtype=np.float64)
        else:
            column = np.asarray(to_numpy(prices if len(prices.shape) == 1 else prices[:, path]), dtype=np.float64)

        def row(k: int) -> Any:
            return column[k : k + 1]

        rows: list[dict[str, float]] = []

        def record(k: int, t: float, spot: Any, state: dict, live: tuple[int, ...]) -> None:
            s = float(spot[0])
            final = k == plan.times.size - 1
            if final:  # everything has been settled, marked or unwound into cash
                live = ()
            if plan.marks is not None:
                value = sum(plan.options[j].units * float(plan.marks[k, j]) for j in live)
                g = _book_greeks(xp, sp, plan, live, spot, t, plan.vols[k])
            else:
                g = _book_greeks(xp, sp, plan, live, spot, t, plan.vols[k])
                value = float(g["price"][0]) if live else 0.0
            hedge_value = 0.0
            h_opt = plan.hedge_option
            units = float(state["hedge_units"][0])
            if h_opt is not None and not final:
                gh = _KERNEL(
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
            holding, cash, cost_total = float(state["holding"][0]), float(state["cash"][0]), float(state["costs"][0])
            pnl = cash + holding * s + value + hedge_value
            r = {
                "time": t, "spot": s, "option_value": value, "hedge_option_units": units,
                "delta": float(g["delta"][0]), "gamma": float(g["gamma"][0]), "vega": float(g["vega"][0]), "theta": float(g["theta"][0]),
                "holding": holding, "trade": holding - (last["holding"] if last else 0.0),
                "cost": cost_total - (last["_costs"] if last else 0.0), "cash": cash, "pnl": pnl, "_costs": cost_total,
            }  # fmt: skip
            if last is None:
                r.update(step_pnl=pnl, delta_pnl=0.0, gamma_pnl=0.0, theta_pnl=0.0, vega_pnl=0.0, carry=0.0)
            else:
                ds, dt = s - last["spot"], t - last["time"]
                dvol = float(np.mean(plan.vols[k] - plan.vols[k - 1]))
                held = last["holding"]
                r.update(
                    step_pnl=pnl - last["pnl"],
                    delta_pnl=(last["delta"] + held) * ds,
                    gamma_pnl=0.5 * last["gamma"] * ds * ds,
                    theta_pnl=last["theta"] * dt,
                    vega_pnl=last["vega"] * dvol,
                    carry=last["cash"] * math.expm1(plan.rate * dt) + held * last["spot"] * math.expm1(plan.div * dt),
                )
            r["residual"] = r["step_pnl"] - (r["delta_pnl"] + r["gamma_pnl"] + r["theta_pnl"] + r["vega_pnl"] + r["carry"] - r["cost"])
            rows.append(r)

        run(bk, plan, row, 1, np.float64, record=record)
        frame = pd.DataFrame(rows).drop(columns="_costs")
        return frame.set_index("time")
