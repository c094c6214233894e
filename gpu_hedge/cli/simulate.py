"""``gpu-hedge simulate-hedge``: delta-hedge a written option along simulated paths (GBM, Heston or Merton)."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.markup import escape

from .._backends import BackendUnavailableError
from ._common import BACKEND_OPTION, app, backend_or_fail, console, fail, make_table
from ._hedging import HEDGE_OPTIONS, HedgeChoice, check_plot, hedge_options, write_ledger, write_plot

#: the rows of the result table: (label, key of ``HedgeResult.summary()``)
_STATISTICS = (("premium", "premium"), ("mean P&L", "mean"), ("std P&L", "std"), ("stderr of mean", "stderr_mean"),
               ("VaR 95%", "var_95"), ("ES 95%", "es_95"), ("VaR 99%", "var_99"), ("ES 99%", "es_99"),
               ("P&L p05", "p05"), ("P&L p95", "p95"), ("mean cost", "mean_cost"), ("mean trades", "mean_trades"),
               ("mean turnover", "mean_turnover"), ("Hull ratio std/premium", "hull_ratio"),
               ("effectiveness", "effectiveness"))  # fmt: skip


@app.command("simulate-hedge")
@hedge_options(step="steps", units="quantity")
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
    hedging: HedgeChoice = HEDGE_OPTIONS,
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
    backend: str = BACKEND_OPTION,
) -> None:
    """Simulate paths (GBM, Heston or Merton), delta-hedge a written option along them, and print risk and cost."""
    from .._hedging import Option, hedge
    from .._hedging.studies import (
        compare_results,
        compare_table,
        frontier,
        plot_frontier,
        plot_pnl_histogram,
        render_compare,
        render_frontier,
        strategy_name,
    )
    from .._simulation.models import GBM, Heston, Merton
    from .._simulation.paths import simulate

    check_plot(plot)
    rate = hedging.rate
    sim_vol = vol if realised_vol is None else realised_vol
    k = spot if strike is None else strike
    bk = backend_or_fail(backend)
    try:
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
        strat = hedging.rule(abs(quantity))
        costs = hedging.costs()
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
            fkind = "band" if hedging.strategy.lower() == "band" else "interval"
            with console.status("Sweeping the frontier..."):
                front = frontier(sim.spot, sim.times, option, vol=vol, rate=rate, costs=costs, kind=fkind, backend=bk,
                                 leland=hedging.strategy.lower() == "leland")  # fmt: skip
        frame = res.ledger(0) if ledger else None
    except (BackendUnavailableError, ValueError) as exc:
        fail(str(exc))

    kind = "put" if put else "call"
    console.print(
        f"[bold]gpu-hedge simulate-hedge[/]: {escape(desc)}, {paths:,} paths x {steps} steps to T = {expiry:g} y, seed {seed}, "
        f"backend [bold]{bk.name}[/]"
    )
    console.print(
        f"Option: {quantity:g} x {kind} K = {k:g}, pricing vol {vol:g}, rate {rate:g}; strategy {escape(strategy_name(strat))}; "
        f"{hedging.costs_note()}"
    )
    s = res.summary()
    rows = ((label, f"{s.get(key, float('nan')):,.4f}") for label, key in _STATISTICS)
    title = f"Hedged P&L over {paths:,} paths (currency units; losses positive in VaR / ES)"
    console.print(make_table(title, ("statistic", "value"), rows))
    if compare_:
        console.print(render_compare(compare_table(results)))
    if front is not None:
        console.print(render_frontier(front))
    if ledger and frame is not None:
        write_ledger(frame, ledger)
    if plot:
        write_plot(plot_pnl_histogram, results if compare_ else {strategy_name(strat): res}, plot,
                   title=f"Final P&L, {quantity:g} x {kind} K={k:g}, {m}")  # fmt: skip
        if front is not None:
            root, ext = os.path.splitext(plot)
            write_plot(plot_frontier, front, f"{root}_frontier{ext or '.png'}")
