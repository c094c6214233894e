"""Book jobs: synthetic demo books, aggregation of Greeks, real quote files, implied forwards, quotes to a surface frame,
and the large-book risk job.

The risk job (:func:`risk`, :class:`ResidentBook`) is in modules by concept: ``schema`` (the documented
schemas; re-exports ``sources``, ``book_schema``, ``ids``, ``market``, ``vol_grid``, ``validation``)
and ``risk`` (the orchestration; re-exports ``scenarios``, ``partitions``, ``batches``,
``reductions``, ``store``, ``trades``).
"""

from .aggregate import POSITION_GREEKS, BookTotals, book_greeks, totals
from .demo import BOOK_COLUMNS, demo_book
from .forwards import FORWARD_COLUMNS, implied_forwards
from .generate import book_shape, expiry_calendar, generate_book, write_book
from .quote_greeks import STANDARD_GREEKS, QuoteSummary, quote_greeks
from .quote_surface import DROP_REASONS, SURFACE_COLUMNS, quote_surface
from .quotes import (
    LAYOUTS,
    QUOTE_COLUMNS,
    detect_layout,
    read_agilent_eod,
    read_cboe_chain,
    read_quotes,
    read_spxw_eod,
    read_vendor_eod,
)
from .resident import ResidentBook
from .risk import DEFAULT_CHUNK_ROWS, POSITION_COLUMNS, RiskResult, Scenarios, risk
from .schema import BOOK_OPTIONAL, BOOK_REQUIRED, MARKET_COLUMNS, BookError

__all__ = [
    "BOOK_OPTIONAL",
    "BOOK_REQUIRED",
    "DEFAULT_CHUNK_ROWS",
    "MARKET_COLUMNS",
    "POSITION_COLUMNS",
    "BookError",
    "ResidentBook",
    "RiskResult",
    "Scenarios",
    "risk",
    "book_shape",
    "expiry_calendar",
    "generate_book",
    "write_book",
    "BOOK_COLUMNS",
    "DROP_REASONS",
    "SURFACE_COLUMNS",
    "quote_surface",
    "FORWARD_COLUMNS",
    "LAYOUTS",
    "POSITION_GREEKS",
    "QUOTE_COLUMNS",
    "STANDARD_GREEKS",
    "BookTotals",
    "QuoteSummary",
    "book_greeks",
    "demo_book",
    "detect_layout",
    "implied_forwards",
    "quote_greeks",
    "read_agilent_eod",
    "read_cboe_chain",
    "read_quotes",
    "read_spxw_eod",
    "read_vendor_eod",
    "totals",
]
