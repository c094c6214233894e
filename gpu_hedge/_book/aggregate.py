"""Position-level aggregation of per-option Greeks: book totals and per-underlying dollar delta."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backends import to_numpy
from .._pricing._limits import FIRST_ORDER

POSITION_GREEKS = FIRST_ORDER


@dataclass(frozen=True)
class BookTotals:
    """Totals of a book.

    ``position``: ``{greek: sum(quantity * multiplier * greek)}`` for the Greeks given ("price" is
    the position value), in the Greeks' own units (theta per year, vega per 1.00 of vol, rho per
    1.00 of rate). ``dollar_delta``: ``sum(delta * spot * quantity * multiplier)``.
    ``top_underlyings``: the ``top`` underlyings by ``|dollar delta|``, largest first, each
    ``{"underlying", "spot", "positions", "delta", "dollar_delta"}`` (``delta`` in shares).
    """

    n: int
    underlyings: int
    position: dict[str, float]
    dollar_delta: float
    top_underlyings: list[dict[str, Any]] = field(default_factory=list)


def totals(book: Mapping[str, Any], greeks: Mapping[str, Any], top: int = 5) -> BookTotals:
    """Aggregate per-option ``greeks`` (arrays on any backend) over ``book`` (see ``demo_book``).

    ``underlyings`` counts the distinct underlyings. Sums are taken in float64 on the host whatever the dtype the Greeks were computed in.
    """
    g = {name: np.asarray(to_numpy(v), dtype=np.float64) for name, v in greeks.items()}
    weight = np.asarray(book["quantity"], dtype=np.float64) * np.asarray(book["multiplier"], dtype=np.float64)
    n = int(weight.shape[0])
    position = {name: float(np.dot(weight, np.broadcast_to(v, weight.shape))) for name, v in g.items()}

    dollar_delta = 0.0
    top_rows: list[dict[str, Any]] = []
    if "delta" in g:
        spot = np.asarray(book["spot"], dtype=np.float64)
        und = np.asarray(book["underlying"], dtype=np.int64)
        shares = weight * np.broadcast_to(g["delta"], weight.shape)
        dollars = shares * spot
        dollar_delta = float(dollars.sum())
        m = int(und.max()) + 1 if n else 0
        per_dollars = np.bincount(und, weights=dollars, minlength=m)
        per_shares = np.bincount(und, weights=shares, minlength=m)
        count = np.bincount(und, minlength=m)
        u_spot = np.zeros(m)
        u_spot[und] = spot  # one spot per underlying in a consistent book
        for u in np.argsort(-np.abs(per_dollars), kind="stable")[: max(0, top)]:
            if count[u] == 0:
                break
            top_rows.append(
                {
                    "underlying": int(u),
                    "spot": float(u_spot[u]),
                    "positions": int(count[u]),
                    "delta": float(per_shares[u]),
                    "dollar_delta": float(per_dollars[u]),
                }
            )
    underlyings = int(np.unique(np.asarray(book["underlying"])).size) if n else 0
    return BookTotals(n=n, underlyings=underlyings, position=position, dollar_delta=dollar_delta, top_underlyings=top_rows)


def book_greeks(
    book: Mapping[str, Any],
    names: tuple[str, ...] = POSITION_GREEKS,
    *,
    backend: Any = "auto",
    dtype: Any = "float64",
    rows: slice | None = None,
) -> dict[str, Any]:
    """Per-option ``names`` for the BSM ``book`` (optionally only ``rows``), as arrays on ``backend``."""
    from .._pricing.api import greeks

    cols = ("spot", "strike", "expiry", "vol", "rate", "div", "call")
    s = rows if rows is not None else slice(None)
    spot, strike, expiry, vol, rate, div, call = (np.asarray(book[c])[s] for c in cols)
    return dict(greeks(spot, strike, expiry, vol, rate, div, call=call, model="bsm", greeks=names, backend=backend, dtype=dtype))
