"""The rebalancing engine: strategies, costs, the decision step and the streaming hedging loop."""

from .costs import Costs
from .engine import Decision, Option, rebalance
from .loop import hedge, hedge_simulated
from .prices import load_wti, read_prices
from .result import HedgeResult, risk_summary
from .smile import MinimumVariance, MVCoefficients, fit_minimum_variance, vol_and_slope
from .strategies import (
    DeltaBand,
    DeltaGamma,
    DeltaVega,
    Leland,
    NoHedge,
    Periodic,
    StaticHedge,
    Strategy,
    WhalleyWilmott,
    leland_vol,
    whalley_wilmott_band,
)
from .studies import compare, compare_results, frontier, plot_frontier, plot_ledger, plot_pnl_histogram

__all__ = [
    "Costs",
    "Decision",
    "DeltaBand",
    "DeltaGamma",
    "DeltaVega",
    "HedgeResult",
    "MVCoefficients",
    "MinimumVariance",
    "Leland",
    "NoHedge",
    "Option",
    "Periodic",
    "StaticHedge",
    "Strategy",
    "WhalleyWilmott",
    "compare",
    "compare_results",
    "fit_minimum_variance",
    "frontier",
    "hedge",
    "hedge_simulated",
    "leland_vol",
    "load_wti",
    "plot_frontier",
    "plot_ledger",
    "plot_pnl_histogram",
    "read_prices",
    "rebalance",
    "risk_summary",
    "vol_and_slope",
    "whalley_wilmott_band",
]
