"""Implied forwards, discount factors and dividend yields from put-call parity on a quoted chain.

Put-call parity for European options, per strike ``K`` of one expiry:

    C(K) - P(K) = D (F - K),    D = exp(-r T),    F = S exp((r - q) T)

so the implied dividend yield is ``q = r - ln(F / S) / T``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FORWARD_KEYS = ("underlying", "quote_date", "expiry")
FORWARD_COLUMNS = (
    *FORWARD_KEYS, "expiry_years", "underlying_price", "forward", "discount", "rate", "div",
    "n_strikes", "atm_strike", "fit_rms",
)  # fmt: skip


def _pairs(group: pd.DataFrame) -> pd.DataFrame:
    """Per strike: call mid minus put mid where both sides have a positive bid and a mid."""
    ok = (group["bid"] > 0) & group["mid"].notna()
    g = group.loc[ok, ["strike", "call", "mid"]]
    calls = g[g["call"]].groupby("strike")["mid"].mean()
    puts = g[~g["call"]].groupby("strike")["mid"].mean()
    both = pd.concat({"c": calls, "p": puts}, axis=1, join="inner")
    return pd.DataFrame({"strike": both.index.to_numpy(dtype=np.float64), "diff": (both["c"] - both["p"]).to_numpy()})


def _fit(pairs: pd.DataFrame, T: float, rate: float | None, n: int) -> tuple[float, float, int, float, float]:
    """(forward, discount, strikes used, atm strike, rms residual) from the ``n`` strikes nearest the money."""
    need = 1 if rate is not None else 2
    if len(pairs) < need or not T > 0:
        return np.nan, np.nan, 0, np.nan, np.nan
    near = pairs.iloc[np.argsort(np.abs(pairs["diff"].to_numpy()), kind="stable")[:n]]
    K, y = near["strike"].to_numpy(), near["diff"].to_numpy()
    atm = float(K[0])
    if rate is not None:
        D = float(np.exp(-rate * T))
        F = float(np.median(K + y / D))
    else:
        if np.ptp(K) == 0:
            return np.nan, np.nan, 0, atm, np.nan
        slope, intercept = np.polyfit(K, y, 1)
        D = -float(slope)
        F = float(intercept) / D if D > 0 else np.nan
    rms = float(np.sqrt(np.mean((y - D * (F - K)) ** 2)))
    return F, D, len(K), atm, rms


def implied_forwards(quotes: pd.DataFrame, rate: float | None = None, *, strikes: int = 10) -> pd.DataFrame:
    """Forward, discount factor, rate and dividend yield implied by put-call parity, per expiry.

    ``quotes`` is the long quote layout of :mod:`gpu_hedge._book.quotes` (columns ``underlying,
    quote_date, expiry, expiry_years, underlying_price, call, strike, bid, mid``). For each
    ``(underlying, quote_date, expiry)``, strikes where both the call and the put have a positive
    bid give ``C - P`` from mids; the ``strikes`` of them with the smallest ``|C - P|`` (those
    nearest the forward, where both mids are most reliable) are used:

    - ``rate`` given (decimal, continuously compounded): ``D = exp(-rate T)`` and ``F`` is the
      median over those strikes of ``K + (C - P) / D`` (robust to a stale or wide quote);
    - ``rate=None``: least squares of ``C - P = D F - D K`` over those strikes gives ``D`` (minus
      the slope) and ``F``; the rate is then ``-ln(D) / T``. Noisy for short expiries, where ``D``
      is close to 1 and the strikes span little: pass a rate when one is known.

    The dividend yield is ``q = r - ln(F / S) / T`` with ``S = underlying_price``.

    Returns one row per group with columns ``underlying, quote_date, expiry, expiry_years,
    underlying_price, forward, discount, rate, div, n_strikes, atm_strike, fit_rms`` (RMS of the
    parity residual over the strikes used, in price units). Groups with too few pairs, or
    ``expiry_years <= 0``, get NaN and ``n_strikes = 0``.

    >>> q = pd.DataFrame({"underlying": "X", "quote_date": pd.Timestamp("2024-01-02"),
    ...     "expiry": pd.Timestamp("2024-07-02"), "expiry_years": 0.5, "underlying_price": 100.0,
    ...     "call": [True, False], "strike": 100.0, "bid": [6.0, 4.0], "mid": [6.5, 4.5]})
    >>> f = implied_forwards(q, rate=0.0)
    >>> float(f["forward"].iloc[0]), round(float(f["div"].iloc[0]), 6)
    (102.0, -0.039605)
    """
    missing = [c for c in ("underlying", "quote_date", "expiry", "expiry_years", "underlying_price", "call", "strike", "bid", "mid")
               if c not in quotes]  # fmt: skip
    if missing:
        raise ValueError(f"implied_forwards needs the quote layout of gpu_hedge._book.quotes; missing column(s) {missing}")
    if strikes < (1 if rate is not None else 2):
        raise ValueError(f"strikes = {strikes} is too few; need at least {1 if rate is not None else 2}")
    rows = []
    for key, group in quotes.groupby(list(FORWARD_KEYS), sort=True, dropna=False):
        T = float(group["expiry_years"].iloc[0])
        S = float(group["underlying_price"].iloc[0])
        F, D, n, atm, rms = _fit(_pairs(group), T, rate, strikes)
        r = rate if rate is not None else (-np.log(D) / T if D > 0 else np.nan)
        q = r - np.log(F / S) / T if n else np.nan
        rows.append((*key, T, S, F, D, r if n else np.nan, q, n, atm, rms))
    return pd.DataFrame(rows, columns=list(FORWARD_COLUMNS))


__all__ = ["FORWARD_COLUMNS", "implied_forwards"]
