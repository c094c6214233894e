"""Readers for real option quote files, all returning one long layout: one row per contract.

Layouts read (``layout=`` names):

- ``"cboe"``: the CBOE delayed-quote chain export (line 2 ``<name>,Last: <spot>,...``, line 3
  ``"Date: September 14, 2023 at 4:31 PM EDT",...``, header on line 4, calls and puts side by side
  around ``Strike``). Split into one row per contract.
- ``"spxw-eod"``: end-of-day vendor files with columns ``underlying, underlying_last, optionroot,
  type, expiration, quotedate, strike, last, bid, ask, volume, openinterest, impliedvol, delta,
  gamma, theta, vega`` (a BOM and blanks after commas are tolerated).
- ``"agilent"``: end-of-day vendor files with columns ``UnderlyingSymbol, UnderlyingPrice,
  OptionSymbol, Type, Expiration, DataDate, Strike, Last, Bid, Ask, Volume, OpenInterest, IVMean,
  IVBid, IVAsk, Delta, Gamma, Theta, Vega``.

Columns of every returned DataFrame, in this order:

=================  ===============================================================================
column             meaning
=================  ===============================================================================
quote_date         trading date of the quote (``datetime64``, midnight, no time zone)
quote_time         time of the quote, tz-aware America/New_York; ``NaT`` where the file gives only
                   a date (end-of-day files)
expiry             expiry date and settlement time, tz-aware America/New_York: 09:30 for
                   AM-settled roots (``SPX`` monthlies, ``NDX``, ``RUT``, ``VIX``), 16:00 (close of
                   trading) for every other root (``SPXW``, equity options)
underlying         ticker of the underlying (``SPX`` for both ``SPX`` and ``SPXW``)
root               option root from the OCC symbol (``SPX``, ``SPXW``, ``A``)
symbol             OCC option symbol, e.g. ``SPXW230915C04500000``
call               ``True`` for calls, ``False`` for puts
strike             strike price
bid, ask           quotes; 0 means no bid (or no ask)
mid                ``(bid + ask) / 2`` where ``ask > 0`` and ``ask >= bid``, else NaN
last               last sale price (0 where the vendor prints none)
volume             contracts traded that day
open_interest      open interest
underlying_price   price of the underlying the vendor used (CBOE: ``Last``)
expiry_years       time to expiry in years by the vendor's own rule (``attrs["expiry_rule"]``),
                   clipped at 0 for contracts already expired at the quote time
iv                 the vendor's implied vol, decimal (0.20); NaN where not computed (printed 0)
iv_bid, iv_ask     the vendor's implied vols of bid and ask, decimal; NaN where not given
delta, gamma       the vendor's, per unit of spot
theta              the vendor's, converted to dV/dt per year (decay negative); NaN where absent
vega               the vendor's, converted to dV/dsigma per 1.00 of vol; NaN where absent
=================  ===============================================================================

Original scales: CBOE prints IV as a decimal, delta and gamma per unit of spot (gamma to 4
decimals), no theta or vega. ``spxw-eod`` prints theta per year and vega per 1.00 of vol (kept as
is). ``agilent`` prints theta per calendar day (multiplied by 365 here) and vega per vol point
(multiplied by 100 here); a printed IV of 0 means "not computed" and becomes NaN.

``df.attrs`` holds what a caller needs to reproduce the vendor's numbers: ``layout``, ``source``
(the path), ``rate`` (continuously compounded decimal the vendor used), ``div`` (a number, or
``"implied"`` where the vendor uses a per-expiry dividend yield from put-call parity, see
:func:`gpu_hedge._book.forwards.implied_forwards`), ``expiry_rule`` (how ``expiry_years`` was
computed, in words), ``scales`` (``{column: how it was converted}``), and ``exercise``
(``"american"``, ``"european"`` or ``"mixed"``) with ``exercise_rule``: none of the layouts has an
exercise-style field, so it is inferred from the option root (:func:`american_rows`): the
cash-settled index roots of :data:`EUROPEAN_ROOTS` (``SPX``, ``SPXW``, ...) are European, every other
root (single stocks and ETFs: ``SPY``, ``A``) is American.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

TZ = "America/New_York"
AM_SETTLED_ROOTS = frozenset({"SPX", "NDX", "RUT", "VIX"})
UNDERLYING_OF_ROOT = {"SPXW": "SPX", "NDXP": "NDX", "RUTW": "RUT", "VIXW": "VIX"}
SECONDS_PER_YEAR = 365.0 * 86400.0
#: option roots of European-style (cash-settled index) options; other roots, equity and ETF options, are American
EUROPEAN_ROOTS = frozenset({"SPX", "SPXW", "SPXPM", "XSP", "NDX", "NDXP", "RUT", "RUTW", "VIX", "VIXW", "XEO", "DJX", "MXEA", "MXEF"})
EXERCISE_RULE = "inferred from the option root: cash-settled index roots (SPX, SPXW, NDX, RUT, VIX, ...) European, others American"

QUOTE_COLUMNS = (
    "quote_date", "quote_time", "expiry", "underlying", "root", "symbol", "call", "strike",
    "bid", "ask", "mid", "last", "volume", "open_interest", "underlying_price", "expiry_years",
    "iv", "iv_bid", "iv_ask", "delta", "gamma", "theta", "vega",
)  # fmt: skip
LAYOUTS = ("cboe", "spxw-eod", "agilent")

_OCC = re.compile(r"^\s*([A-Z0-9]{1,6}?)(\d{6})([CP])(\d{8})\s*$")
_CBOE_SIDE = ("Last Sale", "Net", "Bid", "Ask", "Volume", "IV", "Delta", "Gamma", "Open Interest")
_CBOE_NAMES = {"Last Sale": "last", "Bid": "bid", "Ask": "ask", "Volume": "volume", "IV": "iv", "Delta": "delta",
               "Gamma": "gamma", "Open Interest": "open_interest"}  # fmt: skip
_CBOE_HEADER = ("Expiration Date", "Calls", *_CBOE_SIDE, "Strike", "Puts", *(f"{c}.1" for c in _CBOE_SIDE))

_SPXW_EOD = {
    "underlying": "underlying", "underlying_last": "underlying_price", "optionroot": "symbol",
    "type": "type", "expiration": "expiry_date", "quotedate": "quote_date", "strike": "strike",
    "last": "last", "bid": "bid", "ask": "ask", "volume": "volume", "openinterest": "open_interest",
    "impliedvol": "iv", "delta": "delta", "gamma": "gamma", "theta": "theta", "vega": "vega",
}  # fmt: skip
_AGILENT = {
    "UnderlyingSymbol": "underlying", "UnderlyingPrice": "underlying_price", "OptionSymbol": "symbol",
    "Type": "type", "Expiration": "expiry_date", "DataDate": "quote_date", "Strike": "strike",
    "Last": "last", "Bid": "bid", "Ask": "ask", "Volume": "volume", "OpenInterest": "open_interest",
    "IVMean": "iv", "IVBid": "iv_bid", "IVAsk": "iv_ask", "Delta": "delta", "Gamma": "gamma",
    "Theta": "theta", "Vega": "vega",
}  # fmt: skip


def _missing(path: Path, layout: str, have: Sequence[str], need: Sequence[str]) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise ValueError(f"{path}: not a {layout!r} quote file; missing column(s) {missing}")


def _parse_occ(path: Path, symbols: pd.Series) -> pd.DataFrame:
    parts = symbols.astype(str).str.extract(_OCC)
    bad = parts[0].isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: {symbols.iloc[i]!r} (row {i}) is not an OCC option symbol like 'SPXW230915C04500000'")
    return pd.DataFrame({"root": parts[0], "call": parts[2] == "C"}, index=symbols.index)


def _settlement(expiry_date: pd.Series, root: pd.Series) -> pd.Series:
    """Expiry date plus settlement time (09:30 for AM-settled roots, else 16:00), in New York time."""
    am = root.isin(AM_SETTLED_ROOTS).to_numpy()
    clock = np.where(am, pd.Timedelta(hours=9, minutes=30), pd.Timedelta(hours=16))
    return (pd.to_datetime(expiry_date).dt.normalize() + pd.to_timedelta(clock)).dt.tz_localize(TZ)


def _finish(df: pd.DataFrame, attrs: dict) -> pd.DataFrame:
    for col in QUOTE_COLUMNS:
        if col not in df:
            df[col] = pd.NaT if col == "quote_time" else np.nan
    for col in QUOTE_COLUMNS[QUOTE_COLUMNS.index("strike") :]:
        try:
            df[col] = df[col].astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{attrs['source']}: column {col!r} holds a value that is not a number ({exc})") from None
    for col in ("iv", "iv_bid", "iv_ask"):
        df[col] = df[col].where(df[col] > 0)
    bid, ask = df["bid"], df["ask"]
    df["mid"] = ((bid + ask) / 2).where((ask > 0) & (ask >= bid) & (bid >= 0))
    df["expiry_years"] = df["expiry_years"].clip(lower=0.0)
    und = df["underlying"].where(df["underlying"].notna(), df["root"]).astype(str).str.strip()
    df["underlying"] = und.map(lambda u: UNDERLYING_OF_ROOT.get(u, u))
    out = df.loc[:, list(QUOTE_COLUMNS)].reset_index(drop=True)
    out["call"] = out["call"].astype(bool)
    out[["underlying", "root", "symbol"]] = out[["underlying", "root", "symbol"]].astype(str)
    american = american_rows(out)
    kind = "american" if american.all() else "european" if not american.any() else "mixed"
    out.attrs = {**attrs, "exercise": kind, "exercise_rule": EXERCISE_RULE}
    return out


def american_rows(quotes: pd.DataFrame) -> np.ndarray:
    """Which contracts of a quote table are American (boolean per row), from their option ``root``
    (the ``underlying`` where the root is missing): all but the :data:`EUROPEAN_ROOTS`."""
    root = quotes["root"].where(quotes["root"].notna() & (quotes["root"].astype(str) != "nan"), quotes["underlying"])
    return ~root.astype(str).str.strip().str.upper().isin(EUROPEAN_ROOTS).to_numpy()


def read_cboe_chain(path: str | PathLike) -> pd.DataFrame:
    """Read a CBOE delayed-quote chain export into the long quote layout (see the module docstring).

    Calls and puts, side by side in the file, become one row each. ``root`` comes from the OCC
    symbol: ``SPX`` monthlies settle at 09:30 ET (AM), ``SPXW`` and others at 16:00 ET.
    ``expiry_years = (expiry - quote_time) / 365 days`` (ACT/365 on the clock), clipped at 0.
    CBOE's IV of 0 ("not computed") becomes NaN. ``attrs``: ``rate = 0.053`` and
    ``div = "implied"`` (CBOE prices each expiry on a put-call-parity forward).
    """
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        head = [next(csv.reader([fh.readline()]), []) for _ in range(3)]
    spot_m = re.search(r"Last:\s*([-\d.,]+)", ",".join(head[1]))
    date_m = re.search(r"Date:\s*(.+?)\s+(E[DS]T)\b", ",".join(head[2]))
    if spot_m is None or date_m is None:
        raise ValueError(
            f"{path}: not a CBOE chain export; line 2 must hold 'Last: <spot>' and line 3 "
            f"'Date: <Month d, yyyy at h:mm AM/PM> EDT' (got {head[1][:2]!r} and {head[2][:1]!r})"
        )
    spot = float(spot_m.group(1).replace(",", ""))
    quote_time = pd.Timestamp(pd.to_datetime(date_m.group(1), format="%B %d, %Y at %I:%M %p")).tz_localize(TZ)

    raw = pd.read_csv(path, skiprows=3, encoding="utf-8-sig", skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    _missing(path, "cboe", list(raw.columns), _CBOE_HEADER)
    expiry_date = pd.to_datetime(raw["Expiration Date"].str.strip(), format="%a %b %d %Y")

    sides = []
    for sym_col, suffix in (("Calls", ""), ("Puts", ".1")):
        side = pd.DataFrame({c: raw[c + suffix] for c in _CBOE_SIDE})
        side = side.drop(columns="Net").rename(columns=_CBOE_NAMES)
        side["symbol"] = raw[sym_col].astype(str).str.strip()
        side["strike"] = raw["Strike"]
        side["expiry_date"] = expiry_date
        sides.append(side)
    df = pd.concat(sides, ignore_index=True)
    df = df.join(_parse_occ(path, df["symbol"]))
    df["expiry"] = _settlement(df.pop("expiry_date"), df["root"])
    df["quote_time"] = quote_time
    df["quote_date"] = quote_time.tz_localize(None).normalize()
    df["underlying_price"] = spot
    df["underlying"] = np.nan
    df["expiry_years"] = (df["expiry"] - quote_time).dt.total_seconds() / SECONDS_PER_YEAR
    attrs = {
        "layout": "cboe",
        "source": str(path),
        "rate": 0.053,
        "div": "implied",
        "expiry_rule": "(expiry incl. settlement time - quote time) / 365 days",
        "scales": {"iv": "decimal, 0 -> NaN", "delta": "as printed", "gamma": "as printed (4 decimals)"},
    }
    df = _finish(df, attrs)
    return df.sort_values(["expiry", "call", "strike"], ascending=[True, False, True], kind="stable").reset_index(drop=True)


def _read_eod(path: Path, layout: str, names: dict[str, str]) -> pd.DataFrame:
    raw = pd.read_csv(path, encoding="utf-8-sig", skipinitialspace=True)
    raw.columns = [str(c).strip() for c in raw.columns]
    _missing(path, layout, list(raw.columns), list(names))
    df = raw.loc[:, list(names)].rename(columns=names)
    df["symbol"] = df["symbol"].astype(str).str.strip()
    df = df.join(_parse_occ(path, df["symbol"]))
    kind = df.pop("type").astype(str).str.strip().str.lower().str[0]
    if not kind.isin(["c", "p"]).all():
        raise ValueError(f"{path}: option type must be 'call' or 'put'; got {sorted(set(kind) - {'c', 'p'})}")
    if not (df["call"] == (kind == "c")).all():
        raise ValueError(f"{path}: option type disagrees with the OCC symbol in some rows")
    df["quote_date"] = pd.to_datetime(df["quote_date"].astype(str).str.strip(), format="%m/%d/%Y")
    df["expiry_date"] = pd.to_datetime(df["expiry_date"].astype(str).str.strip(), format="%m/%d/%Y")
    df["expiry"] = _settlement(df["expiry_date"], df["root"])
    df["days"] = (df.pop("expiry_date") - df["quote_date"]).dt.days.astype(np.float64)
    return df


def read_spxw_eod(path: str | PathLike) -> pd.DataFrame:
    """Read an end-of-day ``spxw-eod`` file (see the module docstring) into the long quote layout.

    The vendor's conventions (in ``attrs``): ``rate = 0.0175``, ``div = 0``,
    ``expiry_years = (calendar days to expiry - 0.625) / 365``, spot = ``underlying_last``; theta
    per year and vega per 1.00 of vol as printed.
    """
    path = Path(path)
    df = _read_eod(path, "spxw-eod", _SPXW_EOD)
    df["expiry_years"] = (df.pop("days") - 0.625) / 365.0
    attrs = {
        "layout": "spxw-eod",
        "source": str(path),
        "rate": 0.0175,
        "div": 0.0,
        "expiry_rule": "(calendar days from quote date to expiry date - 0.625) / 365",
        "scales": {"iv": "decimal", "theta": "per year, as printed", "vega": "per 1.00 of vol, as printed"},
    }
    return _finish(df, attrs)


def read_agilent_eod(path: str | PathLike) -> pd.DataFrame:
    """Read an end-of-day ``agilent`` file (see the module docstring) into the long quote layout.

    The vendor's conventions (in ``attrs``): ``rate = 0``, ``div = 0``,
    ``expiry_years = calendar days / 365``; ``iv`` is IVMean, ``iv_bid`` / ``iv_ask`` are
    IVBid / IVAsk; theta (printed per calendar day) is multiplied by 365 and vega (printed per vol
    point) by 100.
    """
    path = Path(path)
    df = _read_eod(path, "agilent", _AGILENT)
    df["expiry_years"] = df.pop("days") / 365.0
    df["theta"] = df["theta"] * 365.0
    df["vega"] = df["vega"] * 100.0
    attrs = {
        "layout": "agilent",
        "source": str(path),
        "rate": 0.0,
        "div": 0.0,
        "expiry_rule": "calendar days from quote date to expiry date / 365",
        "scales": {
            "iv": "decimal (IVMean), 0 -> NaN",
            "iv_bid": "decimal (IVBid), 0 -> NaN",
            "iv_ask": "decimal (IVAsk), 0 -> NaN",
            "theta": "printed per calendar day, x 365",
            "vega": "printed per vol point, x 100",
        },
    }
    return _finish(df, attrs)


_READERS: dict[str, Callable[[str | PathLike], pd.DataFrame]] = {
    "cboe": read_cboe_chain,
    "spxw-eod": read_spxw_eod,
    "agilent": read_agilent_eod,
}


def detect_layout(path: str | PathLike) -> str:
    """The layout name of a quote file, from its first lines; ValueError if none matches."""
    path = Path(path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        lines = [fh.readline() for _ in range(4)]
    if "Last:" in lines[1] and lines[3].startswith("Expiration Date"):
        return "cboe"
    header = {c.strip() for c in next(csv.reader([lines[0]]), [])}
    if {"optionroot", "impliedvol"} <= header:
        return "spxw-eod"
    if {"OptionSymbol", "IVBid"} <= header:
        return "agilent"
    raise ValueError(
        f"{path}: unrecognised quote file layout. Expected a CBOE chain export (line 2 'Last: <spot>', "
        f"header on line 4 starting 'Expiration Date'), or a header with the columns of 'spxw-eod' "
        f"({', '.join(_SPXW_EOD)}) or 'agilent' ({', '.join(_AGILENT)}); first line was {lines[0].strip()[:120]!r}"
    )


def read_quotes(path: str | PathLike, layout: str = "auto") -> pd.DataFrame:
    """Read a quote file of any known layout (``"auto"`` detects it) into the long quote layout.

    >>> read_quotes("missing.csv", layout="bloomberg")
    Traceback (most recent call last):
    ...
    ValueError: unknown layout 'bloomberg'; expected 'auto', 'cboe', 'spxw-eod' or 'agilent'
    """
    if layout != "auto" and layout not in _READERS:
        raise ValueError(f"unknown layout {layout!r}; expected 'auto', 'cboe', 'spxw-eod' or 'agilent'")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    return _READERS[detect_layout(path) if layout == "auto" else layout](path)


def read_vendor_eod(path: str | PathLike, layout: str = "auto") -> pd.DataFrame:
    """Read an end-of-day vendor file, ``layout`` ``"spxw-eod"``, ``"agilent"`` or ``"auto"``."""
    if layout not in ("auto", "spxw-eod", "agilent"):
        raise ValueError(f"unknown end-of-day layout {layout!r}; expected 'auto', 'spxw-eod' or 'agilent'")
    if layout == "auto":
        layout = detect_layout(path)
        if layout == "cboe":
            raise ValueError(f"{path}: is a CBOE chain export, not an end-of-day vendor file; use read_cboe_chain")
    return read_quotes(path, layout)


__all__ = [
    "EUROPEAN_ROOTS", "LAYOUTS", "QUOTE_COLUMNS", "american_rows", "detect_layout", "read_agilent_eod", "read_cboe_chain", "read_quotes",
    "read_spxw_eod", "read_vendor_eod",
]  # fmt: skip
