"""The ``gpu-hedge`` command (Typer + Rich). Thin: the maths lives in ``gpu_hedge._pricing`` and ``gpu_hedge._book``.

One module per command group, each registering its commands on the shared :data:`app`:

- ``backends``: which backends can run here;
- ``book``: ``demo``, ``generate-book`` and ``risk`` (the large-book risk job);
- ``quotes``: implied vols and Greeks of a quote file;
- ``surface``: an arbitrage-free vol surface fitted to a quote file, saved and plotted;
- ``study``: ``hedge-gain``, Hull-White's real-marks study of the minimum-variance and smile deltas;
- ``backtest``: hedging one option along a real daily series;
- ``simulate``: ``simulate-hedge``, hedging along simulated paths.

``_common`` holds what they share (the app, the consoles, the one-line error); ``_hedging`` the
options and helpers of the two hedging commands. A new group is a module that does
``from ._common import app`` and decorates its commands with ``@app.command()``, imported below.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from .._backends import get_backend
from ._common import STATE, app, console, err_console, report_unexpected

# isort: off
# importing a group registers its commands, in this order in ``gpu-hedge --help``
from . import backends, book, quotes, surface, study, backtest, simulate  # noqa: F401
# isort: on

__all__ = ["app", "console", "err_console", "get_backend", "main", "run"]

#: the ``--debug`` switch under its historical name (tests set it)
_STATE = STATE


def run() -> None:
    """The ``gpu-hedge`` console script: :data:`app`, with any error not already reported turned into one
    line on stderr (its type and message) and exit status 1; ``--debug`` (or GPU_HEDGE_DEBUG=1) re-raises it
    with the full traceback."""
    try:
        app(prog_name="gpu-hedge")
    except Exception as exc:
        if STATE["debug"]:
            raise
        report_unexpected(exc)
        sys.exit(1)


def _version(value: bool) -> None:
    """``--version``: print it and exit."""
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
        STATE["debug"] = True
