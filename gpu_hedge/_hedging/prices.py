"""Real daily price series for backtests: the shipped WTI crude oil series and a reader of a user's CSV.

Times are on the ACT/365 clock the hedging engine uses: ``(date - first date).days / 365`` years, so
an option expiring ``D`` calendar days after the first date has ``expiry = D / 365``.
"""

from __future__ import annotations

import math
import os
from importlib.resources import files
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PriceSeries", "load_wti", "read_prices", "realised_vol", "series_arrays", "times_from_dates"]

#: cells read as missing (dropped) in a price column: empty, and FRED's "." for holidays
_MISSING = ("", ".")
_DATE_NAMES = ("date", "time", "timestamp", "datetime", "day", "observation_date")
_PRICE_NAMES = ("close", "adj close", "adj_close", "adjclose", "price", "settle", "last", "value")


class PriceSeries(NamedTuple):
    """``(times, prices, dates)``: years since the first date (ACT/365), closes, and the dates."""

    times: np.ndarray
    prices: np.ndarray
    dates: pd.DatetimeIndex


def load_wti() -> pd.Series:
    """Daily WTI crude oil spot price, Cushing OK, FOB, US$ per barrel (U.S. EIA via FRED, series
    DCOILWTICO; public domain), 1986-01-02 ... 2019-01-03, holidays dropped: a float Series indexed
    by date, named ``DCOILWTICO``. See ``gpu_hedge/data/README.md``.

    >>> s = load_wti()
    >>> s.index[0].date().isoformat(), s.index[-1].date().isoformat(), len(s)
    ('1986-01-02', '2019-01-03', 8321)
    """
    import pandas as pd

    resource = files("gpu_hedge").joinpath("data", "wti_daily.csv.gz")
    with resource.open("rb") as fh:
        frame = pd.read_csv(fh, compression="gzip", na_values=["."], keep_default_na=True)
    dates = pd.DatetimeIndex(pd.to_datetime(frame["Date"], format="%m/%d/%Y"), name="date")
    s = pd.Series(frame["DCOILWTICO"].to_numpy(dtype=np.float64), index=dates, name="DCOILWTICO")
    return s.dropna()


def times_from_dates(dates: pd.DatetimeIndex | pd.Series | np.ndarray) -> np.ndarray:
    """Years since the first date, ACT/365 (calendar days / 365)."""
    import pandas as pd

    d = pd.DatetimeIndex(dates)
    return np.asarray((d - d[0]).days, dtype=np.float64) / 365.0


def series_arrays(series: pd.Series) -> PriceSeries:
    """A date-indexed Series of closes (e.g. :func:`load_wti`) as ``(times, prices, dates)``."""
    import pandas as pd

    s = series.dropna()
    dates = pd.DatetimeIndex(s.index)
    return PriceSeries(times_from_dates(dates), s.to_numpy(dtype=np.float64), dates)


def realised_vol(prices: np.ndarray, times: np.ndarray) -> float:
    """Annualised realised vol on the ``times`` clock: ``sqrt(sum of squared de-meaned log returns /
    elapsed years)`` (with daily closes this is about the sample std x sqrt(252))."""
    p = np.asarray(prices, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if p.size < 3:
        raise ValueError(f"realised vol needs at least 3 prices, got {p.size}")
    r = np.diff(np.log(p))
    years = float(t[-1] - t[0])
    var = float(np.var(r, ddof=1)) * r.size / years
    return math.sqrt(var)


def _pick(columns: list[str], wanted: str | None, names: tuple[str, ...], what: str, exclude: str | None = None) -> str:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{what} column {wanted!r} not found; the file has columns {columns}")
        return wanted
    lower = {c.strip().lower(): c for c in columns if c != exclude}
    for n in names:
        if n in lower:
            return lower[n]
    return ""


def read_prices(
    path: str | os.PathLike, column: str | None = None, date_column: str | None = None, *, allow_zero: bool = False
) -> PriceSeries:
    """Read a CSV of daily closes (one date column and one price column; other columns are ignored
    once both are named or found) and return ``(times, prices, dates)``, times in years since the
    first date (ACT/365).

    The date column is ``date_column``, else one named date/time/timestamp/..., else the first
    column; the price column is ``column``, else the only other column, else one named
    close/adj close/price/settle/last/value. Empty cells and "." (FRED's holidays) in the price
    column are dropped; any other non-numeric or non-positive price, an unreadable date, dates out
    of order or repeated raise ``ValueError`` naming the line of the file and the value.
    ``allow_zero``: zero is a valid price (option quotes: an option can be worthless).
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ValueError(f"{os.fspath(path)}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)}: not a readable CSV ({exc})") from None
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise ValueError(f"{os.fspath(path)}: expected a date column and a price column, found columns {columns}")
    dcol = _pick(columns, date_column, _DATE_NAMES, "date") or columns[0]
    pcol = _pick(columns, column, _PRICE_NAMES, "price", exclude=dcol)
    if not pcol:
        others = [c for c in columns if c != dcol]
        if len(others) != 1:
            raise ValueError(f"{os.fspath(path)}: cannot tell which column holds the prices among {others}; pass column=...")
        pcol = others[0]
    if pcol == dcol:
        raise ValueError(f"the date column and the price column are both {dcol!r}")
    raw_p = frame[pcol].str.strip()
    raw_d = frame[dcol].str.strip()
    keep = ~raw_p.isin(_MISSING)
    lines = np.arange(len(frame))[keep.to_numpy()] + 2  # line numbers in the file (header = line 1)
    raw_p, raw_d = raw_p[keep], raw_d[keep]
    if raw_p.empty:
        raise ValueError(f"{os.fspath(path)}: column {pcol!r} has no prices")
    values = pd.to_numeric(raw_p, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = bad[0]
        raise ValueError(f"{os.fspath(path)} line {lines[i]}: price {raw_p.iloc[i]!r} in column {pcol!r} is not a number")
    bad = np.flatnonzero((values < 0) if allow_zero else (values <= 0))
    if bad.size:
        i = bad[0]
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{os.fspath(path)} line {lines[i]}: price {raw_p.iloc[i]!r} in column {pcol!r} must be {rule}")
    parsed = pd.to_datetime(raw_d, errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = bad[0]
        raise ValueError(f"{os.fspath(path)} line {lines[i]}: date {raw_d.iloc[i]!r} in column {dcol!r} is not a date")
    dates = pd.DatetimeIndex(parsed, name="date")
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    dates = dates.normalize()
    step = np.flatnonzero(np.diff(dates.asi8) <= 0)
    if step.size:
        i = step[0] + 1
        kind = "repeats" if dates[i] == dates[i - 1] else "comes before"
        raise ValueError(
            f"{os.fspath(path)} line {lines[i]}: date {raw_d.iloc[i]!r} {kind} the previous one {raw_d.iloc[i - 1]!r} "
            f"(line {lines[i - 1]}); dates must be strictly increasing, one close per day"
        )
    if values.size < 2:
        raise ValueError(f"{os.fspath(path)}: a backtest needs at least 2 prices, found {values.size}")
    return PriceSeries(times_from_dates(dates), values, dates)
