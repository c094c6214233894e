"""Row-level validation of one partition of the book: every row is either valid (returned as float64
arrays in a :class:`Checked`) or invalid with its column, value and reason (the first problem found).
The rules are documented in :mod:`gpu_hedge._book.schema`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .book_schema import MODELS
from .ids import DUPLICATE_REASON, comparable_ids
from .market import Market
from .sources import BookError

__all__ = ["EXERCISE_OPTIONS", "Checked", "describe_invalid", "validate"]

#: ``exercise=`` of :func:`validate` and the risk job: the book's column, or one exercise for every row
EXERCISE_OPTIONS = ("column", "european", "american")

_TYPES = {"c": 1.0, "call": 1.0, "p": -1.0, "put": -1.0}


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
    on_surface: np.ndarray | None = None  # the rows whose vol is their underlying's surface's (no own vol)
    american: np.ndarray | None = None  # boolean: American exercise (the book's ``exercise`` column)


def validate(
    df: pd.DataFrame, market: Market, valuation_date: Any, first_row: int, duplicates: Any = None, text_ok: bool = False,
    exercise: str = "column",
) -> Checked:  # fmt: skip
    """Check one chunk of the book row by row; rows with any problem go to ``invalid`` (first
    problem per row: column, value and reason) and the rest come back as arrays.

    ``duplicates``: the ids that appear more than once in the whole book (:func:`duplicate_ids`'s
    index; a chunk cannot see the other chunks), whose rows are all invalid. ``text_ok``: text
    cells of numeric columns are read as numbers where they are number literals (CSV files);
    otherwise a text cell is invalid ("quantity is text, not a number"). A boolean cell always is.
    ``exercise``: ``"column"`` (the book's ``exercise`` column, European where there is none), or
    ``"european"`` / ``"american"`` for every row (the column, if any, is then not read)."""
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
        """The column as float64 (NaN where missing); a text or boolean cell is flagged here, before
        the column's other checks, and becomes NaN: it is never read as a number."""
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):  # an Arrow dictionary column: its values, cell by cell
            cats = s.dtype.categories.dtype
            s = s.astype(np.float64 if pd.api.types.is_numeric_dtype(cats) and not pd.api.types.is_bool_dtype(cats) else object)
        if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
            if isinstance(s.dtype, np.dtype):
                return s.to_numpy(dtype=np.float64)  # the fast path: no copy for float64
            return s.to_numpy(dtype=np.float64, na_value=np.nan)  # nullable Int64 / Float64 / Arrow numbers
        if pd.api.types.is_bool_dtype(s.dtype):
            flag(s.notna().to_numpy(), col, s, f"{col} is a boolean, not a number")
            return np.full(n, np.nan)
        if s.dtype == object:  # mixed cells (a DataFrame): look at each one's type
            cells = s.to_numpy()
            is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in cells), dtype=bool, count=n)
            is_text = np.fromiter((isinstance(v, str) for v in cells), dtype=bool, count=n)
        else:  # a text dtype: every non-null cell is text
            is_bool, is_text = np.zeros(n, dtype=bool), s.notna().to_numpy()
        flag(is_bool, col, s, f"{col} is a boolean, not a number")
        if not text_ok:
            flag(is_text, col, s, f"{col} is text, not a number")
        keep = ~is_bool & (text_ok | ~is_text)
        if not keep.any():
            return np.full(n, np.nan)
        values = pd.to_numeric(s.where(keep, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(keep, values, np.nan)

    def flag_dates(rows: np.ndarray, tau: np.ndarray) -> None:
        """Flag the ``rows`` whose expiry is given as a date: not a date, or on or before the valuation date."""
        raw = df["expiry"]
        flag(rows & np.isnan(tau), "expiry", raw, "expiry is missing or not a date")
        flag(rows & (tau <= 0), "expiry", raw, f"expired (expiry on or before the valuation date {valuation_date})")

    pid = df["position_id"]
    flag(pid.isna().to_numpy(), "position_id", pid, "position_id is missing")
    if duplicates is not None and len(duplicates):
        flag(comparable_ids(pid).isin(duplicates).to_numpy(), "position_id", pid, DUPLICATE_REASON)

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
                flag_dates(use_date, tau)
        flag(np.isnan(tau), "expiry_years", raw_tau, "expiry is missing or not a number")
        flag(~np.isfinite(tau), "expiry_years", raw_tau, "expiry must be finite")
        flag(tau <= 0, "expiry_years", raw_tau, "expired (expiry_years <= 0)")
    else:
        tau = _years(df["expiry"], valuation_date)
        flag_dates(np.ones(n, dtype=bool), tau)

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
    given = np.zeros(n, dtype=bool)
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
    on = market.on_surface(code) & ~given if market.surfaces else np.zeros(n, dtype=bool)
    if on.any():
        flag(on & ~(np.isfinite(vol) & (vol > 0)), "vol", pd.Series(vol), "the vol surface gives no vol > 0 at this strike and expiry")

    model = np.zeros(n, dtype=np.int8)
    if "model" in df.columns:
        code_m = _map_words(df["model"].fillna("bsm"), {name: float(i) for i, name in enumerate(MODELS)})
        flag(np.isnan(code_m), "model", df["model"], f"unknown model (use {' or '.join(MODELS)})")
        model = np.nan_to_num(code_m).astype(np.int8)

    if exercise not in EXERCISE_OPTIONS:
        raise ValueError(f"exercise = {exercise!r} must be one of {', '.join(map(repr, EXERCISE_OPTIONS))}")
    american = np.full(n, exercise == "american")
    if "exercise" in df.columns and exercise == "column":  # empty cells are European, as a missing column is
        code_x = _map_words(df["exercise"].fillna("european"), {"european": 0.0, "american": 1.0})
        flag(np.isnan(code_x), "exercise", df["exercise"], "unknown exercise (use european or american)")
        american = code_x == 1.0  # both book models (bsm, black76) have American exercise; bachelier is no book model

    if market.dividends is not None and market.dividends.times.shape[1]:
        live = (code >= 0) & (model == 0) & np.isfinite(tau) & (tau > 0)
        pv = market.dividends_pv(np.maximum(code, 0), np.where(live, tau, 0.0))
        spot = market.spot[np.maximum(code, 0)]
        flag(live & ~(pv < spot), "underlying", und, "its cash dividends before expiry are worth the spot or more (S - PV must be > 0)")

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
        tau[ok], (qty * mult)[ok], vol[ok], model[ok], invalid, on[ok], american[ok],
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
