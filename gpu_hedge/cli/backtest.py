"""``gpu-hedge backtest``: hedge one option along a real daily series (a CSV, or the shipped WTI series)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from .._backends import BackendUnavailableError, host_backend
from ._common import BACKEND_OPTION, app, backend_or_fail, console, fail, make_table
from ._hedging import HEDGE_OPTIONS, HedgeChoice, check_plot, hedge_options, write_ledger, write_plot


@app.command()
@hedge_options(step="dates", units="quantity x multiplier")
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
    hedging: HedgeChoice = HEDGE_OPTIONS,
    start: str | None = typer.Option(None, "--start", help="Start date, YYYY-MM-DD (default: the latest start whose expiry fits)."),
    column: str | None = typer.Option(None, "--column", help="Price column of the CSV (default: found)."),
    date_column: str | None = typer.Option(None, "--date-column", help="Date column of the CSV (default: found)."),
    ledger: str | None = typer.Option(None, "--ledger", help="Write the per-date ledger here (CSV)."),
    plot: str | None = typer.Option(None, "--plot", help="Write a PNG of spot, P&L and holding (needs gpu_hedge[plot])."),
    american: bool = typer.Option(False, "--american", help="American exercise: exercised (or assigned) on the first date it is optimal."),
    dividends: str | None = typer.Option(
        None, "--dividends", help="CSV of the stock's cash dividends (ex_date, amount); the prices must then be unadjusted closes."
    ),
    backend: str = BACKEND_OPTION,
) -> None:
    """Hedge one option written on the start date along a real daily series, to expiry; print the result."""
    import pandas as pd

    from .._hedging import Option, hedge
    from .._hedging.prices import load_wti, read_prices, realised_vol, series_arrays
    from .._hedging.studies import plot_ledger, strategy_name

    check_plot(plot)
    if vol is not None and vol_series is not None:
        fail("give --vol or --vol-series, not both")
    rate = hedging.rate
    bk = backend_or_fail(backend)
    try:
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
        option = Option(k, float(t[-1]), call=not put, quantity=quantity, multiplier=multiplier,
                        exercise="american" if american else "european")  # fmt: skip
        divs = _dividends(dividends, dates) if dividends is not None else None
        marks = None
        if quotes_file is not None:
            marks = _as_of(quotes_file, dates, "--quotes")
        if vol_series is not None:
            sigma: Any = _as_of(vol_series, dates, "--vol-series")
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
        strat = hedging.rule(abs(quantity * multiplier))
        res = hedge(p, t, option, vol=sigma, rate=rate, strategy=strat, costs=hedging.costs(), backend=bk, marks=marks, dividends=divs)
        frame = res.ledger(0)
    except (BackendUnavailableError, ValueError, OSError) as exc:
        fail(str(exc))

    kind = "put" if put else "call"
    console.print(
        f"[bold]gpu-hedge backtest[/]: {escape(name)}, {dates[0].date()} -> {dates[-1].date()} ({p.size} dates), backend [bold]{bk.name}[/]"
    )
    console.print(
        f"Option: {quantity:g} x {kind} K = {k:g} (x{multiplier:g}), expiry {dates[-1].date()} ({t[-1]:.4f} y ACT/365), "
        f"vol {escape(vol_note)}, rate {rate:g}"
    )
    console.print(f"Strategy: {escape(strategy_name(strat))}; {hedging.costs_note()}")
    if divs is not None:
        paid = [(d, a) for d, a in divs if 0 < d <= t[-1]]
        total = sum(a for _, a in paid)
        console.print(f"Cash dividends: {len(paid)} going ex in the window, {total:,.4f} per share in all (escrowed model)")
    if american and "exercised" in frame:
        when = [d.date().isoformat() for d, e in zip(dates, frame["exercised"], strict=True) if e]
        console.print(f"American: {'exercised on ' + when[0] if when else 'not exercised early'}")
    payoff = max((p[-1] - k) if not put else (k - p[-1]), 0.0) * quantity * multiplier + 0.0  # + 0.0: no "-0.0000"
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
    console.print(make_table("Backtest result (currency units)", ("quantity", "value"), rows))
    if ledger:
        out = frame.copy()
        out.insert(0, "date", [d.date().isoformat() for d in dates])
        write_ledger(out, ledger)
    if plot:
        write_plot(plot_ledger, frame, plot, dates=dates.to_numpy(), title=f"{name}: {quantity:g} x {kind} K={k:g}, {strategy_name(strat)}")


def _dividends(path: str, dates: Any) -> list[tuple[float, float]]:
    """``--dividends``: a CSV of ``ex_date, amount`` as (years from the first date ACT/365, amount) pairs."""
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--dividends {path}: cannot read it ({exc})") from None
    cols = {c.strip().lower(): c for c in df.columns}
    if "ex_date" not in cols or "amount" not in cols:
        raise ValueError(f"--dividends {path}: needs the columns ex_date and amount; it has {', '.join(map(str, df.columns))}")
    when = pd.to_datetime(df[cols["ex_date"]], errors="coerce")
    amount = pd.to_numeric(df[cols["amount"]], errors="coerce")
    bad = when.isna() | amount.isna()
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise ValueError(f"--dividends {path}: row {i} ({df.iloc[i].tolist()}) needs an ex_date (YYYY-MM-DD) and a numeric amount")
    years = ((when - dates[0]).dt.days / 365.0).to_numpy()
    keep = years > 0  # paid before the start: gone
    return list(zip(years[keep].tolist(), amount.to_numpy()[keep].tolist(), strict=True))


def _as_of(path: str, dates: Any, option: str) -> Any:
    """Values of a (date, value) CSV as of each of ``dates`` (the last on or before it)."""
    import numpy as np

    from .._hedging.prices import read_prices

    _, values, vdates = read_prices(path, allow_zero=option == "--quotes")
    idx = np.asarray(vdates.searchsorted(dates, side="right")) - 1
    if idx[0] < 0:
        raise ValueError(f"{option} {path}: its first date {vdates[0].date()} is after the backtest's start {dates[0].date()}")
    return values[idx]


def _implied_from_marks(marks: Any, spot: Any, strike: float, t: Any, rate: float, call: bool) -> Any:
    """Per-date Black-Scholes implied vols of the quoted option; dates where none exists (expiry, a
    quote at or below intrinsic) carry the last valid one forward (the first valid one backward)."""
    import numpy as np

    from .. import implied_vol

    tau = t[-1] - t
    iv = np.asarray(implied_vol(marks, spot, strike, tau, rate, call=call, backend=host_backend(), on_invalid="nan"), dtype=np.float64)
    ok = np.isfinite(iv) & (iv > 0)
    if not ok.any():
        raise ValueError("--quotes: no date has an implied vol (every quote is at or below intrinsic value); give --vol")
    idx = np.where(ok, np.arange(iv.size), -1)
    np.maximum.accumulate(idx, out=idx)
    first = int(np.flatnonzero(ok)[0])
    idx[idx < 0] = first
    return iv[idx]
