"""The rebalancing engine: strategies, costs, the decision step and the streaming hedging loop."""

from .costs import Costs
from .engine import Decision, Option, rebalance
from .loop import hedge
from .result import HedgeResult, risk_summary
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

__all__ = [
    "Costs",
    "Decision",
    "DeltaBand",
    "DeltaGamma",
    "DeltaVega",
    "HedgeResult",
    "Leland",
    "NoHedge",
    "Option",
    "Periodic",
    "StaticHedge",
    "Strategy",
    "WhalleyWilmott",
    "hedge",
    "leland_vol",
    "rebalance",
    "risk_summary",
    "whalley_wilmott_band",
]
