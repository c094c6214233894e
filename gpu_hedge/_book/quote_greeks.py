"""Implied vols and Greeks for every contract of a quote table (the long layout of ``quotes.py``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._pricing._limits import FIRST_ORDER, GREEK_NAMES
from .._pricing.american import AMERICAN_GREEKS
from .forwards import implied_forwards
from .quotes import american_rows

STANDARD_GREEKS = FIRST_ORDER
#: Status given to rows the solver is not asked about (its own statuses are reported as it names them).
SKIPPED_NO_PRICE = "skipped: no price"
SKIPPED_EXPIRED = "skipped: expired"
SKIPPED_NO_CARRY = "skipped: no rate/div"
#: ``exercise=`` of :func:`quote_greeks` (and ``gpu-hedge quotes --exercise``)
EXERCISE_CHOICES = ("infer", "european", "american")


@dataclass(frozen=True)
class QuoteSummary:
    """Counts for a :func:`quote_greeks` run: rows, IVs solved from mid / bid / ask, mid statuses."""

    rows: int
    solved: dict[str, int]
    status: dict[str, int] = field(default_factory=dict)


def _carry(quotes: pd.DataFrame, rate: float | None, div: Any, strikes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row rate and dividend yield: explicit values, else the vendor's (``quotes.attrs``)."""
    if rate is None:
        rate = quotes.attrs.get("rate")
        if rate is None:
            raise ValueError("no rate given and the quotes carry no vendor rate in attrs['rate']; pass rate=")
    if div is None:
        div = quotes.attrs.get("div", "implied")
    n = len(quotes)
    r = np.full(n, float(rate))
    if isinstance(div, str):
        if div != "implied":
            raise ValueError(f"div = {div!r}; expected a number (continuously compounded yield) or 'implied'")
        fwd = implied_forwards(quotes, rate=float(rate), strikes=strikes)
        keys = ["underlying", "quote_date", "expiry"]
        q = quotes[keys].merge(fwd[[*keys, "div"]], on=keys, how="left")["div"].to_numpy(dtype=np.float64)
    else:
        q = np.full(n, float(div))
    return r, q


def _solve(
    price: np.ndarray, ok: np.ndarray, args: tuple[np.ndarray, ...], call: np.ndarray, backend: Any, american: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Implied vols and status names of the ``ok`` rows, the ``american`` ones from American prices."""
    from .._backends import to_numpy
    from .._pricing.implied_vol import IVStatus, implied_vol

    vol = np.full(price.shape, np.nan)
    status = np.full(price.shape, SKIPPED_NO_PRICE, dtype=object)
    names = np.array([m.name.lower() for m in sorted(IVStatus)], dtype=object)  # "ok", "below_intrinsic", ...
    for rows, exercise in ((ok & ~american, "european"), (ok & american, "american")):
        if rows.any():
            v, s = implied_vol(price[rows], *(a[rows] for a in args), call=call[rows], backend=backend, return_status=True,
                               **_exercise_kw(exercise))  # fmt: skip
            vol[rows] = np.asarray(to_numpy(v), dtype=np.float64)
            status[rows] = names[np.asarray(to_numpy(s)).astype(np.intp)]
    return vol, status


def _exercise_kw(exercise: str) -> dict[str, str]:
    """``exercise=`` for the pricing functions (none for European: the default)."""
    return {} if exercise == "european" else {"exercise": exercise}


def _american(quotes: pd.DataFrame, exercise: str) -> np.ndarray:
    """The American rows: all, none, or (``"infer"``) by option root (:func:`.quotes.american_rows`)."""
    if exercise not in EXERCISE_CHOICES:
        raise ValueError(f"exercise = {exercise!r}; expected one of {', '.join(map(repr, EXERCISE_CHOICES))}")
    if exercise == "infer":
        return american_rows(quotes)
    return np.full(len(quotes), exercise == "american")


def quote_greeks(
    quotes: pd.DataFrame,
    rate: float | None = None,
    div: float | str | None = None,
    *,
    greeks: tuple[str, ...] | None = STANDARD_GREEKS,
    backend: Any = "auto",
    strikes: int = 10,
    exercise: str = "infer",
) -> tuple[pd.DataFrame, QuoteSummary]:
    """Our BSM implied vols (from mid, bid and ask) and Greeks per contract, next to the vendor's.

    ``exercise``: ``"infer"`` (default: by option root, :func:`~gpu_hedge._book.quotes.american_rows`;
    SPX/SPXW index options European, equity and ETF options such as SPY and A American),
    ``"european"`` or ``"american"``. American contracts' IVs invert the American price and their
    Greeks are American (``exercise="american"`` of :func:`gpu_hedge.implied_vol` /
    :func:`gpu_hedge.greeks`); Greeks American options do not have (third order) are NaN on them.
    The output has an ``exercise`` column and ``attrs["exercise_used"]`` (american, european or mixed).

    ``rate``: decimal, continuously compounded; default the vendor's (``quotes.attrs["rate"]``).
    ``div``: a yield, or ``"implied"`` for one yield per expiry from put-call parity
    (:func:`~gpu_hedge._book.forwards.implied_forwards` with ``rate`` over ``strikes`` strikes);
    default the vendor's (``quotes.attrs["div"]``). ``expiry_years`` is the vendor's.

    Adds columns ``rate``, ``div``, ``calc_iv`` (from ``mid``), ``calc_iv_status``,
    ``calc_iv_bid``, ``calc_iv_ask`` (from positive bids / asks), and ``calc_<greek>`` for each of
    ``greeks`` (None: all 17) evaluated at ``calc_iv`` in the units of :func:`gpu_hedge.greeks`
    (theta per year, vega per 1.00 of vol). Rows without a usable price, expired
    (``expiry_years == 0``) or without a rate/yield are not solved: NaN, and a ``"skipped: ..."``
    status. Returns the new frame (``attrs`` kept, plus ``rate`` and ``div`` used) and a
    :class:`QuoteSummary`.
    """
    from .._backends import to_numpy
    from .._pricing.api import greeks as bsm_greeks

    american = _american(quotes, exercise)
    r, q = _carry(quotes, rate, div, strikes)
    S, K, T = (quotes[c].to_numpy(dtype=np.float64) for c in ("underlying_price", "strike", "expiry_years"))
    call = quotes["call"].to_numpy(dtype=bool)
    valid = (T > 0) & (S > 0) & (K > 0) & np.isfinite(r) & np.isfinite(q)
    args = (S, K, T, r, q)

    out = quotes.copy()
    out["rate"], out["div"] = r, q
    solved = {}
    for col, src in (("calc_iv", "mid"), ("calc_iv_bid", "bid"), ("calc_iv_ask", "ask")):
        p = quotes[src].to_numpy(dtype=np.float64)
        vol, status = _solve(p, valid & np.isfinite(p) & (p > 0), args, call, backend, american)
        out[col] = vol
        solved[src] = int(np.isfinite(vol).sum())
        if src == "mid":
            status[~(T > 0)] = SKIPPED_EXPIRED
            status[(T > 0) & ~(np.isfinite(r) & np.isfinite(q))] = SKIPPED_NO_CARRY
            out["calc_iv_status"] = status.astype(str)
            iv = vol
    if greeks is None or len(greeks):
        ok = np.isfinite(iv)
        inputs = (S, K, np.where(ok, T, 1.0), np.where(ok, iv, 0.2), r, np.where(ok, q, 0.0))
        names = tuple(greeks) if greeks is not None else GREEK_NAMES
        values = {name: np.full(len(quotes), np.nan) for name in names}
        for rows, ex in ((~american, "european"), (american, "american")):
            asked = names if ex == "european" else tuple(n for n in names if n in AMERICAN_GREEKS)
            if not rows.any() or not asked:
                continue
            g = bsm_greeks(*(a[rows] for a in inputs), call=call[rows], greeks=asked, backend=backend, on_invalid="nan",
                           **_exercise_kw(ex))  # fmt: skip
            for name, v in g.items():
                values[name][rows] = np.asarray(to_numpy(v), dtype=np.float64)
        for name in names:
            out[f"calc_{name}"] = np.where(ok, values[name], np.nan)
    out["exercise"] = np.where(american, "american", "european")
    out.attrs = {
        **quotes.attrs,
        "rate_used": float(r[0]) if len(r) else rate,
        "div_used": div if div is not None else quotes.attrs.get("div"),
        "exercise_used": "american" if american.all() and len(american) else "european" if not american.any() else "mixed",
    }
    summary = QuoteSummary(rows=len(out), solved=solved, status=dict(Counter(out["calc_iv_status"])))
    return out, summary


__all__ = ["EXERCISE_CHOICES", "STANDARD_GREEKS", "QuoteSummary", "quote_greeks"]
