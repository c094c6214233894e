"""Reductions: per-position values summed per underlying (on the backend, returned to the host as
float64) and partition results combined in partition order.

Rows of the ``sums`` arrays are :data:`SUMS` (a count, then value and the position Greeks); a
ladder array is ``(n_scenarios, n_underlyings)`` of P&L. The tables built from them
(:func:`by_underlying_frame`, :func:`ladder_frame`) list only underlyings that hold positions.
Units: Greeks as :func:`gpu_hedge.greeks` gives them, times ``quantity x multiplier``; desk
conventions ``dollar_delta`` = delta x spot, ``dollar_gamma_1pct`` = gamma x spot^2 / 100,
``vega_per_point`` = vega / 100, ``theta_per_day`` = theta / 365.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._backends import Backend, to_numpy
from .._pricing._limits import FIRST_ORDER
from .._pricing.black_scholes import black_kernel
from .market import Market
from .scenarios import Scenarios, ladder_kernel

__all__ = ["GREEKS", "SMILE_SUMS", "SUMS", "PartResult", "by_underlying_frame", "greek_sums", "ladder_frame", "ladder_sums",
           "segment_sum", "sum_names", "total"]  # fmt: skip

GREEKS = FIRST_ORDER
SUMS = ("positions", "value", "delta", "gamma", "vega", "theta", "rho")
#: the sums of a run with a vol surface: the shadow delta too (:mod:`gpu_hedge._book.fitted_surface`)
SMILE_SUMS = (*SUMS, "shadow_delta")


def sum_names(smile: bool) -> tuple[str, ...]:
    """The rows of a partition's ``sums``: :data:`SMILE_SUMS` with a vol surface, else :data:`SUMS`."""
    return SMILE_SUMS if smile else SUMS


@dataclass
class PartResult:
    """What a partition contributes: its positions and invalid rows, and float64 sums per
    underlying (``sums``: SUMS x n_underlyings) and per scenario (``ladder``: n_scenarios x n_underlyings)."""

    index: int
    rows: int
    positions: pa.Table  # Arrow: built from the arrays without a copy, written as is
    invalid: pd.DataFrame
    sums: np.ndarray
    ladder: np.ndarray
    seconds: float

    def merge(self, later: PartResult) -> PartResult:
        """This partition's result followed by ``later``'s (its next rows; one partition split in two)."""
        return PartResult(
            self.index, self.rows + later.rows, pa.concat_tables([self.positions, later.positions]),
            pd.concat([self.invalid, later.invalid], ignore_index=True), self.sums + later.sums, self.ladder + later.ladder,
            self.seconds + later.seconds,
        )  # fmt: skip


def total(parts: Iterable[PartResult], n_u: int, n_scenarios: int, n_sums: int = len(SUMS)) -> tuple[np.ndarray, np.ndarray]:
    """``(sums, ladder)`` over ``parts``, added in the order given (partition order: the same float
    sums whoever computed each partition); ``n_sums`` rows of sums (:func:`sum_names`)."""
    sums = np.zeros((n_sums, n_u))
    ladder = np.zeros((n_scenarios, n_u))
    for p in parts:
        sums += p.sums
        ladder += p.ladder
    return sums, ladder


def segment_sum(bk: Backend, codes: Any, values: Any, n: int) -> np.ndarray:
    """Sums of ``values`` by ``codes`` (0 ... n-1) computed on the backend, returned to the host."""
    return np.asarray(to_numpy(bk.segment_sum(codes, values, n)), dtype=np.float64)


def greek_sums(
    bk: Backend, model: str, args: list[Any], w: Any, c: Any, n_u: int, dt: Any, slope: Any = None
) -> tuple[dict[str, Any], np.ndarray]:
    """All :data:`GREEKS` of one model's rows (``args`` = S, K, T, vol, r, q, phi on the device) and
    their weighted sums per underlying code, ``(len(GREEKS), n_u)`` on the host; with ``slope``
    (d sigma / d S per row, on the device) one more row, the shadow delta ``delta + vega x slope``."""
    out = bk.elementwise(black_kernel(model, GREEKS, regular_only=True), args, GREEKS, dt, key=("risk", model), native=f"black:{model}")
    rows = [segment_sum(bk, c, out[name] * w, n_u) for name in GREEKS]
    if slope is not None:
        rows.append(segment_sum(bk, c, (out["delta"] + out["vega"] * slope) * w, n_u))
    return out, np.stack(rows)


def ladder_sums(
    bk: Backend, model: str, pairs: list[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, dt: Any,
    moved: list[Any] | None = None,
) -> np.ndarray:  # fmt: skip
    """Weighted scenario P&L per underlying code, ``(len(pairs), n_u)`` on the host (:func:`ladder_kernel`);
    ``moved``: each row's vol after each distinct spot shock (sticky moneyness), on the device."""
    names = tuple(f"s{j}" for j in range(len(pairs)))
    if moved is not None:
        key = ("ladder-moving", model, tuple(pairs))
        pnl = bk.elementwise(ladder_kernel(model, pairs, moving=True), [*args, w, *moved], names, dt, key=key)
        return np.stack([segment_sum(bk, c, pnl[name], n_u) for name in names])
    key = ("ladder", model, tuple(pairs))
    pnl = bk.elementwise(ladder_kernel(model, pairs), [*args, w], names, dt, key=key, native=key)
    return np.stack([segment_sum(bk, c, pnl[name], n_u) for name in names])


def by_underlying_frame(sums: np.ndarray, market: Market) -> pd.DataFrame:
    """The per-underlying table from :data:`SUMS` rows: counts, value and position Greeks plus the desk
    conventions, for underlyings that hold positions; with the shadow delta row (:data:`SMILE_SUMS`)
    also ``shadow_delta`` after ``delta`` and ``dollar_shadow_delta`` after ``dollar_delta``."""
    names = SMILE_SUMS if sums.shape[0] == len(SMILE_SUMS) else SUMS
    by = pd.DataFrame({name: sums[i] for i, name in enumerate(names)}, index=pd.Index(market.names, name="underlying"))
    by["positions"] = by["positions"].astype(np.int64)
    by.insert(1, "spot", market.spot)
    by["dollar_delta"] = by["delta"] * market.spot
    by["dollar_gamma_1pct"] = by["gamma"] * market.spot**2 / 100.0
    by["vega_per_point"] = by["vega"] / 100.0
    by["theta_per_day"] = by["theta"] / 365.0
    if "shadow_delta" in by:
        by["dollar_shadow_delta"] = by["shadow_delta"] * market.spot
        cols = [c for c in by.columns if c not in ("shadow_delta", "dollar_shadow_delta")]
        for name, after in (("shadow_delta", "delta"), ("dollar_shadow_delta", "dollar_delta")):
            cols.insert(cols.index(after) + 1, name)
        by = by[cols]
    return by[by["positions"] > 0]


def ladder_frame(total: np.ndarray, scenarios: Scenarios | None, market: Market, held: np.ndarray) -> pd.DataFrame:
    """Long ladder table (underlying, spot_shock, vol_shock, pnl) from ``(n_scenarios, n_u)`` sums, for
    the underlyings where ``held``."""
    if scenarios is None:
        return pd.DataFrame({"underlying": pd.Series(dtype=object), "spot_shock": [], "vol_shock": [], "pnl": []})
    pairs, n_u = scenarios.pairs(), market.size
    frame = pd.DataFrame(
        {
            "underlying": np.tile(np.asarray(market.names, dtype=object), len(pairs)),
            "spot_shock": np.repeat([s for s, _ in pairs], n_u),
            "vol_shock": np.repeat([v for _, v in pairs], n_u),
            "pnl": total.reshape(-1),
        }
    )
    return frame[np.tile(held, len(pairs))].reset_index(drop=True)
