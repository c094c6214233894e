"""The large-book risk job from the shell: ``demo`` (on a synthetic book), ``generate-book`` and ``risk``."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from .._backends import BackendUnavailableError
from ._common import BACKEND_OPTION, DTYPE_OPTION, ProgressBar, app, backend_or_fail, console, fail, make_table


@app.command()
def demo(
    n: int = typer.Option(1_000_000, "--n", min=1, help="Number of positions in the synthetic book."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic book."),
    backend: str = BACKEND_OPTION,
    dtype: str = DTYPE_OPTION,
) -> None:
    """Generate a synthetic book shaped like a real index chain and run the risk job on it: Greeks per
    underlying, the 9 x 5 spot/vol ladder and the delta-hedge trades."""
    from .._book import Scenarios, generate_book, risk

    if dtype not in ("float32", "float64"):
        fail(f"--dtype {dtype!r}: expected float64 or float32")
    bk = backend_or_fail(backend)

    valuation_date = "2026-01-02"
    with console.status(f"Generating a book of {n:,} positions (seed {seed})..."):
        t0 = time.perf_counter()
        book, market = generate_book(n, seed=seed, valuation_date=valuation_date)
        gen_s = time.perf_counter() - t0
    scenarios = Scenarios.default()
    jit = "jit" in bk.capabilities
    warm_s = 0.0
    kw: dict[str, Any] = dict(scenarios=scenarios, backend=bk, dtype=dtype, valuation_date=valuation_date, keep_positions=False)
    try:
        if not jit:  # load (or, first time after install, compile) the NumPy backend's Numba kernels untimed
            t0 = time.perf_counter()
            risk(book.iloc[:1000], market, **kw)
            warm_s = time.perf_counter() - t0
        with ProgressBar(True, f"Risk job on {bk.name}") as progress:
            t0 = time.perf_counter()
            res = risk(book, market, **kw, progress=progress)
            job_s = time.perf_counter() - t0
    except (BackendUnavailableError, ValueError) as exc:
        fail(str(exc), 1)

    by = res.by_underlying
    console.print(
        f"[bold]gpu-hedge demo[/]: {n:,} positions on {len(by)} underlyings (seed {seed}, valued {valuation_date}), "
        f"backend [bold]{bk.name}[/] on {escape(bk.device)}, {dtype}, BSM"
    )
    totals = (
        ("Position value", f"{by['value'].sum():,.2f}", "$"),
        ("Dollar delta", f"{float(by['dollar_delta'].sum()):,.2f}", "$ (delta x spot)"),
        ("Dollar gamma (1%)", f"{by['dollar_gamma_1pct'].sum():,.2f}", "$ of dollar delta per 1% move"),
        ("Vega per vol point", f"{by['vega_per_point'].sum():,.2f}", "$ per 0.01 of vol"),
        ("Theta per day", f"{by['theta_per_day'].sum():,.2f}", "$ per calendar day"),
        ("Rho", f"{by['rho'].sum():,.2f}", "$ per 1.00 of rate"),
    )
    title = "Book totals (sum over positions of quantity x multiplier x per-option value)"
    console.print(make_table(title, ("quantity", "total", "units"), totals, left=(0, 2)))
    console.print(_underlying_table(by, top=10))
    largest = str(by["positions"].idxmax())
    console.print(_ladder_table(res.ladder, largest, int(by.loc[largest, "positions"])))
    console.print(_trades_table(res.trades, top=10))
    rate = n / job_s if job_s > 0 else float("inf")
    console.print(
        f"Timings: book generated in {gen_s:.2f} s; risk job {job_s:.2f} s = [bold]{rate:,.0f} positions/s[/] "
        f"(validation, price + 5 Greeks, {scenarios.size} full revaluations per position, sums by underlying, hedge trades"
        f"{'; includes JIT compilation' if jit else f'; after a {warm_s:.2f} s warm-up on 1,000 positions loading the kernels'})."
    )


@app.command("generate-book")
def generate_book_cmd(
    positions: int = typer.Option(1_000_000, "--positions", min=0, help="Number of positions (rows)."),
    underlyings: int = typer.Option(50, "--underlyings", min=1, help="Number of underlyings."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same arguments give the same book."),
    out: str = typer.Option(..., "--out", help="Output directory (created): book.parquet and market.csv go there."),
    valuation_date: str = typer.Option("2026-01-02", "--valuation-date", help="The date the expiries are listed from (YYYY-MM-DD)."),
) -> None:
    """Write a seeded synthetic book shaped like a real index chain (OUT/book.parquet) and its market data (OUT/market.csv)."""
    from .._book import generate_book, write_book

    try:
        t0 = time.perf_counter()
        with console.status(f"Generating {positions:,} positions on {underlyings} underlyings (seed {seed})..."):
            book, market = generate_book(positions, underlyings, seed=seed, valuation_date=valuation_date)
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            book_path, market_path = write_book(book, market, out)
            write_s = time.perf_counter() - t0
    except (ValueError, OSError) as exc:
        fail(str(exc), 1)
    puts = int((book["option_type"] == "P").sum())
    console.print(
        f"[bold]gpu-hedge generate-book[/]: {len(book):,} positions ({puts:,} puts, {len(book) - puts:,} calls, "
        f"{int(book['vol'].isna().sum()):,} without a vol) on {book['underlying'].nunique()} underlyings, "
        f"{book['expiry'].nunique()} expiries, valued {valuation_date}, seed {seed}; generated in {gen_s:.2f} s, written in {write_s:.2f} s"
    )
    console.print(f"Wrote {escape(str(book_path))} and {escape(str(market_path))}")
    nxt = f"gpu-hedge risk {book_path} --market {market_path} --valuation-date {valuation_date} --out risk-out"
    console.print(f"Next: {escape(nxt)}")


@app.command("risk")
def risk_cmd(
    book: str = typer.Argument(..., help="The book: .parquet or .csv (schema: gpu_hedge._book.schema)."),
    market: str = typer.Option(..., "--market", help="Market data: .csv or .parquet (underlying, spot, vol, rate, div)."),
    out: str = typer.Option(
        ..., "--out", help="Output directory: positions, by_underlying, ladder, trades, invalid (.parquet), summary.json."
    ),
    backend: str = BACKEND_OPTION,
    dtype: str = DTYPE_OPTION,
    scenarios: str = typer.Option(
        "default",
        "--scenarios",
        help="'default' (spot +-20% by 5 x vol +-10 pt by 5), 'none', or a spec like spot=-0.2:0.2:0.05,vol=-0.1;0;0.1.",
    ),  # fmt: skip
    hedges: str | None = typer.Option(None, "--hedges", help="Current hedges: CSV/Parquet of underlying, holding (shares)."),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", min=1, help="Rows per partition (default 1,000,000)."),
    dask_workers: int | None = typer.Option(None, "--dask-workers", min=1, help="Run partitions on a local Dask cluster of N processes."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run partitions on the Dask cluster at this address."),
    on_invalid: str = typer.Option(
        "raise", "--on-invalid", help="raise: stop at the first bad row; skip: set bad rows aside in invalid.parquet."
    ),
    valuation_date: str | None = typer.Option(
        None, "--valuation-date", help="Valuation date (YYYY-MM-DD); needed when expiry holds dates."
    ),
    vol_surface: str | None = typer.Option(
        None,
        "--vol-surface",
        help="For positions without a vol: vol grids (.csv/.parquet: underlying, expiry_years, strike, vol) or a fitted surface "
        "(.parquet from `gpu-hedge surface --out`; its groups name the underlyings).",
    ),
    sticky: str = typer.Option(
        "strike", "--sticky", help="How surface vols move with spot in the ladder and shadow delta: strike or moneyness."
    ),
    strategy: str = typer.Option("periodic", "--strategy", help="periodic (back to delta-neutral) or band (trade only outside the band)."),
    band: float = typer.Option(0.05, "--band", min=0.0, help="band: no-trade half-width as a fraction of |book delta|."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (there is none off a terminal anyway)."),
    exercise: str = typer.Option(
        "column", "--exercise", help="column (the book's exercise column, European without one), european or american for every row."
    ),
    dividends: str | None = typer.Option(
        None, "--dividends", help="Cash dividends: .csv/.parquet of underlying, amount and ex_date (needs --valuation-date) or ex_years."
    ),
    vol_adjust: str | None = typer.Option(
        None, "--vol-adjust", help="With --dividends: the escrowed model's vol adjustment, beneder_vorst (default), simple or none."
    ),
    american_method: str = typer.Option(
        "alo", "--american-method", help="ALO scheme of American rows: alo (1e-8, default), alo-fast (~4e-7, ~3x faster) or alo-reference."
    ),
) -> None:
    """Run the large-book risk job: per-position Greeks, exposures per underlying, the scenario ladder and hedge trades."""
    from .._book import BookError, risk
    from .._hedging import DeltaBand, Periodic

    if dask_workers is not None and scheduler is not None:
        fail("give --dask-workers or --scheduler, not both")
    if strategy.lower() not in ("periodic", "band"):
        fail(f"--strategy {strategy!r}: expected periodic or band")
    strat = Periodic() if strategy.lower() == "periodic" else DeltaBand(band, relative=True)
    spec: str | None = None if scenarios.strip().lower() == "none" else scenarios.strip()
    bk = backend_or_fail(backend, 1)

    with contextlib.ExitStack() as stack:
        client = _dask_client(stack, dask_workers, scheduler)
        try:
            with ProgressBar(not no_progress, f"Risk job on {bk.name}") as progress:
                t0 = time.perf_counter()
                res = risk(book, market, scenarios=spec, backend=bk, dtype=dtype, chunk_rows=chunk_rows, valuation_date=valuation_date,
                           on_invalid=on_invalid, vol_surface=vol_surface, sticky=sticky, hedges=hedges, strategy=strat, out=out,
                           dask=client, progress=progress, exercise=exercise.lower(), dividends=dividends,
                           vol_adjust=vol_adjust, american_method=american_method.lower())  # fmt: skip
                job_s = time.perf_counter() - t0
        except (BookError, ValueError, OSError, BackendUnavailableError) as exc:
            fail(str(exc), 1)
        where = f"on {len(client.scheduler_info().get('workers', {}))} Dask workers" if client is not None else "in process"

    s = res.summary
    console.print(
        f"[bold]gpu-hedge risk[/]: {escape(str(book))}: {s['rows_read']:,} rows read, {s['rows_valid']:,} valid, "
        f"{s['rows_invalid']:,} invalid; {s['partitions']} partition(s) ({s['partitions_resumed']} resumed{_redone(s)}) {where}; "
        f"backend [bold]{bk.name}[/], {dtype}; {s['scenarios']} scenarios; {job_s:.2f} s "
        f"({s['rows_read'] / job_s if job_s > 0 else float('inf'):,.0f} positions/s)"
    )
    if s["rows_invalid"]:
        console.print(f"[yellow]{s['rows_invalid']:,} invalid row(s) set aside[/] (first ones; all in invalid.parquet):")
        for r in res.invalid.head(5).itertuples():
            console.print(f"  position_id {escape(str(r.position_id))} (row {r.row}): {escape(str(r.column))} = {escape(str(r.value))}: "
                          f"{escape(str(r.reason))}")  # fmt: skip
    console.print(_underlying_table(res.by_underlying, top=10))
    if len(res.trades):
        console.print(_trades_table(res.trades, top=10))
    names = ["positions.parquet", "by_underlying.parquet", "ladder.parquet", "trades.parquet", "invalid.parquet", "summary.json"]
    console.print(f"Wrote to {escape(str(out))}: " + ", ".join(names))


def _dask_client(stack: contextlib.ExitStack, dask_workers: int | None, scheduler: str | None) -> Any:
    """The Dask client ``--dask-workers`` / ``--scheduler`` ask for (closed with ``stack``), or None for neither."""
    if dask_workers is None and scheduler is None:
        return None
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        fail("--dask-workers / --scheduler need Dask: pip install 'gpu_hedge[dask]'", 1)
    try:
        if scheduler is not None:
            return stack.enter_context(Client(scheduler))
        with console.status(f"Starting a local Dask cluster of {dask_workers} worker processes..."):
            cluster = stack.enter_context(
                LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True, dashboard_address=None)
            )
            return stack.enter_context(Client(cluster))
    except (OSError, TimeoutError, ValueError) as exc:
        fail(f"cannot start or reach the Dask cluster: {exc}", 1)


def _redone(summary: dict[str, Any]) -> str:
    """The ", N redone: why" of the summary line: partitions a resume found damaged or stale and computed again."""
    if not summary.get("partitions_redone"):
        return ""
    return f", {summary['partitions_redone']} redone: " + escape("; ".join(summary.get("redone", [])))


# --- the tables of the risk job's results ------------------------------------------------------------


def _compact(x: float) -> str:
    """A number in at most about 8 characters: 1.23bn, -45.6M, 7.89k, 12.34."""
    a = abs(x)
    for scale, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{x / scale:,.2f}{suffix}"
    return f"{x:,.2f}"


def _underlying_table(by: Any, top: int = 10) -> Table:
    """The ``top`` underlyings by |dollar delta|, with the book's totals as the footer."""
    order = by["dollar_delta"].abs().sort_values(ascending=False, kind="stable").index
    shown = by.loc[order[:top]]
    t = Table(title=f"Top {min(top, len(by))} of {len(by)} underlyings by |dollar delta| ($)", show_footer=len(by) > 0)
    cols = (("underlying", "Total"), ("positions", f"{int(by['positions'].sum()):,}"), ("spot", ""),
            ("value", _compact(by["value"].sum())), ("$delta", _compact(by["dollar_delta"].sum())),
            ("$gamma 1%", _compact(by["dollar_gamma_1pct"].sum())), ("vega/pt", _compact(by["vega_per_point"].sum())),
            ("theta/day", _compact(by["theta_per_day"].sum())))  # fmt: skip
    for name, footer in cols:
        t.add_column(name, footer=footer, justify="left" if name == "underlying" else "right")
    for u, r in shown.iterrows():
        t.add_row(escape(str(u)), f"{int(r['positions']):,}", f"{r['spot']:,.2f}", _compact(r["value"]), _compact(r["dollar_delta"]),
                  _compact(r["dollar_gamma_1pct"]), _compact(r["vega_per_point"]), _compact(r["theta_per_day"]))  # fmt: skip
    return t


def _ladder_table(ladder: Any, underlying: str, positions: int) -> Table:
    """The spot x vol P&L grid of one underlying."""
    grid = ladder[ladder["underlying"] == underlying].pivot_table(index="spot_shock", columns="vol_shock", values="pnl", aggfunc="sum")
    title = f"P&L ladder of {escape(underlying)} ({positions:,} positions; $, full revaluation)"
    columns = ["spot \\ vol", *(f"{v * 100:+.0f} pt" for v in grid.columns)]
    rows = ((f"{s * 100:+.0f}%", *(_compact(x) for x in row.to_numpy())) for s, row in grid.iterrows())
    return make_table(title, columns, rows, left=())


def _trades_table(trades: Any, top: int = 10) -> Table:
    """The ``top`` proposed hedge trades by |notional|."""
    order = trades["trade_notional"].abs().sort_values(ascending=False, kind="stable").index if len(trades) else trades.index
    more = f" (top {top} of {len(trades)} by |notional|)" if len(trades) > top else ""
    columns = ("underlying", "book delta (sh)", "holding (sh)", "trade (sh)", "notional ($)", "cost ($)")
    rows = []
    for u in order[:top]:
        r = trades.loc[u]
        rows.append((escape(str(u)), f"{r['exposure']:,.0f}", f"{r['holding']:,.0f}", f"{r['trade']:+,.0f}", _compact(r["trade_notional"]),
                     f"{r['cost']:,.2f}"))  # fmt: skip
    return make_table(f"Proposed hedge trades in the underlying{more}", columns, rows)
