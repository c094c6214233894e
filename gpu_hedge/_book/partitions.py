"""Partitions of the book: reading a book in partitions of ``chunk_rows`` rows, and
:func:`process_partition`, which validates, prices and reduces one of them.

:func:`open_book` reads a path (Parquet: record batches; CSV: re-batched blocks), DataFrame or Arrow
table lazily, after checking its columns and types and its ids over the whole book (a partition
alone cannot see duplicates in the others). :func:`process_partition` is a pure function of its
arguments (importable by its module path) so it runs the same on a Dask worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._backends import get_backend, to_numpy
from .american_rows import EXERCISE_WORDS, american_greek_sums, american_ladder_sums
from .batches import device_size, pad
from .book_schema import check_book_columns, check_book_types
from .dividend_rows import dividend_greek_sums, dividend_inputs, dividend_ladder_sums
from .ids import book_ids, duplicate_error, duplicate_ids
from .market import Market
from .reductions import GREEKS, PartResult, greek_sums, ladder_sums, sum_names
from .scenarios import Scenarios, spot_shocks
from .sources import CSV_BLOCK, BookError, read_file
from .validation import validate

__all__ = ["DEDUPE_BELOW", "EMPTY_POSITIONS", "POSITION_COLUMNS", "SMILE_POSITION_COLUMNS", "BookInput", "contracts", "empty_positions",
           "is_text_file", "open_book", "process_partition", "read_partitions"]  # fmt: skip

#: the last two: each row's ``exercise`` ("european" / "american") and ``early_exercise`` (exercising
#: now is optimal; False for European rows)
POSITION_COLUMNS = ("position_id", "underlying", *GREEKS, "value", "position_delta", "position_gamma", "position_vega",
                    "position_theta", "position_rho", "exercise", "early_exercise")  # fmt: skip
#: the positions columns of a run with a vol surface: the row's vol, and the shadow delta after delta
SMILE_POSITION_COLUMNS = ("position_id", "underlying", "vol", "price", "delta", "shadow_delta", *GREEKS[2:], "value", "position_delta",
                          "position_shadow_delta", "position_gamma", "position_vega", "position_theta", "position_rho", "exercise",
                          "early_exercise")  # fmt: skip
_TEXT_COLUMNS = ("position_id", "underlying", "exercise")


def empty_positions(smile: bool = False) -> pa.Table:
    """A positions table without rows (with a vol surface, ``smile``: the columns of such a run)."""
    columns = SMILE_POSITION_COLUMNS if smile else POSITION_COLUMNS
    kind = lambda c: pa.string() if c in _TEXT_COLUMNS else pa.bool_() if c == "early_exercise" else pa.float64()  # noqa: E731
    return pa.table({c: pa.array([], type=kind(c)) for c in columns})


def exercise_words(american: np.ndarray) -> pa.Array:
    """``"european"`` / ``"american"`` per row (Arrow strings, built from a dictionary: no Python objects)."""
    codes = pa.array(np.asarray(american, dtype=np.int8))
    return pa.DictionaryArray.from_arrays(codes, pa.array(list(EXERCISE_WORDS))).cast(pa.string())


#: the positions table of a partition without positions (or whose positions are not kept)
EMPTY_POSITIONS = empty_positions()
#: price each distinct contract once when the partition has at most this fraction of distinct ones
DEDUPE_BELOW = 0.8


# --- reading --------------------------------------------------------------------------------------


@dataclass
class BookInput:
    """A book opened for reading: its ``partitions`` (DataFrames of ``chunk_rows`` rows, read lazily),
    ``total`` rows (None for CSV, not known before the end), ``source`` (for messages), ``text_ok``
    (a CSV file: see :func:`validate`) and ``duplicates`` (the ids on more than one row, or None)."""

    partitions: Iterator[pd.DataFrame]
    total: int | None
    source: str
    text_ok: bool
    duplicates: Any


def open_book(book: Any, chunk_rows: int, on_invalid: str) -> BookInput:
    """Open ``book`` (Parquet/CSV path, DataFrame or Arrow table) in partitions of ``chunk_rows`` rows,
    after the whole ``position_id`` column's duplicate check: with ``on_invalid="raise"`` a duplicate
    is a :class:`BookError` naming the ids and their rows; otherwise their rows become invalid."""
    partitions, total, source = read_partitions(book, chunk_rows)
    ids = book_ids(book)
    dups = duplicate_ids(ids)  # the whole book's ids at once: duplicates across partitions too
    if len(dups) and on_invalid == "raise":
        raise duplicate_error(dups, ids, source)
    return BookInput(partitions, total, source, is_text_file(book), dups.index if len(dups) else None)


def read_partitions(book: Any, chunk_rows: int) -> tuple[Iterator[pd.DataFrame], int | None, str]:
    """``(batches, total rows or None, description)`` for a path, DataFrame or Arrow table."""
    if isinstance(book, pd.DataFrame):
        check_book_columns(book.columns)
        n = len(book)
        check_book_types(dict(book.dtypes), f"DataFrame of {n:,} rows")
        return (book.iloc[i : i + chunk_rows] for i in range(0, n, chunk_rows)), n, f"DataFrame of {n:,} rows"
    if isinstance(book, pa.Table):
        check_book_columns(book.column_names)
        n = book.num_rows
        check_book_types({f.name: f.type for f in book.schema}, f"Arrow table of {n:,} rows")
        return (book.slice(i, chunk_rows).to_pandas() for i in range(0, n, chunk_rows)), n, f"Arrow table of {n:,} rows"
    path = Path(book)
    if not path.exists():
        raise BookError(f"book: no such file {str(path)!r}")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        pf = read_file("book", path, pq.ParquetFile, path)
        check_book_columns(pf.schema_arrow.names)
        check_book_types({f.name: f.type for f in pf.schema_arrow}, str(path))
        n = pf.metadata.num_rows
        return (b.to_pandas() for b in pf.iter_batches(batch_size=chunk_rows)), n, str(path)
    if name.endswith((".csv", ".csv.gz")):
        import pyarrow.csv as pacsv

        convert = pacsv.ConvertOptions(column_types={"position_id": pa.string(), "underlying": pa.string()}, strings_can_be_null=True)
        options = pacsv.ReadOptions(block_size=CSV_BLOCK)
        reader = read_file("book", path, pacsv.open_csv, path, read_options=options, convert_options=convert)
        check_book_columns(reader.schema.names)
        check_book_types({f.name: f.type for f in reader.schema}, str(path), text_ok=True)  # CSV cells are text
        return rebatch((b.to_pandas() for b in reader), chunk_rows), None, str(path)
    raise BookError(f"book: cannot read {str(path)!r}; give a .parquet or .csv file, a DataFrame or an Arrow table")


def rebatch(frames: Iterator[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    """Frames of exactly ``rows`` rows (the last may be shorter) from frames of any size."""
    pending: list[pd.DataFrame] = []
    count = 0
    for f in frames:
        pending.append(f)
        count += len(f)
        while count >= rows:
            whole = pd.concat(pending, ignore_index=True)
            yield whole.iloc[:rows]
            rest = whole.iloc[rows:]
            pending, count = ([rest] if len(rest) else []), len(rest)
    if count:
        yield pd.concat(pending, ignore_index=True)


def is_text_file(book: Any) -> bool:
    """Whether ``book`` is a CSV file (cells are text; number literals are read as numbers)."""
    return not isinstance(book, pd.DataFrame | pa.Table) and str(book).lower().endswith((".csv", ".csv.gz"))


# --- one partition --------------------------------------------------------------------------------


def contracts(columns: Sequence[np.ndarray], below: float = DEDUPE_BELOW) -> tuple[np.ndarray, np.ndarray | None]:
    """``(inverse, first)``: row i is contract ``inverse[i]``, whose first row is ``first[inverse[i]]``;
    ``first`` is None (and ``inverse`` the identity) when netting would not pay (more than ``below``
    of the rows distinct).

    Rows are keyed by a 64-bit mix of the columns' hashes and factorised; every row is then checked
    against its contract's first row, column by column, so a hash collision can never merge two
    contracts (it only switches netting off for the partition)."""
    n = columns[0].size
    key = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            key = key * np.uint64(0x9E3779B97F4A7C15) + pd.util.hash_array(np.ascontiguousarray(col))
    inverse, uniques = pd.factorize(key)
    if len(uniques) > below * n:
        return np.arange(n), None
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)
    for col in columns:
        if not np.array_equal(col, col[first][inverse]):
            return np.arange(n), None
    return inverse, first


def process_partition(
    index: int, frame: pd.DataFrame, first_row: int, market: Market, valuation_date: Any, scenarios: Scenarios | None,
    backend: Any, dtype: str, keep_positions: bool = True, duplicates: Any = None, text_ok: bool = False,
    dedupe_below: float = DEDUPE_BELOW, exercise: str = "column",
) -> PartResult:  # fmt: skip
    """Validate, price and reduce one partition of the book (a pure function of its arguments, so it
    runs the same on a Dask worker). ``duplicates``: the ids duplicated anywhere in the book (their
    rows are invalid); ``text_ok``: the book is a CSV file (see :func:`validate`); ``dedupe_below``:
    see :func:`contracts`. ``backend``: a Backend or its name (a name on a Dask worker); ``exercise``:
    the book's column or one exercise for every row (:func:`validate`)."""
    t0 = time.perf_counter()
    bk = get_backend(backend)
    chk = validate(frame.reset_index(drop=True), market, valuation_date, first_row, duplicates, text_ok, exercise)
    n_u = market.size
    smile = market.smile  # a vol surface: the rows' vols and shadow deltas are written, scenario vols may move
    sums = np.zeros((len(sum_names(smile)), n_u))
    ladder = np.zeros((scenarios.size if scenarios else 0, n_u))
    n = chk.strike.size
    positions = empty_positions(smile)
    if n:
        # Positions in the same contract (underlying, strike, expiry, type, vol, model) have the same
        # per-unit Greeks and scenario values: price each contract once with its netted weight.
        american = chk.american if chk.american is not None else np.zeros(n, dtype=bool)
        rows = (chk.und_code, chk.strike, chk.tau, chk.vol, chk.phi, chk.model, american) + ((chk.on_surface,) if smile else ())
        inverse, first = contracts(rows, dedupe_below)
        picked = [a[first] for a in rows] if first is not None else list(rows)
        codes, strike, tau, vol, phi, model_code, amer = picked[:7]
        weight = np.bincount(inverse, weights=chk.weight) if first is not None else chk.weight
        n_c = strike.size
        spot, rate, div = market.spot[codes], market.rate[codes], market.div[codes]
        unit = {name: np.empty(n_c) for name in GREEKS} if keep_positions else {}
        early = np.zeros(n_c, dtype=bool)
        dt = getattr(bk.xp, dtype)
        pairs = scenarios.pairs() if scenarios is not None else []
        slope = market.vol_slope_spot(codes, strike, tau, picked[7], spot) if smile else None  # d sigma / d S per contract
        moving = smile and market.sticky == "moneyness" and bool(pairs) and bool(picked[7].any())
        moved = [market.moved_vol(codes, strike, tau, vol, picked[7], ds) for ds in spot_shocks(pairs)] if moving else []
        sums[0] = np.bincount(chk.und_code, minlength=n_u)
        # rows of a bsm underlying paying a cash dividend before expiry: the escrowed-dividend model (either exercise)
        paying = market.paying(codes, tau, model_code)
        groups = [(model, ex, (model_code == code) & (amer == ex) & ~paying) for model, code in (("bsm", 0), ("black76", 1))
                  for ex in (False, True)] + [("bsm", None, paying)]  # fmt: skip
        for model, is_american, mask in groups:
            m = int(mask.sum())
            if not m:
                continue
            sel = slice(None) if m == n_c else mask
            # compiling backends compile per shape: pad to a power of two with weight-0 rows
            size = device_size(bk, m)
            host = [pad(a[sel], size, fill) for a, fill in zip((spot, strike, tau, vol, rate, div, phi, weight, codes),
                                                                 (1.0, 1.0, 1.0, 0.2, 0.0, 0.0, 1.0, 0.0, 0), strict=True)]  # fmt: skip
            args = [bk.asarray(a, dtype=dtype) for a in host[:7]]
            w, c = bk.asarray(host[7], dtype=dtype), bk.asarray(host[8])
            dev_slope = bk.asarray(pad(slope[sel], size, 0.0), dtype=dtype) if slope is not None else None
            dev_moved = [bk.asarray(pad(v[sel], size, 0.2), dtype=dtype) for v in moved] if moving and pairs else None
            if is_american is None:  # cash dividends: escrowed closed form (European), Crank-Nicolson grid (American)
                sched, am = dividend_inputs(market, codes[sel], amer[sel], size)
                adjust = market.dividends.vol_adjust
                out, part = dividend_greek_sums(bk, args, w, c, n_u, dt, sched, am, adjust, dev_slope)
                if pairs:
                    ladder += dividend_ladder_sums(bk, pairs, args, w, c, n_u, dt, sched, am, adjust, dev_moved)
            elif is_american:  # priced by ALO, Greeks and every scenario
                out, part = american_greek_sums(bk, model, args, w, c, n_u, dt, dev_slope, method=market.american_method)
                if pairs:
                    ladder += american_ladder_sums(bk, model, pairs, args, w, c, n_u, dt, dev_moved, method=market.american_method)
            else:
                out, part = greek_sums(bk, model, args, w, c, n_u, dt, dev_slope)
                if pairs:
                    ladder += ladder_sums(bk, model, pairs, args, w, c, n_u, dt, dev_moved)
            sums[1:] += part  # on the device
            if keep_positions:
                for name in GREEKS:
                    unit[name][sel] = to_numpy(out[name])[:m]
                if "early_exercise" in out:
                    early[sel] = to_numpy(out["early_exercise"])[:m]
        if keep_positions and smile:
            unit["shadow_delta"] = unit["delta"] + unit["vega"] * slope
        greeks = {name: v[inverse] for name, v in unit.items()} if first is not None else unit
        early = early[inverse] if first is not None else early
        weight = chk.weight
        per = {name: greeks[name] * weight for name in greeks}
        if keep_positions:
            table = {
                "position_id": pa.array(chk.position_id.to_numpy()).cast(pa.string()),
                "underlying": chk.underlying.to_numpy(),
                **({"vol": chk.vol} if smile else {}),
                **greeks,
                "value": per["price"],
                **{f"position_{name}": per[name] for name in ("delta", "shadow_delta", "gamma", "vega", "theta", "rho") if name in per},
                "exercise": exercise_words(american),
                "early_exercise": early,
            }
            columns = SMILE_POSITION_COLUMNS if smile else POSITION_COLUMNS
            positions = pa.table({c: table[c] for c in columns})
    return PartResult(index, len(frame), positions, chk.invalid, sums, ladder, time.perf_counter() - t0)
