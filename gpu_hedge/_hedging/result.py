"""What a hedging run returns: per-path arrays, a summary of risk and cost, and a per-date ledger
(replayed on one path by :mod:`gpu_hedge._hedging.ledger`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._backends import to_numpy

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .plan import Plan
    from .state import HedgeState

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
    def from_state(cls, state: HedgeState, plan: Plan, prices: Any) -> HedgeResult:
        """Per-path results from the run's final state, copied to the host as float64. ``prices``: the
        run's prices, or a callable ``path -> prices`` regenerating a streamed path (for :meth:`ledger`)."""
        h = {k: np.asarray(to_numpy(v), dtype=np.float64) for k, v in state._asdict().items() if k != "alive"}
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
        (interest and dividends), cost (with a minus sign in step_pnl) and residual. A book holding
        American options adds ``exercised`` (True on the date an option was exercised or assigned on
        this path) and ``exercise_cash`` (that settlement's cash: units x intrinsic value)."""
        from .ledger import ledger

        return ledger(self._plan, self._prices, path, self.n_paths)
