"""Reading the risk job's inputs (paths, DataFrames, Arrow tables) with errors that name the input.

:class:`BookError` is the one error type for bad book, market or surface data; a file that cannot
be read at all becomes a BookError naming what it was and its path, not the reader's bare message.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["CSV_BLOCK", "BookError", "read_file", "read_frame"]

#: bytes pyarrow reads of a CSV file at a time
CSV_BLOCK = 1 << 24


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


def read_frame(source: Any, what: str) -> pd.DataFrame:
    """A small input table (market data, vol surface, hedges) as a DataFrame: ``source`` is a
    DataFrame, anything with ``to_pandas()`` (an Arrow table) or a .parquet/.pq/.csv/.csv.gz path."""
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
