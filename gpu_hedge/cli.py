"""The ``gpu-hedge`` command (Typer + Rich). Thin: the maths lives in ``gpu_hedge._pricing`` and ``gpu_hedge._book``."""

from __future__ import annotations

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
)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"gpu_hedge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Greeks of very large options books and dynamic hedging, fast on a GPU and correct on any CPU."""


@app.command()
def backends() -> None:
    """List the backends, whether each can run here, and which one "auto" picks."""
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
    console.print(table)
    try:
        auto = get_backend("auto")
        console.print(f'"auto" picks: [bold]{auto.name}[/] on {escape(auto.device)}')
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def demo(
    n: int = typer.Option(1_000_000, "--n", min=1, help="Number of options in the synthetic book."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic book."),
    backend: str = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax."),
    dtype: str = typer.Option("float64", "--dtype", help="float64 or float32."),
) -> None:
    """Build a synthetic book, compute price + delta, gamma, vega, theta, rho, and print position totals."""
    from ._book import POSITION_GREEKS, book_greeks, demo_book, totals

    try:
        bk = get_backend(backend)
    except (BackendUnavailableError, ValueError) as exc:
        _fail(str(exc))

    with console.status(f"Building a demo book of {n:,} options (seed {seed})..."):
        book = demo_book(n, seed)

    def run(rows: slice | None = None) -> dict[str, Any]:
        out = book_greeks(book, POSITION_GREEKS, backend=bk, dtype=dtype, rows=rows)
        return bk.sync(out)

    try:
        jit = "jit" in bk.capabilities
        # Warm-up: a small slice loads kernels and thread pools; a jitting backend compiles per shape,
        # so there the warm-up is a full-size call, timed apart as the compilation.
        with console.status(f"Warming up {bk.name} ({'compiling for this shape' if jit else 'small slice'})..."):
            t0 = time.perf_counter()
            run(None if jit else slice(0, min(n, 1024)))
            warm_s = time.perf_counter() - t0
        with console.status(f"Computing {len(POSITION_GREEKS)} outputs for {n:,} options on {bk.name}..."):
            t0 = time.perf_counter()
            g = run()
            calc_s = time.perf_counter() - t0
    except ValueError as exc:
        _fail(str(exc))

    with console.status("Aggregating..."):
        tot = totals(book, g, top=5)

    console.print(
        f"[bold]gpu-hedge demo[/]: backend [bold]{bk.name}[/] on {escape(bk.device)}, "
        f"N = {n:,} options, {tot.underlyings} underlyings, "
        f"seed {seed}, {dtype}, BSM"
    )

    p = tot.position
    t = Table(title="Book totals: sum of quantity x multiplier x per-option value")
    t.add_column("quantity")
    t.add_column("total", justify="right")
    t.add_column("units")
    t.add_row("Position value", f"{p['price']:,.2f}", "$")
    t.add_row("Position delta", f"{p['delta']:,.2f}", "shares")
    t.add_row("Dollar delta", f"{tot.dollar_delta:,.2f}", "$ (delta x spot)")
    t.add_row("Position gamma", f"{p['gamma']:,.2f}", "shares per $1 of spot")
    t.add_row("Position vega", f"{p['vega']:,.2f}", "$ per 1.00 of vol")
    t.add_row("  per vol point", f"{p['vega'] / 100:,.2f}", "$ per 0.01 of vol")
    t.add_row("Position theta", f"{p['theta']:,.2f}", "$ per year")
    t.add_row("  per day", f"{p['theta'] / 365:,.2f}", "$ per calendar day")
    t.add_row("Position rho", f"{p['rho']:,.2f}", "$ per 1.00 of rate")
    console.print(t)

    u = Table(title="Top 5 underlyings by |dollar delta|")
    for col in ("underlying", "spot", "options", "delta (shares)", "dollar delta ($)"):
        u.add_column(col, justify="right")
    for row in tot.top_underlyings:
        u.add_row(
            str(row["underlying"]), f"{row['spot']:,.2f}", f"{row['positions']:,}",
            f"{row['delta']:,.2f}", f"{row['dollar_delta']:,.2f}",
        )  # fmt: skip
    console.print(u)

    rate = n / calc_s if calc_s > 0 else float("inf")
    note = (
        f"first full-size call {warm_s:.3f} s, including JIT compilation, not counted"
        if jit
        else f"warm-up on {min(n, 1024):,} rows ({warm_s:.3f} s) not counted"
    )
    console.print(
        f"Throughput: [bold]{rate / 1e6:,.2f} M options/s[/] (price + 5 Greeks for {n:,} options in {calc_s:.3f} s; "
        f"includes copying inputs to the backend, excludes book generation and aggregation; {note})."
    )


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


if __name__ == "__main__":  # pragma: no cover
    app()
