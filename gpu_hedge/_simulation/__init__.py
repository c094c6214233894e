"""Simulation layer: market models, counter-based random streams, path generation, reference pricers."""

from .models import GBM, Heston, Merton
from .montecarlo import MCGreeks, MCResult, mc_greeks, mc_price
from .paths import Paths, PathStep, iter_paths, simulate
from .pricers import heston_price, merton_price, model_price
from .random import PATH_BLOCK

__all__ = [
    "GBM",
    "PATH_BLOCK",
    "Heston",
    "MCGreeks",
    "MCResult",
    "Merton",
    "PathStep",
    "Paths",
    "heston_price",
    "iter_paths",
    "mc_greeks",
    "mc_price",
    "merton_price",
    "model_price",
    "simulate",
]
