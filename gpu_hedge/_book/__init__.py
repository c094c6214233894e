"""Book jobs: synthetic demo books and per-position / per-underlying aggregation of Greeks."""

from .aggregate import POSITION_GREEKS, BookTotals, book_greeks, totals
from .demo import BOOK_COLUMNS, demo_book

__all__ = ["BOOK_COLUMNS", "POSITION_GREEKS", "BookTotals", "book_greeks", "demo_book", "totals"]
