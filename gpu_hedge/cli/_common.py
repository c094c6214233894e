"""What every ``gpu-hedge`` command shares: the Typer ``app`` the command modules register on, the
consoles, the one-line error, the backend lookup, the shared options and the risk job's progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._backends import Backend, BackendUnavailableError

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
STATE = {"debug": os.environ.get("GPU_HEDGE_DEBUG", "").strip().lower() in ("1", "true", "yes")}

#: the options several commands take (Typer copies an option's settings per command, so one object serves all)
BACKEND_OPTION: Any = typer.Option("auto", "--backend", help="auto, numpy, cupy or jax.")
DTYPE_OPTION: Any = typer.Option("float64", "--dtype", help="float64 or float32.")


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr and exit ``code``; with ``--debug``, the traceback of the error being handled first."""
    if STATE["debug"] and sys.exc_info()[0] is not None:
        err_console.print_exception()
    # soft_wrap: no line breaks inserted into the message (paths and values stay copyable)
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def report_unexpected(exc: Exception) -> None:
    """The one line for an error no command reported: its type and message, and how to see the traceback."""
    message = " ".join(str(exc).split()) or "(no message)"
    err_console.print(
        f"[bold red]error:[/] {escape(type(exc).__name__)}: {escape(message)} (run 'gpu-hedge --debug ...' for the traceback)",
        soft_wrap=True,
    )


def lookup_backend(name: str) -> Backend:
    """``gpu_hedge.cli.get_backend(name)``, looked up when called, so that one replacement there (as the
    tests make) reaches every command."""
    import gpu_hedge.cli as cli

    return cli.get_backend(name)


def backend_or_fail(name: str, code: int = 2) -> Backend:
    """The backend ``--backend name`` asks for, or the one-line error (exit ``code``) saying why not."""
    try:
        return lookup_backend(name)
    except (BackendUnavailableError, ValueError) as exc:
        fail(str(exc), code)


def make_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]] = (), left: Collection[int] = (0,)) -> Table:
    """A Rich table of ``rows`` under ``columns``: the columns at the indices ``left`` aligned left, the others right."""
    t = Table(title=title)
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i in left else "right")
    for row in rows:
        t.add_row(*row)
    return t


class ProgressBar:
    """A Rich progress bar fed by the risk job's ``progress(rows_done, rows_total)`` callback, or
    nothing when not on a terminal (or disabled); use as ``with ProgressBar(on, label) as cb: risk(..., progress=cb)``."""

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
        """The callback: ``done`` of ``total`` rows (None: not known yet)."""
        assert self.bar is not None
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
