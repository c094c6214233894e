"""``gpu-hedge hedge-gain``: Hull-White's real-marks study of a quote file (one-day delta hedges of every
quoted contract; the gain of the minimum-variance and smile deltas over the Black-Scholes delta)."""

from __future__ import annotations

import typer
from rich.markup import escape

from .._backends import BackendUnavailableError
from ._common import BACKEND_OPTION, app, backend_or_fail, console, fail, make_table
from ._hedging import check_plot, write_plot


def _pct(x: float) -> str:
    return f"{100 * x:+.1f} %"


@app.command("hedge-gain")
def hedge_gain(
    path: str = typer.Argument(..., help="Quote file with several quote dates (e.g. an end-of-day vendor file)."),
    layout: str = typer.Option("auto", "--layout", help="auto, cboe, spxw-eod or agilent."),
    surfaces: str = typer.Option("fit", "--surfaces", help="fit (an SVI surface per quote date, for the smile delta) or none."),
    split: str = typer.Option("month", "--split", help="month (each month tested on the others' fit) or expanding (walk forward)."),
    iv: str = typer.Option("ours", "--iv", help="ours (our IV of the mid) or vendor (the file's IV) for the BS delta."),
    min_days: float = typer.Option(7.0, "--min-days", help="Drop contracts closer to expiry than this many days."),
    out: str | None = typer.Option(None, "--out", help="Write the gain table here (.csv or .parquet)."),
    plot: str | None = typer.Option(None, "--plot", help="Write a PNG of the gains by delta bucket, calls and puts."),
    backend: str = BACKEND_OPTION,
) -> None:
    """Hedge every contract quoted on two consecutive days of the file for one day at its real marks and
    report Hull and White's (2017) gain, 1 - SSE(model) / SSE(BS), of the minimum-variance delta (out of
    sample) and of the smile delta (sticky moneyness), overall and by delta bucket."""
    from .._book import read_quotes
    from .._hedging.marks_study import hedge_gain_study

    choices = {"--surfaces": (surfaces, ("fit", "none")), "--split": (split, ("month", "expanding")), "--iv": (iv, ("ours", "vendor"))}
    for flag, (value, allowed) in choices.items():
        if value not in allowed:
            fail(f"{flag} {value!r}: expected one of {', '.join(allowed)}")
    if out is not None and not out.lower().endswith((".csv", ".parquet", ".pq")):
        fail(f"--out {out}: the extension must be .csv or .parquet")
    check_plot(plot)
    bk = backend_or_fail(backend)
    try:
        quotes = read_quotes(path, layout)
        with console.status("Pairing quotes, fitting surfaces and deltas..."):
            res = hedge_gain_study(quotes, surfaces="fit" if surfaces == "fit" else None, split=split, iv=iv, min_days=min_days,
                                   backend=bk)  # fmt: skip
    except (BackendUnavailableError, ValueError, KeyError, OSError) as exc:
        fail(str(exc), 1)
    t = res.table
    gains = [c for c in ("gain_mv", "gain_mv_in", "gain_smile") if c in t]
    names = {"gain_mv": "MV gain (out of sample)", "gain_mv_in": "MV gain (in sample)", "gain_smile": "smile gain"}
    console.print(
        f"[bold]gpu-hedge hedge-gain[/]: {escape(str(path))}: {res.settings.get('n_pairs', len(res.pairs)):,} one-day pairs, "
        f"split {split}, backend [bold]{bk.name}[/], {res.seconds.get('total', float('nan')):.2f} s; gain = 1 - SSE(model) / SSE(BS)"
    )
    rows = (
        (kind, bucket, f"{int(r['n']):,}", f"{r['rms_bs']:.3f}", *(_pct(float(r[c])) for c in gains))
        for (kind, bucket), r in t.iterrows()
    )  # fmt: skip
    columns = ("options", "|delta|", "pairs", "RMS BS error", *(names[c] for c in gains))
    console.print(make_table("Gain over the BS delta by delta bucket", columns, rows, left=(0, 1)))
    dropped = {k: v for k, v in res.dropped.items() if v}
    if dropped:
        console.print("Dropped pairs: " + ", ".join(f"{k} {v:,}" for k, v in dropped.items()))
    if out is not None:
        flat = t.reset_index()
        try:
            flat.to_csv(out, index=False) if out.lower().endswith(".csv") else flat.to_parquet(out, index=False)
        except OSError as exc:
            fail(f"cannot write {out}: {exc}", 1)
        console.print(f"Wrote the gain table to {escape(out)}")
    if plot:

        def draw(to: str) -> str:
            res.plot(to)
            return to

        write_plot(draw, plot)
