"""A book held on the device: read and validate once, then re-run Greeks and ladders as the market moves.

On a GPU the positions' arrays (strike, years to expiry, vol, weight, underlying code) stay in
device memory; a new market (spots, vols, rates) is a few hundred numbers copied over, so an
intraday re-run costs only the arithmetic. On a CPU the same object saves re-reading and
re-validating the file. American rows (the book's ``exercise`` column) are priced by the same ALO
code as :func:`gpu_hedge.risk`, Greeks and every ladder scenario; with a dividend table the rows
of underlyings paying cash dividends before expiry by the escrowed-dividend model, as there
(:mod:`gpu_hedge._book.dividend_rows`; the table is fixed at construction, :meth:`update_market`
keeps it). Evaluation runs in slices of
rows; on a device out-of-memory error the slice halves and the work goes on (never a lost result).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._backends import Backend, get_backend
from .._pricing.dividends import DividendSchedule
from .american_rows import american_greek_sums, american_ladder_sums
from .batches import each_slice
from .dividend_rows import dividend_greek_sums, dividend_ladder_sums
from .market import Market, read_market
from .partitions import open_book
from .reductions import SUMS, by_underlying_frame, greek_sums, ladder_frame, ladder_sums
from .scenarios import Scenarios
from .sources import BookError
from .validation import describe_invalid, validate

__all__ = ["ResidentBook"]


@dataclass
class _Rows:
    codes: Any
    strike: Any
    tau: Any
    vol_given: Any  # NaN where the market vol applies
    phi: Any
    weight: Any
    model: str
    american: bool = False  # priced by ALO (the book's ``exercise`` column)
    schedule: DividendSchedule | None = None  # rows paying cash dividends: their schedules (host)
    exercise: np.ndarray | None = None  # and their exercise (host bool, American)


class ResidentBook:
    """The valid positions of ``book`` on ``backend``, for repeated risk runs. ``dividends``,
    ``vol_adjust`` and ``american_method`` are those of :func:`gpu_hedge.risk` (kept by :meth:`update_market`).

    >>> import pandas as pd
    >>> book = pd.DataFrame({"position_id": [1, 2], "underlying": ["X", "X"], "option_type": ["C", "P"],
    ...                      "strike": [100.0, 90.0], "expiry_years": [0.5, 0.5], "quantity": [10, -5]})
    >>> market = pd.DataFrame({"underlying": ["X"], "spot": [100.0], "vol": [0.2], "rate": [0.03], "div": [0.0]})
    >>> rb = ResidentBook(book, market, backend="numpy")
    >>> round(float(rb.by_underlying()["delta"].iloc[0]), 2)
    659.32
    >>> rb.ladder("spot=-0.1;0.1").shape
    (2, 4)
    """

    def __init__(
        self, book: Any, market: Any, *, backend: Any = "auto", dtype: str = "float64", valuation_date: Any = None,
        on_invalid: str = "raise", slice_rows: int = 4_000_000, dividends: Any = None, vol_adjust: str | None = None,
        american_method: str = "alo",
    ) -> None:  # fmt: skip
        self.bk: Backend = get_backend(backend)
        self.dtype = dtype
        self.market: Market = read_market(market, dividends=dividends, valuation_date=valuation_date, vol_adjust=vol_adjust,
                                          american_method=american_method)  # fmt: skip
        self.slice_rows = int(slice_rows)
        parts, invalid = [], []
        # the same rules as gpu_hedge.risk: position_id unique over the whole book, every row of a
        # duplicated id invalid (error under "raise"), numbers stored as numbers
        src = open_book(book, 1_000_000, on_invalid)
        first = 0
        for frame in src.partitions:
            chk = validate(frame.reset_index(drop=True), self.market, valuation_date, first, src.duplicates, src.text_ok)
            first += len(frame)
            if len(chk.invalid) and on_invalid == "raise":
                raise BookError(f"book {src.source}: {len(chk.invalid)} invalid row(s):\n{describe_invalid(chk.invalid)}")
            invalid.append(chk.invalid)
            ok = ~np.isin(np.arange(first - len(frame), first), chk.invalid["row"].to_numpy())
            own = frame["vol"].notna().to_numpy()[ok] if "vol" in frame.columns else np.zeros(int(ok.sum()), dtype=bool)
            vol_given = np.where(own, chk.vol, np.nan)
            american = chk.american if chk.american is not None else np.zeros(chk.strike.size, dtype=bool)
            parts.append((chk.und_code, chk.strike, chk.tau, vol_given, chk.phi, chk.weight, chk.model, american))
        self.invalid = pd.concat(invalid, ignore_index=True) if invalid else pd.DataFrame()
        cat = [np.concatenate(x) if parts else np.zeros(0) for x in zip(*parts, strict=True)] if parts else [np.zeros(0)] * 8
        codes, strike, tau, vol_given, phi, weight, model, american = cat
        self.n = int(strike.size)
        self._counts = np.bincount(codes.astype(np.int64), minlength=self.market.size).astype(np.float64)  # host, once
        self._rows: list[_Rows] = []
        codes = codes.astype(np.int64)
        paying = self.market.paying(codes, tau, model)
        american = american.astype(bool)
        for name, flag, ex in (("bsm", 0, False), ("bsm", 0, True), ("black76", 1, False), ("black76", 1, True), ("bsm", 0, None)):
            m = paying if ex is None else (model == flag) & (american == ex) & ~paying
            if not m.any():
                continue
            a = self.bk.asarray
            divs = (self.market.dividends.schedule(codes[m]), american[m]) if ex is None else (None, None)
            self._rows.append(_Rows(a(codes[m]), a(strike[m], dtype=dtype), a(tau[m], dtype=dtype), a(vol_given[m], dtype=dtype),
                                    a(phi[m], dtype=dtype), a(weight[m], dtype=dtype), name, bool(ex), *divs))  # fmt: skip

    def update_market(self, market: Any) -> None:
        """Replace the market data (same underlyings, any order); the positions stay where they are."""
        new = read_market(market)
        missing = self.market.names.difference(new.names)
        if len(missing):
            raise BookError(f"market data: underlying {missing[0]!r} of the book is missing")
        order = new.names.get_indexer(self.market.names)
        old = self.market
        self.market = Market(old.names, new.spot[order], new.vol[order], new.rate[order], new.div[order], dividends=old.dividends,
                             american_method=old.american_method)  # fmt: skip

    def _inputs(self, rows: _Rows, lo: int, hi: int) -> list[Any]:
        xp, m = self.bk.xp, self.market
        c = rows.codes[lo:hi]
        take = lambda a: xp.take(self.bk.asarray(a, dtype=self.dtype), c)  # noqa: E731 - per-underlying -> per-row
        vol = rows.vol_given[lo:hi]
        vol = xp.where(xp.isnan(vol), take(m.vol), vol)
        return [take(m.spot), rows.strike[lo:hi], rows.tau[lo:hi], vol, take(m.rate), take(m.div), rows.phi[lo:hi]]

    def _dividends(self, rows: _Rows, lo: int, hi: int) -> tuple[DividendSchedule, np.ndarray, str]:
        """Schedules, exercise and volatility adjustment of the dividend-paying rows ``lo:hi``."""
        sl = slice(lo, hi)
        sched = DividendSchedule(rows.schedule.times[sl], rows.schedule.amounts[sl])
        return sched, rows.exercise[sl], self.market.dividends.vol_adjust

    def _each_slice(self, work: Any) -> None:
        """Run ``work(rows, lo, hi)`` over slices of every row group, halving the slice on device OOM."""
        for rows in self._rows:
            each_slice(int(rows.strike.shape[0]), self.slice_rows, lambda lo, hi, rows=rows: work(rows, lo, hi), self.bk.is_out_of_memory)

    def by_underlying(self) -> pd.DataFrame:
        """Sums per underlying of value and position Greeks (same columns and units as :func:`gpu_hedge.risk`)."""
        sums = np.zeros((len(SUMS), self.market.size))
        sums[0] = self._counts
        dt = getattr(self.bk.xp, self.dtype)

        def work(rows: _Rows, lo: int, hi: int) -> None:
            args, w, c, n_u = self._inputs(rows, lo, hi), rows.weight[lo:hi], rows.codes[lo:hi], self.market.size
            if rows.schedule is not None:
                sched, am, adjust = self._dividends(rows, lo, hi)
                _, part = dividend_greek_sums(self.bk, args, w, c, n_u, dt, sched, am, adjust)
            else:
                kw = {"method": self.market.american_method} if rows.american else {}
                _, part = (american_greek_sums if rows.american else greek_sums)(self.bk, rows.model, args, w, c, n_u, dt, **kw)
            sums[1:] += part

        self._each_slice(work)
        return by_underlying_frame(sums, self.market)

    def ladder(self, scenarios: Scenarios | str = "default") -> pd.DataFrame:
        """Full-revaluation P&L per underlying and scenario (columns underlying, spot_shock, vol_shock, pnl)."""
        scenarios = Scenarios.coerce(scenarios)
        pairs = scenarios.pairs()
        total = np.zeros((len(pairs), self.market.size))
        dt = getattr(self.bk.xp, self.dtype)

        def work(rows: _Rows, lo: int, hi: int) -> None:
            args, w, c, n_u = self._inputs(rows, lo, hi), rows.weight[lo:hi], rows.codes[lo:hi], self.market.size
            if rows.schedule is not None:
                sched, am, adjust = self._dividends(rows, lo, hi)
                total[:] += dividend_ladder_sums(self.bk, pairs, args, w, c, n_u, dt, sched, am, adjust)
            else:
                kw = {"method": self.market.american_method} if rows.american else {}
                ladder_of = american_ladder_sums if rows.american else ladder_sums
                total[:] += ladder_of(self.bk, rows.model, pairs, args, w, c, n_u, dt, **kw)

        self._each_slice(work)
        return ladder_frame(total, scenarios, self.market, self._counts > 0)
