"""Quote frames in, padded per-slice arrays out (validation lives here, once, on the host).

A *slice* is the quotes of one ``(group, expiry_years)``. Slices are ordered by group (first
appearance in the frame) then expiry, padded to the largest slice with weight-0 quotes, so every
solver works on ``(n_slices, n_quotes_max)`` arrays in one vectorised pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

REQUIRED = ("group", "expiry_years", "strike", "forward", "vol")
FORWARD_RTOL = 1e-9
SPREAD_FLOOR = 1e-4  # vol units (a hundredth of a vol point): the smallest spread a 1/spread weight trusts


@dataclass(frozen=True)
class Slices:
    """Padded quotes of every slice, host arrays. ``k = ln(K/F)``, ``w = vol^2 T``."""

    groups: list  # group label per group code
    group_code: np.ndarray  # (S,) int
    expiry: np.ndarray  # (S,) years
    forward: np.ndarray  # (S,)
    k: np.ndarray  # (S, Q), padded with the slice's last quote
    w: np.ndarray  # (S, Q) market total variance (padding: copy of a real quote)
    weight: np.ndarray  # (S, Q) normalised to mean 1 over each slice's quotes; 0 on padding
    vol: np.ndarray  # (S, Q) market vol
    n_quotes: np.ndarray  # (S,)
    prev: np.ndarray  # (S,) index of the previous expiry of the same group, or -1
    next: np.ndarray  # (S,) index of the next expiry of the same group, or -1

    @property
    def mask(self) -> np.ndarray:
        return self.weight > 0


def _plain(x: Any) -> Any:
    """A NumPy scalar as the Python value it holds (so messages read 0.25, not np.float64(0.25))."""
    return x.item() if isinstance(x, np.generic) else x


def _where(frame: pd.DataFrame, i: int) -> str:
    row = frame.iloc[i]
    return f"group {_plain(row['group'])!r}, expiry {_plain(row['expiry_years'])!r}"


def _check_positive(frame: pd.DataFrame, column: str) -> None:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{_where(frame, i)}: {column} must be positive and finite, got {_plain(frame[column].iloc[i])!r} "
            f"(row {frame.index[i]!r}; {int(bad.sum())} such row(s))"
        )


def _weights(frame: pd.DataFrame, weights: Any, codes: np.ndarray) -> np.ndarray:
    """Per-row weights on total-variance residuals (see :func:`gpu_hedge._surface.fit_surface`)."""
    n = len(frame)
    if weights is None:
        if "bid_vol" in frame and "ask_vol" in frame:
            spread = (pd.to_numeric(frame["ask_vol"], errors="coerce") - pd.to_numeric(frame["bid_vol"], errors="coerce")).to_numpy(float)
            spread = np.where(np.isfinite(spread) & (spread > 0), spread, np.nan)
            med = pd.Series(spread).groupby(codes).transform("median").to_numpy(float)
            spread = np.where(np.isnan(spread), med, spread)  # a row without a usable spread gets its slice's median
            spread = np.where(np.isnan(spread), 1.0, spread)
            floor = np.maximum(SPREAD_FLOOR, 0.1 * np.where(np.isnan(med), 1.0, med))
            return 1.0 / np.maximum(spread, floor)
        return np.ones(n)
    if isinstance(weights, str):
        if weights != "vega":
            raise ValueError(f"weights must be None, 'vega' or an array of per-row weights, got {weights!r}")
        if "vega" not in frame:
            raise ValueError("weights='vega' needs a 'vega' column")
        w = pd.to_numeric(frame["vega"], errors="coerce").to_numpy(float)
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if w.shape[0] != n:
            raise ValueError(f"weights has {w.shape[0]} entries for {n} rows")
    bad = ~(np.isfinite(w) & (w >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{_where(frame, i)}: weight must be finite and >= 0, got {float(w[i])!r} (row {frame.index[i]!r})")
    return w


def pack(frame: pd.DataFrame, weights: Any = None, *, min_quotes: int = 5, min_group_quotes: int = 1) -> Slices:
    """Validate ``frame`` and pad it into :class:`Slices`. Errors name the group and expiry."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in REQUIRED if c not in frame]
    if missing:
        raise ValueError(f"quote frame is missing column(s) {missing}; needs {list(REQUIRED)}")
    if len(frame) == 0:
        raise ValueError("quote frame has no rows")
    if frame["group"].isna().any():
        i = int(np.flatnonzero(frame["group"].isna().to_numpy())[0])
        raise ValueError(f"{_where(frame, i)}: group is missing (row {frame.index[i]!r})")
    for column in ("expiry_years", "strike", "forward", "vol"):
        _check_positive(frame, column)
    T = frame["expiry_years"].to_numpy(float)
    K = frame["strike"].to_numpy(float)
    F = frame["forward"].to_numpy(float)
    vol = frame["vol"].to_numpy(float)
    gcode, groups = pd.factorize(frame["group"], sort=False)
    # slice codes: by group code then expiry
    keys = pd.DataFrame({"g": gcode, "t": T})
    sl = keys.drop_duplicates().sort_values(["g", "t"]).reset_index(drop=True)
    scode = pd.MultiIndex.from_frame(sl).get_indexer(pd.MultiIndex.from_frame(keys))
    raw_w = _weights(frame, weights, scode)
    S = len(sl)
    counts = np.bincount(scode, minlength=S)
    fmin = np.full(S, np.inf)
    fmax = np.zeros(S)
    np.minimum.at(fmin, scode, F)
    np.maximum.at(fmax, scode, F)
    for s in range(S):
        label = f"group {_plain(groups[sl['g'][s]])!r}, expiry {float(sl['t'][s])!r}"
        if counts[s] < min_quotes:
            raise ValueError(f"{label}: {counts[s]} quote(s); the fit needs at least {min_quotes} quotes per slice")
        if fmax[s] - fmin[s] > FORWARD_RTOL * fmax[s]:
            raise ValueError(
                f"{label}: forwards disagree within the slice ({float(fmin[s])!r} to {float(fmax[s])!r}); "
                "give one forward per (group, expiry)"
            )
    wsum = np.bincount(scode, weights=raw_w, minlength=S)
    for s in np.flatnonzero(wsum <= 0):
        raise ValueError(f"group {_plain(groups[sl['g'][s]])!r}, expiry {float(sl['t'][s])!r}: all weights are zero")
    gcount = np.bincount(sl["g"].to_numpy(), weights=counts, minlength=len(groups))
    for g in np.flatnonzero(gcount < min_group_quotes):
        raise ValueError(
            f"group {_plain(groups[g])!r}: {int(gcount[g])} quote(s); the fit needs at least {min_group_quotes} quotes per group"
        )
    Q = int(counts.max())
    order = np.lexsort((K, scode))
    pos = np.empty(len(frame), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos[order] = np.arange(len(frame)) - np.repeat(starts, counts)
    kq = np.log(K / F)
    wq = vol * vol * T
    # padding repeats the slice's last (largest-strike) quote with weight 0
    last = order[np.cumsum(counts) - 1]
    kk = np.repeat(kq[last][:, None], Q, axis=1)
    ww = np.repeat(wq[last][:, None], Q, axis=1)
    vv = np.repeat(vol[last][:, None], Q, axis=1)
    wt = np.zeros((S, Q))
    kk[scode, pos] = kq
    ww[scode, pos] = wq
    vv[scode, pos] = vol
    wt[scode, pos] = raw_w * (counts / wsum)[scode]  # mean 1 over each slice's quotes
    g = sl["g"].to_numpy()
    same_prev = np.concatenate([[False], g[1:] == g[:-1]])
    same_next = np.concatenate([g[:-1] == g[1:], [False]])
    idx = np.arange(S)
    return Slices(
        groups=list(groups),
        group_code=g,
        expiry=sl["t"].to_numpy(float),
        forward=fmax,
        k=kk,
        w=ww,
        weight=wt,
        vol=vv,
        n_quotes=counts,
        prev=np.where(same_prev, idx - 1, -1),
        next=np.where(same_next, idx + 1, -1),
    )
