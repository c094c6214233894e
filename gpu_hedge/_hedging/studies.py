"""Studies on top of :func:`gpu_hedge.hedge`: a strategy against the static and the unhedged book on
the same paths, the cost / risk frontier of a rebalancing rule, and plots (matplotlib, optional).

Column meanings (currency units per path; losses positive in ``es_99``):

- ``std_pnl``: standard deviation of the final P&L (risk control);
- ``es_99``: expected shortfall at 99 %, the mean of the worst 1 % of losses;
- ``mean_cost``: mean total transaction cost;
- ``effectiveness``: ``1 - var(hedged P&L) / var(unhedged P&L)`` (1: all variance removed, 0: none);
- ``p95_pnl``: 95th percentile of the P&L (the upside kept);
- ``mean_pnl``: mean P&L (after costs); ``mean_trades``: mean number of trades in the underlying.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .costs import Costs
from .engine import Option
from .loop import hedge
from .result import HedgeResult
from .strategies import DeltaBand, Leland, NoHedge, Periodic, StaticHedge, Strategy

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.table import Table

__all__ = [
    "COMPARE_COLUMNS",
    "compare",
    "compare_results",
    "compare_table",
    "frontier",
    "plot_frontier",
    "plot_ledger",
    "plot_pnl_histogram",
    "render_compare",
    "render_frontier",
    "strategy_name",
]

#: the columns of :func:`compare`, with their headings in :func:`render_compare`
COMPARE_COLUMNS = {
    "std_pnl": "std P&L",
    "es_99": "ES 99%",
    "mean_cost": "mean cost",
    "effectiveness": "effectiveness",
    "p95_pnl": "P&L p95",
    "mean_pnl": "mean P&L",
    "mean_trades": "mean trades",
}


def strategy_name(strategy: Strategy) -> str:
    """A short label: the class name and the fields that differ from their defaults."""
    parts = []
    for f in dataclasses.fields(strategy) if dataclasses.is_dataclass(strategy) else ():
        v = getattr(strategy, f.name)
        if f.default is dataclasses.MISSING or v != f.default:
            parts.append(f"{f.name}={v:g}" if isinstance(v, float) else f"{f.name}={v!r}")
    name = type(strategy).__name__
    return f"{name}({', '.join(parts)})" if parts else name


def _row(res: HedgeResult) -> dict[str, float]:
    s = res.summary()
    return {
        "std_pnl": s["std"],
        "es_99": s["es_99"],
        "mean_cost": s["mean_cost"],
        "effectiveness": s.get("effectiveness", math.nan),
        "p95_pnl": s["p95"],
        "mean_pnl": s["mean"],
        "mean_trades": s["mean_trades"],
    }


def compare_results(
    prices: Any,
    times: Any,
    options: Option | Sequence[Option],
    *,
    vol: Any,
    rate: float = 0.0,
    div: float = 0.0,
    strategy: Strategy = Periodic(),  # noqa: B008 - frozen
    costs: Costs = Costs(),  # noqa: B008 - frozen
    backend: Any = "auto",
    **kw: Any,
) -> dict[str, HedgeResult]:
    """``{name: HedgeResult}`` for ``strategy``, :class:`StaticHedge` and :class:`NoHedge`, all run by
    :func:`gpu_hedge.hedge` on the same ``prices`` with the same costs (``kw`` goes to ``hedge``)."""
    out: dict[str, HedgeResult] = {}
    for s in (strategy, StaticHedge(), NoHedge()):
        name = strategy_name(s)
        if name in out:  # the dynamic strategy given is itself StaticHedge or NoHedge
            continue
        out[name] = hedge(prices, times, options, vol=vol, rate=rate, div=div, strategy=s, costs=costs, backend=backend, **kw)
    return out


def compare_table(results: Mapping[str, HedgeResult]) -> pd.DataFrame:
    """The :func:`compare` table of already-run results (one row per name)."""
    import pandas as pd

    frame = pd.DataFrame([_row(r) for r in results.values()], index=pd.Index(list(results), name="strategy"))
    return frame[list(COMPARE_COLUMNS)]


def compare(
    prices: Any,
    times: Any,
    options: Option | Sequence[Option],
    *,
    vol: Any,
    rate: float = 0.0,
    div: float = 0.0,
    strategy: Strategy = Periodic(),  # noqa: B008 - frozen
    costs: Costs = Costs(),  # noqa: B008 - frozen
    backend: Any = "auto",
    **kw: Any,
) -> pd.DataFrame:
    """Hedge the book with ``strategy``, once at inception (:class:`StaticHedge`) and not at all
    (:class:`NoHedge`) on the same paths; one row per strategy (indexed by name), columns
    ``std_pnl, es_99, mean_cost, effectiveness, p95_pnl, mean_pnl, mean_trades`` (see the module
    notes). Needs more than one path for the dispersion columns (they are NaN for one series).

    >>> import gpu_hedge as gh
    >>> p = gh.simulate(gh.GBM(100.0, 0.2), n_paths=2000, n_steps=50, horizon=0.25, seed=3, backend="numpy")
    >>> t = gh.compare(p.spot, p.times, gh.Option(100.0, 0.25, quantity=-1), vol=0.2, backend="numpy")
    >>> list(t.index), bool(t.loc["Periodic", "effectiveness"] > 0.95)
    (['Periodic', 'StaticHedge', 'NoHedge'], True)
    """
    res = compare_results(prices, times, options, vol=vol, rate=rate, div=div, strategy=strategy, costs=costs, backend=backend, **kw)
    return compare_table(res)


def _fmt(v: float, digits: int = 4) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:,.{digits}f}"


def render_compare(frame: pd.DataFrame, title: str = "Hedging strategies on the same paths") -> Table:
    """A Rich table of a :func:`compare` frame."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title)
    t.add_column("strategy", min_width=min(max((len(str(n)) for n in frame.index), default=8), 24))
    for col in frame.columns:
        t.add_column(COMPARE_COLUMNS.get(col, col), justify="right")
    for name, row in frame.iterrows():
        t.add_row(escape(str(name)), *(_fmt(float(row[c]), 1 if c == "mean_trades" else 4) for c in frame.columns))
    return t


def _default_values(kind: str, n_steps: int, options: Sequence[Option]) -> list[float]:
    if kind == "interval":
        return [k for k in (1, 2, 3, 5, 10, 20, 50) if k < max(n_steps, 2)]
    size = sum(abs(o.units) for o in options)
    return [size * w for w in (0.01, 0.02, 0.05, 0.1, 0.2, 0.4)]


def frontier(
    prices: Any,
    times: Any,
    options: Option | Sequence[Option],
    *,
    vol: Any,
    costs: Costs,
    kind: str = "interval",
    values: Iterable[float] | None = None,
    rate: float = 0.0,
    div: float = 0.0,
    backend: Any = "auto",
    leland: bool = False,
    **kw: Any,
) -> pd.DataFrame:
    """The cost / risk frontier of a rebalancing rule on the same paths.

    ``kind="interval"``: :class:`Periodic` (``every=k``, or :class:`Leland` with ``leland=True``) for
    each ``k`` in ``values`` (decision dates between rebalances; default 1, 2, 3, 5, 10, 20, 50 below
    the number of steps). ``kind="band"``: :class:`DeltaBand` of half-width ``w`` shares for each ``w``
    in ``values`` (default 1 % ... 40 % of the book's total |quantity x multiplier|). Returns one row
    per value, in the order given: ``value, mean_cost, std_pnl, es_99, mean_trades``. Smaller values
    rebalance more tightly: more cost, less P&L dispersion.
    """
    import pandas as pd

    if kind not in ("interval", "band"):
        raise ValueError(f"kind = {kind!r} must be 'interval' or 'band'")
    opts = (options,) if isinstance(options, Option) else tuple(options)
    n_steps = int(np.shape(prices)[0]) - 1
    vals = list(values) if values is not None else _default_values(kind, n_steps, opts)
    if not vals:
        raise ValueError("frontier needs at least one value")
    rows = []
    for v in vals:
        if kind == "interval":
            if not (isinstance(v, int | np.integer) or (isinstance(v, float) and v.is_integer())) or v < 1:
                raise ValueError(f"interval value {v!r} must be a whole number of steps >= 1")
            s: Strategy = (Leland if leland else Periodic)(every=int(v))
        else:
            s = DeltaBand(float(v))
        r = hedge(prices, times, opts, vol=vol, rate=rate, div=div, strategy=s, costs=costs, backend=backend, **kw).summary()
        rows.append({"value": v, "mean_cost": r["mean_cost"], "std_pnl": r["std"], "es_99": r["es_99"], "mean_trades": r["mean_trades"]})
    frame = pd.DataFrame(rows)
    frame.attrs["kind"] = kind
    return frame


def render_frontier(frame: pd.DataFrame, title: str | None = None) -> Table:
    """A Rich table of a :func:`frontier` frame."""
    from rich.table import Table

    kind = frame.attrs.get("kind", "interval")
    t = Table(title=title or f"Cost / risk frontier ({'rebalance every k steps' if kind == 'interval' else 'delta band, shares'})")
    for head in ("k" if kind == "interval" else "band", "mean cost", "std P&L", "ES 99%", "mean trades"):
        t.add_column(head, justify="right")
    for _, row in frame.iterrows():
        v = float(row["value"])
        t.add_row(f"{v:g}", _fmt(float(row["mean_cost"])), _fmt(float(row["std_pnl"])), _fmt(float(row["es_99"])),
                  _fmt(float(row["mean_trades"]), 1))  # fmt: skip
    return t


# --- plots ----------------------------------------------------------------------------------------


def _figure(nrows: int = 1, height: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend switch)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'gpu_hedge[plot]'") from None
    fig = Figure(figsize=(8, height * nrows if nrows > 1 else height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, sharex=nrows > 1)
    return fig, axes


def _save(fig: Any, path: str | os.PathLike) -> str:
    fig.savefig(os.fspath(path), dpi=110)
    return os.fspath(path)


def plot_pnl_histogram(
    result_or_results: HedgeResult | Mapping[str, HedgeResult] | Sequence[HedgeResult], path: str | os.PathLike, *, bins: int = 60,
    title: str = "Final P&L per path",
) -> str:  # fmt: skip
    """Histogram of the final P&L of one result, or overlaid for several (a ``{name: result}``
    mapping such as :func:`compare_results`, or a sequence); saved as PNG at ``path`` (returned)."""
    if isinstance(result_or_results, HedgeResult):
        items = [("P&L", result_or_results)]
    elif isinstance(result_or_results, Mapping):
        items = list(result_or_results.items())
    else:
        items = [(f"run {i}", r) for i, r in enumerate(result_or_results)]
    if not items or not all(isinstance(r, HedgeResult) for _, r in items):
        raise ValueError("plot_pnl_histogram needs a HedgeResult, or a mapping or sequence of them")
    fig, ax = _figure()
    edges = np.histogram_bin_edges(np.concatenate([r.pnl for _, r in items]), bins=bins)
    for name, r in items:
        ax.hist(r.pnl, bins=edges, alpha=0.5, label=f"{name} (std {np.std(r.pnl, ddof=1) if r.n_paths > 1 else 0.0:.3g})")
    ax.set_xlabel("final P&L (currency)")
    ax.set_ylabel("paths")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def plot_frontier(frame: pd.DataFrame, path: str | os.PathLike, *, title: str | None = None) -> str:
    """Mean cost against std of the P&L, one point per value of a :func:`frontier` frame, labelled;
    saved as PNG at ``path`` (returned)."""
    missing = {"value", "mean_cost", "std_pnl"} - set(frame.columns)
    if missing:
        raise ValueError(f"plot_frontier needs a frontier() frame; missing columns {sorted(missing)}")
    fig, ax = _figure()
    kind = frame.attrs.get("kind", "interval")
    ax.plot(frame["mean_cost"], frame["std_pnl"], marker="o")
    for _, row in frame.iterrows():
        ax.annotate(f"{'k=' if kind == 'interval' else 'w='}{float(row['value']):g}", (row["mean_cost"], row["std_pnl"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)  # fmt: skip
    ax.set_xlabel("mean transaction cost")
    ax.set_ylabel("std of final P&L")
    ax.set_title(title or "Cost / risk frontier")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_ledger(ledger: pd.DataFrame, path: str | os.PathLike, *, dates: Any = None, title: str = "Backtest") -> str:
    """Two panels from a :meth:`HedgeResult.ledger` frame: the spot, and the cumulative P&L with the
    hedge holding; ``dates`` (one per row) replaces the time axis. Saved as PNG at ``path`` (returned)."""
    fig, (top, bottom) = _figure(2, 3.2)
    x = np.asarray(dates) if dates is not None else ledger.index.to_numpy()
    top.plot(x, ledger["spot"].to_numpy(), color="black", lw=1)
    top.set_ylabel("spot")
    top.set_title(title)
    bottom.plot(x, ledger["pnl"].to_numpy(), label="P&L (mark to market)")
    bottom.set_ylabel("P&L")
    twin = bottom.twinx()
    twin.step(x, ledger["holding"].to_numpy(), where="post", color="grey", alpha=0.6, label="holding")
    twin.set_ylabel("holding (shares)")
    bottom.legend(loc="upper left")
    return _save(fig, path)
