"""The book and market-data schemas of the risk job, and row-level validation.

Book (Parquet, CSV, a pandas DataFrame or an Arrow table), one row per position:

========================  =========  ===========================================================
column                    required   meaning
========================  =========  ===========================================================
``position_id``           yes        any unique key (string or integer), reported with every error
``underlying``            yes        name of the underlying; must appear in the market data
``option_type``           yes        ``C``/``P``/``call``/``put`` (any case)
``strike``                yes        > 0
``expiry``                one of     expiry date (needs the job's ``valuation_date``), ACT/365
``expiry_years``          the two    years to expiry, > 0
``quantity``              yes        signed number of contracts (negative = short)
``multiplier``            no         shares per contract, > 0 (default 100)
``vol``                   no         the position's implied vol (decimal); empty -> market vol
``model``                 no         ``bsm`` (default), ``black76`` (the underlying's price is a
                                     forward/futures price; its ``div`` is ignored)
========================  =========  ===========================================================

Market data, one row per underlying: ``underlying``, ``spot`` (> 0), ``vol`` (decimal, > 0; used
where a position has none), ``rate`` and ``div`` (continuously compounded decimals). Optionally a
vol surface, a long table ``underlying, expiry_years, strike, vol`` forming a full grid per
underlying (:class:`VolSurface` says how it is interpolated); a position without its own vol then
takes its underlying's surface at its strike and expiry, else the flat ``vol``.

Any other column is an error (a typo would otherwise be silently ignored). Row problems (NaN,
strike <= 0, unknown option type or model, underlying missing from the market data, expired, bad
quantity, multiplier or vol) are collected per row with the column, the value and a reason.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BOOK_REQUIRED = ("position_id", "underlying", "option_type", "strike", "quantity")
BOOK_OPTIONAL = ("expiry", "expiry_years", "multiplier", "vol", "model")
MARKET_COLUMNS = ("underlying", "spot", "vol", "rate", "div")
MODELS = ("bsm", "black76")
INVALID_COLUMNS = ("position_id", "row", "column", "value", "reason")

_TYPES = {"c": 1.0, "call": 1.0, "p": -1.0, "put": -1.0}


class BookError(ValueError):
    """Invalid book or market data; the message lists the first offending rows."""


def check_book_columns(columns: Any) -> None:
    cols = list(columns)
    missing = [c for c in BOOK_REQUIRED if c not in cols]
    if "expiry" not in cols and "expiry_years" not in cols:
        missing.append("expiry or expiry_years")
    unknown = [c for c in cols if c not in BOOK_REQUIRED + BOOK_OPTIONAL]
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(BOOK_REQUIRED + BOOK_OPTIONAL)})")
    if problems:
        raise BookError("book: " + "; ".join(problems))


@dataclass(frozen=True)
class Market:
    """Validated market data: ``names`` (underlyings, in order) and float64 arrays by position in it."""

    names: pd.Index
    spot: np.ndarray
    vol: np.ndarray
    rate: np.ndarray
    div: np.ndarray
    surfaces: dict[int, VolSurface] | None = None  # by underlying position in ``names``

    @property
    def size(self) -> int:
        return len(self.names)

    def vol_for(self, code: np.ndarray, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """The market vol of each row: its underlying's surface at (tau, strike) where it has one,
        else the underlying's flat ``vol``. Rows with code < 0 get NaN."""
        out = np.where(code >= 0, self.vol[np.maximum(code, 0)], np.nan)
        for u, surface in (self.surfaces or {}).items():
            rows = np.flatnonzero(code == u)
            if rows.size:
                out[rows] = surface(strike[rows], tau[rows])
        return out


@dataclass(frozen=True)
class VolSurface:
    """Implied vols on a grid: ``expiries`` (years, increasing) x ``strikes`` (increasing).

    Interpolation: at each grid expiry, vol linear in log-strike with flat extrapolation beyond the
    wings; between expiries, total variance vol^2 T linear in T (no calendar arbitrage is created
    where the grid has none); before the first and after the last expiry the vol is held flat.
    """

    expiries: np.ndarray
    strikes: np.ndarray
    vols: np.ndarray  # (n_expiries, n_strikes)

    def __call__(self, strike: np.ndarray, tau: np.ndarray) -> np.ndarray:
        lk, grid = np.log(np.maximum(strike, 1e-300)), np.log(self.strikes)
        at = np.stack([np.interp(lk, grid, row) for row in self.vols])  # (n_expiries, n)
        e = self.expiries
        if e.size == 1:
            return at[0]
        t = np.clip(tau, e[0], e[-1])
        hi = np.clip(np.searchsorted(e, t, side="left"), 1, e.size - 1)
        lo = hi - 1
        cols = np.arange(t.size)
        w_lo, w_hi = at[lo, cols] ** 2 * e[lo], at[hi, cols] ** 2 * e[hi]
        frac = (t - e[lo]) / (e[hi] - e[lo])
        return np.sqrt((w_lo + frac * (w_hi - w_lo)) / t)


SURFACE_COLUMNS = ("underlying", "expiry_years", "strike", "vol")


def read_surfaces(surface: Any, names: pd.Index) -> dict[int, VolSurface]:
    """Vol grids from a long table (underlying, expiry_years, strike, vol): each underlying's rows must
    form a full expiry x strike grid of finite vols > 0 with expiries and strikes > 0."""
    df = _frame(surface, "vol surface")
    missing = [c for c in SURFACE_COLUMNS if c not in df.columns]
    if missing:
        raise BookError(f"vol surface: missing column(s) {', '.join(missing)} (expected {', '.join(SURFACE_COLUMNS)})")
    out: dict[int, VolSurface] = {}
    df = df.assign(underlying=df["underlying"].astype(str))
    for name, g in df.groupby("underlying", sort=False):
        if name not in names:
            raise BookError(f"vol surface: underlying {name!r} is not in the market data")
        vals = {c: pd.to_numeric(g[c], errors="coerce").to_numpy(dtype=np.float64) for c in ("expiry_years", "strike", "vol")}
        for c, v in vals.items():
            bad = ~(np.isfinite(v) & (v > 0))
            if bad.any():
                raise BookError(f"vol surface: {c} = {g[c].iloc[int(np.flatnonzero(bad)[0])]!r} for {name!r} must be finite and > 0")
        grid = pd.DataFrame(vals).pivot_table(index="expiry_years", columns="strike", values="vol", aggfunc="count")
        if grid.isna().any().any() or (grid.to_numpy() != 1).any():
            raise BookError(f"vol surface: {name!r} is not a full expiry x strike grid with one vol per point")
        table = pd.DataFrame(vals).pivot(index="expiry_years", columns="strike", values="vol").sort_index().sort_index(axis=1)
        out[int(names.get_loc(name))] = VolSurface(table.index.to_numpy(float), table.columns.to_numpy(float), table.to_numpy(float))
    return out


def read_market(market: Any, vol_surface: Any = None) -> Market:
    """Market data from a path (Parquet/CSV), DataFrame or Arrow table, checked row by row;
    ``vol_surface`` (optional, see :func:`read_surfaces`) gives some underlyings a vol grid."""
    df = _frame(market, "market")
    missing = [c for c in MARKET_COLUMNS if c not in df.columns]
    unknown = [c for c in df.columns if c not in MARKET_COLUMNS]
    if missing or unknown:
        parts = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s) {', '.join(map(repr, unknown))}"] if unknown else []
        )
        raise BookError("market data: " + "; ".join(parts))
    names = df["underlying"].astype(str)
    dup = names[names.duplicated()]
    if len(dup):
        raise BookError(f"market data: underlying {dup.iloc[0]!r} appears more than once")
    out = {}
    for col, rule in (("spot", "> 0"), ("vol", "> 0"), ("rate", "finite"), ("div", "finite")):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v) | ((v <= 0) if rule == "> 0" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise BookError(f"market data: {col} = {df[col].iloc[i : i + 1].tolist()[0]!r} for underlying {names.iloc[i]!r} must be {rule}")
        out[col] = v
    index = pd.Index(names)
    surfaces = read_surfaces(vol_surface, index) if vol_surface is not None else None
    return Market(index, out["spot"], out["vol"], out["rate"], out["div"], surfaces)


def _frame(source: Any, what: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if hasattr(source, "to_pandas"):
        return source.to_pandas()
    path = str(source)
    if path.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if path.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path)
    raise BookError(f"{what}: cannot read {source!r}; give a .parquet or .csv path, a DataFrame or an Arrow table")


@dataclass
class Checked:
    """A validated chunk: ``ok`` rows as float64 arrays, and the ``invalid`` rows (DataFrame)."""

    position_id: pd.Series
    underlying: pd.Series
    und_code: np.ndarray
    phi: np.ndarray
    strike: np.ndarray
    tau: np.ndarray
    weight: np.ndarray  # quantity x multiplier
    vol: np.ndarray
    model: np.ndarray  # 0 bsm, 1 black76
    invalid: pd.DataFrame


def validate(df: pd.DataFrame, market: Market, valuation_date: Any, first_row: int) -> Checked:
    """Check one chunk of the book row by row; rows with any problem go to ``invalid`` (first
    problem per row: column, value and reason) and the rest come back as arrays."""
    n = len(df)
    rows = np.arange(first_row, first_row + n)
    reason = np.full(n, "", dtype=object)
    column = np.full(n, "", dtype=object)
    value = np.full(n, None, dtype=object)

    def flag(mask: np.ndarray, col: str, values: Any, why: str) -> None:
        new = mask & (reason == "")
        if new.any():
            reason[new] = why
            column[new] = col
            if isinstance(values, pd.Series):  # only the flagged rows become Python objects
                value[new] = values.iloc[np.flatnonzero(new)].to_numpy(dtype=object)
            else:
                vals = np.asarray(values, dtype=object)
                value[new] = vals[new] if vals.shape == (n,) else values

    def numeric(col: str) -> np.ndarray:
        return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)

    pid = df["position_id"]
    flag(pid.isna().to_numpy(), "position_id", pid, "position_id is missing")

    und = df["underlying"]
    und_cat = pd.Categorical(und)  # few distinct names: map those, then index by code
    und_codes = np.asarray(und_cat.codes)
    known = market.names.get_indexer(pd.Index(und_cat.categories.astype(str)))
    code = np.where(und_codes >= 0, known[np.maximum(und_codes, 0)] if known.size else -1, -1)
    und_str = pd.Series(np.asarray(und_cat.categories.astype(str), dtype=object)[np.maximum(und_codes, 0)] if len(und_cat.categories) else
                        np.full(n, "", dtype=object))  # fmt: skip
    flag(und_codes < 0, "underlying", und, "underlying is missing")
    flag(code < 0, "underlying", und, "underlying is not in the market data")

    phi = _map_words(df["option_type"], _TYPES)
    flag(np.isnan(phi), "option_type", df["option_type"], "unknown option_type (use C, P, call or put)")

    strike = numeric("strike")
    flag(np.isnan(strike), "strike", df["strike"], "strike is missing or not a number")
    flag(~(strike > 0) | ~np.isfinite(strike), "strike", df["strike"], "strike must be finite and > 0")

    if "expiry_years" in df.columns and ("expiry" not in df.columns or df["expiry_years"].notna().any()):
        tau = numeric("expiry_years")
        raw_tau = df["expiry_years"]
        if "expiry" in df.columns:  # rows giving a date instead: their problems name the expiry column
            use_date = np.isnan(tau) & df["expiry"].notna().to_numpy()
            if use_date.any():
                tau = np.where(use_date, _years(df["expiry"], valuation_date), tau)
                raw = df["expiry"]
                flag(use_date & np.isnan(tau), "expiry", raw, "expiry is missing or not a date")
                flag(use_date & (tau <= 0), "expiry", raw, f"expired (expiry on or before the valuation date {valuation_date})")
        flag(np.isnan(tau), "expiry_years", raw_tau, "expiry is missing or not a number")
        flag(~np.isfinite(tau), "expiry_years", raw_tau, "expiry must be finite")
        flag(tau <= 0, "expiry_years", raw_tau, "expired (expiry_years <= 0)")
    else:
        if valuation_date is None:
            raise BookError("book: the expiry column holds dates; give the valuation date (valuation_date=... / --valuation-date)")
        tau = _years(df["expiry"], valuation_date)
        raw = df["expiry"]
        flag(np.isnan(tau), "expiry", raw, "expiry is missing or not a date")
        flag(tau <= 0, "expiry", raw, f"expired (expiry on or before the valuation date {valuation_date})")

    qty = numeric("quantity")
    flag(~np.isfinite(qty), "quantity", df["quantity"], "quantity is missing or not a finite number")

    if "multiplier" in df.columns:
        mult = numeric("multiplier")
        given = df["multiplier"].notna().to_numpy()
        flag(given & ~(np.isfinite(mult) & (mult > 0)), "multiplier", df["multiplier"], "multiplier must be > 0")
        mult = np.where(given, mult, 100.0)
    else:
        mult = np.full(n, 100.0)

    vol = market.vol_for(code, strike, tau) if market.surfaces else market.vol[np.maximum(code, 0)].copy()
    if "vol" in df.columns:
        pv = numeric("vol")
        given = df["vol"].notna().to_numpy()
        flag(
            given & ~(np.isfinite(pv) & (pv > 0)),
            "vol",
            df["vol"],
            "vol must be finite and > 0 (leave it empty to use the market vol)",
        )
        vol = np.where(given, pv, vol)

    model = np.zeros(n, dtype=np.int8)
    if "model" in df.columns:
        code_m = _map_words(df["model"].fillna("bsm"), {name: float(i) for i, name in enumerate(MODELS)})
        flag(np.isnan(code_m), "model", df["model"], f"unknown model (use {' or '.join(MODELS)})")
        model = np.nan_to_num(code_m).astype(np.int8)

    bad = reason != ""
    invalid = pd.DataFrame(
        {
            "position_id": pid.iloc[np.flatnonzero(bad)].astype(str).to_numpy(),
            "row": rows[bad],
            "column": column[bad].astype(str),
            "value": [repr(v) if not isinstance(v, str) else v for v in value[bad]],
            "reason": reason[bad].astype(str),
        }
    )
    ok = ~bad
    return Checked(
        pid[ok].reset_index(drop=True), und_str[ok].reset_index(drop=True), code[ok].astype(np.int64), phi[ok], strike[ok],
        tau[ok], (qty * mult)[ok], vol[ok], model[ok], invalid,
    )  # fmt: skip


def _map_words(column: pd.Series, words: dict[str, float]) -> np.ndarray:
    """``words[value.strip().lower()]`` per row as float64 (NaN where unknown or missing), looking up
    each distinct value once."""
    cat = pd.Categorical(column)
    table = np.array([words.get(str(c).strip().lower(), np.nan) for c in cat.categories] + [np.nan], dtype=np.float64)
    return table[np.asarray(cat.codes)]  # code -1 (missing) -> the trailing NaN


def _years(expiry: pd.Series, valuation_date: Any) -> np.ndarray:
    """ACT/365 years from ``valuation_date`` to each date (NaN where not a date)."""
    if valuation_date is None:
        raise BookError("book: the expiry column holds dates; give the valuation date (valuation_date=... / --valuation-date)")
    when = pd.to_datetime(expiry, errors="coerce")
    ref = pd.Timestamp(valuation_date if not isinstance(valuation_date, _dt.date) else valuation_date.isoformat())
    days = (when - ref).dt.days.to_numpy(dtype=np.float64) if hasattr(when, "dt") else np.asarray((when - ref).days, dtype=np.float64)
    return days / 365.0


def describe_invalid(invalid: pd.DataFrame, limit: int = 5) -> str:
    """The first ``limit`` invalid rows as lines 'position_id X (row i): column = value: reason'."""
    lines = [f"  position_id {r.position_id} (row {r.row}): {r.column} = {r.value}: {r.reason}" for r in invalid.head(limit).itertuples()]
    more = f"\n  ... and {len(invalid) - limit} more in this chunk" if len(invalid) > limit else ""
    return "\n".join(lines) + more
