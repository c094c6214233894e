"""Market data: one row per underlying (spot, flat vol, rate, dividend yield), read and checked into
a :class:`Market`, optionally with vol grids per underlying (:mod:`gpu_hedge._book.vol_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .sources import BookError, read_frame
from .vol_grid import VolSurface, read_surfaces

__all__ = ["MARKET_COLUMNS", "Market", "read_market"]

MARKET_COLUMNS = ("underlying", "spot", "vol", "rate", "div")


@dataclass(frozen=True)
class Market:
    """Validated market data: ``names`` (underlyings, in order) and float64 arrays by position in it."""

    names: pd.Index
    spot: np.ndarray
    vol: np.ndarray
    rate: np.ndarray
    div: np.ndarray
    surfaces: dict[int, VolSurface] | None = None  # by underlying position in ``names``

    @property
    def size(self) -> int:
        return len(self.names)

    def vol_for(self, code: np.ndarray, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """The market vol of each row: its underlying's surface at (tau, strike) where it has one,
        else the underlying's flat ``vol``. Rows with code < 0 get NaN."""
        out = np.where(code >= 0, self.vol[np.maximum(code, 0)], np.nan)
        for u, surface in (self.surfaces or {}).items():
            rows = np.flatnonzero(code == u)
            if rows.size:
                out[rows] = surface(strike[rows], tau[rows])
        return out


def read_market(market: Any, vol_surface: Any = None) -> Market:
    """Market data from a path (Parquet/CSV), DataFrame or Arrow table, checked row by row;
    ``vol_surface`` (optional, see :func:`read_surfaces`) gives some underlyings a vol grid."""
    df = read_frame(market, "market")
    missing = [c for c in MARKET_COLUMNS if c not in df.columns]
    unknown = [c for c in df.columns if c not in MARKET_COLUMNS]
    if missing or unknown:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []
        )
        raise BookError("market data: " + "; ".join(parts))
    names = df["underlying"].astype(str)
    dup = names[names.duplicated()]
    if len(dup):
        raise BookError(f"market data: underlying {dup.iloc[0]!r} appears more than once")
    out = {}
    for col, rule in (("spot", "> 0"), ("vol", "> 0"), ("rate", "finite"), ("div", "finite")):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v) | ((v <= 0) if rule == "> 0" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise BookError(f"market data: {col} = {df[col].iloc[i : i + 1].tolist()[0]!r} for underlying {names.iloc[i]!r} must be {rule}")
        out[col] = v
    index = pd.Index(names)
    surfaces = read_surfaces(vol_surface, index) if vol_surface is not None else None
    return Market(index, out["spot"], out["vol"], out["rate"], out["div"], surfaces)
