"""The large-book risk job: a book of positions and market data in; per-position Greeks,
per-underlying exposures, a full-revaluation scenario ladder and proposed hedge trades out.

The book is read in partitions of ``chunk_rows`` rows (pyarrow record batches for Parquet and CSV
files; slices for in-memory tables). Each partition is validated, priced on the backend and reduced
by underlying (segment sums) and by scenario, so memory is bounded by the partition, not the book.
With an output directory each partition's results are written atomically under ``parts/`` beside a
manifest (input fingerprint, parameters, and a SHA-256 of each partition file, recorded once the
partition's files are written): a killed run re-run with the same arguments skips the finished
partitions and produces byte-identical Parquet outputs. A partition is reused only when its files
still have the recorded checksums; one that does not verify (truncated, edited, missing) is redone
and named in ``summary["redone"]``. The input's fingerprint is a hash of its whole content (see
:func:`fingerprint`), so a book edited in place (same size and mtime) resumes nothing. Partitions can
run on Dask workers; their results are combined in partition order, so the totals do not depend on
the worker count.

No row is lost: every input row ends in ``positions`` or in ``invalid`` with a reason. Before any
partition runs, the whole ``position_id`` column is checked for duplicates (one pass over that
column: :func:`gpu_hedge._book.schema.duplicate_ids`; a partition alone cannot see the others):
with ``on_invalid="raise"`` a duplicate is an error naming the ids and their rows; with ``"skip"``
*every* row of a duplicated id goes to ``invalid`` (reason ``duplicate position_id ...``), since which
one is right cannot be known.

Units: per-position Greeks per unit of the option as :func:`gpu_hedge.greeks` gives them (theta per
year, vega per 1.00 of vol, rho per 1.00 of rate); position and per-underlying Greeks are those
times ``quantity x multiplier``. Desk conventions in ``by_underlying``: ``dollar_delta`` = delta x
spot; ``dollar_gamma_1pct`` = gamma x spot^2 / 100 (the change of dollar delta for a 1 % move);
``vega_per_point`` = vega / 100 (per vol point); ``theta_per_day`` = theta / 365.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._backends import Backend, get_backend, to_numpy
from .._pricing._limits import FIRST_ORDER
from .._pricing.black_scholes import black_kernel
from .schema import (
    INVALID_COLUMNS,
    BookError,
    Market,
    check_book_columns,
    check_book_types,
    describe_invalid,
    duplicate_ids,
    read_file,
    read_market,
    validate,
)

__all__ = ["RiskResult", "Scenarios", "risk"]

GREEKS = FIRST_ORDER
POSITION_COLUMNS = ("position_id", "underlying", *GREEKS, "value", "position_delta", "position_gamma", "position_vega",
                    "position_theta", "position_rho")  # fmt: skip
SUMS = ("positions", "value", "delta", "gamma", "vega", "theta", "rho")
_EMPTY_POSITIONS = pa.table(
    {c: pa.array([], type=pa.string() if c in ("position_id", "underlying") else pa.float64()) for c in POSITION_COLUMNS}
)
#: default rows per partition: large enough to amortise per-call overheads, small enough for caches and GPUs
DEFAULT_CHUNK_ROWS = 1_000_000
#: 2: partition checksums in the manifest and a whole-content input fingerprint (version-1 partitions are redone)
MANIFEST_VERSION = 2
log = logging.getLogger("gpu_hedge.risk")


@dataclass(frozen=True)
class Scenarios:
    """A full-revaluation ladder: every ``spot_shocks`` (relative: -0.05 = spot down 5 %) crossed with
    every ``vol_shocks`` (absolute: 0.05 = vol up 5 points; shocked vols are floored at 0).

    ``Scenarios.parse("spot=-0.2:0.2:0.05,vol=-0.1:0.1:0.05")`` (start:stop:step, inclusive) or
    explicit lists ``spot=-0.1;0;0.1``; ``Scenarios.default()`` is spot -20 %..+20 % by 5 % x vol
    -10..+10 points by 5 (9 x 5).
    """

    spot_shocks: tuple[float, ...]
    vol_shocks: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        for name in ("spot_shocks", "vol_shocks"):
            values = getattr(self, name)
            if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise ValueError(f"Scenarios.{name} must be a non-empty sequence of finite numbers, got {values!r}")
        if any(v <= -1 for v in self.spot_shocks):
            raise ValueError(f"Scenarios.spot_shocks must be > -1 (a relative move), got {self.spot_shocks!r}")

    @classmethod
    def default(cls) -> Scenarios:
        return cls.parse("spot=-0.2:0.2:0.05,vol=-0.1:0.1:0.05")

    @classmethod
    def coerce(cls, spec: Scenarios | str | None) -> Scenarios | None:
        """A :class:`Scenarios`, ``"default"``, a spec string or None, as Scenarios (or None)."""
        if isinstance(spec, str):
            return cls.default() if spec == "default" else cls.parse(spec)
        return spec

    @classmethod
    def parse(cls, spec: str) -> Scenarios:
        parts: dict[str, tuple[float, ...]] = {}
        for item in spec.split(","):
            if not item.strip():
                continue
            key, _, body = item.partition("=")
            key = key.strip().lower()
            if key not in ("spot", "vol") or not body:
                raise ValueError(f"scenario spec {spec!r}: expected items like spot=-0.2:0.2:0.05 or vol=-0.1;0;0.1")
            try:
                if ":" in body:
                    start, stop, step = (float(x) for x in body.split(":"))
                    if step <= 0:
                        raise ValueError
                    count = int(math.floor((stop - start) / step + 1e-9)) + 1
                    values = tuple(round(start + i * step, 12) for i in range(count))
                else:
                    values = tuple(float(x) for x in body.split(";"))
            except ValueError:
                raise ValueError(f"scenario spec {spec!r}: cannot read {item!r} (start:stop:step with step > 0, or a;b;c)") from None
            parts[key] = values
        if "spot" not in parts:
            raise ValueError(f"scenario spec {spec!r} has no spot shocks")
        return cls(parts["spot"], parts.get("vol", (0.0,)))

    @property
    def size(self) -> int:
        return len(self.spot_shocks) * len(self.vol_shocks)

    def pairs(self) -> list[tuple[float, float]]:
        return [(s, v) for s in self.spot_shocks for v in self.vol_shocks]


@dataclass
class RiskResult:
    """The job's outputs (pandas DataFrames) and run summary.

    ``positions``: one row per valid position (``POSITION_COLUMNS``), or None when they were only
    written to disk; ``by_underlying``: indexed by underlying, sums of value and position Greeks plus
    the desk conventions; ``ladder``: P&L per (underlying, spot_shock, vol_shock); ``trades``: the
    hedge trades per underlying; ``invalid``: rows set aside with a reason; ``summary``: counts,
    backend, device, versions, timings.
    """

    positions: pd.DataFrame | None
    by_underlying: pd.DataFrame
    ladder: pd.DataFrame
    trades: pd.DataFrame
    invalid: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


# --- reading --------------------------------------------------------------------------------------


def _batches(book: Any, chunk_rows: int) -> tuple[Iterator[pd.DataFrame], int | None, str]:
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
        reader = read_file("book", path, pacsv.open_csv, path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=convert)
        check_book_columns(reader.schema.names)
        check_book_types({f.name: f.type for f in reader.schema}, str(path), text_ok=True)  # CSV cells are text
        return _rebatch((b.to_pandas() for b in reader), chunk_rows), None, str(path)
    raise BookError(f"book: cannot read {str(path)!r}; give a .parquet or .csv file, a DataFrame or an Arrow table")


def _rebatch(frames: Iterator[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
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


def _is_text_file(book: Any) -> bool:
    """Whether ``book`` is a CSV file (cells are text; number literals are read as numbers)."""
    return not isinstance(book, pd.DataFrame | pa.Table) and str(book).lower().endswith((".csv", ".csv.gz"))


def book_ids(book: Any) -> Any:
    """The whole book's ``position_id`` column (for the global duplicate check), read alone: from
    Parquet only that column's pages; from CSV the file is parsed for that column only."""
    if isinstance(book, pd.DataFrame):
        return book["position_id"]
    if isinstance(book, pa.Table):
        return book.column("position_id")
    path = Path(book)
    if path.name.lower().endswith((".parquet", ".pq")):
        return read_file("book", path, pq.read_table, path, columns=["position_id"]).column(0)
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(column_types={"position_id": pa.string()}, include_columns=["position_id"], strings_can_be_null=True)
    options = pacsv.ReadOptions(block_size=1 << 24)
    return read_file("book", path, pacsv.read_csv, path, read_options=options, convert_options=convert).column(0)


def _duplicate_error(dups: pd.Series, ids: Any, source: str, limit: int = 5) -> BookError:
    """The error for duplicated ids: how many, and the first ``limit`` ids with their rows."""
    key = pd.Series(ids.to_pandas() if hasattr(ids, "to_pandas") else ids)
    key = key.where(key.isna(), key.astype(str)) if key.dtype == object else key
    lines = []
    for pid in dups.index[:limit]:
        rows = np.flatnonzero((key == pid).to_numpy(dtype=bool, na_value=False))
        shown = ", ".join(f"{r:,}" for r in rows[:10]) + (", ..." if rows.size > 10 else "")
        lines.append(f"  position_id {pid}: {int(dups[pid])} rows ({shown})")
    more = f"\n  ... and {len(dups) - limit} more id(s)" if len(dups) > limit else ""
    return BookError(
        f"book {source}: position_id is not unique: {len(dups):,} id(s) on more than one row ({int(dups.sum()):,} rows); which row is "
        f"right cannot be known (use on_invalid='skip' / --on-invalid skip to set all of them aside):\n" + "\n".join(lines) + more
    )


#: bytes read at a time when hashing files
_HASH_BLOCK = 1 << 22


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's whole content, streamed in 4 MiB blocks (about 1.3 GB/s on this machine's
    CPU, SHA-NI; faster here than blake2b's 1.0 GB/s)."""
    h = hashlib.sha256()
    buf = bytearray(_HASH_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(buf):
            h.update(view[:k])
    return h.hexdigest()


def fingerprint(book: Any) -> str:
    """A fingerprint of the input's content: for files the size and a SHA-256 of the whole file
    (streamed; not the path or mtime, so a copy or a touch still resumes, and an edit in place that
    keeps size and mtime does not); for in-memory tables a hash of their contents.

    Cost measured at 1e7 rows (``generate_book(10_000_000)``, ``write_book``: a 68.7 MB zstd Parquet
    file): 0.05 s from the page cache on a 2-core machine (about 1.3 GB/s), plus the read from disk
    when the file is not cached; a risk job on that book runs for tens of seconds."""
    h = hashlib.sha256()
    if isinstance(book, pd.DataFrame | pa.Table):
        frame = book if isinstance(book, pd.DataFrame) else book.to_pandas()
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return "mem:" + h.hexdigest()[:32]
    path = Path(book)
    return f"file:{path.stat().st_size}:{file_sha256(path)}"


# --- one partition --------------------------------------------------------------------------------


@dataclass
class PartResult:
    """What a partition contributes: its positions and invalid rows, and float64 sums per
    underlying (``sums``: SUMS x n_underlyings) and per scenario (``ladder``: n_scenarios x n_underlyings)."""

    index: int
    rows: int
    positions: pa.Table  # Arrow: built from the arrays without a copy, written as is
    invalid: pd.DataFrame
    sums: np.ndarray
    ladder: np.ndarray
    seconds: float


def _segment_sum(bk: Backend, codes: Any, values: Any, n: int) -> np.ndarray:
    """Sums of ``values`` by ``codes`` (0 ... n-1) computed on the backend, returned to the host."""
    return np.asarray(to_numpy(bk.segment_sum(codes, values, n)), dtype=np.float64)


def _greek_sums(bk: Backend, model: str, args: list[Any], w: Any, c: Any, n_u: int, dt: Any) -> tuple[dict[str, Any], np.ndarray]:
    """All :data:`GREEKS` of one model's rows (``args`` = S, K, T, vol, r, q, phi on the device) and
    their weighted sums per underlying code, ``(len(GREEKS), n_u)`` on the host."""
    out = bk.elementwise(black_kernel(model, GREEKS, regular_only=True), args, GREEKS, dt, key=("risk", model), native=f"black:{model}")
    return out, np.stack([_segment_sum(bk, c, out[name] * w, n_u) for name in GREEKS])


def _ladder_sums(
    bk: Backend, model: str, pairs: list[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, dt: Any
) -> np.ndarray:
    """Weighted scenario P&L per underlying code, ``(len(pairs), n_u)`` on the host (:func:`ladder_kernel`)."""
    names = tuple(f"s{j}" for j in range(len(pairs)))
    key = ("ladder", model, tuple(pairs))
    pnl = bk.elementwise(ladder_kernel(model, pairs), [*args, w], names, dt, key=key, native=key)
    return np.stack([_segment_sum(bk, c, pnl[name], n_u) for name in names])


def by_underlying_frame(sums: np.ndarray, market: Market) -> pd.DataFrame:
    """The per-underlying table from :data:`SUMS` rows: counts, value and position Greeks plus the desk
    conventions, for underlyings that hold positions."""
    by = pd.DataFrame({name: sums[i] for i, name in enumerate(SUMS)}, index=pd.Index(market.names, name="underlying"))
    by["positions"] = by["positions"].astype(np.int64)
    by.insert(1, "spot", market.spot)
    by["dollar_delta"] = by["delta"] * market.spot
    by["dollar_gamma_1pct"] = by["gamma"] * market.spot**2 / 100.0
    by["vega_per_point"] = by["vega"] / 100.0
    by["theta_per_day"] = by["theta"] / 365.0
    return by[by["positions"] > 0]


def ladder_frame(total: np.ndarray, scenarios: Scenarios | None, market: Market, held: np.ndarray) -> pd.DataFrame:
    """Long ladder table (underlying, spot_shock, vol_shock, pnl) from ``(n_scenarios, n_u)`` sums, for
    the underlyings where ``held``."""
    if scenarios is None:
        return pd.DataFrame({"underlying": pd.Series(dtype=object), "spot_shock": [], "vol_shock": [], "pnl": []})
    pairs, n_u = scenarios.pairs(), market.size
    frame = pd.DataFrame(
        {
            "underlying": np.tile(np.asarray(market.names, dtype=object), len(pairs)),
            "spot_shock": np.repeat([s for s, _ in pairs], n_u),
            "vol_shock": np.repeat([v for _, v in pairs], n_u),
            "pnl": total.reshape(-1),
        }
    )
    return frame[np.tile(held, len(pairs))].reset_index(drop=True)


#: price each distinct contract once when the partition has at most this fraction of distinct ones
DEDUPE_BELOW = 0.8


def _contracts(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """``(inverse, first)``: row i is contract ``inverse[i]``, whose first row is ``first[inverse[i]]``;
    ``first`` is None (and ``inverse`` the identity) when netting would not pay (few duplicates).

    Rows are keyed by a 64-bit mix of the columns' hashes and factorised; every row is then checked
    against its contract's first row, column by column, so a hash collision can never merge two
    contracts (it only switches netting off for the partition)."""
    n = columns[0].size
    key = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            key = key * np.uint64(0x9E3779B97F4A7C15) + pd.util.hash_array(np.ascontiguousarray(col))
    inverse, uniques = pd.factorize(key)
    if len(uniques) > DEDUPE_BELOW * n:
        return np.arange(n), None
    first = np.empty(len(uniques), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)
    for col in columns:
        if not np.array_equal(col, col[first][inverse]):
            return np.arange(n), None
    return inverse, first


def _bucket(n: int) -> int:
    """The next power of two >= n (at least 1024): few distinct shapes for compiling backends."""
    return max(1024, 1 << (int(n) - 1).bit_length())


def _pad(a: np.ndarray, size: int, fill: float) -> np.ndarray:
    if a.shape[0] == size:
        return a
    out = np.full(size, fill, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


def ladder_kernel(model: str, pairs: Sequence[tuple[float, float]]) -> Callable[..., dict]:
    """``kernel(xp, sp, S, K, T, vol, r, q, phi, w) -> {"s<j>": w x (V(S(1+ds_j), vol+dv_j) - V(S, vol))}``:
    every scenario of the ladder in one pass over the positions, sharing what the scenarios have in
    common (log-moneyness, sqrt(T), discount factors). Same generalised Black formula as
    :mod:`gpu_hedge._pricing.black_scholes` (b = r - q for bsm, 0 for black76); a shocked vol is
    floored at 0, where the price is the discounted intrinsic value. Positions are before expiry."""
    forward = model == "black76"

    def price(xp: Any, sp: Any, s: Any, lnsk: Any, k_disc: Any, s_disc: Any, b: Any, T: Any, sqrtT: Any, v: Any, phi: Any) -> Any:
        sv = v * sqrtT
        ok = sv > 0
        d1 = (lnsk + (b + 0.5 * v * v) * T) / xp.where(ok, sv, 1.0)
        p = phi * (s * s_disc * sp.ndtr(phi * d1) - k_disc * sp.ndtr(phi * (d1 - sv)))
        return xp.where(ok, xp.maximum(p, 0.0), xp.maximum(phi * (s * s_disc - k_disc), 0.0))

    def kernel(xp: Any, sp: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, w: Any) -> dict:
        sqrtT = xp.sqrt(T)
        disc = xp.exp(-r * T)
        s_disc, b = (disc, 0.0) if forward else (xp.exp(-q * T), r - q)
        k_disc = K * disc
        lnsk = xp.log(S / K)
        base = price(xp, sp, S, lnsk, k_disc, s_disc, b, T, sqrtT, vol, phi)
        out = {}
        for j, (ds, dv) in enumerate(pairs):
            v = xp.maximum(vol + dv, 0.0) if dv else vol
            p = price(xp, sp, S * (1.0 + ds), lnsk + math.log1p(ds), k_disc, s_disc, b, T, sqrtT, v, phi)
            out[f"s{j}"] = (p - base) * w
        return out

    return kernel


def process_partition(
    index: int, frame: pd.DataFrame, first_row: int, market: Market, valuation_date: Any, scenarios: Scenarios | None,
    backend: Any, dtype: str, keep_positions: bool = True, duplicates: Any = None, text_ok: bool = False,
) -> PartResult:  # fmt: skip
    """Validate, price and reduce one partition of the book (a pure function of its arguments, so it
    runs the same on a Dask worker). ``duplicates``: the ids duplicated anywhere in the book (their
    rows are invalid); ``text_ok``: the book is a CSV file (see :func:`validate`)."""
    t0 = time.perf_counter()
    bk = get_backend(backend)
    chk = validate(frame.reset_index(drop=True), market, valuation_date, first_row, duplicates, text_ok)
    n_u = market.size
    sums = np.zeros((len(SUMS), n_u))
    ladder = np.zeros((scenarios.size if scenarios else 0, n_u))
    n = chk.strike.size
    positions = _EMPTY_POSITIONS
    if n:
        # Positions in the same contract (underlying, strike, expiry, type, vol, model) have the same
        # per-unit Greeks and scenario values: price each contract once with its netted weight.
        rows = (chk.und_code, chk.strike, chk.tau, chk.vol, chk.phi, chk.model)
        inverse, first = _contracts(rows)
        codes, strike, tau, vol, phi, model_code = (a[first] for a in rows) if first is not None else rows
        weight = np.bincount(inverse, weights=chk.weight) if first is not None else chk.weight
        n_c = strike.size
        spot, rate, div = market.spot[codes], market.rate[codes], market.div[codes]
        unit = {name: np.empty(n_c) for name in GREEKS} if keep_positions else {}
        dt = getattr(bk.xp, dtype)
        pairs = scenarios.pairs() if scenarios is not None else []
        sums[0] = np.bincount(chk.und_code, minlength=n_u)
        for model, mask in (("bsm", model_code == 0), ("black76", model_code == 1)):
            m = int(mask.sum())
            if not m:
                continue
            sel = slice(None) if m == n_c else mask
            # compiling backends compile per shape: pad to a power of two with weight-0 rows
            size = _bucket(m) if "jit" in bk.capabilities else m
            host = [_pad(a[sel], size, fill) for a, fill in zip((spot, strike, tau, vol, rate, div, phi, weight, codes),
                                                                 (1.0, 1.0, 1.0, 0.2, 0.0, 0.0, 1.0, 0.0, 0), strict=True)]  # fmt: skip
            args = [bk.asarray(a, dtype=dtype) for a in host[:7]]
            w, c = bk.asarray(host[7], dtype=dtype), bk.asarray(host[8])
            out, part = _greek_sums(bk, model, args, w, c, n_u, dt)
            sums[1:] += part  # on the device
            if keep_positions:
                for name in GREEKS:
                    unit[name][sel] = to_numpy(out[name])[:m]
            if pairs:
                ladder += _ladder_sums(bk, model, pairs, args, w, c, n_u, dt)
        greeks = {name: v[inverse] for name, v in unit.items()} if first is not None else unit
        weight = chk.weight
        per = {name: greeks[name] * weight for name in greeks}
        if keep_positions:
            positions = pa.table(
                {
                    "position_id": pa.array(chk.position_id.to_numpy()).cast(pa.string()),
                    "underlying": chk.underlying.to_numpy(),
                    **greeks,
                    "value": per["price"],
                    **{f"position_{name}": per[name] for name in ("delta", "gamma", "vega", "theta", "rho")},
                }
            )
    return PartResult(index, len(frame), positions, chk.invalid, sums, ladder, time.perf_counter() - t0)


def process_partition_safely(index: int, frame: pd.DataFrame, first_row: int, *args: Any) -> PartResult:
    """:func:`process_partition`, splitting the partition in halves (recursively) when the device runs
    out of memory, so the chunk shrinks and the job goes on; the halves' results are merged in order.
    ``args[3]`` is the backend (what :meth:`Backend.is_out_of_memory` recognises)."""
    try:
        return process_partition(index, frame, first_row, *args)
    except Exception as exc:  # noqa: BLE001 - only allocation failures are retried
        if not get_backend(args[3]).is_out_of_memory(exc) or len(frame) < 2:
            raise
    half = len(frame) // 2
    a = process_partition_safely(index, frame.iloc[:half], first_row, *args)
    b = process_partition_safely(index, frame.iloc[half:], first_row + half, *args)
    invalid = pd.concat([a.invalid, b.invalid], ignore_index=True)
    positions = pa.concat_tables([a.positions, b.positions])
    return PartResult(index, a.rows + b.rows, positions, invalid, a.sums + b.sums, a.ladder + b.ladder, a.seconds + b.seconds)


# --- outputs --------------------------------------------------------------------------------------


def _write_parquet(frame: pd.DataFrame | pa.Table, path: Path, **options: Any) -> None:
    """Write atomically: a temporary file renamed over the target."""
    tmp = path.with_name(path.name + ".tmp")
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp, **{"compression": "zstd", **options})
    os.replace(tmp, path)


def _write_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def _part_files(index: int) -> tuple[str, str, str]:
    stem = f"{index:06d}"
    return f"positions-{stem}.parquet", f"invalid-{stem}.parquet", f"sums-{stem}.npz"


def _save_part(part: PartResult, parts: Path) -> None:
    """Write a partition's three files, each atomically. The partition is done once the manifest
    records their checksums (:func:`_checksums`), written after the files."""
    pos_name, inv_name, sums_name = _part_files(part.index)
    # per-position Greeks are float noise to a compressor: snappy, and dictionaries only for names
    _write_parquet(part.positions, parts / pos_name, compression="snappy", use_dictionary=["underlying"])
    _write_parquet(part.invalid.astype({"row": "int64"}), parts / inv_name)
    tmp = parts / f"{sums_name}.tmp"
    with open(tmp, "wb") as f:
        np.savez(f, sums=part.sums, ladder=part.ladder, rows=np.array([part.rows]), seconds=np.array([part.seconds]))
    os.replace(tmp, parts / sums_name)


def _checksums(index: int, parts: Path) -> dict[str, str]:
    """SHA-256 of a partition's files by name, as the manifest records them. About 0.08 s for a
    partition of 1e6 positions (a 108 MB positions file; 1.4 GB/s here): 0.8 s over a 1e7-row
    book, run on a thread beside the next partition's work (hashlib releases the GIL)."""
    return {name: file_sha256(parts / name) for name in _part_files(index)}


def _verify_part(index: int, parts: Path, recorded: dict[str, str] | None) -> str | None:
    """None when the partition's files are all there with the checksums recorded at write time, else
    why not (the partition is then redone)."""
    if recorded is None:
        return None if not (parts / _part_files(index)[2]).exists() else "not recorded in the manifest"
    for name in _part_files(index):
        path = parts / name
        if not path.exists():
            return f"missing file {name}"
        if recorded.get(name) != file_sha256(path):
            return f"checksum mismatch {name}"
    return None


def _load_part(index: int, parts: Path, keep_positions: bool) -> PartResult:
    pos_name, inv_name, sums_name = _part_files(index)
    with np.load(parts / sums_name) as z:
        sums, ladder, rows, seconds = z["sums"], z["ladder"], int(z["rows"][0]), float(z["seconds"][0])
    positions = pq.read_table(parts / pos_name) if keep_positions else _EMPTY_POSITIONS
    invalid = pd.read_parquet(parts / inv_name)
    return PartResult(index, rows, positions, invalid, sums, ladder, seconds)


def _manifest(book: Any, market: Market, params: dict[str, Any]) -> dict[str, Any]:
    market_hash = hashlib.sha256()
    for a in (market.spot, market.vol, market.rate, market.div):
        market_hash.update(np.ascontiguousarray(a).tobytes())
    market_hash.update("|".join(map(str, market.names)).encode())
    for u, surf in sorted((market.surfaces or {}).items()):  # a new surface must not resume old partitions
        market_hash.update(str(u).encode())
        for a in (surf.expiries, surf.strikes, surf.vols):
            market_hash.update(np.ascontiguousarray(a).tobytes())
    return {"version": MANIFEST_VERSION, "book": fingerprint(book), "market": market_hash.hexdigest()[:32], "params": params}


# --- the job --------------------------------------------------------------------------------------


def risk(
    book: Any,
    market: Any,
    *,
    scenarios: Scenarios | str | None = None,
    backend: Any = "auto",
    dtype: str = "float64",
    chunk_rows: int | None = None,
    valuation_date: Any = None,
    on_invalid: str = "raise",
    vol_surface: Any = None,
    hedges: Any = None,
    strategy: Any = None,
    costs: Any = None,
    lot_size: float | None = 1,
    out: str | os.PathLike | None = None,
    keep_positions: bool | None = None,
    dask: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> RiskResult:
    """Run the risk job on ``book`` (Parquet/CSV path, DataFrame or Arrow table) against ``market``
    (path, DataFrame or table; see :mod:`gpu_hedge._book.schema` for both schemas).

    ``scenarios``: a :class:`Scenarios`, a spec string (``"spot=-0.2:0.2:0.05,vol=-0.1:0.1:0.05"``) or
    ``"default"``; None for no ladder. ``on_invalid="raise"`` (default) stops at the first partition
    with invalid rows and lists them by ``position_id``, column and value; ``"skip"`` sets them aside
    in ``.invalid`` with a reason and goes on. Every input row ends in ``positions`` or ``invalid``
    (``summary["rows_read"] == summary["rows_valid"] + summary["rows_invalid"]``). ``position_id``
    must be unique over the whole book: a duplicate is an error before any partition runs
    (``"raise"``) or puts every row of that id in ``invalid`` (``"skip"``). A numeric column stored
    as text or booleans is refused whatever ``on_invalid`` says (see :mod:`gpu_hedge._book.schema`).

    ``vol_surface``: an optional long table (underlying, expiry_years, strike, vol) of full grids; a
    position without its own vol takes its underlying's surface value (see
    :class:`gpu_hedge._book.schema.VolSurface`), else the market's flat vol.

    Hedge trades: per underlying the book's delta (shares) against ``hedges`` (a table of
    ``underlying``, ``holding`` in shares; absent = 0) through :func:`gpu_hedge.rebalance` with
    ``strategy`` (default ``Periodic()``: back to delta-neutral), ``costs`` and ``lot_size``.

    ``out``: a directory for ``positions.parquet``, ``by_underlying.parquet``, ``ladder.parquet``,
    ``trades.parquet``, ``invalid.parquet`` and ``summary.json``, with resumable per-partition results
    under ``parts/``. ``keep_positions`` (default: True without ``out``, False with it) returns the
    per-position table in memory too. ``dask``: a ``dask.distributed.Client``; partitions run on its
    workers. ``progress(rows_done, rows_total_or_None)`` is called after each partition.

    Resuming: a partition is reused only if its files still match the SHA-256 checksums recorded in
    ``manifest.json`` when they were written; the others are redone. ``summary["partitions_resumed"]``
    counts the reused ones, ``summary["partitions_redone"]`` the ones found done but not verified,
    and ``summary["redone"]`` says why for each ("partition 3: checksum mismatch positions-000003.parquet").
    """
    t_start = time.perf_counter()
    if on_invalid not in ("raise", "skip"):
        raise ValueError(f"on_invalid = {on_invalid!r} must be 'raise' or 'skip'")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows = {chunk_rows} must be >= 1")
    scenarios = Scenarios.coerce(scenarios)
    bk = get_backend(backend)
    mkt = read_market(market, vol_surface)
    batches, total, source = _batches(book, chunk_rows)
    text_ok = _is_text_file(book)
    ids = book_ids(book)
    dups = duplicate_ids(ids)  # the whole book's ids at once: duplicates across partitions too
    if len(dups) and on_invalid == "raise":
        raise _duplicate_error(dups, ids, source)
    del ids
    duplicates = dups.index if len(dups) else None
    keep = (out is None) if keep_positions is None else bool(keep_positions)
    params = {
        "scenarios": None if scenarios is None else [list(scenarios.spot_shocks), list(scenarios.vol_shocks)],
        "dtype": dtype, "chunk_rows": chunk_rows, "valuation_date": None if valuation_date is None else str(valuation_date),
        "on_invalid": on_invalid,
    }  # fmt: skip
    parts_dir = None
    recorded: dict[str, dict[str, str]] = {}
    if out is not None:
        out = Path(out)
        parts_dir = out / "parts"
        parts_dir.mkdir(parents=True, exist_ok=True)
        manifest = _manifest(book, mkt, params)
        mpath = out / "manifest.json"
        old = _read_manifest(mpath)
        if old is not None and {k: v for k, v in old.items() if k != "parts"} == json.loads(json.dumps(manifest, default=str)):
            recorded = old.get("parts") or {}
        else:
            # another input or other parameters (or no readable manifest): earlier partitions are not ours to reuse
            for f in parts_dir.iterdir():
                f.unlink()
        manifest["parts"] = recorded
        _write_json(manifest, mpath)

    results: list[PartResult] = []
    resumed = 0
    redone: list[str] = []
    rows_done = 0
    hashing: list[tuple[str, Any]] = []  # (partition stem, future of its checksums), in order
    hasher = None
    if parts_dir is not None:
        from concurrent.futures import ThreadPoolExecutor

        hasher = ThreadPoolExecutor(1, thread_name_prefix="gpu_hedge-risk-checksums")

    def record(wait: bool = False) -> None:
        """Put the finished checksums in the manifest (and write it): those partitions are done."""
        changed = False
        while hashing and (wait or hashing[0][1].done()):
            stem, fut = hashing.pop(0)
            recorded[stem] = fut.result()
            changed = True
        if changed:
            _write_json(manifest, mpath)

    def finish(part: PartResult) -> None:
        nonlocal rows_done
        if len(part.invalid) and on_invalid == "raise":
            raise BookError(
                f"book {source}: {len(part.invalid)} invalid row(s) in rows {part.index * chunk_rows:,}-"
                f"{part.index * chunk_rows + part.rows - 1:,} (use on_invalid='skip' / --on-invalid skip to set them aside):\n"
                f"{describe_invalid(part.invalid)}"
            )
        if parts_dir is not None:
            _save_part(part, parts_dir)
            hashing.append((f"{part.index:06d}", hasher.submit(_checksums, part.index, parts_dir)))
            record()  # after the files: a partition is done once its checksums are recorded
            if not keep:
                part.positions = _EMPTY_POSITIONS
        results.append(part)
        rows_done += part.rows
        if progress is not None:
            progress(rows_done, total)

    run_args = (mkt, valuation_date, scenarios, bk.name if dask is not None else bk, dtype, keep or parts_dir is not None, duplicates,
                text_ok)  # fmt: skip
    pending: list[Any] = []
    try:
        for index, frame in enumerate(batches):
            if parts_dir is not None:
                stem = f"{index:06d}"
                why = _verify_part(index, parts_dir, recorded.get(stem))
                if why is None and stem in recorded:
                    resumed += 1
                    done = _load_part(index, parts_dir, keep)
                    results.append(done)
                    rows_done += done.rows
                    continue
                if why is not None:  # found done but not as written: compute it again
                    redone.append(f"partition {index}: {why}")
                    log.warning("risk job %s: partition %d (from row %s) is redone: %s", out, index, f"{index * chunk_rows:,}", why)
                    recorded.pop(stem, None)
            if dask is None:
                finish(process_partition_safely(index, frame, index * chunk_rows, *run_args))
            else:
                pending.append(dask.submit(process_partition_safely, index, frame, index * chunk_rows, *run_args, pure=False))
                if len(pending) >= 2 * max(1, len(dask.scheduler_info().get("workers", {})) or 1):
                    finish(pending.pop(0).result())
        for fut in pending:
            finish(fut.result())
    finally:  # a partition whose files were written is recorded even when the job stops (an error, a kill by exception)
        if hasher is not None:
            try:
                record(wait=True)
            finally:
                hasher.shutdown()
    results.sort(key=lambda p: p.index)
    t_compute = time.perf_counter() - t_start
    return _assemble(results, mkt, scenarios, bk, out, keep, hedges, strategy, costs, lot_size, source, resumed, t_start, t_compute,
                     redone)  # fmt: skip


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of an earlier run, or None when there is none or it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _assemble(
    results: list[PartResult], mkt: Market, scenarios: Scenarios | None, bk: Backend, out: Path | None, keep: bool, hedges: Any,
    strategy: Any, costs: Any, lot_size: float | None, source: str, resumed: int, t_start: float, t_compute: float,
    redone: Sequence[str] = (),
) -> RiskResult:  # fmt: skip
    n_u = mkt.size
    sums = np.zeros((len(SUMS), n_u))
    ladder_sum = np.zeros((scenarios.size if scenarios else 0, n_u))
    for p in results:  # in partition order: the same float sums whoever computed each partition
        sums += p.sums
        ladder_sum += p.ladder
    by = by_underlying_frame(sums, mkt)
    ladder = ladder_frame(ladder_sum, scenarios, mkt, sums[0] > 0)
    trades = _trades(by, hedges, strategy, costs, lot_size)
    invalid = pd.concat([p.invalid for p in results], ignore_index=True) if results else pd.DataFrame(columns=INVALID_COLUMNS)
    positions = pa.concat_tables([p.positions for p in results]).to_pandas() if keep and results else None
    rows_read = int(sum(p.rows for p in results))
    rows_invalid = len(invalid)
    summary = {
        "source": source,
        "rows_read": rows_read,
        "rows_valid": rows_read - rows_invalid,
        "rows_invalid": rows_invalid,
        "partitions": len(results),
        "partitions_resumed": resumed,
        "partitions_redone": len(redone),
        "redone": list(redone),
        "underlyings": int(len(by)),
        "scenarios": 0 if scenarios is None else scenarios.size,
        "backend": bk.name,
        "device": bk.device,
        "versions": _versions(),
        "timings": {"compute_s": round(t_compute, 3), "partition_s_sum": round(sum(p.seconds for p in results), 3)},
    }
    result = RiskResult(positions, by, ladder, trades, invalid, summary)
    if out is not None:
        t0 = time.perf_counter()
        _write_outputs(result, Path(out), results)
        summary["timings"]["write_s"] = round(time.perf_counter() - t0, 3)
        summary["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
        _write_json(summary, Path(out) / "summary.json")
    else:
        summary["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
    return result


def _trades(by: pd.DataFrame, hedges: Any, strategy: Any, costs: Any, lot_size: float | None) -> pd.DataFrame:
    from .._hedging import Costs, Periodic, rebalance

    holding = pd.Series(0.0, index=by.index)
    if hedges is not None:
        h = (
            hedges
            if isinstance(hedges, pd.DataFrame)
            else pd.read_parquet(hedges)
            if str(hedges).endswith(".parquet")
            else pd.read_csv(hedges)
        )
        missing = [c for c in ("underlying", "holding") if c not in h.columns]
        if missing:
            raise BookError(f"hedges: missing column(s) {', '.join(missing)} (expected underlying, holding in shares)")
        h = h.assign(underlying=h["underlying"].astype(str)).groupby("underlying")["holding"].sum()
        unknown = sorted(set(h.index) - set(by.index))
        if unknown:
            raise BookError(f"hedges: underlying {unknown[0]!r} has a hedge but no valid positions in the book")
        holding = holding.add(h.astype(np.float64), fill_value=0.0).reindex(by.index)
    strategy = Periodic() if strategy is None else strategy
    costs = Costs() if costs is None else costs
    if len(by) == 0:
        return pd.DataFrame(columns=["exposure", "holding", "trade", "new_holding", "cost", "limited"], index=by.index)
    decision = rebalance(by["delta"].to_numpy(), holding.to_numpy(), price=by["spot"].to_numpy(), strategy=strategy, costs=costs,
                         lot_size=lot_size, gamma=by["gamma"].to_numpy(), backend="numpy")  # fmt: skip
    trades = np.asarray(decision.trades, dtype=np.float64)
    return pd.DataFrame(
        {
            "exposure": by["delta"].to_numpy(),
            "holding": holding.to_numpy(),
            "trade": trades,
            "new_holding": holding.to_numpy() + trades,
            "trade_notional": trades * by["spot"].to_numpy(),
            "cost": np.asarray(decision.costs, dtype=np.float64),
            "limited": np.asarray(decision.limited, dtype=bool),
        },
        index=by.index,
    )


def _versions() -> dict[str, str]:
    import numpy
    import pyarrow

    from .. import __version__

    return {"gpu_hedge": __version__, "python": platform.python_version(), "numpy": numpy.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__}  # fmt: skip


def _write_outputs(result: RiskResult, out: Path, parts: Sequence[PartResult]) -> None:
    """Final files, each written atomically. ``positions.parquet`` is a Parquet dataset directory,
    one file per partition in order (``part-000000.parquet`` ...), hard links to the partition files
    (no rewrite of what may be gigabytes); pandas, pyarrow, polars, duckdb and Spark read it as one table."""
    import shutil

    parts_dir = out / "parts"
    target, tmp, old = out / "positions.parquet", out / "positions.parquet.tmp", out / "positions.parquet.old"
    for stale in (tmp, old):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    tmp.mkdir()
    for p in parts:
        src, dst = parts_dir / f"positions-{p.index:06d}.parquet", tmp / f"part-{p.index:06d}.parquet"
        try:
            os.link(src, dst)
        except OSError:  # a file system without hard links
            shutil.copyfile(src, dst)
    if not parts:
        pq.write_table(_EMPTY_POSITIONS, tmp / "part-000000.parquet")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.is_dir():
        shutil.rmtree(old)
    elif old.exists():
        old.unlink()
    _write_parquet(result.by_underlying.reset_index(), out / "by_underlying.parquet")
    _write_parquet(result.ladder, out / "ladder.parquet")
    _write_parquet(result.trades.reset_index(), out / "trades.parquet")
    _write_parquet(result.invalid.astype({"row": "int64"}) if len(result.invalid) else result.invalid, out / "invalid.parquet")
