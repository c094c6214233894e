"""Market data: one row per underlying (spot, flat vol, rate, dividend yield), read and checked into
a :class:`Market`, optionally with a vol surface per underlying: a grid (:mod:`gpu_hedge._book.vol_grid`)
or a fitted surface's group, and the stickiness of scenario vols (:mod:`gpu_hedge._book.fitted_surface`),
and optionally cash dividends per underlying (:mod:`gpu_hedge._book.dividend_table`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._pricing.american_greeks import SCHEMES
from .dividend_table import DividendTable, dividends_pv, read_dividends
from .fitted_surface import check_sticky, log_strike_slope, read_vol_surface
from .sources import BookError, read_frame

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
    surfaces: dict[int, Any] | None = None  # by underlying position in ``names``: (strike, tau) -> vol
    sticky: str = "strike"  # how surface vols move with spot in scenarios: "strike" or "moneyness"
    dividends: DividendTable | None = None  # cash dividends per underlying (escrowed model for bsm rows)
    american_method: str = "alo"  # the ALO scheme of American rows: "alo" (1e-8), "alo-fast" (~4e-7, ~3x faster)

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def smile(self) -> bool:
        """Whether any underlying has a vol surface (the job then writes ``vol`` and shadow deltas)."""
        return bool(self.surfaces)

    def paying(self, code: np.ndarray, tau: np.ndarray, model: np.ndarray) -> np.ndarray:
        """Host bool per row: a ``bsm`` row (``model`` code 0) whose underlying pays a cash dividend
        in ``(0, tau]`` (priced by the escrowed-dividend model)."""
        if self.dividends is None or not self.dividends.times.shape[1] or not code.size:
            return np.zeros(code.shape, dtype=bool)
        return (model == 0) & self.dividends.paying(code, tau)

    def dividends_pv(self, code: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Present value at the market's rate of each row's cash dividends going ex in ``(0, tau]``."""
        if self.dividends is None:
            return np.zeros(code.shape)
        return dividends_pv(tau, self.rate[code], self.dividends.schedule(code))

    def on_surface(self, code: np.ndarray) -> np.ndarray:
        """Whether each row's underlying has a vol surface."""
        return np.isin(code, np.fromiter((self.surfaces or {}).keys(), dtype=np.int64))

    def vol_for(self, code: np.ndarray, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """The market vol of each row: its underlying's surface at (tau, strike) where it has one,
        else the underlying's flat ``vol``. Rows with code < 0 get NaN."""
        out = np.where(code >= 0, self.vol[np.maximum(code, 0)], np.nan)
        for u, surface in (self.surfaces or {}).items():
            rows = np.flatnonzero((code == u) & (strike > 0) & (tau > 0) & np.isfinite(strike) & np.isfinite(tau))
            out[code == u] = np.nan  # invalid strikes or expiries (those rows are set aside)
            if rows.size:
                out[rows] = surface(strike[rows], tau[rows])
        return out

    def moved_vol(self, code: np.ndarray, strike: np.ndarray, tau: np.ndarray, vol: np.ndarray, on: np.ndarray, shock: float) -> np.ndarray:
        """Each row's vol after a relative spot move ``shock``: under sticky moneyness the surface
        re-read at ``K / (1 + shock)`` for rows ``on`` a surface; otherwise ``vol`` unchanged."""
        if self.sticky != "moneyness" or not shock or not on.any():
            return vol
        out = vol.copy()
        out[on] = self.vol_for(code[on], strike[on] / (1.0 + shock), tau[on])
        return out

    def vol_slope_spot(self, code: np.ndarray, strike: np.ndarray, tau: np.ndarray, on: np.ndarray, spot: np.ndarray) -> np.ndarray:
        """``d sigma / d S`` of each row under the stickiness: 0 under sticky strike and off the
        surfaces; under sticky moneyness ``-(d sigma / d ln K) / S`` (:func:`log_strike_slope`)."""
        out = np.zeros(strike.shape)
        if self.sticky != "moneyness":
            return out
        for u, surface in (self.surfaces or {}).items():
            rows = np.flatnonzero(on & (code == u))
            if rows.size:
                out[rows] = -log_strike_slope(surface, strike[rows], tau[rows]) / spot[rows]
        return out


def read_market(
    market: Any, vol_surface: Any = None, sticky: str = "strike", dividends: Any = None, valuation_date: Any = None,
    vol_adjust: str | None = None, american_method: str = "alo",
) -> Market:  # fmt: skip
    """Market data from a path (Parquet/CSV), DataFrame or Arrow table, checked row by row;
    ``vol_surface`` (optional: a vol grid or a fitted surface, see :func:`read_vol_surface`) gives
    some underlyings a surface; ``sticky`` (``"strike"`` or ``"moneyness"``) how it moves with spot;
    ``dividends`` (optional: a table of cash dividends, :func:`read_dividends`; ex-dates as dates
    need ``valuation_date``) with the volatility adjustment ``vol_adjust`` (default Beneder-Vorst);
    ``american_method`` the ALO scheme of American rows (``"alo"``, ``"alo-fast"``, ``"alo-reference"``)."""
    sticky = check_sticky(sticky)
    if american_method not in SCHEMES:
        raise BookError(f"american_method {american_method!r} must be one of {', '.join(SCHEMES)}")
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
    surfaces = read_vol_surface(vol_surface, index) if vol_surface is not None else None
    divs = None
    if dividends is not None:
        divs = read_dividends(dividends, index, valuation_date, **({"vol_adjust": vol_adjust} if vol_adjust else {}))
    elif vol_adjust is not None:
        raise BookError(f"vol_adjust = {vol_adjust!r} needs a dividend table (dividends=... / --dividends)")
    return Market(index, out["spot"], out["vol"], out["rate"], out["div"], surfaces, sticky, divs, american_method)
