"""The risk job's vol surface input, either kind, and how the smile moves with spot.

``vol_surface`` is one of:

- a **vol grid**: a long table ``underlying, expiry_years, strike, vol`` (DataFrame, Arrow table, or
  a .csv/.parquet path), one full grid per underlying (:mod:`gpu_hedge._book.vol_grid`);
- a **fitted surface**: a :class:`gpu_hedge._surface.VolSurface` (``gh.fit_surface(...)``) or a
  Parquet file written by its ``save`` (also ``gpu-hedge surface QUOTES --out x.parquet``). A
  Parquet file is told apart by its content: the fitted surface's schema metadata
  (``gpu_hedge.surface``) or the grid's columns; anything else is a :class:`BookError` naming both.

A fitted surface's ``group`` labels name the book's underlyings: ``str(group) == underlying``, or
``"<underlying> <quote date>"`` as ``gpu-hedge surface`` names them (one such group per underlying;
several dates for one underlying are an error naming them, and an exact name wins). A
position of underlying ``U`` without its own vol is priced at ``surface.vol(K, T, group=g)``, read
with the surface's own fitted forwards. Groups naming no underlying of the market data are ignored
(a surface fitted over more names than the book holds); a surface none of whose groups names an
underlying is an error. An underlying with no group keeps its flat market vol.

**Stickiness** (``sticky``), how a position's surface vol moves when a scenario moves spot from
``S0`` to ``S``: ``"strike"`` (default) keeps ``vol(K, T)``; ``"moneyness"`` re-reads it at the
strike scaled back by the move, ``vol(K S0 / S, T)`` (the smile moves with spot: fixed in ``K/S``,
equivalently ``K/F``). The **shadow delta** is the delta along that move::

    shadow_delta = delta_BS + vega_BS * d sigma / d S,   d sigma / d S = 0 (sticky strike),
    d sigma / d S = -(K / S) d sigma / d K = -(d sigma / d ln K) / S   (sticky moneyness)

with ``d sigma / d ln K`` a central difference of the surface in log-strike at fixed ``T``,
``(sigma(K e^h) - sigma(K e^-h)) / (2 h)``, ``h =`` :data:`SLOPE_STEP` (error ``h^2 sigma''' / 6``,
below 1e-8 on SVI smiles; a vol grid's slope is that of its linear pieces). Positions with their own
vol and underlyings without a surface have slope 0 (shadow delta = BS delta) and keep their vol in
every scenario. For ``black76`` positions ``S`` is the underlying's (forward) price, as for delta.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sources import BookError
from .vol_grid import SURFACE_COLUMNS, read_surfaces

__all__ = ["SLOPE_STEP", "STICKY", "FittedVol", "check_sticky", "log_strike_slope", "read_vol_surface", "surface_key"]

STICKY = ("strike", "moneyness")
#: the log-strike step of the central difference giving d sigma / d ln K
SLOPE_STEP = 1e-4
_META_KEY = b"gpu_hedge.surface"


def check_sticky(sticky: Any) -> str:
    """``sticky`` checked: ``"strike"`` or ``"moneyness"`` (any case)."""
    value = str(sticky).strip().lower() if isinstance(sticky, str) else sticky
    if value not in STICKY:
        raise ValueError(f"sticky = {sticky!r} must be 'strike' or 'moneyness'")
    return value


class FittedVol:
    """One group of a fitted surface as the book's per-underlying vol function ``(strike, tau) -> vol``."""

    def __init__(self, surface: Any, group: Any):
        self.surface, self.group = surface, group

    def __call__(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        return np.asarray(self.surface.vol(strike, tau, group=self.group), dtype=np.float64)

    def key_bytes(self) -> bytes:
        """The group's slices, for the job's manifest (a new fit must not resume old partitions)."""
        p = self.surface.params
        p = p[p["group"] == self.group]
        return f"{self.surface.model}|{self.group}|".encode() + pd.util.hash_pandas_object(p.astype(str), index=False).to_numpy().tobytes()


def surface_key(surface: Any) -> bytes:
    """Bytes identifying a per-underlying vol function (grid or fitted) for the manifest hash."""
    if hasattr(surface, "key_bytes"):
        return surface.key_bytes()
    return b"".join(np.ascontiguousarray(a).tobytes() for a in (surface.expiries, surface.strikes, surface.vols))


def _is_fitted(obj: Any) -> bool:
    return hasattr(obj, "vol") and hasattr(obj, "groups") and hasattr(obj, "params")


def _load(source: Any) -> Any:
    """A fitted surface object, or the grid table's source unchanged."""
    if _is_fitted(source) or isinstance(source, pd.DataFrame) or hasattr(source, "to_pandas"):
        return source
    path = str(source)
    if not path.lower().endswith((".parquet", ".pq")):
        return source  # CSV: a grid (read_surfaces says what is wrong with it)
    import pyarrow.parquet as pq

    if not Path(path).exists():
        raise BookError(f"vol surface: no such file {path!r}")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same error to the user
        raise BookError(f"vol surface: cannot read {path!r} as Parquet: {exc}") from None
    if _META_KEY in (schema.metadata or {}):
        from .._surface.surface import VolSurface

        try:
            return VolSurface.load(path)
        except ValueError as exc:
            raise BookError(f"vol surface: {exc}") from None
    if all(c in schema.names for c in SURFACE_COLUMNS):
        return source
    raise BookError(
        f"vol surface: {path!r} is neither a fitted surface (a Parquet file written by VolSurface.save or "
        f"`gpu-hedge surface --out`, with {_META_KEY.decode()} metadata) nor a vol grid (columns {', '.join(SURFACE_COLUMNS)}); "
        f"its columns are {', '.join(schema.names)}"
    )


def read_vol_surface(source: Any, names: pd.Index) -> dict[int, Any]:
    """Per-underlying vol functions ``(strike, tau) -> vol`` by position in ``names``, from a vol grid
    or a fitted surface (see the module docstring)."""
    obj = _load(source)
    if not _is_fitted(obj):
        return read_surfaces(obj, names)
    out: dict[int, Any] = {}
    dated: dict[str, list[Any]] = {}  # "<underlying> <quote date>" groups (gpu-hedge surface's) by underlying
    for g in obj.groups:
        if str(g) in names:
            out[int(names.get_loc(str(g)))] = FittedVol(obj, g)
        elif " " in str(g) and str(g).split(" ", 1)[0] in names:
            dated.setdefault(str(g).split(" ", 1)[0], []).append(g)
    for name, groups in dated.items():
        if int(names.get_loc(name)) in out:
            continue  # a group named exactly by the underlying wins
        if len(groups) > 1:
            raise BookError(
                f"vol surface: underlying {name!r} has {len(groups)} fitted groups ({', '.join(map(repr, groups[:5]))}); "
                f"fit one quote date, or name one group {name!r}"
            )
        out[int(names.get_loc(name))] = FittedVol(obj, groups[0])
    if not out:
        raise BookError(
            f"vol surface: none of the fitted surface's groups ({', '.join(map(repr, obj.groups[:10]))}) names an underlying "
            f"of the market data ({', '.join(map(repr, list(names[:10])))})"
        )
    return out


def log_strike_slope(vol_fn: Any, strike: np.ndarray, tau: np.ndarray, h: float = SLOPE_STEP) -> np.ndarray:
    """``d sigma / d ln K`` of ``vol_fn`` at ``(strike, tau)``: a central difference at ``K e^{+-h}``."""
    return (vol_fn(strike * math.exp(h), tau) - vol_fn(strike * math.exp(-h), tau)) / (2.0 * h)
