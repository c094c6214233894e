"""A seeded synthetic book of listed options in the risk job's schema, shaped like a real index chain.

:func:`generate_book` returns ``(book, market)`` DataFrames for :func:`gpu_hedge.risk`
(schemas in :mod:`gpu_hedge._book.schema`); :func:`write_book` writes them as ``book.parquet``
(row groups of about 1e6 rows) and ``market.csv``.

What the shape is matched to
----------------------------
Open interest (OI) of the full SPX/SPXW chain exported by CBOE on 2023-09-14 (spot 4505.10,
20.4 M contracts open over 53 expiries and 451 strikes), measured once; the generator needs no
data file at run time. Its figures, and this generator's (``book_shape`` of a 1e6-row book with
seed 0, weighted by |quantity| as OI is counted in contracts; the row-weighted figures agree to
about 0.01 except where shown):

=====================================================  ==============  =================
figure                                                 SPX 2023-09-14  ``generate_book``
=====================================================  ==============  =================
share of OI with strike within +-5 % of spot           0.30            0.29
share of OI with strike within +-10 % of spot          0.44            0.46
share of OI with strike within +-20 % of spot          0.69            0.70
put / call OI ratio                                    2.06            2.13 (rows 2.03)
share of put OI out of the money (K < S)               0.92            0.91
share of call OI out of the money (K > S)              0.55            0.55
share of OI expiring within 30 days                    0.37            0.31
share of OI expiring within 91 days (3 months)         0.55            0.57
share of OI expiring within 365 days                   0.94            0.94
OI on strikes that are multiples of 100 points (SPX)   0.56            0.57 (UND001)
OI on strikes that are multiples of 50 points (SPX)    0.73            0.74 (UND001)
=====================================================  ==============  =================

(The real chain's share within 7 days, 0.27, is mostly the quarterly expiring the next day; the
generator has no expiry that close on its default valuation date.) On the real chain the monthly
(third-Friday) and quarterly expiries hold most of the OI (the Sep, Oct, Nov and Dec 2023 third
Fridays 24 %, 10 %, 5 % and 19 %) and weeklies little each; the generator's expiry calendar
weights them the same way (see :func:`expiry_calendar`).

The book
--------
- ``position_id``: int64, 0 ... n-1.
- ``underlying``: ``UND001`` ... (category dtype). Popularity falls as 1 / rank^1.2, so the
  first few names carry most positions (UND001 about a third with 50 names, the top 5 about 60 %).
  Spots are log-uniform between 10 and 5,000; UND001 is index-like (spot 4,500, vol 16 %).
- ``option_type``: ``C`` / ``P`` (category); about 67 % puts.
- ``strike``: spot x exp(log-moneyness) on a listed grid: a tick of 1, 2.5 or 5 x 10^k about
  0.12 % of spot (SPX: 5 points). Round strikes are more popular: each position picks a grid of
  20, 10, 5 or 1 ticks (40/22/20/18 %), which puts 57 % of UND001's (tick 5, like SPX) on
  multiples of 100 and 74 % on multiples of 50; a coarse grid wider than 2.5 % of spot falls back
  to a finer one, so small-spot names have fewer round strikes.
  Calls cluster at and just above the money; puts spread far out of the money (downside hedges).
  The spread of log-moneyness widens with expiry, as listed strike ranges do.
- ``expiry``: dates (datetime64, no time) from :func:`expiry_calendar`; the risk job needs the
  same ``valuation_date`` to turn them into years (ACT/365). No ``expiry_years`` column.
- ``quantity``: signed contracts (int64, never 0): sizes geometric with mean about 12, capped at
  500, with 1 % blocks of 500-5,000; short with probability 0.55 for calls and 0.6 for puts.
- ``multiplier``: 100 (int64).
- ``vol``: the contract's implied vol (every position in a contract has the same one, as a listed
  option has one implied vol at a time): the underlying's level x a term structure (short dates
  higher), a downside skew and a smile in log-moneyness that flattens with expiry, plus noise
  fixed per contract, within 5-150 %; 10 % of rows are left empty (NaN) so the market vol is used.

The market: one row per underlying: ``underlying``, ``spot``, ``vol`` (the ATM level), ``rate``
(4.25 %) and ``div`` (0-3 %, a third pay none).

Vectorised NumPy: 1e7 rows in 4-6 s on a 2-core machine (1e6 in about 0.4 s); the same arguments
give the same book.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["book_shape", "expiry_calendar", "generate_book", "write_book"]

RATE = 0.0425
#: row group size of book.parquet
ROW_GROUP_ROWS = 1_000_000
_NICE = np.array([1.0, 2.5, 5.0])


def _third_friday(year: int, month: int) -> _dt.date:
    first = _dt.date(year, month, 1)
    return first + _dt.timedelta(days=(4 - first.weekday()) % 7 + 14)


def expiry_calendar(valuation_date: Any) -> pd.DataFrame:
    """The listed expiries after ``valuation_date`` and how popular each is.

    Columns ``expiry`` (date), ``days`` (calendar days from the valuation date), ``kind``
    (``weekly``, ``monthly``, ``quarterly``, ``leaps``) and ``weight`` (sums to 1). Weeklies: every
    Friday of the next 8 weeks that is not a third Friday; monthlies: the third Friday of the next
    12 months; quarterlies: the third Friday of Mar/Jun/Sep/Dec out to 2 years; LEAPS: the third
    Friday of June and December out to 3 years. Weight: kind factor (weekly 1, monthly 6,
    quarterly and LEAPS 8) x (2 exp(-days / 20) + exp(-days / 200)), which puts about 31 % within
    30 days, 57 % within 91 and 94 % within 365 (SPX 2023-09-14: 37 %, 55 %, 94 %).
    """
    val = pd.Timestamp(valuation_date).date()
    rows: dict[_dt.date, str] = {}
    for m in range(0, 37):
        y, mo = val.year + (val.month - 1 + m) // 12, (val.month - 1 + m) % 12 + 1
        d = _third_friday(y, mo)
        if d <= val:
            continue
        months = m
        if mo in (3, 6, 9, 12) and months <= 24:
            kind = "quarterly"
        elif months <= 12:
            kind = "monthly"
        elif mo in (6, 12):
            kind = "leaps"
        else:
            continue
        rows[d] = kind
    friday = val + _dt.timedelta(days=(4 - val.weekday()) % 7 or 7)
    for w in range(8):
        d = friday + _dt.timedelta(weeks=w)
        if d not in rows:
            rows[d] = "weekly"
    dates = sorted(rows)
    kinds = [rows[d] for d in dates]
    days = np.array([(d - val).days for d in dates], dtype=np.int64)
    factor = np.array([{"weekly": 1.0, "monthly": 6.0, "quarterly": 8.0, "leaps": 8.0}[k] for k in kinds])
    weight = factor * (2.0 * np.exp(-days / 20.0) + np.exp(-days / 200.0))
    return pd.DataFrame({"expiry": pd.to_datetime(dates), "days": days, "kind": kinds, "weight": weight / weight.sum()})


def _tick(spot: np.ndarray) -> np.ndarray:
    """Listed-strike tick per underlying: the largest of 1, 2.5, 5 x 10^k not above 0.12 % of spot (>= 0.5)."""
    target = np.maximum(spot * 0.0012, 0.5)
    exp10 = np.floor(np.log10(target))
    mant = target / 10.0**exp10
    nice = _NICE[np.searchsorted(_NICE, mant, side="right") - 1]
    return nice * 10.0**exp10


def generate_book(
    n_positions: int, n_underlyings: int = 50, seed: int = 0, valuation_date: Any = "2026-01-02"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(book, market)``: ``n_positions`` listed European options on ``n_underlyings`` underlyings
    in the risk job's schema, valued on ``valuation_date`` (pass the same date to
    :func:`gpu_hedge.risk`). See the module docstring for the shape and what it is matched to.
    The same arguments give the same book."""
    n = int(n_positions)
    if n < 0:
        raise ValueError(f"n_positions must be >= 0, got {n_positions!r}")
    if int(n_underlyings) < 1:
        raise ValueError(f"n_underlyings must be >= 1, got {n_underlyings!r}")
    n_u = int(n_underlyings)
    rng = np.random.default_rng(seed)

    # --- underlyings ---
    u_spot = np.round(np.exp(rng.uniform(math.log(10.0), math.log(5000.0), n_u)), 2)
    u_vol = np.round(rng.uniform(0.18, 0.55, n_u), 4)
    u_div = np.round(rng.uniform(0.0, 0.03, n_u), 4)
    u_div[rng.random(n_u) < 1 / 3] = 0.0
    u_spot[0], u_vol[0], u_div[0] = 4500.0, 0.16, 0.015  # the big index-like name
    names = [f"UND{i + 1:03d}" for i in range(n_u)]
    market = pd.DataFrame({"underlying": names, "spot": u_spot, "vol": u_vol, "rate": RATE, "div": u_div})
    popularity = 1.0 / np.arange(1, n_u + 1) ** 1.2
    und = rng.choice(n_u, size=n, p=popularity / popularity.sum()).astype(np.int32)
    spot = u_spot[und]

    # --- expiries ---
    cal = expiry_calendar(valuation_date)
    e = rng.choice(len(cal), size=n, p=cal["weight"].to_numpy())
    tau = cal["days"].to_numpy()[e] / 365.0

    # --- type and log-moneyness x = ln(K / S) ---
    put = rng.random(n) < 0.67
    z = rng.standard_normal(n)
    u = rng.random(n)
    # calls: 75 % near the money (slightly OTM), 25 % wide; puts: 25 % near, 65 % OTM, 10 % far OTM
    c_mu = np.where(u < 0.75, 0.015, 0.0)
    c_sd = np.where(u < 0.75, 0.08, 0.25)
    p_mu = np.where(u < 0.25, -0.03, np.where(u < 0.90, -0.25, -0.6))
    p_sd = np.where(u < 0.25, 0.05, np.where(u < 0.90, 0.12, 0.25))
    widen = np.clip((tau / 0.25) ** 0.4, 0.5, 2.0)
    x = np.where(put, p_mu + p_sd * z, c_mu + c_sd * z) * widen
    x = np.clip(x, math.log(0.05), math.log(3.0))

    # --- strikes on the listed grid, round strikes more popular ---
    u_tick = _tick(u_spot)
    tick = u_tick[und]
    level = np.array([20.0, 10.0, 5.0, 1.0])[np.searchsorted(np.cumsum([0.40, 0.22, 0.20, 0.18]), rng.random(n), side="right").clip(0, 3)]
    step = tick * level
    while True:  # a round step no wider than 2.5 % of spot
        coarse = (step > 0.025 * spot) & (step > tick)
        if not coarse.any():
            break
        step = np.where(coarse, np.where(step >= 20 * tick, 10 * tick, np.where(step >= 10 * tick, 5 * tick, tick)), step)
    strike = np.maximum(np.round(spot * np.exp(x) / step) * step, tick)

    # --- quantities ---
    size = rng.geometric(1 / 12, n).clip(1, 500)
    block = rng.random(n) < 0.01
    size = np.where(block, rng.integers(500, 5001, n), size)
    short = rng.random(n) < np.where(put, 0.60, 0.55)
    quantity = np.where(short, -size, size).astype(np.int64)

    # --- vols: level x term structure + skew + smile (flattening with expiry) + noise, all functions
    # of the contract (a listed option has one implied vol at a time, whoever holds it) ---
    t_eff = np.maximum(tau, 1 / 52)
    xk = np.log(strike / spot)
    vol = u_vol[und] * (1.0 + 0.12 * np.exp(-tau / 0.2) - 0.04 * np.minimum(tau, 3.0) / 3.0)
    vol = vol - 0.25 * xk / np.sqrt(t_eff) ** 0.5 + 0.15 * xk * xk / np.sqrt(t_eff)
    with np.errstate(over="ignore"):
        contract = pd.util.hash_array(und.astype(np.int64)) * np.uint64(0x9E3779B97F4A7C15) + pd.util.hash_array(strike)
        contract = contract * np.uint64(0x9E3779B97F4A7C15) + pd.util.hash_array(e.astype(np.int64)) + np.uint64(seed)
    noise = ((contract >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5) * 0.035  # uniform, sd 0.01
    vol = np.round(np.clip(vol + noise, 0.05, 1.50), 4)
    vol[rng.random(n) < 0.10] = np.nan

    book = pd.DataFrame(  # copy=False: no consolidation copy of the columns
        {
            "position_id": np.arange(n, dtype=np.int64),
            "underlying": pd.Categorical.from_codes(und, categories=names),
            "option_type": pd.Categorical.from_codes(put.astype(np.int8), categories=["C", "P"]),
            "strike": np.round(strike, 4),
            "expiry": cal["expiry"].to_numpy()[e],
            "quantity": quantity,
            "multiplier": np.full(n, 100, dtype=np.int64),
            "vol": vol,
        },
        copy=False,
    )
    return book, market


def book_shape(book: pd.DataFrame, market: pd.DataFrame, valuation_date: Any, weight: str = "contracts") -> dict[str, float]:
    """The shape figures of the module docstring's table for a book in this schema.

    ``weight="contracts"``: weighted by |quantity| (as open interest is counted); ``"rows"``: by
    position count."""
    spot = market.set_index("underlying")["spot"].reindex(book["underlying"].astype(str)).to_numpy()
    m = book["strike"].to_numpy(dtype=np.float64) / spot
    put = book["option_type"].astype(str).str.upper().str.startswith("P").to_numpy()
    days = (pd.to_datetime(book["expiry"]) - pd.Timestamp(valuation_date)).dt.days.to_numpy()
    w = np.abs(book["quantity"].to_numpy(dtype=np.float64)) if weight == "contracts" else np.ones(len(book))
    tot = w.sum()

    def share(mask: np.ndarray, within: np.ndarray | None = None) -> float:
        base = w if within is None else w * within
        return float((base * mask).sum() / base.sum())

    return {
        "within_5pct": share(np.abs(m - 1) <= 0.05),
        "within_10pct": share(np.abs(m - 1) <= 0.10),
        "within_20pct": share(np.abs(m - 1) <= 0.20),
        "put_call_ratio": float((w * put).sum() / (w * ~put).sum()),
        "otm_put_share": share(m < 1, put),
        "otm_call_share": share(m > 1, ~put),
        "expiry_30d": share(days <= 30),
        "expiry_91d": share(days <= 91),
        "expiry_365d": share(days <= 365),
        "top5_underlyings": float(np.sort(np.bincount(pd.Categorical(book["underlying"]).codes, weights=w))[::-1][:5].sum() / tot),
    }


def write_book(book: pd.DataFrame, market: pd.DataFrame, out: str | os.PathLike | tuple[Any, Any]) -> tuple[Path, Path]:
    """Write ``book`` as Parquet (zstd, row groups of ``ROW_GROUP_ROWS``; ``expiry`` as a date) and
    ``market`` as CSV. ``out`` is a directory (created; files ``book.parquet`` and ``market.csv``)
    or a ``(book_path, market_path)`` pair. Returns the two paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(out, tuple | list):
        book_path, market_path = Path(out[0]), Path(out[1])
    else:
        Path(out).mkdir(parents=True, exist_ok=True)
        book_path, market_path = Path(out) / "book.parquet", Path(out) / "market.csv"
    table = pa.Table.from_pandas(book, preserve_index=False)
    if "expiry" in table.column_names and pa.types.is_timestamp(table.schema.field("expiry").type):
        table = table.set_column(table.column_names.index("expiry"), "expiry", table["expiry"].cast(pa.date32()))
    tmp = book_path.with_name(book_path.name + ".tmp")
    pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, compression="zstd")
    os.replace(tmp, book_path)
    market.to_csv(market_path, index=False)
    return book_path, market_path
