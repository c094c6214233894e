"""Vol grids: a long table (underlying, expiry_years, strike, vol) of full expiry x strike grids, read
into one :class:`VolSurface` per underlying and interpolated at each position's strike and expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .sources import BookError, read_frame

__all__ = ["SURFACE_COLUMNS", "VolSurface", "read_surfaces"]

SURFACE_COLUMNS = ("underlying", "expiry_years", "strike", "vol")


@dataclass(frozen=True)
class VolSurface:
    """Implied vols on a grid: ``expiries`` (years, increasing) x ``strikes`` (increasing).

    Interpolation: at each grid expiry, vol linear in log-strike with flat extrapolation beyond the
    wings; between expiries, total variance vol^2 T linear in T (no calendar arbitrage is created
    where the grid has none); before the first and after the last expiry the vol is held flat.
    """

    expiries: np.ndarray
    strikes: np.ndarray
    vols: np.ndarray  # (n_expiries, n_strikes)

    def __call__(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        lk, grid = np.log(np.maximum(strike, 1e-300)), np.log(self.strikes)
        at = np.stack([np.interp(lk, grid, row) for row in self.vols])  # (n_expiries, n)
        e = self.expiries
        if e.size == 1:
            return at[0]
        t = np.clip(tau, e[0], e[-1])
        hi = np.clip(np.searchsorted(e, t, side="left"), 1, e.size - 1)
        lo = hi - 1
        cols = np.arange(t.size)
        w_lo, w_hi = at[lo, cols] ** 2 * e[lo], at[hi, cols] ** 2 * e[hi]
        frac = (t - e[lo]) / (e[hi] - e[lo])
        return np.sqrt((w_lo + frac * (w_hi - w_lo)) / t)


def read_surfaces(surface: Any, names: pd.Index) -> dict[int, VolSurface]:
    """Vol grids from a long table (underlying, expiry_years, strike, vol): each underlying's rows must
    form a full expiry x strike grid of finite vols > 0 with expiries and strikes > 0."""
    df = read_frame(surface, "vol surface")
    missing = [c for c in SURFACE_COLUMNS if c not in df.columns]
    if missing:
        raise BookError(f"vol surface: missing column(s) {', '.join(missing)} (expected {', '.join(SURFACE_COLUMNS)})")
    out: dict[int, VolSurface] = {}
    df = df.assign(underlying=df["underlying"].astype(str))
    for name, g in df.groupby("underlying", sort=False):
        if name not in names:
            raise BookError(f"vol surface: underlying {name!r} is not in the market data")
        vals = {c: pd.to_numeric(g[c], errors="coerce").to_numpy(dtype=np.float64) for c in ("expiry_years", "strike", "vol")}
        for c, v in vals.items():
            bad = ~(np.isfinite(v) & (v > 0))
            if bad.any():
                raise BookError(f"vol surface: {c} = {g[c].iloc[int(np.flatnonzero(bad)[0])]!r} for {name!r} must be finite and > 0")
        grid = pd.DataFrame(vals).pivot_table(index="expiry_years", columns="strike", values="vol", aggfunc="count")
        if grid.isna().any().any() or (grid.to_numpy() != 1).any():
            raise BookError(f"vol surface: {name!r} is not a full expiry x strike grid with one vol per point")
        table = pd.DataFrame(vals).pivot(index="expiry_years", columns="strike", values="vol").sort_index().sort_index(axis=1)
        out[int(names.get_loc(name))] = VolSurface(table.index.to_numpy(float), table.columns.to_numpy(float), table.to_numpy(float))
    return out
