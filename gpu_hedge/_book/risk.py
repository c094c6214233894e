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

This module is the orchestration (:func:`risk`); the parts are modules by concept, re-exported
here: :mod:`.scenarios` (ladders), :mod:`.partitions` (reading partitions, :func:`process_partition`),
:mod:`.batches` (device shapes, out-of-memory splitting), :mod:`.reductions` (sums per underlying,
combining partitions), :mod:`.store` (parts, manifest, checksums, outputs) and :mod:`.trades`.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from .._backends import Backend, get_backend
from .batches import split_on_oom
from .book_schema import INVALID_COLUMNS
from .market import Market, read_market
from .partitions import (
    DEDUPE_BELOW,
    EMPTY_POSITIONS,
    POSITION_COLUMNS,
    contracts,
    empty_positions,
    open_book,
    process_partition,
)
from .reductions import SUMS, PartResult, by_underlying_frame, ladder_frame, sum_names, total
from .scenarios import Scenarios, ladder_kernel
from .sources import BookError
from .store import MANIFEST_VERSION, PartStore, file_sha256, fingerprint, write_json, write_outputs
from .trades import hedge_trades
from .validation import EXERCISE_OPTIONS, describe_invalid

# the job's API, then names that tests and tools reach through this module (kept importable from here)
__all__ = ["DEFAULT_CHUNK_ROWS", "RiskResult", "Scenarios", "risk",
           "DEDUPE_BELOW", "MANIFEST_VERSION", "POSITION_COLUMNS", "SUMS", "PartResult", "by_underlying_frame", "file_sha256",
           "fingerprint", "ladder_frame", "ladder_kernel", "process_partition", "process_partition_safely"]  # fmt: skip

_contracts = contracts  # the netting of partitions.contracts, by its old name
#: default rows per partition: large enough to amortise per-call overheads, small enough for caches and GPUs
DEFAULT_CHUNK_ROWS = 1_000_000
log = logging.getLogger("gpu_hedge.risk")


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


def process_partition_safely(index: int, frame: pd.DataFrame, first_row: int, *args: Any) -> PartResult:
    """:func:`process_partition`, splitting the partition in halves (recursively) when the device runs
    out of memory, so the chunk shrinks and the job goes on; the halves' results are merged in order.
    ``args[3]`` is the backend (what :meth:`Backend.is_out_of_memory` recognises)."""

    def run(rows: pd.DataFrame, first: int) -> PartResult:
        return process_partition(index, rows, first, *args)  # looked up here at each call (tests replace it)

    return split_on_oom(run, frame, first_row, lambda exc: get_backend(args[3]).is_out_of_memory(exc), PartResult.merge)


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
    sticky: str = "strike",
    hedges: Any = None,
    strategy: Any = None,
    costs: Any = None,
    lot_size: float | None = 1,
    out: str | os.PathLike | None = None,
    keep_positions: bool | None = None,
    dask: Any = None,
    progress: Callable[[int, int | None], None] | None = None,
    exercise: str = "column",
    dividends: Any = None,
    vol_adjust: str | None = None,
    american_method: str = "alo",
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

    ``vol_surface``: an optional vol surface, either a long table (underlying, expiry_years, strike,
    vol) of full grids (:class:`gpu_hedge._book.schema.VolSurface`) or a fitted surface
    (:func:`gpu_hedge.fit_surface`'s ``VolSurface``, or a Parquet file its ``save`` wrote; the file's
    kind is told by its metadata and columns), whose ``group`` labels name the underlyings (groups
    naming none of them are ignored). A position without its own vol takes its underlying's surface
    value at its strike and expiry, else the market's flat vol. ``sticky`` (``"strike"``, default, or
    ``"moneyness"``): how surface vols move with spot in the ladder; under sticky strike a spot
    scenario keeps vol(K, T), under sticky moneyness it re-reads vol(K S0 / S, T). With a surface the
    positions table also has ``vol`` (each row's) and ``shadow_delta`` / ``position_shadow_delta``
    (delta + vega x d sigma / d S under ``sticky``), and ``by_underlying`` ``shadow_delta`` and
    ``dollar_shadow_delta``; see :mod:`gpu_hedge._book.fitted_surface`. Hedge trades follow the BS delta.

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

    ``exercise``: ``"column"`` (default: the book's optional ``exercise`` column, European where there
    is none; see :mod:`gpu_hedge._book.schema`), or ``"european"`` / ``"american"`` for every row.
    American rows are priced by the Andersen-Lake-Offengelt method (``gh.greeks(..., exercise="american")``)
    in the Greeks and in every ladder scenario (one American revaluation per scenario).

    ``dividends``: an optional table of cash dividends per underlying (``underlying``, ``amount``
    and ``ex_date`` or ``ex_years``; :mod:`gpu_hedge._book.dividend_table`). ``bsm`` rows whose
    underlying pays one in ``(0, T]`` are priced by the escrowed-dividend model, Greeks in the
    quoted spot (``gh.greeks(..., dividends=)``): European rows in closed form with the volatility
    adjustment ``vol_adjust`` (default ``"beneder_vorst"``; ``"none"``, ``"simple"``), American rows
    on the Crank-Nicolson grid (about 10^2 rows/s per core for the Greeks: the job's slow rows).
    A row whose dividends before expiry are worth its spot or more is invalid.

    ``american_method``: the ALO scheme of American rows without dividends, ``"alo"`` (default,
    within 1e-8 of the converged scheme), ``"alo-fast"`` (~4e-7, about 3x faster: ample for risk)
    or ``"alo-reference"``; it is part of the resume manifest's market hash.
    """
    t_start = time.perf_counter()
    if on_invalid not in ("raise", "skip"):
        raise ValueError(f"on_invalid = {on_invalid!r} must be 'raise' or 'skip'")
    if exercise not in EXERCISE_OPTIONS:
        raise ValueError(f"exercise = {exercise!r} must be one of {', '.join(map(repr, EXERCISE_OPTIONS))}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype = {dtype!r} must be 'float32' or 'float64'")
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else int(chunk_rows)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows = {chunk_rows} must be >= 1")
    scenarios = Scenarios.coerce(scenarios)
    bk = get_backend(backend)
    mkt = read_market(market, vol_surface, sticky, dividends, valuation_date, vol_adjust, american_method)
    src = open_book(book, chunk_rows, on_invalid)
    keep = (out is None) if keep_positions is None else bool(keep_positions)
    params = {
        "scenarios": None if scenarios is None else [list(scenarios.spot_shocks), list(scenarios.vol_shocks)],
        "dtype": dtype, "chunk_rows": chunk_rows, "valuation_date": None if valuation_date is None else str(valuation_date),
        "on_invalid": on_invalid, "exercise": exercise,
    }  # fmt: skip
    store = PartStore(Path(out), book, mkt, params) if out is not None else None

    results: list[PartResult] = []
    resumed = 0
    redone: list[str] = []
    rows_done = 0

    def add(part: PartResult) -> None:
        nonlocal rows_done
        results.append(part)
        rows_done += part.rows
        if progress is not None:
            progress(rows_done, src.total)

    def finish(part: PartResult) -> None:
        if len(part.invalid) and on_invalid == "raise":
            raise BookError(
                f"book {src.source}: {len(part.invalid)} invalid row(s) in rows {part.index * chunk_rows:,}-"
                f"{part.index * chunk_rows + part.rows - 1:,} (use on_invalid='skip' / --on-invalid skip to set them aside):\n"
                f"{describe_invalid(part.invalid)}"
            )
        if store is not None:
            store.save(part)
            if not keep:
                part.positions = EMPTY_POSITIONS
        add(part)

    # a Dask worker gets the backend's name (it asks get_backend there); this module's DEDUPE_BELOW is the netting threshold
    run_args = (mkt, valuation_date, scenarios, bk.name if dask is not None else bk, dtype, keep or store is not None, src.duplicates,
                src.text_ok, DEDUPE_BELOW, exercise)  # fmt: skip
    pending: list[Any] = []
    try:
        for index, frame in enumerate(src.partitions):
            if store is not None:
                done, why = store.resume(index, keep)
                if done is not None:
                    resumed += 1
                    results.append(done)
                    rows_done += done.rows
                    continue
                if why is not None:  # found done but not as written: compute it again
                    redone.append(f"partition {index}: {why}")
                    log.warning("risk job %s: partition %d (from row %s) is redone: %s", out, index, f"{index * chunk_rows:,}", why)
            if dask is None:
                finish(process_partition_safely(index, frame, index * chunk_rows, *run_args))
            else:
                pending.append(dask.submit(process_partition_safely, index, frame, index * chunk_rows, *run_args, pure=False))
                if len(pending) >= 2 * max(1, len(dask.scheduler_info().get("workers", {})) or 1):
                    finish(pending.pop(0).result())
        for fut in pending:
            finish(fut.result())
    finally:  # a partition whose files were written is recorded even when the job stops (an error, a kill by exception)
        if store is not None:
            store.close()
    results.sort(key=lambda p: p.index)
    t_compute = time.perf_counter() - t_start
    return _assemble(results, mkt, scenarios, bk, out, keep, hedges, strategy, costs, lot_size, src.source, resumed, t_start, t_compute,
                     redone)  # fmt: skip


def _assemble(
    results: list[PartResult], mkt: Market, scenarios: Scenarios | None, bk: Backend, out: Path | None, keep: bool, hedges: Any,
    strategy: Any, costs: Any, lot_size: float | None, source: str, resumed: int, t_start: float, t_compute: float,
    redone: Sequence[str] = (),
) -> RiskResult:  # fmt: skip
    """The job's result from the partitions' (in partition order): totals, tables, trades, summary,
    and with ``out`` the output files and ``summary.json``."""
    sums, ladder_sum = total(results, mkt.size, scenarios.size if scenarios else 0, len(sum_names(mkt.smile)))  # in partition order
    by = by_underlying_frame(sums, mkt)
    ladder = ladder_frame(ladder_sum, scenarios, mkt, sums[0] > 0)
    trades = hedge_trades(by, hedges, strategy, costs, lot_size)
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
        "dividends": None
        if mkt.dividends is None
        else {"underlyings": int((mkt.dividends.amounts > 0).any(axis=1).sum()), "vol_adjust": mkt.dividends.vol_adjust},
        "backend": bk.name,
        "device": bk.device,
        "versions": _versions(),
        "timings": {"compute_s": round(t_compute, 3), "partition_s_sum": round(sum(p.seconds for p in results), 3)},
    }
    result = RiskResult(positions, by, ladder, trades, invalid, summary)
    if out is not None:
        t0 = time.perf_counter()
        write_outputs(Path(out), results, by, ladder, trades, invalid, empty_positions(mkt.smile))
        summary["timings"]["write_s"] = round(time.perf_counter() - t0, 3)
        summary["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
        write_json(summary, Path(out) / "summary.json")
    else:
        summary["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
    return result


def _versions() -> dict[str, str]:
    """The versions of gpu_hedge, Python and the table libraries, for the summary."""
    import numpy
    import pyarrow

    from .. import __version__

    return {"gpu_hedge": __version__, "python": platform.python_version(), "numpy": numpy.__version__, "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__}  # fmt: skip
