"""``gpu-hedge backends``: which backends can run here, which one "auto" picks, where kernels are cached."""

from __future__ import annotations

from rich.markup import escape

from .._backends import BACKEND_NAMES, BackendUnavailableError, kernel_cache_dir
from ._common import app, console, fail, lookup_backend, make_table


@app.command()
def backends() -> None:
    """List the backends, whether each can run here (with the reason where not), which one "auto" picks,
    and where the compiled CPU kernels are cached. Never fails on a backend that cannot start: any error
    starting one is its reason."""
    rows = []
    for name in BACKEND_NAMES:
        try:
            bk = lookup_backend(name)
            rows.append((name, "[green]yes[/]", escape(bk.device)))
        except BackendUnavailableError as exc:
            rows.append((name, "[red]no[/]", escape(str(exc))))
        except Exception as exc:  # a backend that is installed but fails to start is "no", with why
            rows.append((name, "[red]no[/]", escape(f"{type(exc).__name__}: {exc}")))
    console.print(make_table("gpu_hedge backends", ("backend", "usable", "device / reason"), rows, left=(0, 1, 2)))
    where = kernel_cache_dir()
    console.print(f"compiled CPU kernels cached in: {escape(str(where)) if where else 'nowhere (GPU_HEDGE_CACHE_DIR is off)'}")
    try:
        auto = lookup_backend("auto")
        console.print(f'"auto" picks: [bold]{auto.name}[/] on {escape(auto.device)}')
    except Exception as exc:  # e.g. GPU_HEDGE_BACKEND names no backend
        fail(f'"auto" cannot pick a backend: {exc}', 1)
