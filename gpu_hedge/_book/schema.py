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

Numbers must be numbers (:data:`NUMERIC_COLUMNS`): in a typed source (Parquet, Arrow, a DataFrame) a
numeric column stored as text, booleans or dates is an error naming the column and the
source whatever ``on_invalid`` says (:func:`check_book_types`: every row would be wrong, and text
such as ``"1e3"`` or ``"10,5"`` must not be guessed at). A DataFrame column of dtype ``object`` is
checked cell by cell: a string or a boolean in it is an invalid row ("quantity is text, not a
number"), never read as a number. A CSV file is text by nature: its cells are read as numbers
when they are number literals (a non-number cell is an invalid row), but a column pyarrow infers
as booleans (``true``/``false``) is refused.

``position_id`` must be unique over the whole book (not only within a partition): every row of a
duplicated id is invalid with the reason :data:`DUPLICATE_REASON` (all of them, not all but the
first: which of the rows is the right one cannot be known), see :func:`duplicate_ids`.
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
#: book columns that hold numbers: a column of another type (text, booleans, dates) is refused
NUMERIC_COLUMNS = ("strike", "expiry_years", "quantity", "multiplier", "vol")
DUPLICATE_REASON = "duplicate position_id (every row with this id is set aside)"

_TYPES = {"c": 1.0, "call": 1.0, "p": -1.0, "put": -1.0}


class BookError(ValueError):
    """Invalid book or market data; the message lists the first offending rows."""


def read_file(what: str, path: Any, read: Any, *args: Any, **kwargs: Any) -> Any:
    """``read(*args, **kwargs)``, with a file that cannot be read (not Parquet, not CSV, truncated,
    unreadable) a :class:`BookError` naming ``what`` and the path instead of the reader's bare message."""
    try:
        return read(*args, **kwargs)
    except BookError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise BookError(f"{what} {str(path)!r}: cannot be read: {' '.join(str(exc).split())}") from exc


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


def _type_problem(dtype: Any) -> str | None:
    """Why a column of this Arrow type or pandas dtype cannot hold the numbers of a numeric book
    column, or None when it can (integers, floats, decimals, all-null; pandas ``object`` is checked
    per cell by :func:`validate`)."""
    import pyarrow as pa

    if isinstance(dtype, pa.DataType):
        if pa.types.is_dictionary(dtype):
            dtype = dtype.value_type
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype) or pa.types.is_null(dtype):
            return None
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
            return f"holds text ({dtype}), not numbers"
        if pa.types.is_boolean(dtype):
            return "holds booleans, not numbers"
        return f"is of type {dtype}, not a number type"
    if isinstance(dtype, pd.CategoricalDtype):  # judged by its categories, as Arrow dictionaries are
        return _type_problem(dtype.categories.dtype)
    if pd.api.types.is_bool_dtype(dtype):
        return "holds booleans, not numbers"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return None
    if pd.api.types.is_string_dtype(dtype):
        return f"holds text (dtype {dtype}), not numbers"
    return f"is of dtype {dtype}, not a number type"


def check_book_types(types: dict[str, Any], source: str, text_ok: bool = False) -> None:
    """Refuse a book whose numeric columns (:data:`NUMERIC_COLUMNS`) are not stored as numbers.

    ``types``: column name -> Arrow type or pandas dtype; ``source``: the file or table named in
    the error. ``text_ok`` (CSV files, where every cell is text and number literals are read per
    cell): text columns pass, booleans and other types are still refused."""
    problems = []
    for col in NUMERIC_COLUMNS:
        if col not in types:
            continue
        why = _type_problem(types[col])
        if why is not None and not (text_ok and why.startswith("holds text")):
            problems.append(f"column {col!r} {why}")
    if problems:
        raise BookError(
            f"book {source}: {'; '.join(problems)}; store numbers as integers or floats (text is never read as a number "
            "in a typed file: convert the column, e.g. pd.to_numeric, after checking it)"
        )


def duplicate_ids(ids: Any) -> pd.Series:
    """The ``position_id`` values that appear on more than one row, with their row counts (a Series
    indexed by id); nulls are not counted (a missing id is its own invalid-row reason). ``ids``: the
    whole book's id column (pandas Series, NumPy or Arrow array).

    Ids are compared as the type they are stored with, except that a pandas ``object`` column
    (mixed types) is compared as text, as the outputs write ids (1 and "1" are one id there).
    Numbers: an increasing column (the usual 0 ... n-1) is recognised in one pass, else a sort;
    text: an increasing column in one pass, else a hash count (pyarrow). Measured on a 2-core
    machine at 1e7 rows: int64 0 ... n-1 (``generate_book``) 0.01 s, plus 0.2-0.35 s to read the
    column from the Parquet file; shuffled int64 0.3-0.4 s; shuffled strings 2-3 s. The risk job on
    that book takes about 8 s without a ladder and far longer with one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = _id_key(ids)
    none = pd.Series([], dtype=np.int64, name="rows")
    numbers = pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
    if numbers and arr.null_count == 0 and _increasing(arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]):
        return none  # the usual 0 ... n-1, chunk by chunk (no copy of the column)
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        arr = pc.drop_null(arr)
    if len(arr) < 2:
        return none
    if numbers:
        v = np.sort(arr.to_numpy(zero_copy_only=False))
        same = v[1:] == v[:-1]
        if not same.any():
            return none
        values, counts = np.unique(v[1:][same], return_counts=True)
        return pd.Series(counts + 1, index=values, dtype=np.int64, name="rows")
    if pc.all(pc.greater(arr[1:], arr[:-1])).as_py() or len(pc.unique(arr)) == len(arr):
        return none
    counts = pc.value_counts(arr)
    values, n = counts.field("values"), counts.field("counts")
    many = pc.greater(n, 1)
    return pd.Series(pc.filter(n, many).to_numpy(), index=pc.filter(values, many).to_pandas(), dtype=np.int64, name="rows")


def _increasing(chunks: Any) -> bool:
    """Whether the numeric Arrow arrays ``chunks``, one after the other, are strictly increasing."""
    last = None
    for chunk in chunks:
        if not len(chunk):
            continue
        v = chunk.to_numpy(zero_copy_only=False)
        if (last is not None and not v[0] > last) or not bool(np.all(v[1:] > v[:-1])):
            return False
        last = v[-1]
    return True


def _id_key(ids: Any) -> Any:
    """The id column as an Arrow array of the values compared for uniqueness (see :func:`duplicate_ids`)."""
    import pyarrow as pa

    if isinstance(ids, pa.Array | pa.ChunkedArray):
        return ids.cast(ids.type.value_type) if pa.types.is_dictionary(ids.type) else ids
    s = pd.Series(ids) if not isinstance(ids, pd.Series) else ids
    if s.dtype == object:
        s = s.where(s.isna(), s.astype(str))
        return pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    return _id_key(pa.Array.from_pandas(s))


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
        return read_file(what, path, pd.read_parquet, path)
    if path.endswith((".csv", ".csv.gz")):
        return read_file(what, path, pd.read_csv, path)
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


def validate(
    df: pd.DataFrame, market: Market, valuation_date: Any, first_row: int, duplicates: Any = None, text_ok: bool = False
) -> Checked:
    """Check one chunk of the book row by row; rows with any problem go to ``invalid`` (first
    problem per row: column, value and reason) and the rest come back as arrays.

    ``duplicates``: the ids that appear more than once in the whole book (:func:`duplicate_ids`'s
    index; a chunk cannot see the other chunks), whose rows are all invalid. ``text_ok``: text
    cells of numeric columns are read as numbers where they are number literals (CSV files);
    otherwise a text cell is invalid ("quantity is text, not a number"). A boolean cell always is."""
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

    pid = df["position_id"]
    flag(pid.isna().to_numpy(), "position_id", pid, "position_id is missing")
    if duplicates is not None and len(duplicates):
        key = pid.where(pid.isna(), pid.astype(str)) if pid.dtype == object else pid  # compared as duplicate_ids compares
        flag(key.isin(duplicates).to_numpy(), "position_id", pid, DUPLICATE_REASON)

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
