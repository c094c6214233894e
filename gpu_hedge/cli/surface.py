"""``gpu-hedge surface``: fit an arbitrage-free implied-vol surface to a quote file, save it, plot its smiles."""

from __future__ import annotations

import time

import typer
from rich.markup import escape

from .._backends import BackendUnavailableError
from ._common import BACKEND_OPTION, app, backend_or_fail, console, fail, make_table
from ._hedging import check_plot, write_plot


@app.command()
def surface(
    path: str = typer.Argument(..., help="Quote file: a CBOE chain export or an end-of-day vendor file."),
    out: str = typer.Option(..., "--out", help="Write the fitted surface here (.parquet; load with gpu_hedge.VolSurface.load)."),
    layout: str = typer.Option("auto", "--layout", help="auto, cboe, spxw-eod or agilent."),
    model: str = typer.Option("svi", "--model", help="svi (raw SVI per expiry, calendar-repaired) or ssvi (one SSVI per group)."),
    rate: float | None = typer.Option(None, "--rate", help="Rate, decimal, continuously compounded (default: the vendor's)."),
    plot: str | None = typer.Option(None, "--plot", help="Write a PNG of the smiles: quotes as bid/ask bars, the fit as a line."),
    group: str | None = typer.Option(None, "--group", help="The group to plot (its name in the params' group column; default: the first)."),
    max_slices: int = typer.Option(12, "--max-slices", min=1, help="Plot at most this many expiries, evenly spread."),
    backend: str = BACKEND_OPTION,
) -> None:
    """Fit an arbitrage-free vol surface to a quote file: OTM mid vols on parity forwards, weighted by their
    bid/ask spread; every expiry of every quote date in one batched fit. RMSE in vol points (1 = 0.01 of vol)."""
    from .._book import quote_surface, read_quotes
    from .._surface import fit_surface

    if not out.lower().endswith((".parquet", ".pq")):
        fail(f"--out {out}: the extension must be .parquet")
    if model.lower() not in ("svi", "ssvi"):
        fail(f"--model {model!r}: expected svi or ssvi")
    check_plot(plot)
    bk = backend_or_fail(backend)
    try:
        frame = quote_surface(read_quotes(path, layout), rate=rate, backend=bk)
        if frame.empty:
            fail(f"{path}: no quote is usable for a fit (dropped: {frame.attrs.get('dropped')})", 1)
        n_slices = frame.groupby(["group", "expiry_years"]).ngroups
        with console.status(f"Fitting {n_slices:,} slices on {bk.name}..."):
            t0 = time.perf_counter()
            surf = fit_surface(frame, model=model.lower(), backend=bk)
            fit_s = time.perf_counter() - t0
        surf.save(out)
    except (BackendUnavailableError, ValueError, OSError) as exc:
        fail(str(exc), 1)
    p, report = surf.params, surf.arbitrage_report()
    console.print(
        f"[bold]gpu-hedge surface[/]: {escape(str(path))}: {len(frame):,} quotes in {p['group'].nunique()} group(s), "
        f"{len(p)} slices, model {model.lower()}, backend [bold]{bk.name}[/]; fitted in {fit_s:.2f} s"
    )
    ok = {True: "ok", False: "[red]violated[/]"}
    rows = (
        (escape(str(r.group)), f"{r.expiry_years:.4f}", f"{r.forward:,.2f}", f"{r.n_quotes}", f"{100 * r.rmse_vol:.3f}",
         ok[bool(a.butterfly_ok)], ok[bool(a.calendar_ok)])
        for r, a in zip(p.head(12).itertuples(), report.head(12).itertuples(), strict=True)
    )  # fmt: skip
    columns = ("group", "T (y)", "forward", "quotes", "RMSE (vol pts)", "butterfly", "calendar")
    console.print(make_table(f"Fitted slices (first {min(12, len(p))} of {len(p)})", columns, rows))
    bad = int((~report["butterfly_ok"]).sum() + (~report["calendar_ok"]).sum())
    console.print(
        f"RMSE in vol points: median {100 * p['rmse_vol'].median():.3f}, max {100 * p['rmse_vol'].max():.3f}; arbitrage: "
        f"{'none found' if not bad else f'{bad} slice check(s) violated'} (butterfly: Durrleman g >= 0; calendar: w non-decreasing in T)"
    )
    if plot:
        from .._surface.plot import plot_smiles

        write_plot(plot_smiles, surf, frame, plot, group=group, max_slices=max_slices)
    console.print(f"Wrote {len(p)} slices to {escape(out)}")
