"""The book's column schema: which columns a book has (:func:`check_book_columns`) and that its
numeric columns are stored as numbers (:func:`check_book_types`). The schema itself is documented in
:mod:`gpu_hedge._book.schema`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .sources import BookError

__all__ = ["BOOK_OPTIONAL", "BOOK_REQUIRED", "INVALID_COLUMNS", "MODELS", "NUMERIC_COLUMNS", "check_book_columns",
           "check_book_types"]  # fmt: skip

BOOK_REQUIRED = ("position_id", "underlying", "option_type", "strike", "quantity")
BOOK_OPTIONAL = ("expiry", "expiry_years", "multiplier", "vol", "model", "exercise")
MODELS = ("bsm", "black76")
INVALID_COLUMNS = ("position_id", "row", "column", "value", "reason")
#: book columns that hold numbers: a column of another type (text, booleans, dates) is refused
NUMERIC_COLUMNS = ("strike", "expiry_years", "quantity", "multiplier", "vol")


def check_book_columns(columns: Any) -> None:
    """Refuse a book that lacks a required column (or both expiry columns) or has an unknown one."""
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
