"""Smile plots: one panel per expiry slice, the quotes as bid/ask bars and the fitted smile as a line."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pandas as pd


def _pick(expiries: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of the sorted ``expiries``, spread evenly from the first to the last."""
    if expiries.size <= limit:
        return expiries
    return expiries[np.unique(np.round(np.linspace(0, expiries.size - 1, limit)).astype(int))]


def plot_smiles(
    surface: Any, quotes: pd.DataFrame, path: str | os.PathLike, *, group: Any = None, max_slices: int = 12, title: str | None = None
) -> str:
    """One panel per expiry of ``group`` (default: the first): each quote of ``quotes`` (the frame the
    surface was fitted to: ``group, expiry_years, strike, forward, vol``, optionally ``bid_vol, ask_vol``)
    as its mid vol with a bar from bid to ask vol, and the fitted smile as a line, against log-moneyness
    ``k = ln(K/F)``. At most ``max_slices`` expiries, evenly spread. Saved as PNG at ``path`` (returned)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'gpu_hedge[plot]'") from None
    groups = list(dict.fromkeys(quotes["group"]))
    if not groups:
        raise ValueError("plot_smiles: no quotes to plot")
    group = groups[0] if group is None else group
    q = quotes[quotes["group"] == group]
    if q.empty:
        raise ValueError(f"plot_smiles: no quotes for group {group!r}; groups are {groups[:10]}")
    chosen = _pick(np.sort(q["expiry_years"].unique()), max_slices)
    cols = min(3, chosen.size)
    rows = math.ceil(chosen.size / cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    for ax, T in zip(axes, chosen, strict=False):
        s = q[q["expiry_years"] == T].sort_values("strike")
        F = float(s["forward"].iloc[0])
        k = np.log(s["strike"].to_numpy(float) / F)
        vol = s["vol"].to_numpy(float)
        if {"bid_vol", "ask_vol"} <= set(s.columns):
            lo = vol - s["bid_vol"].to_numpy(float)
            hi = s["ask_vol"].to_numpy(float) - vol
            ax.errorbar(k, vol, yerr=np.vstack([np.maximum(lo, 0), np.maximum(hi, 0)]), fmt="o", ms=2.5, lw=0.8,
                        color="tab:blue", alpha=0.7, label="quotes (mid, bid-ask)")  # fmt: skip
        else:
            ax.plot(k, vol, "o", ms=2.5, color="tab:blue", label="quotes (mid)")
        grid = np.linspace(k.min() - 0.05 * np.ptp(k), k.max() + 0.05 * np.ptp(k), 200) if k.size > 1 else k
        fit = np.asarray(surface.vol(F * np.exp(grid), np.full(grid.shape, T), group=group), dtype=float)
        ax.plot(grid, fit, color="tab:red", lw=1.4, label="fit")
        ax.set_title(f"T = {T:.4f} y ({T * 365:.0f} d), F = {F:,.2f}", fontsize=9)
        ax.set_xlabel("k = ln(K/F)")
        ax.set_ylabel("implied vol")
        ax.grid(alpha=0.3)
    for ax in axes[chosen.size :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or f"Smiles of {group}")
    fig.savefig(os.fspath(path), dpi=110)
    return os.fspath(path)
