"""The ``gpu-hedge`` command (Typer + Rich). Thin: the maths lives in ``gpu_hedge._pricing`` and ``gpu_hedge._book``."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from ._backends import BACKEND_NAMES, BackendUnavailableError, get_backend

app = typer.Typer(
    name="gpu-hedge",
    help="Greeks of very large options books and dynamic hedging, fast on a GPU and correct on any CPU.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # run() turns an unexpected error into one line; --debug shows the traceback
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


#: set by ``--debug`` (or GPU_HEDGE_DEBUG=1): errors come with their full traceback
_STATE = {"debug": os.environ.get("GPU_HEDGE_DEBUG", "").strip().lower() in ("1", "true", "yes")}


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr and exit ``code``; with ``--debug``, the traceback of the error being handled first."""
    if _STATE["debug"] and sys.exc_info()[0] is not None:
        err_console.print_exception()
    # soft_wrap: no line breaks inserted into the message (paths and values stay copyable)
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def run() -> None:
    """The ``gpu-hedge`` console script: :data:`app`, with any error not already reported turned into one
    line on stderr (its type and message) and exit status 1; ``--debug`` (or GPU_HEDGE_DEBUG=1) re-raises it
    with the full traceback."""
    try:
        app(prog_name="gpu-hedge")
    except Exception as exc:
        if _STATE["debug"]:
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        err_console.print(
            f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(message)} (run 'gpu-hedge --debug ...' for the traceback)",
            soft_wrap=True,
        )
        sys.exit(1)


def _version(value: bool) -> None:
    if value:
        console.print(f"gpu_hedge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error (also: GPU_HEDGE_DEBUG=1)."),
) -> None:
    """Greeks of very large options books and dynamic hedging, fast on a GPU and correct on any CPU."""
    if debug:
        _STATE["debug"] = True


@app.command()
def backends() -> None:
    """List the backends, whether each can run here (with the reason where not), which one "auto" picks,
    and where the compiled CPU kernels are cached. Never fails on a backend that cannot start: any error
    starting one is its reason."""
    from cpu_fallback._jit import cache_dir

    table = Table(title="gpu_hedge backends")
    table.add_column("backend")
    table.add_column("usable")
    table.add_column("device / reason")
    for name in BACKEND_NAMES:
        try:
            bk = get_backend(name)
            table.add_row(name, "[green]yes[/]", escape(bk.device))
        except BackendUnavailableError as exc:
            table.add_row(name, "[red]no[/]", escape(str(exc)))
        except Exception as exc:  # a backend that is installed but fails to start is "no", with why
            table.add_row(name, "[red]no[/]", escape(f"{type(exc).__name__}: {exc}"))
    console.print(table)
    where = cache_dir()
    console.print(f"compiled CPU kernels cached in: {escape(str(where)) if where else 'nowhere (GPU_HEDGE_CACHE_DIR is off)'}")
    try:
        auto = get_backend("auto")
        console.print(f'"auto" picks: [bold]{auto.name}[/] on {escape(auto.device)}')
    except Exception as exc:  # e.g. GPU_HEDGE_BACKEND names no backend
        _fail(f'"auto" cannot pick a backend: {exc}', 1)


@app.command()
def demo(
    n: int = typer.Option(1_000_000, "--n", min=1, help="Number of positions in the synthetic book."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic book."),
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
    dtype: str = typer.Option("float64", "--dtype", help="float64 or float32."),
) -> None:
    """Generate a synthetic book shaped like a real index chain and run the risk job on it: Greeks per
    underlying, the 9 x 5 spot/vol ladder and the delta-hedge trades."""
    from ._book import Scenarios, generate_book, risk

    if dtype not in ("float32", "float64"):
        _fail(f"--dtype {dtype!r}: expected float64 or float32")
    try:
        bk = get_backend(backend)
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc))

    valuation_date = "2026-01-02"
    with console.status(f"Generating a book of {n:,} positions (seed {seed})..."):
        t0 = time.perf_counter()
        book, market = generate_book(n, seed=seed, valuation_date=valuation_date)
        gen_s = time.perf_counter() - t0
    scenarios = Scenarios.default()
    jit = "jit" in bk.capabilities
    warm_s = 0.0
    try:
        if not jit:  # load (or, first time after install, compile) the NumPy backend's Numba kernels untimed
            t0 = time.perf_counter()
            kw = dict(scenarios=scenarios, backend=bk, dtype=dtype, valuation_date=valuation_date, keep_positions=False)
            risk(book.iloc[:1000], market, **kw)
            warm_s = time.perf_counter() - t0
        with _progress(True, f"Risk job on {bk.name}") as progress:
            t0 = time.perf_counter()
            res = risk(book, market, scenarios=scenarios, backend=bk, dtype=dtype, valuation_date=valuation_date,
                       keep_positions=False, progress=progress)  # fmt: skip
            job_s = time.perf_counter() - t0
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc), 1)

    by = res.by_underlying
    console.print(
        f"[bold]gpu-hedge demo[/]: {n:,} positions on {len(by)} underlyings (seed {seed}, valued {valuation_date}), "
        f"backend [bold]{bk.name}[/] on {escape(bk.device)}, {dtype}, BSM"
    )
    t = Table(title="Book totals (sum over positions of quantity x multiplier x per-option value)")
    t.add_column("quantity")
    t.add_column("total", justify="right")
    t.add_column("units")
    dd = float((by["dollar_delta"]).sum())
    t.add_row("Position value", f"{by['value'].sum():,.2f}", "$")
    t.add_row("Dollar delta", f"{dd:,.2f}", "$ (delta x spot)")
    t.add_row("Dollar gamma (1%)", f"{by['dollar_gamma_1pct'].sum():,.2f}", "$ of dollar delta per 1% move")
    t.add_row("Vega per vol point", f"{by['vega_per_point'].sum():,.2f}", "$ per 0.01 of vol")
    t.add_row("Theta per day", f"{by['theta_per_day'].sum():,.2f}", "$ per calendar day")
    t.add_row("Rho", f"{by['rho'].sum():,.2f}", "$ per 1.00 of rate")
    console.print(t)
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


# --- the large-book risk job ---------------------------------------------------------------------------


def _compact(x: float) -> str:
    """A number in at most about 8 characters: 1.23bn, -45.6M, 7.89k, 12.34."""
    a = abs(x)
    for scale, suffix in ((1e12, "tn"), (1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{x / scale:,.2f}{suffix}"
    return f"{x:,.2f}"


def _underlying_table(by: Any, top: int = 10) -> Table:
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
    sub = ladder[ladder["underlying"] == underlying]
    grid = sub.pivot_table(index="spot_shock", columns="vol_shock", values="pnl", aggfunc="sum")
    t = Table(title=f"P&L ladder of {escape(underlying)} ({positions:,} positions; $, full revaluation)")
    t.add_column("spot \\ vol", justify="right")
    for v in grid.columns:
        t.add_column(f"{v * 100:+.0f} pt", justify="right")
    for s, row in grid.iterrows():
        t.add_row(f"{s * 100:+.0f}%", *(_compact(x) for x in row.to_numpy()))
    return t


def _trades_table(trades: Any, top: int = 10) -> Table:
    order = trades["trade_notional"].abs().sort_values(ascending=False, kind="stable").index if len(trades) else trades.index
    more = f" (top {top} of {len(trades)} by |notional|)" if len(trades) > top else ""
    t = Table(title=f"Proposed hedge trades in the underlying{more}")
    for col in ("underlying", "book delta (sh)", "holding (sh)", "trade (sh)", "notional ($)", "cost ($)"):
        t.add_column(col, justify="left" if col == "underlying" else "right")
    for u in order[:top]:
        r = trades.loc[u]
        t.add_row(escape(str(u)), f"{r['exposure']:,.0f}", f"{r['holding']:,.0f}", f"{r['trade']:+,.0f}", _compact(r["trade_notional"]),
                  f"{r['cost']:,.2f}")  # fmt: skip
    return t


class _progress:
    """A Rich progress bar fed by the risk job's ``progress(rows_done, rows_total)`` callback, or
    nothing when not on a terminal (or disabled); use as ``with _progress(on, label) as cb: risk(..., progress=cb)``."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.bar = None
        if enabled and console.is_terminal:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                TextColumn("{task.completed:,.0f} rows"), TimeElapsedColumn(), console=console, transient=True)  # fmt: skip
            self.task = self.bar.add_task(label, total=None)

    def __enter__(self) -> Any:
        if self.bar is None:
            return None
        self.bar.__enter__()
        return self.update

    def update(self, done: int, total: int | None) -> None:
        assert self.bar is not None
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@app.command("generate-book")
def generate_book_cmd(
    positions: int = typer.Option(1_000_000, "--positions", min=0, help="Number of positions (rows)."),
    underlyings: int = typer.Option(50, "--underlyings", min=1, help="Number of underlyings."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same arguments give the same book."),
    out: str = typer.Option(..., "--out", help="Output directory (created): book.parquet and market.csv go there."),
    valuation_date: str = typer.Option("2026-01-02", "--valuation-date", help="The date the expiries are listed from (YYYY-MM-DD)."),
) -> None:
    """Write a seeded synthetic book shaped like a real index chain (OUT/book.parquet) and its market data (OUT/market.csv)."""
    from ._book import generate_book, write_book

    try:
        t0 = time.perf_counter()
        with console.status(f"Generating {positions:,} positions on {underlyings} underlyings (seed {seed})..."):
            book, market = generate_book(positions, underlyings, seed=seed, valuation_date=valuation_date)
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            book_path, market_path = write_book(book, market, out)
            write_s = time.perf_counter() - t0
    except (ValueError, OSError) as exc:
        _fail(str(exc), 1)
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
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
    dtype: str = typer.Option("float64", "--dtype", help="float64 or float32."),
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
        None, "--vol-surface", help="Vol grids: .csv or .parquet (underlying, expiry_years, strike, vol) for positions without a vol."
    ),
    strategy: str = typer.Option("periodic", "--strategy", help="periodic (back to delta-neutral) or band (trade only outside the band)."),
    band: float = typer.Option(0.05, "--band", min=0.0, help="band: no-trade half-width as a fraction of |book delta|."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (there is none off a terminal anyway)."),
) -> None:
    """Run the large-book risk job: per-position Greeks, exposures per underlying, the scenario ladder and hedge trades."""
    from ._book import BookError, risk
    from ._hedging import DeltaBand, Periodic

    if dask_workers is not None and scheduler is not None:
        _fail("give --dask-workers or --scheduler, not both")
    if strategy.lower() not in ("periodic", "band"):
        _fail(f"--strategy {strategy!r}: expected periodic or band")
    strat = Periodic() if strategy.lower() == "periodic" else DeltaBand(band, relative=True)
    spec: str | None = None if scenarios.strip().lower() == "none" else scenarios.strip()
    try:
        bk = get_backend(backend)
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc), 1)

    import contextlib

    with contextlib.ExitStack() as stack:
        client = None
        if dask_workers is not None or scheduler is not None:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                _fail("--dask-workers / --scheduler need Dask: pip install 'gpu_hedge[dask]'", 1)
            try:
                if scheduler is not None:
                    client = stack.enter_context(Client(scheduler))
                else:
                    with console.status(f"Starting a local Dask cluster of {dask_workers} worker processes..."):
                        cluster = stack.enter_context(
                            LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True, dashboard_address=None)
                        )
                        client = stack.enter_context(Client(cluster))
            except (OSError, TimeoutError, ValueError) as exc:
                _fail(f"cannot start or reach the Dask cluster: {exc}", 1)
        try:
            with _progress(not no_progress, f"Risk job on {bk.name}") as progress:
                t0 = time.perf_counter()
                res = risk(book, market, scenarios=spec, backend=bk, dtype=dtype, chunk_rows=chunk_rows, valuation_date=valuation_date,
                           on_invalid=on_invalid, vol_surface=vol_surface, hedges=hedges, strategy=strat, out=out, dask=client,
                           progress=progress)  # fmt: skip
                job_s = time.perf_counter() - t0
        except (BookError, ValueError, OSError, BackendUnavailableError) as exc:
            _fail(str(exc), 1)
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


def _redone(summary: dict[str, Any]) -> str:
    """The ", N redone: why" of the summary line: partitions a resume found damaged or stale and computed again."""
    if not summary.get("partitions_redone"):
        return ""
    return f", {summary['partitions_redone']} redone: " + escape("; ".join(summary.get("redone", [])))


def _div_option(value: str | None) -> float | str | None:
    if value is None or value in ("vendor", "implied"):
        return None if value in (None, "vendor") else value
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected 'vendor', 'implied' or a number such as 0.015") from None


@app.command()
def quotes(
    path: str = typer.Argument(..., help="Quote file: a CBOE chain export or an end-of-day vendor file."),
    layout: str = typer.Option("auto", "--layout", help="auto, cboe, spxw-eod or agilent."),
    out: str | None = typer.Option(None, "--out", help="Write the per-contract table here: .parquet or .csv."),
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
    rate: float | None = typer.Option(None, "--rate", help="Rate, decimal, continuously compounded (default: the vendor's)."),
    div: str | None = typer.Option(
        None, "--div", help="Dividend yield: a number, 'implied' (per expiry, put-call parity) or 'vendor' (default)."
    ),
    all_greeks: bool = typer.Option(False, "--all-greeks", help="All 17 Greeks instead of price, delta, gamma, vega, theta, rho."),
) -> None:
    """Read a quote file, solve implied vols from mid, bid and ask, and compute our Greeks per contract."""
    from ._book import STANDARD_GREEKS, quote_greeks, read_quotes

    suffix = out.rsplit(".", 1)[-1].lower() if out else None
    if out and suffix not in ("parquet", "csv"):
        _fail(f"--out {out}: the extension must be .parquet or .csv")
    try:
        bk = get_backend(backend)
        df = read_quotes(path, layout)
        with console.status(f"Solving implied vols for {len(df):,} contracts on {bk.name}..."):
            table, summary = quote_greeks(df, rate, _div_option(div), greeks=None if all_greeks else STANDARD_GREEKS, backend=bk)
    except (BackendUnavailableError, ValueError, OSError) as exc:
        _fail(str(exc))

    attrs = table.attrs
    console.print(
        f"[bold]gpu-hedge quotes[/]: {escape(str(path))} ({attrs['layout']}), backend [bold]{bk.name}[/], "
        f"rate {attrs['rate_used']:.4%}, div {escape(str(attrs['div_used']))}, T: {escape(attrs['expiry_rule'])}"
    )
    t = Table(title="Implied vols")
    for col in ("from", "quoted", "solved"):
        t.add_column(col, justify="right")
    for src, n in summary.solved.items():
        t.add_row(src, f"{int((table[src] > 0).sum()):,}", f"{n:,}")
    console.print(t)
    s = Table(title=f"Status of the mid IV ({summary.rows:,} contracts)")
    s.add_column("status")
    s.add_column("contracts", justify="right")
    for name, n in sorted(summary.status.items(), key=lambda kv: -kv[1]):
        s.add_row(escape(name), f"{n:,}")
    console.print(s)
    both = table["iv"].notna() & table["calc_iv"].notna()
    if both.any():
        diff = (table.loc[both, "calc_iv"] - table.loc[both, "iv"]).abs().median()
        console.print(f"Median |our IV - vendor IV| over {int(both.sum()):,} contracts: {diff:.2e}")
    if out:
        try:
            table.to_parquet(out, index=False) if suffix == "parquet" else table.to_csv(out, index=False)
        except (OSError, ValueError, ImportError) as exc:
            _fail(f"cannot write {out}: {exc}")
        console.print(f"Wrote {len(table):,} rows x {table.shape[1]} columns to {escape(out)}")


# --- hedging: backtest on a real series, simulate-hedge on model paths ------------------------------

_STRATEGIES = ("periodic", "band", "ww", "leland", "static", "none")


def _strategy(name: str, every: int, band: float | None, risk_aversion: float, book_units: float) -> Any:
    from ._hedging import DeltaBand, Leland, NoHedge, Periodic, StaticHedge, WhalleyWilmott

    name = name.lower()
    if name == "periodic":
        return Periodic(every=every)
    if name == "band":
        return DeltaBand(band if band is not None else 0.05 * book_units)
    if name == "ww":
        return WhalleyWilmott(risk_aversion)
    if name == "leland":
        return Leland(every=every)
    if name == "static":
        return StaticHedge()
    if name == "none":
        return NoHedge()
    raise ValueError(f"--strategy {name!r}: expected one of {', '.join(_STRATEGIES)}")


def _costs(proportional: float, per_trade: float) -> Any:
    from ._hedging import Costs

    return Costs(proportional=proportional, per_trade=per_trade)


def _write_ledger(frame: Any, path: str) -> None:
    try:
        frame.to_csv(path)
    except OSError as exc:
        _fail(f"cannot write {path}: {exc}")
    console.print(f"Wrote the ledger ({len(frame):,} dates x {frame.shape[1]} columns) to {escape(path)}")


def _plot(fn: Any, *args: Any, **kw: Any) -> None:
    try:
        out = fn(*args, **kw)
    except ImportError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write the plot: {exc}")
    console.print(f"Wrote the plot to {escape(str(out))}")


def _check_plot(plot: str | None) -> None:
    import importlib.util

    if plot and importlib.util.find_spec("matplotlib") is None:
        _fail("--plot needs matplotlib: pip install 'gpu_hedge[plot]'")


def _vol_series(path: str, dates: Any) -> Any:
    """Per-date vols from a (date, vol) CSV, as of each date (last value on or before it)."""
    return _as_of(path, dates, "--vol-series")


def _as_of(path: str, dates: Any, option: str) -> Any:
    """Values of a (date, value) CSV as of each of ``dates`` (the last on or before it)."""
    import numpy as np

    from ._hedging.prices import read_prices

    _, values, vdates = read_prices(path, allow_zero=option == "--quotes")
    idx = np.asarray(vdates.searchsorted(dates, side="right")) - 1
    if idx[0] < 0:
        raise ValueError(f"{option} {path}: its first date {vdates[0].date()} is after the backtest's start {dates[0].date()}")
    return values[idx]


def _implied_from_marks(marks: Any, spot: Any, strike: float, t: Any, rate: float, call: bool) -> Any:
    """Per-date Black-Scholes implied vols of the quoted option; dates where none exists (expiry, a
    quote at or below intrinsic) carry the last valid one forward (the first valid one backward)."""
    import numpy as np

    from . import implied_vol

    tau = t[-1] - t
    iv = np.asarray(implied_vol(marks, spot, strike, tau, rate, call=call, backend="numpy", on_invalid="nan"), dtype=np.float64)
    ok = np.isfinite(iv) & (iv > 0)
    if not ok.any():
        raise ValueError("--quotes: no date has an implied vol (every quote is at or below intrinsic value); give --vol")
    idx = np.where(ok, np.arange(iv.size), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.flatnonzero(ok)[0])
    idx[idx < 0] = first
    return iv[idx]


@app.command()
def backtest(
    prices: str = typer.Argument(..., help="CSV of daily closes (a date column and a price column), or 'wti' for the shipped WTI series."),
    strike: float | None = typer.Option(None, "--strike", help="Strike (default: the price on the start date, at the money)."),
    expiry_days: int = typer.Option(..., "--expiry-days", min=1, help="Calendar days from the start date to expiry."),
    put: bool = typer.Option(False, "--put", help="A put instead of a call."),
    quantity: float = typer.Option(-1.0, "--quantity", help="Options held (negative: written; default -1, one option sold)."),
    multiplier: float = typer.Option(1.0, "--multiplier", help="Units of the underlying per option."),
    vol: float | None = typer.Option(None, "--vol", help="Flat pricing vol, decimal (default: realised vol of the prior 60 dates)."),
    vol_series: str | None = typer.Option(None, "--vol-series", help="CSV of (date, vol) used as of each date instead of a flat vol."),
    quotes_file: str | None = typer.Option(
        None, "--quotes", help="CSV of (date, price) quotes of this option: marks per date, and (without --vol) per-date implied vols."
    ),
    rate: float = typer.Option(0.0, "--rate", help="Rate, decimal, continuously compounded."),
    strategy: str = typer.Option("periodic", "--strategy", help="periodic, band, ww, leland, static or none."),
    every: int = typer.Option(1, "--every", min=1, help="periodic / leland: rebalance every K dates."),
    band: float | None = typer.Option(None, "--band", min=0.0, help="band: half-width in shares (default 5% of |quantity x multiplier|)."),
    risk_aversion: float = typer.Option(1.0, "--risk-aversion", min=0.0, help="ww: absolute risk aversion."),
    proportional: float = typer.Option(0.0, "--proportional", min=0.0, help="Proportional cost (half-spread), fraction of notional."),
    per_trade: float = typer.Option(0.0, "--per-trade", min=0.0, help="Fixed cost per trade, currency."),
    start: str | None = typer.Option(None, "--start", help="Start date, YYYY-MM-DD (default: the latest start whose expiry fits)."),
    column: str | None = typer.Option(None, "--column", help="Price column of the CSV (default: found)."),
    date_column: str | None = typer.Option(None, "--date-column", help="Date column of the CSV (default: found)."),
    ledger: str | None = typer.Option(None, "--ledger", help="Write the per-date ledger here (CSV)."),
    plot: str | None = typer.Option(None, "--plot", help="Write a PNG of spot, P&L and holding (needs gpu_hedge[plot])."),
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
) -> None:
    """Hedge one option written on the start date along a real daily series, to expiry; print the result."""
    import pandas as pd

    from ._hedging import Option, hedge
    from ._hedging.prices import load_wti, read_prices, realised_vol, series_arrays
    from ._hedging.studies import plot_ledger

    _check_plot(plot)
    if vol is not None and vol_series is not None:
        _fail("give --vol or --vol-series, not both")
    try:
        bk = get_backend(backend)
        series = series_arrays(load_wti()) if prices.lower() == "wti" else read_prices(prices, column, date_column)
        all_t, all_p, all_d = series
        name = "WTI spot (EIA via FRED, DCOILWTICO)" if prices.lower() == "wti" else prices
        span = pd.Timedelta(days=expiry_days)
        if start is None:
            latest = all_d[-1] - span
            i0 = int(all_d.searchsorted(latest, side="right")) - 1
            if i0 < 0:
                raise ValueError(f"the series ({all_d[0].date()} ... {all_d[-1].date()}) is shorter than {expiry_days} days")
        else:
            try:
                s0 = pd.Timestamp(start)
            except ValueError:
                raise ValueError(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
            i0 = int(all_d.searchsorted(s0, side="left"))
            if i0 >= all_d.size:
                raise ValueError(f"--start {start} is after the last date of the series {all_d[-1].date()}")
        expiry_date = all_d[i0] + span
        i1 = int(all_d.searchsorted(expiry_date, side="left"))
        if i1 >= all_d.size:
            raise ValueError(
                f"expiry {expiry_date.date()} ({expiry_days} days after {all_d[i0].date()}) is after the series ends ({all_d[-1].date()})"
            )
        dates = all_d[i0 : i1 + 1]
        p = all_p[i0 : i1 + 1]
        t = all_t[i0 : i1 + 1] - all_t[i0]
        if p.size < 2:
            raise ValueError("the window holds fewer than 2 prices")
        k = float(p[0]) if strike is None else strike
        option = Option(k, float(t[-1]), call=not put, quantity=quantity, multiplier=multiplier)
        marks = None
        if quotes_file is not None:
            marks = _as_of(quotes_file, dates, "--quotes")
        if vol_series is not None:
            sigma: Any = _vol_series(vol_series, dates)
            vol_note = f"per date from {vol_series} (first {sigma[0]:.4f}, last {sigma[-1]:.4f})"
        elif marks is not None and vol is None:
            sigma = _implied_from_marks(marks, p, k, t, rate, not put)
            vol_note = f"implied from {quotes_file} per date (first {sigma[0]:.4f}, median {float(sorted(sigma)[len(sigma) // 2]):.4f})"
        elif vol is not None:
            sigma, vol_note = vol, f"{vol:.4f} (flat, --vol)"
        elif i0 >= 60:
            sigma = realised_vol(all_p[i0 - 60 : i0 + 1], all_t[i0 - 60 : i0 + 1])
            vol_note = f"{sigma:.4f} (flat: realised over the 60 dates before the start)"
        else:
            sigma = realised_vol(p, t)
            vol_note = f"{sigma:.4f} (flat: realised over the window itself, fewer than 60 prior dates; look-ahead)"
        units = abs(quantity * multiplier)
        strat = _strategy(strategy, every, band, risk_aversion, units)
        res = hedge(p, t, option, vol=sigma, rate=rate, strategy=strat, costs=_costs(proportional, per_trade), backend=bk, marks=marks)
        frame = res.ledger(0)
    except (BackendUnavailableError, ValueError, OSError) as exc:
        _fail(str(exc))

    from ._hedging.studies import strategy_name

    kind = "put" if put else "call"
    console.print(
        f"[bold]gpu-hedge backtest[/]: {escape(name)}, {dates[0].date()} -> {dates[-1].date()} ({p.size} dates), backend [bold]{bk.name}[/]"
    )
    console.print(
        f"Option: {quantity:g} x {kind} K = {k:g} (x{multiplier:g}), expiry {dates[-1].date()} ({t[-1]:.4f} y ACT/365), "
        f"vol {escape(vol_note)}, rate {rate:g}"
    )
    console.print(f"Strategy: {escape(strategy_name(strat))}; costs: proportional {proportional:g}, per trade {per_trade:g}")
    payoff = max((p[-1] - k) if not put else (k - p[-1]), 0.0) * quantity * multiplier + 0.0  # + 0.0: no "-0.0000"
    tab = Table(title="Backtest result (currency units)")
    tab.add_column("quantity")
    tab.add_column("value", justify="right")
    rows = (
        ("Spot at start / at expiry", f"{p[0]:,.4f} / {p[-1]:,.4f}"),
        ("Premium (book value at start)", f"{float(res.premium[0]):,.4f}"),
        ("Payoff at expiry (book)", f"{payoff:,.4f}"),
        ("Hedged P&L (after costs)", f"{float(res.pnl[0]):,.4f}"),
        ("Hedging error (before costs)", f"{float(res.hedging_error[0]):,.4f}"),
        ("Transaction costs", f"{float(res.costs[0]):,.4f}"),
        ("Unhedged P&L", f"{float(res.unhedged[0]):,.4f}"),
        ("Trades / turnover", f"{int(res.n_trades[0]):,} / {float(res.turnover[0]):,.2f}"),
        ("Worst mark-to-market P&L", f"{float(frame['pnl'].min()):,.4f}"),
        ("Std of daily P&L", f"{float(frame['step_pnl'].iloc[1:].std(ddof=1)) if len(frame) > 2 else float('nan'):,.4f}"),
    )
    for label, value in rows:
        tab.add_row(label, value)
    console.print(tab)
    if ledger:
        out = frame.copy()
        out.insert(0, "date", [d.date().isoformat() for d in dates])
        _write_ledger(out, ledger)
    if plot:
        _plot(plot_ledger, frame, plot, dates=dates.to_numpy(), title=f"{name}: {quantity:g} x {kind} K={k:g}, {strategy_name(strat)}")


@app.command("simulate-hedge")
def simulate_hedge(
    model: str = typer.Option("gbm", "--model", help="gbm, heston or merton."),
    paths: int = typer.Option(10_000, "--paths", min=2, help="Number of paths."),
    steps: int = typer.Option(63, "--steps", min=1, help="Rebalancing dates to expiry (the path has steps + 1 dates)."),
    vol: float = typer.Option(0.2, "--vol", min=0.0, help="Pricing (implied) vol used for the Greeks and the premium."),
    realised_vol: float | None = typer.Option(None, "--realised-vol", min=0.0, help="Vol of the simulated paths (default: --vol)."),
    spot: float = typer.Option(100.0, "--spot", min=0.0, help="Initial spot."),
    strike: float | None = typer.Option(None, "--strike", help="Strike (default: the spot)."),
    expiry: float = typer.Option(0.25, "--expiry", min=0.0, help="Expiry in years (the simulated horizon)."),
    put: bool = typer.Option(False, "--put", help="A put instead of a call."),
    quantity: float = typer.Option(-1.0, "--quantity", help="Options held (negative: written; default -1)."),
    rate: float = typer.Option(0.0, "--rate", help="Rate, decimal, continuously compounded."),
    strategy: str = typer.Option("periodic", "--strategy", help="periodic, band, ww, leland, static or none."),
    every: int = typer.Option(1, "--every", min=1, help="periodic / leland: rebalance every K steps."),
    band: float | None = typer.Option(None, "--band", min=0.0, help="band: half-width in shares (default 5% of |quantity|)."),
    risk_aversion: float = typer.Option(1.0, "--risk-aversion", min=0.0, help="ww: absolute risk aversion."),
    proportional: float = typer.Option(0.0, "--proportional", min=0.0, help="Proportional cost (half-spread), fraction of notional."),
    per_trade: float = typer.Option(0.0, "--per-trade", min=0.0, help="Fixed cost per trade, currency."),
    seed: int = typer.Option(0, "--seed", help="Seed of the paths."),
    heston_xi: float = typer.Option(0.5, "--xi", help="heston: vol of variance."),
    heston_kappa: float = typer.Option(2.0, "--kappa", help="heston: mean reversion."),
    heston_rho: float = typer.Option(-0.7, "--rho", help="heston: spot / variance correlation."),
    jump_intensity: float = typer.Option(1.0, "--jump-intensity", help="merton: jumps per year."),
    jump_mean: float = typer.Option(-0.1, "--jump-mean", help="merton: mean log jump."),
    jump_std: float = typer.Option(0.15, "--jump-std", help="merton: std of the log jump."),
    compare_: bool = typer.Option(False, "--compare", help="Also run the static and the unhedged book on the same paths."),
    frontier_: bool = typer.Option(False, "--frontier", help="Also sweep the rebalancing interval (the band width for --strategy band)."),
    plot: str | None = typer.Option(None, "--plot", help="PNG of the P&L histogram (a second *_frontier.png with --frontier)."),
    ledger: str | None = typer.Option(None, "--ledger", help="Write the per-date ledger of path 0 here (CSV)."),
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
) -> None:
    """Simulate paths (GBM, Heston or Merton), delta-hedge a written option along them, and print risk and cost."""
    import os

    from ._hedging import Option, hedge
    from ._hedging.studies import (
        compare_results,
        compare_table,
        frontier,
        plot_frontier,
        plot_pnl_histogram,
        render_compare,
        render_frontier,
        strategy_name,
    )
    from ._simulation.models import GBM, Heston, Merton
    from ._simulation.paths import simulate

    _check_plot(plot)
    sim_vol = vol if realised_vol is None else realised_vol
    k = spot if strike is None else strike
    try:
        bk = get_backend(backend)
        m = model.lower()
        if m == "gbm":
            mdl: Any = GBM(spot, sim_vol, rate=rate)
            desc = f"GBM vol {sim_vol:g}"
        elif m == "heston":
            mdl = Heston(spot, sim_vol**2, heston_kappa, sim_vol**2, heston_xi, heston_rho, rate=rate)
            desc = f"Heston v0 = theta = {sim_vol:g}^2, kappa {heston_kappa:g}, xi {heston_xi:g}, rho {heston_rho:g}"
        elif m == "merton":
            mdl = Merton(spot, sim_vol, jump_intensity, jump_mean, jump_std, rate=rate)
            desc = f"Merton vol {sim_vol:g}, {jump_intensity:g} jumps/y, log jump N({jump_mean:g}, {jump_std:g}^2)"
        else:
            raise ValueError(f"--model {model!r}: expected gbm, heston or merton")
        option = Option(k, expiry, call=not put, quantity=quantity)
        strat = _strategy(strategy, every, band, risk_aversion, abs(quantity))
        costs = _costs(proportional, per_trade)
        with console.status(f"Simulating {paths:,} x {steps} {m} paths on {bk.name}..."):
            sim = simulate(mdl, n_paths=paths, n_steps=steps, horizon=expiry, seed=seed, backend=bk)
        kw: dict[str, Any] = dict(vol=vol, rate=rate, strategy=strat, costs=costs, backend=bk)
        with console.status("Hedging..."):
            if compare_:
                results = compare_results(sim.spot, sim.times, option, **kw)
                res = results[strategy_name(strat)]
            else:
                res = hedge(sim.spot, sim.times, option, **kw)
        front = None
        if frontier_:
            fkind = "band" if strategy.lower() == "band" else "interval"
            with console.status("Sweeping the frontier..."):
                front = frontier(sim.spot, sim.times, option, vol=vol, rate=rate, costs=costs, kind=fkind, backend=bk,
                                 leland=strategy.lower() == "leland")  # fmt: skip
        frame = res.ledger(0) if ledger else None
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc))

    kind = "put" if put else "call"
    console.print(
        f"[bold]gpu-hedge simulate-hedge[/]: {escape(desc)}, {paths:,} paths x {steps} steps to T = {expiry:g} y, seed {seed}, "
        f"backend [bold]{bk.name}[/]"
    )
    console.print(
        f"Option: {quantity:g} x {kind} K = {k:g}, pricing vol {vol:g}, rate {rate:g}; strategy {escape(strategy_name(strat))}; "
        f"costs: proportional {proportional:g}, per trade {per_trade:g}"
    )
    s = res.summary()
    tab = Table(title=f"Hedged P&L over {paths:,} paths (currency units; losses positive in VaR / ES)")
    tab.add_column("statistic")
    tab.add_column("value", justify="right")
    for label, key in (("premium", "premium"), ("mean P&L", "mean"), ("std P&L", "std"), ("stderr of mean", "stderr_mean"),
                       ("VaR 95%", "var_95"), ("ES 95%", "es_95"), ("VaR 99%", "var_99"), ("ES 99%", "es_99"),
                       ("P&L p05", "p05"), ("P&L p95", "p95"), ("mean cost", "mean_cost"), ("mean trades", "mean_trades"),
                       ("mean turnover", "mean_turnover"), ("Hull ratio std/premium", "hull_ratio"),
                       ("effectiveness", "effectiveness")):  # fmt: skip
        v = s.get(key, float("nan"))
        tab.add_row(label, f"{v:,.4f}")
    console.print(tab)
    if compare_:
        console.print(render_compare(compare_table(results)))
    if front is not None:
        console.print(render_frontier(front))
    if ledger and frame is not None:
        _write_ledger(frame, ledger)
    if plot:
        _plot(plot_pnl_histogram, results if compare_ else {strategy_name(strat): res}, plot,
              title=f"Final P&L, {quantity:g} x {kind} K={k:g}, {m}")  # fmt: skip
        if front is not None:
            root, ext = os.path.splitext(plot)
            _plot(plot_frontier, front, f"{root}_frontier{ext or '.png'}")


if __name__ == "__main__":  # pragma: no cover
    app()
