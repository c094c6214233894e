"""Hedge trades for the book: per underlying, the book's delta (shares) against the hedges held,
through :func:`gpu_hedge.rebalance` (default strategy ``Periodic()``: back to delta-neutral).

Hedges: a table (DataFrame, .parquet or .csv path) of ``underlying`` and ``holding`` in shares; an
underlying without a row holds 0. Trades are in shares, ``trade_notional`` = trade x spot, and the
cost is :class:`gpu_hedge.Costs`' (in currency), all on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._backends import host_backend
from .sources import BookError

__all__ = ["hedge_trades"]


def hedge_trades(by: pd.DataFrame, hedges: Any, strategy: Any, costs: Any, lot_size: float | None) -> pd.DataFrame:
    """The trades table (exposure, holding, trade, new_holding, trade_notional, cost, limited; indexed
    by underlying) for ``by`` (the by-underlying table: ``delta`` in shares, ``gamma``, ``spot``)
    against ``hedges`` (None: no holdings)."""
    from .._hedging import Costs, Periodic, rebalance

    holding = pd.Series(0.0, index=by.index)
    if hedges is not None:
        h = (
            hedges
            if isinstance(hedges, pd.DataFrame)
            else pd.read_parquet(hedges)
            if str(hedges).endswith(".parquet")
            else pd.read_csv(hedges)
        )
        missing = [c for c in ("underlying", "holding") if c not in h.columns]
        if missing:
            raise BookError(f"hedges: missing column(s) {', '.join(missing)} (expected underlying, holding in shares)")
        h = h.assign(underlying=h["underlying"].astype(str)).groupby("underlying")["holding"].sum()
        unknown = sorted(set(h.index) - set(by.index))
        if unknown:
            raise BookError(f"hedges: underlying {unknown[0]!r} has a hedge but no valid positions in the book")
        holding = holding.add(h.astype(np.float64), fill_value=0.0).reindex(by.index)
    strategy = Periodic() if strategy is None else strategy
    costs = Costs() if costs is None else costs
    if len(by) == 0:
        return pd.DataFrame(columns=["exposure", "holding", "trade", "new_holding", "cost", "limited"], index=by.index)
    decision = rebalance(by["delta"].to_numpy(), holding.to_numpy(), price=by["spot"].to_numpy(), strategy=strategy, costs=costs,
                         lot_size=lot_size, gamma=by["gamma"].to_numpy(), backend=host_backend())  # fmt: skip
    trades = np.asarray(decision.trades, dtype=np.float64)
    return pd.DataFrame(
        {
            "exposure": by["delta"].to_numpy(),
            "holding": holding.to_numpy(),
            "trade": trades,
            "new_holding": holding.to_numpy() + trades,
            "trade_notional": trades * by["spot"].to_numpy(),
            "cost": np.asarray(decision.costs, dtype=np.float64),
            "limited": np.asarray(decision.limited, dtype=bool),
        },
        index=by.index,
    )
