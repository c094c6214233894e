"""What the two hedging commands (``backtest``, ``simulate-hedge``) share: the options choosing the rate,
the rebalancing strategy and the costs, and writing the ledger and the plots."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import typer
from rich.markup import escape

from ._common import console, fail

STRATEGIES = ("periodic", "band", "ww", "leland", "static", "none")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class HedgeChoice:
    """The values of the options ``--rate --strategy --every --band --risk-aversion --proportional --per-trade``."""

    rate: float
    strategy: str
    every: int
    band: float | None
    risk_aversion: float
    proportional: float
    per_trade: float

    def rule(self, book_units: float) -> Any:
        """The rebalancing strategy ``--strategy`` names; ``--band`` defaults to 5% of ``book_units`` shares."""
        from .._hedging import DeltaBand, Leland, NoHedge, Periodic, StaticHedge, WhalleyWilmott

        name = self.strategy.lower()
        if name == "periodic":
            return Periodic(every=self.every)
        if name == "band":
            return DeltaBand(self.band if self.band is not None else 0.05 * book_units)
        if name == "ww":
            return WhalleyWilmott(self.risk_aversion)
        if name == "leland":
            return Leland(every=self.every)
        if name == "static":
            return StaticHedge()
        if name == "none":
            return NoHedge()
        raise ValueError(f"--strategy {name!r}: expected one of {', '.join(STRATEGIES)}")

    def costs(self) -> Any:
        """The transaction costs ``--proportional`` and ``--per-trade`` give."""
        from .._hedging import Costs

        return Costs(proportional=self.proportional, per_trade=self.per_trade)

    def costs_note(self) -> str:
        """The costs, as the commands print them."""
        return f"costs: proportional {self.proportional:g}, per trade {self.per_trade:g}"


class _Placeholder:
    """The default of the parameter :func:`hedge_options` replaces by the options of :class:`HedgeChoice`."""


#: ``hedging: HedgeChoice = HEDGE_OPTIONS`` in a command decorated with :func:`hedge_options`
HEDGE_OPTIONS: Any = _Placeholder()


def _options(step: str, units: str) -> dict[str, tuple[Any, Any]]:
    """(type, Typer option) of each field of :class:`HedgeChoice`; ``step`` and ``units`` word the help."""
    return {
        "rate": (float, typer.Option(0.0, "--rate", help="Rate, decimal, continuously compounded.")),
        "strategy": (str, typer.Option("periodic", "--strategy", help="periodic, band, ww, leland, static or none.")),
        "every": (int, typer.Option(1, "--every", min=1, help=f"periodic / leland: rebalance every K {step}.")),
        "band": (float | None, typer.Option(None, "--band", min=0.0, help=f"band: half-width in shares (default 5% of |{units}|).")),
        "risk_aversion": (float, typer.Option(1.0, "--risk-aversion", min=0.0, help="ww: absolute risk aversion.")),
        "proportional": (
            float,
            typer.Option(0.0, "--proportional", min=0.0, help="Proportional cost (half-spread), fraction of notional."),
        ),
        "per_trade": (float, typer.Option(0.0, "--per-trade", min=0.0, help="Fixed cost per trade, currency.")),
    }


def hedge_options(step: str, units: str) -> Callable[[F], F]:
    """Decorator of a hedging command: its parameter whose default is :data:`HEDGE_OPTIONS` becomes, in
    its place (so ``--help`` lists them there), the options of :class:`HedgeChoice`, and the command is
    called with their values as one :class:`HedgeChoice`. ``step`` ("dates", "steps") and ``units`` (what
    the default band is 5% of) word their help."""
    options = _options(step, units)
    assert set(options) == {f.name for f in fields(HedgeChoice)}

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        (slot,) = [p.name for p in signature.parameters.values() if p.default is HEDGE_OPTIONS]
        params: list[inspect.Parameter] = []
        for p in signature.parameters.values():
            if p.name != slot:
                params.append(p)
                continue
            params += [inspect.Parameter(name, p.kind, default=opt, annotation=kind) for name, (kind, opt) in options.items()]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            choice = HedgeChoice(**{name: kwargs.pop(name) for name in options})
            return command(**kwargs, **{slot: choice})

        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params} | {"return": signature.return_annotation}
        return wrapper  # type: ignore[return-value]

    return decorate


def write_ledger(frame: Any, path: str) -> None:
    """Write a per-date ledger as CSV, and say so."""
    try:
        frame.to_csv(path)
    except OSError as exc:
        fail(f"cannot write {path}: {exc}")
    console.print(f"Wrote the ledger ({len(frame):,} dates x {frame.shape[1]} columns) to {escape(path)}")


def write_plot(fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """Run a plotting function of ``gpu_hedge._hedging.studies`` (it returns the path written), and say so."""
    try:
        out = fn(*args, **kw)
    except ImportError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the plot: {exc}")
    console.print(f"Wrote the plot to {escape(str(out))}")


def check_plot(path: str | None) -> None:
    """``--plot`` needs matplotlib: the one-line error up front, before any work, when it is missing."""
    import importlib.util

    if path and importlib.util.find_spec("matplotlib") is None:
        fail("--plot needs matplotlib: pip install 'gpu_hedge[plot]'")
