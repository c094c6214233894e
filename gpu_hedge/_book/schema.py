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
``exercise``              no         ``european`` (default; also an empty cell) or ``american``
                                     (any case): American rows (bsm and black76) are priced by
                                     the Andersen-Lake-Offengelt method in the Greeks and in every
                                     ladder scenario (scheme: the job's ``american_method``);
                                     the positions table says each row's exercise
                                     and ``early_exercise`` (exercising now is optimal)
========================  =========  ===========================================================

Market data, one row per underlying: ``underlying``, ``spot`` (> 0), ``vol`` (decimal, > 0; used
where a position has none), ``rate`` and ``div`` (continuously compounded decimals). Optionally a
vol surface, a long table ``underlying, expiry_years, strike, vol`` forming a full grid per
underlying (:class:`VolSurface` says how it is interpolated), or a fitted surface
(``gh.fit_surface``; its groups name the underlyings, :mod:`.fitted_surface`); a position without its
own vol then takes its underlying's surface at its strike and expiry, else the flat ``vol``.
Optionally cash dividends, a long table ``underlying, amount`` and ``ex_date`` (dates, ACT/365 from
the valuation date) or ``ex_years``, one row per dividend (:mod:`.dividend_table`): ``bsm`` rows of
an underlying paying one before expiry are priced by the escrowed-dividend model.

Any other column is an error (a typo would otherwise be silently ignored). Row problems (NaN,
strike <= 0, unknown option type, model or exercise, underlying missing from the market data, expired, bad
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

The code is in modules by concept, re-exported here: :mod:`.sources` (reading inputs, ``BookError``),
:mod:`.book_schema` (columns and types), :mod:`.ids` (unique ids), :mod:`.market`, :mod:`.vol_grid`
and :mod:`.validation` (row checks).
"""

from __future__ import annotations

from .book_schema import (
    BOOK_OPTIONAL,
    BOOK_REQUIRED,
    INVALID_COLUMNS,
    MODELS,
    NUMERIC_COLUMNS,
    check_book_columns,
    check_book_types,
)
from .ids import DUPLICATE_REASON, book_ids, duplicate_error, duplicate_ids
from .market import MARKET_COLUMNS, Market, read_market
from .sources import BookError, read_file, read_frame
from .validation import Checked, describe_invalid, validate
from .vol_grid import SURFACE_COLUMNS, VolSurface, read_surfaces

__all__ = [
    "BOOK_OPTIONAL",
    "BOOK_REQUIRED",
    "DUPLICATE_REASON",
    "INVALID_COLUMNS",
    "MARKET_COLUMNS",
    "MODELS",
    "NUMERIC_COLUMNS",
    "SURFACE_COLUMNS",
    "BookError",
    "Checked",
    "Market",
    "VolSurface",
    "book_ids",
    "check_book_columns",
    "check_book_types",
    "describe_invalid",
    "duplicate_error",
    "duplicate_ids",
    "read_file",
    "read_frame",
    "read_market",
    "read_surfaces",
    "validate",
]
