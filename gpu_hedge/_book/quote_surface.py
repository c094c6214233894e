"""The input of a volatility-surface fit: one row per usable quote, with forward, log-moneyness and Black-76 vols.

:func:`quote_surface` takes the long quote layout of :mod:`gpu_hedge._book.quotes` (what
:func:`gpu_hedge.io.read_quotes` returns), implies one forward and discount factor per
``(underlying, quote_date, expiry)`` from put-call parity
(:func:`gpu_hedge._book.forwards.implied_forwards`), and solves the Black-76 implied vol on that
forward of every selected quote's mid, bid and ask in one vectorised call.

Conventions (Black-76 on the parity forward ``F`` with discount factor ``D``)::

    quoted price = D * Black76(F, K, T, vol)          k = ln(K / F)

so ``vol`` is ``implied_vol(mid / D, F, K, T, rate=0, model="black76")``; the rate and the
dividend yield enter only through ``F`` and ``D``, and the vols do not depend on the spot or on
the vendor's dividend assumption. ``T`` is the vendor's ``expiry_years``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .forwards import FORWARD_KEYS, implied_forwards

SURFACE_COLUMNS = (
    "group", "underlying", "quote_date", "expiry", "expiry_years", "strike", "forward", "discount",
    "call", "k", "vol", "bid_vol", "ask_vol", "vega", "weight",
)  # fmt: skip
#: Reasons a quote is left out, in the order they are tested (a row counts under its first).
DROP_REASONS = ("expired", "no_forward", "not_otm", "no_bid", "no_mid", "iv_failed", "bid_ask_iv_failed", "wide_spread")
#: ``weight = 1 / clip(ask_vol - bid_vol, *SPREAD_CLIP)``: between 1 and 1000.
SPREAD_CLIP = (1e-3, 1.0)
NEEDED = ("underlying", "quote_date", "expiry", "expiry_years", "underlying_price", "call", "strike", "bid", "ask", "mid")


def _number(name: str, value: Any, *, low: float, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} = {value!r}; expected a number")
    v = float(value)
    if not (np.isfinite(v) and v >= low):
        raise ValueError(f"{name} = {value!r}; expected a finite number >= {low}")
    return v


def _rate(quotes: pd.DataFrame, rate: Any) -> float | None:
    """The rate for implied_forwards: a number, ``None`` for the file's own, ``"parity"`` for None (fitted)."""
    if isinstance(rate, str):
        if rate != "parity":
            raise ValueError(f"rate = {rate!r}; expected a number, None (the file's attrs['rate']) or 'parity'")
        return None
    if rate is None:
        rate = quotes.attrs.get("rate")
        if rate is None:
            raise ValueError("no rate given and the quotes carry none in attrs['rate']; pass rate= (a number, or 'parity')")
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not np.isfinite(rate):
        raise ValueError(f"rate = {rate!r}; expected a finite number (decimal, continuously compounded)")
    return float(rate)


def quote_surface(
    quotes: pd.DataFrame,
    *,
    rate: float | str | None = None,
    strikes: int = 10,
    min_bid: float = 0.0,
    otm_only: bool = True,
    max_spread: float | None = 0.25,
    backend: Any = "auto",
) -> pd.DataFrame:
    """One row per quote a volatility-surface fit should use, with its forward, ``k`` and Black-76 vols.

    ``quotes``: the long quote layout of :mod:`gpu_hedge._book.quotes` (needs the columns
    ``underlying, quote_date, expiry, expiry_years, underlying_price, call, strike, bid, ask, mid``).
    ``rate``: decimal, continuously compounded, for the parity forwards; ``None`` (default) takes
    the file's ``quotes.attrs["rate"]``; ``"parity"`` fits the discount factor too (least squares,
    ``implied_forwards(rate=None)``; noisy for short expiries). ``strikes``: how many strikes
    nearest the money the forward uses (see :func:`~gpu_hedge._book.forwards.implied_forwards`).
    ``backend``: where the implied vols and vegas are computed.

    Forward and discount: per ``(underlying, quote_date, expiry)`` from put-call parity on mids,
    ``D = exp(-rate * expiry_years)``, ``F = median(K + (C - P) / D)`` over the ``strikes``
    strikes nearest the money. Vols: Black-76 on that forward, ``vol`` from ``mid / D``,
    ``bid_vol`` from ``bid / D``, ``ask_vol`` from ``ask / D`` (rate 0 after dividing by
    ``D``: exactly ``quoted price = D * Black76(F, K, T, vol)``), all rows in one
    :func:`gpu_hedge.implied_vol` call.

    Selection, tested in this order; each dropped row counts under its first failing reason in
    ``attrs["dropped"]`` (a dict over all of ``DROP_REASONS``, zeros included):

    1. ``expired``: ``expiry_years <= 0`` (or NaN);
    2. ``no_forward``: the expiry's forward could not be implied (fewer than one strike with a
       positive bid and a mid on both the call and the put; ``attrs["expiries_without_forward"]``
       counts those expiries);
    3. ``not_otm`` (only with ``otm_only=True``): out-of-the-money side only, calls with
       ``K >= F`` and puts with ``K <= F`` (at ``K == F`` exactly both are kept);
    4. ``no_bid``: ``bid <= min_bid`` (so a positive bid at the default 0), or NaN;
    5. ``no_mid``: no mid (ask missing, 0, or below the bid);
    6. ``iv_failed``: the mid's vol could not be solved (below intrinsic, above the bound, not
       identifiable: see :class:`gpu_hedge.IVStatus`);
    7. ``bid_ask_iv_failed``: the bid's or the ask's vol could not be solved;
    8. ``wide_spread``: ``ask_vol - bid_vol > max_spread`` (vol units; ``None`` keeps all).

    Returns a DataFrame with the columns ``SURFACE_COLUMNS``, one row per kept quote, sorted by
    ``group, expiry, strike, call`` (puts first at a shared strike):

    - ``group``: a string, ``"<underlying> <quote_date as YYYY-MM-DD>"`` (``"SPX 2023-09-14"``),
      one smile set per underlying and trading day;
    - ``underlying``, ``quote_date``, ``expiry`` (the timestamp as in the quotes, settlement time
      included), ``expiry_years`` (the vendor's), ``strike``, ``call``;
    - ``forward``, ``discount``: as above; ``k = ln(strike / forward)``;
    - ``vol``, ``bid_vol``, ``ask_vol``: Black-76 implied vols (decimal) of mid, bid and ask;
      ``bid_vol <= vol <= ask_vol``, all finite (rows where one is not are dropped);
    - ``vega``: dPrice/dvol of the quoted (discounted) price per 1.00 of vol at ``vol``,
      ``D * vega_Black76(F, K, T, vol)``, from :func:`gpu_hedge.greeks`;
    - ``weight``: a suggested fit weight in vol space, ``1 / clip(ask_vol - bid_vol, 1e-3, 1.0)``:
      a quote counts in proportion to how tightly its spread pins the vol, a spread under 0.1 vol
      point counts as 0.1 vol point (weight at most 1000), one over 100 vol points as 100 (weight
      at least 1). Multiply by ``vega`` (or use ``1 / spread``) yourself for a price-space fit.

    ``attrs``: the quotes' own, plus ``rate_used`` (a number, or ``"parity"``), ``dropped``,
    ``expiries_without_forward``, ``rows_in`` and ``groups`` (how many groups remain).
    Quotes missing a needed column raise ValueError naming it.
    """
    from .._backends import to_numpy
    from .._pricing.api import greeks as price_greeks
    from .._pricing.implied_vol import implied_vol

    if not isinstance(quotes, pd.DataFrame):
        raise ValueError(f"quotes must be a pandas DataFrame in the quote layout of gpu_hedge._book.quotes; got {type(quotes).__name__}")
    missing = [c for c in NEEDED if c not in quotes.columns]
    if missing:
        raise ValueError(f"quote_surface needs the quote layout of gpu_hedge._book.quotes; missing column(s) {missing}")
    r = _rate(quotes, rate)
    if isinstance(strikes, bool) or not isinstance(strikes, (int, np.integer)):
        raise ValueError(f"strikes = {strikes!r}; expected a whole number")
    min_bid = _number("min_bid", min_bid, low=0.0)
    max_spread = _number("max_spread", max_spread, low=0.0, allow_none=True)
    if not isinstance(otm_only, (bool, np.bool_)):
        raise ValueError(f"otm_only = {otm_only!r}; expected True or False")

    n_in = len(quotes)
    fwd = implied_forwards(quotes, rate=r, strikes=int(strikes))
    keys = list(FORWARD_KEYS)
    fwd_ok = np.isfinite(fwd["forward"].to_numpy(dtype=np.float64)) & np.isfinite(fwd["discount"].to_numpy(dtype=np.float64))
    fwd_ok &= (fwd["forward"].to_numpy(dtype=np.float64) > 0) & (fwd["discount"].to_numpy(dtype=np.float64) > 0)
    live = fwd["expiry_years"].to_numpy(dtype=np.float64) > 0
    n_no_forward_expiries = int((live & ~fwd_ok).sum())

    base = quotes.loc[:, [*keys, "expiry_years", "call", "strike", "bid", "ask", "mid"]].reset_index(drop=True)
    df = base.merge(fwd.loc[:, [*keys, "forward", "discount"]], on=keys, how="left", validate="many_to_one")
    T = df["expiry_years"].to_numpy(dtype=np.float64)
    F = df["forward"].to_numpy(dtype=np.float64)
    D = df["discount"].to_numpy(dtype=np.float64)
    K = df["strike"].to_numpy(dtype=np.float64)
    call = df["call"].to_numpy(dtype=bool)
    bid, ask, mid = (df[c].to_numpy(dtype=np.float64) for c in ("bid", "ask", "mid"))

    dropped = dict.fromkeys(DROP_REASONS, 0)
    keep = np.ones(len(df), dtype=bool)

    def drop(reason: str, bad: np.ndarray) -> None:
        nonlocal keep
        hit = keep & bad
        dropped[reason] = int(hit.sum())
        keep = keep & ~hit

    drop("expired", ~(T > 0))
    drop("no_forward", ~(np.isfinite(F) & np.isfinite(D) & (F > 0) & (D > 0)))
    if otm_only:
        otm = np.where(call, K >= F, K <= F)
        drop("not_otm", ~otm)
    drop("no_bid", ~(bid > min_bid))
    drop("no_mid", ~(np.isfinite(mid) & (ask > 0)))

    # One implied_vol call for mid, bid and ask of every remaining row (undiscounted prices, rate 0).
    idx = np.flatnonzero(keep)
    m = idx.size
    vols = np.full((3, m), np.nan)
    if m:
        price = np.concatenate([mid[idx], bid[idx], ask[idx]]) / np.tile(D[idx], 3)
        v = implied_vol(price, np.tile(F[idx], 3), np.tile(K[idx], 3), np.tile(T[idx], 3), 0.0, 0.0,
                        call=np.tile(call[idx], 3), model="black76", backend=backend, on_invalid="nan")  # fmt: skip
        vols = np.asarray(to_numpy(v), dtype=np.float64).reshape(3, m)
    vol, bid_vol, ask_vol = (np.full(len(df), np.nan) for _ in range(3))
    vol[idx], bid_vol[idx], ask_vol[idx] = vols
    drop("iv_failed", ~np.isfinite(vol))
    drop("bid_ask_iv_failed", ~(np.isfinite(bid_vol) & np.isfinite(ask_vol)))
    if max_spread is not None:
        drop("wide_spread", ask_vol - bid_vol > max_spread)

    out = df.loc[keep].reset_index(drop=True)
    vol, bid_vol, ask_vol = vol[keep], bid_vol[keep], ask_vol[keep]
    Fk, Dk, Kk, Tk = F[keep], D[keep], K[keep], T[keep]
    vega = np.zeros(0)
    if len(out):
        g = price_greeks(Fk, Kk, Tk, vol, 0.0, 0.0, call=call[keep], model="black76", greeks=("vega",), backend=backend)
        vega = Dk * np.asarray(to_numpy(g["vega"]), dtype=np.float64)
    und = out["underlying"].astype(str)
    day = pd.to_datetime(out["quote_date"]).dt.strftime("%Y-%m-%d")
    out["group"] = (und + " " + day).astype(object) if len(out) else pd.Series([], dtype=object)
    out["k"] = np.log(Kk / Fk)
    out["vol"], out["bid_vol"], out["ask_vol"], out["vega"] = vol, bid_vol, ask_vol, vega
    out["weight"] = 1.0 / np.clip(ask_vol - bid_vol, *SPREAD_CLIP)
    out = out.loc[:, list(SURFACE_COLUMNS)]
    out = out.sort_values(["group", "expiry", "strike", "call"], kind="stable").reset_index(drop=True)
    out.attrs = {
        **quotes.attrs,
        "rate_used": "parity" if r is None else r,
        "rows_in": n_in,
        "dropped": dropped,
        "expiries_without_forward": n_no_forward_expiries,
        "groups": int(out["group"].nunique()),
    }
    return out


__all__ = ["DROP_REASONS", "SPREAD_CLIP", "SURFACE_COLUMNS", "quote_surface"]
