"""gpu_hedge: Greeks of very large options books and dynamic hedging, fast on a GPU, correct on any CPU.

Importing this package imports neither CuPy nor JAX (they load when a backend needs them), nor
pandas or pyarrow: pricing, implied vols, simulation and hedging need only NumPy and SciPy; the
risk job and the data readers load pandas and pyarrow when first used.
"""

from . import _layout  # noqa: F401  (first: a stale cpu_fallback folder is an ImportError saying what to delete)
from ._backends import Backend, BackendUnavailableError, available_backends, get_backend, to_numpy
from ._hedging import (
    Costs,
    DeltaBand,
    DeltaGamma,
    DeltaVega,
    HedgeResult,
    Leland,
    MinimumVariance,
    MVCoefficients,
    NoHedge,
    Option,
    Periodic,
    StaticHedge,
    WhalleyWilmott,
    compare,
    compare_results,
    fit_minimum_variance,
    frontier,
    hedge,
    hedge_simulated,
    leland_vol,
    load_wti,
    plot_frontier,
    plot_ledger,
    plot_pnl_histogram,
    read_prices,
    rebalance,
    whalley_wilmott_band,
)
from ._pricing._limits import GREEK_NAMES
from ._pricing.api import greeks, price
from ._pricing.implied_vol import IVStatus, implied_vol
from ._simulation.models import GBM, Heston, Merton
from ._simulation.montecarlo import MCGreeks, MCResult, mc_greeks, mc_price
from ._simulation.paths import Paths, PathStep, iter_paths, simulate
from ._simulation.pricers import model_price

__version__ = "0.1.0"

#: names whose modules need pandas / pyarrow, imported on first use (PEP 562)
_LAZY = {
    "BookError": "._book",
    "ResidentBook": "._book",
    "RiskResult": "._book",
    "Scenarios": "._book",
    "generate_book": "._book",
    "risk": "._book",
    "write_book": "._book",
    "VolSurface": "._surface",
    "fit_surface": "._surface",
    "StudyResult": "._hedging.marks_study",
    "hedge_gain_study": "._hedging.marks_study",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gpu_hedge' has no attribute {name!r}")

__all__ = [
    *_LAZY,
    "Costs",
    "DeltaBand",
    "DeltaGamma",
    "DeltaVega",
    "HedgeResult",
    "Leland",
    "MVCoefficients",
    "MinimumVariance",
    "NoHedge",
    "Option",
    "Periodic",
    "StaticHedge",
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
    "whalley_wilmott_band",
    "GREEK_NAMES",
    "GBM",
    "Backend",
    "BackendUnavailableError",
    "Heston",
    "IVStatus",
    "MCGreeks",
    "MCResult",
    "Merton",
    "PathStep",
    "Paths",
    "available_backends",
    "get_backend",
    "greeks",
    "implied_vol",
    "iter_paths",
    "mc_greeks",
    "mc_price",
    "model_price",
    "price",
    "simulate",
    "to_numpy",
]
