"""``gpu-hedge quotes``: implied vols (from mid, bid and ask) and Greeks per contract of a quote file."""

from __future__ import annotations

import typer
from rich.markup import escape

from .._backends import BackendUnavailableError
from ._common import BACKEND_OPTION, app, backend_or_fail, console, fail, make_table


def _div_option(value: str | None) -> float | str | None:
    """``--div``: None for the vendor's (the default), "implied", or a number."""
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
    backend: str = BACKEND_OPTION,
    rate: float | None = typer.Option(None, "--rate", help="Rate, decimal, continuously compounded (default: the vendor's)."),
    div: str | None = typer.Option(
        None, "--div", help="Dividend yield: a number, 'implied' (per expiry, put-call parity) or 'vendor' (default)."
    ),
    all_greeks: bool = typer.Option(False, "--all-greeks", help="All 17 Greeks instead of price, delta, gamma, vega, theta, rho."),
    exercise: str = typer.Option(
        "infer", "--exercise", help="infer (by option root: SPX/SPXW European, equity and ETF options American), european or american."
    ),
) -> None:
    """Read a quote file, solve implied vols from mid, bid and ask, and compute our Greeks per contract."""
    from .._book import STANDARD_GREEKS, quote_greeks, read_quotes
    from .._book.quote_greeks import EXERCISE_CHOICES

    suffix = out.rsplit(".", 1)[-1].lower() if out else None
    if out and suffix not in ("parquet", "csv"):
        fail(f"--out {out}: the extension must be .parquet or .csv")
    if exercise.lower() not in EXERCISE_CHOICES:
        fail(f"--exercise {exercise!r}: expected one of {', '.join(EXERCISE_CHOICES)}")
    bk = backend_or_fail(backend)
    try:
        df = read_quotes(path, layout)
        with console.status(f"Solving implied vols for {len(df):,} contracts on {bk.name}..."):
            table, summary = quote_greeks(df, rate, _div_option(div), greeks=None if all_greeks else STANDARD_GREEKS, backend=bk,
                                          exercise=exercise.lower())  # fmt: skip
    except (BackendUnavailableError, ValueError, OSError) as exc:
        fail(str(exc))

    attrs = table.attrs
    how = f"--exercise {exercise.lower()}" if exercise.lower() != "infer" else attrs.get("exercise_rule", "inferred")
    console.print(
        f"[bold]gpu-hedge quotes[/]: {escape(str(path))} ({attrs['layout']}), backend [bold]{bk.name}[/], "
        f"rate {attrs['rate_used']:.4%}, div {escape(str(attrs['div_used']))}, T: {escape(attrs['expiry_rule'])}, "
        f"exercise {attrs['exercise_used']} ({escape(how)})"
    )
    solved = ((src, f"{int((table[src] > 0).sum()):,}", f"{n:,}") for src, n in summary.solved.items())
    console.print(make_table("Implied vols", ("from", "quoted", "solved"), solved, left=()))
    status = ((escape(name), f"{n:,}") for name, n in sorted(summary.status.items(), key=lambda kv: -kv[1]))
    console.print(make_table(f"Status of the mid IV ({summary.rows:,} contracts)", ("status", "contracts"), status))
    both = table["iv"].notna() & table["calc_iv"].notna()
    if both.any():
        diff = (table.loc[both, "calc_iv"] - table.loc[both, "iv"]).abs()
        console.print(
            f"|our IV - vendor IV| over {int(both.sum()):,} contracts: median {diff.median():.2e}, "
            f"95th percentile {diff.quantile(0.95):.2e}"
        )
    if out:
        try:
            table.to_parquet(out, index=False) if suffix == "parquet" else table.to_csv(out, index=False)
        except (OSError, ValueError, ImportError) as exc:
            fail(f"cannot write {out}: {exc}")
        console.print(f"Wrote {len(table):,} rows x {table.shape[1]} columns to {escape(out)}")
