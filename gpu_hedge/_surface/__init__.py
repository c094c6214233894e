"""Arbitrage-free implied-vol surfaces: batched raw-SVI and SSVI fits on any backend.

Conventions throughout: log-moneyness ``k = ln(K / F)`` with ``F`` the forward of the slice's
expiry, total implied variance ``w = vol^2 T``, ``T`` in years, vols decimal. Fits are in total
variance.

>>> import numpy as np, pandas as pd
>>> k = np.linspace(-0.5, 0.5, 11)
>>> w = raw_svi_total_variance(k, 0.02, 0.1, -0.4, 0.0, 0.2)
>>> frame = pd.DataFrame({"group": "X", "expiry_years": 1.0, "strike": 100 * np.exp(k), "forward": 100.0, "vol": np.sqrt(w)})
>>> surface = fit_surface(frame, backend="numpy")
>>> round(float(surface.params["rho"].iloc[0]), 6), bool(surface.params["butterfly_ok"].iloc[0])
(-0.4, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .data import pack
from .solve import fit_svi
from .ssvi_fit import fit_ssvi
from .surface import MODEL_COLUMNS, VolSurface
from .svi import (
    durrleman_g,
    durrleman_g_from_w,
    raw_svi_derivatives,
    raw_svi_total_variance,
    ssvi_derivatives,
    ssvi_phi,
    ssvi_total_variance,
)

__all__ = [
    "VolSurface",
    "durrleman_g",
    "durrleman_g_from_w",
    "fit_surface",
    "raw_svi_derivatives",
    "raw_svi_total_variance",
    "ssvi_derivatives",
    "ssvi_phi",
    "ssvi_total_variance",
]


def fit_surface(
    frame: pd.DataFrame,
    *,
    model: str = "svi",
    weights: str | Any | None = None,
    backend: Any = "auto",
    calendar: bool = True,
    max_iter: int = 100,
    calendar_rounds: int = 10,
) -> VolSurface:
    """Fit an arbitrage-free smile to every ``(group, expiry_years)`` slice of ``frame`` at once.

    ``frame`` columns: ``group`` (any hashable), ``expiry_years`` (> 0), ``strike`` (> 0),
    ``forward`` (> 0, one per slice), ``vol`` (> 0, decimal); optional ``bid_vol``, ``ask_vol``,
    ``vega``. Residuals are in total variance, each slice's scaled by its mean quoted ``w``.

    ``weights``: ``None`` is uniform, unless ``bid_vol`` and ``ask_vol`` are both present: then
    ``1 / spread`` with ``spread = ask_vol - bid_vol`` floored at a tenth of the slice's median
    spread and at 1e-4 (a missing or non-positive spread takes the slice's median); ``"vega"``
    uses the ``vega`` column; an array gives one weight (>= 0) per row. Weights are normalised to
    mean 1 within each slice, so slices count by their number of quotes.

    ``model="svi"``: raw SVI per slice, with no butterfly arbitrage (Durrleman's ``g >= 0`` on a
    grid spanning the quotes, the group's span and far wings; Lee's ``b (1 + |rho|) <= 2``) and,
    with ``calendar=True``, ``w`` non-decreasing in expiry at every grid ``k`` of each group;
    at least 5 quotes per slice. ``max_iter`` Levenberg-Marquardt iterations for the first pass,
    then up to ``calendar_rounds`` repair rounds of ``max_iter // 2`` (only while some slice
    still violates; see :mod:`gpu_hedge._surface.fit`). ``model="ssvi"``: power-law SSVI per
    group (at least 1 quote per slice and 3 per group), arbitrage-free by its parameter
    constraints (``calendar`` has no effect). Solves run on ``backend`` in float64.
    """
    from gpu_hedge._backends import get_backend

    model = str(model).lower()
    if model not in MODEL_COLUMNS:
        raise ValueError(f"model must be 'svi' or 'ssvi', got {model!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(calendar_rounds, bool) or not isinstance(calendar_rounds, (int, np.integer)) or calendar_rounds < 0:
        raise ValueError(f"calendar_rounds must be a non-negative integer, got {calendar_rounds!r}")
    bk = get_backend(backend)
    if model == "svi":
        sl = pack(frame, weights, min_quotes=5, min_group_quotes=5)
        res = fit_svi(bk, sl, calendar=bool(calendar), max_iter=int(max_iter), rounds=int(calendar_rounds))
        values, converged = res.params, res.converged
    else:
        sl = pack(frame, weights, min_quotes=1, min_group_quotes=3)
        values, converged, _ = fit_ssvi(bk, sl, max_iter=int(max_iter))
    names = MODEL_COLUMNS[model]
    cols = [values[:, j : j + 1] for j in range(len(names))]
    if model == "svi":
        w_fit = raw_svi_total_variance(sl.k, *cols, xp=np)
    else:
        w_fit = ssvi_total_variance(sl.k, *cols, xp=np)
    mask = sl.mask
    err = np.where(mask, np.sqrt(np.maximum(w_fit, 0.0) / sl.expiry[:, None]) - sl.vol, 0.0)
    rmse = np.sqrt((err * err).sum(1) / sl.n_quotes)
    params = pd.DataFrame(
        {
            "group": pd.Series([sl.groups[c] for c in sl.group_code], dtype=object),
            "expiry_years": sl.expiry,
            "forward": sl.forward,
            "model": model,
            **{name: values[:, j] for j, name in enumerate(names)},
            "rmse_vol": rmse,
            "n_quotes": sl.n_quotes.astype(np.int64),
            "status": np.where(converged, "converged", "max_iter"),
            "k_min": np.where(mask, sl.k, np.inf).min(1),
            "k_max": np.where(mask, sl.k, -np.inf).max(1),
        }
    )
    return VolSurface.from_params(params, model=model)
