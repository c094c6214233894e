"""Simulation layer: market models, counter-based random streams, path generation, reference pricers."""

from .models import GBM, Heston, Merton

__all__ = ["GBM", "Heston", "Merton"]
