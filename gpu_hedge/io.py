"""Real option quotes in, implied vols and Greeks out (public surface; the code is in ``gpu_hedge._book``).

>>> import gpu_hedge.io as gio                                     # doctest: +SKIP
>>> quotes = gio.read_quotes("chain.csv")                          # layout detected: cboe, spxw-eod, agilent
>>> fwd = gio.implied_forwards(quotes, rate=0.053)                 # per-expiry forward and dividend yield
>>> table, summary = gio.quote_greeks(quotes, div="implied")      # IVs from mid/bid/ask, Greeks per contract
>>> frame = gio.quote_surface(quotes)                              # one row per OTM quote: forward, k, Black-76 vols, weight

The column layout, units and each vendor's conventions are documented in ``gpu_hedge._book.quotes``.
"""

from ._book import (
    FORWARD_COLUMNS,
    LAYOUTS,
    QUOTE_COLUMNS,
    STANDARD_GREEKS,
    SURFACE_COLUMNS,
    QuoteSummary,
    detect_layout,
    implied_forwards,
    quote_greeks,
    quote_surface,
    read_agilent_eod,
    read_cboe_chain,
    read_quotes,
    read_spxw_eod,
    read_vendor_eod,
)

__all__ = [
    "FORWARD_COLUMNS",
    "LAYOUTS",
    "QUOTE_COLUMNS",
    "STANDARD_GREEKS",
    "SURFACE_COLUMNS",
    "QuoteSummary",
    "detect_layout",
    "implied_forwards",
    "quote_greeks",
    "quote_surface",
    "read_agilent_eod",
    "read_cboe_chain",
    "read_quotes",
    "read_spxw_eod",
    "read_vendor_eod",
]
