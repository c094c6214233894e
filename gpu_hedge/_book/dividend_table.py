"""Cash dividends per underlying for the risk job and :class:`~gpu_hedge._book.resident.ResidentBook`.

A long table, one row per dividend: ``underlying``, ``amount`` (cash per share, in the spot's
currency, >= 0) and its ex-date as either ``ex_date`` (a date; years from the job's valuation date
ACT/365, as the book's ``expiry``) or ``ex_years`` (years from valuation). Dividends whose ex-date
is on or before the valuation date have been paid and are left out; names not in the market data
are ignored (as a vol surface's other groups are). A bad row (missing or non-finite time or amount,
a negative amount, an unknown column) is a :class:`BookError` naming the row and the value: market
data is checked whole, not set aside row by row.

Each option row of a ``bsm`` underlying with a dividend going ex in ``(0, T]`` is priced by the
escrowed-dividend model of :mod:`gpu_hedge._pricing.dividends` (European: closed form with the
vol adjustment; American: the Crank-Nicolson grid), its Greeks in the quoted spot. ``black76``
rows ignore the table (their underlying is a futures price). Scenarios move the quoted spot; the
cash amounts stay as they are.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._pricing.dividends import DEFAULT_VOL_ADJUST, VOL_ADJUSTS, DividendSchedule, dividend_rows
from .sources import BookError, read_frame

__all__ = ["DIVIDEND_COLUMNS", "DividendTable", "dividends_pv", "read_dividends"]

#: the dividend table's columns: ``underlying``, ``amount`` and one of ``ex_date`` / ``ex_years``
DIVIDEND_COLUMNS = ("underlying", "amount", "ex_date", "ex_years")


def dividends_pv(expiry: Any, rate: Any, schedule: DividendSchedule) -> np.ndarray:
    """Host float64 per row: the present value at ``rate`` of the dividends going ex in ``(0, T]``."""
    T, r = (np.asarray(a, dtype=np.float64).reshape(-1, 1) for a in (expiry, rate))
    t, a = schedule.times, schedule.amounts
    return np.sum(np.where((t > 0) & (t <= T), a * np.exp(-r * t), 0.0), axis=1)


@dataclass(frozen=True)
class DividendTable:
    """Per underlying (position in the market's ``names``) its future cash dividends: ``times`` and
    ``amounts``, ``(n_underlyings, m)`` float64, each row sorted by time, padded with amount 0; and
    ``vol_adjust``, the escrowed model's volatility adjustment (:data:`VOL_ADJUSTS`)."""

    times: np.ndarray
    amounts: np.ndarray
    vol_adjust: str = DEFAULT_VOL_ADJUST

    def schedule(self, codes: np.ndarray) -> DividendSchedule:
        """The schedule of rows whose underlying codes are ``codes`` (host ints >= 0)."""
        return DividendSchedule(self.times[codes], self.amounts[codes])

    def paying(self, codes: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Host bool per row: a dividend with a positive amount goes ex in ``(0, tau]``."""
        return dividend_rows(tau, self.schedule(codes))

    def reorder(self, order: np.ndarray) -> DividendTable:
        """The table for underlyings in a new order (``order[i]``: the old position of new name ``i``)."""
        return DividendTable(self.times[order], self.amounts[order], self.vol_adjust)

    def key(self) -> bytes:
        """Bytes identifying the table (the risk job's manifest: new dividends resume nothing)."""
        h = hashlib.sha256(np.ascontiguousarray(self.times).tobytes() + np.ascontiguousarray(self.amounts).tobytes())
        return h.digest() + self.vol_adjust.encode()


def read_dividends(dividends: Any, names: pd.Index, valuation_date: Any = None, vol_adjust: str = DEFAULT_VOL_ADJUST) -> DividendTable:
    """The dividend table (path, DataFrame or Arrow table; see the module docstring) for the
    underlyings ``names``, checked row by row."""
    if vol_adjust not in VOL_ADJUSTS:
        raise BookError(f"dividends: vol_adjust {vol_adjust!r} must be one of {', '.join(VOL_ADJUSTS)}")
    df = read_frame(dividends, "dividends")
    unknown = [c for c in df.columns if c not in DIVIDEND_COLUMNS]
    missing = [c for c in ("underlying", "amount") if c not in df.columns]
    when = [c for c in ("ex_date", "ex_years") if c in df.columns]
    if unknown or missing or len(when) != 1:
        parts = [f"missing column(s) {', '.join(missing)}"] if missing else []
        parts += [f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []
        parts += ["give the ex-dates as one of the columns ex_date (dates) or ex_years (years)"] if len(when) != 1 else []
        raise BookError("dividends: " + "; ".join(parts))
    amount = pd.to_numeric(df["amount"], errors="coerce").to_numpy(dtype=np.float64)
    if when[0] == "ex_years":
        t = pd.to_numeric(df["ex_years"], errors="coerce").to_numpy(dtype=np.float64)
    else:
        if valuation_date is None:
            raise BookError("dividends: the ex_date column holds dates; give the valuation date (valuation_date=... / --valuation-date)")
        ref = pd.Timestamp(valuation_date.isoformat() if isinstance(valuation_date, _dt.date) else valuation_date)
        t = (pd.to_datetime(df["ex_date"], errors="coerce") - ref).dt.days.to_numpy(dtype=np.float64) / 365.0
    und = df["underlying"].astype(str).to_numpy()
    for col, v, rule in ((when[0], t, "finite"), ("amount", amount, ">= 0")):
        bad = ~np.isfinite(v) | ((v < 0) if rule == ">= 0" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            given = df[col].iloc[i : i + 1].tolist()[0]
            raise BookError(f"dividends: row {i} (underlying {und[i]!r}): {col} = {given!r} must be a {rule} number")
    code = names.get_indexer(und)
    keep = (code >= 0) & (t > 0) & (amount > 0)  # other names ignored; paid (ex on or before valuation) dividends gone
    code, t, amount = code[keep], t[keep], amount[keep]
    order = np.lexsort((t, code))
    code, t, amount = code[order], t[order], amount[order]
    counts = np.bincount(code, minlength=len(names))
    m = int(counts.max()) if counts.size else 0
    times, amounts = np.zeros((len(names), m)), np.zeros((len(names), m))
    slot = np.arange(code.size) - np.repeat(np.cumsum(counts) - counts, counts)
    times[code, slot], amounts[code, slot] = t, amount
    if m:  # padding: amount 0 at the row's last time (sorted rows, as DividendSchedule wants)
        last = np.maximum(counts - 1, 0)
        pad = np.arange(m)[None, :] >= counts[:, None]
        times = np.where(pad, times[np.arange(len(names)), last][:, None], times)
    return DividendTable(times, amounts, vol_adjust)
