"""American rows of the risk job: Greeks, sums per underlying and scenario ladders priced by the
Andersen-Lake-Offengelt method (:func:`gpu_hedge._pricing.american_greeks.american_greeks`).

The same contracts as :func:`.reductions.greek_sums` / :func:`.reductions.ladder_sums` (backend
arrays ``args`` = S, K, T, vol, r, q, phi; weights ``w``; underlying codes ``c``), so the partition
code and :class:`~gpu_hedge._book.resident.ResidentBook` pick one or the other by the rows'
exercise. Rows that share exercise boundaries (every strike of an underlying and expiry at the
underlying's vol) have each boundary solved once (:mod:`gpu_hedge._pricing.american_shared`).
A ladder revalues every scenario with the American pricer at the shifted inputs (spot
``S (1 + ds)``, vol ``max(vol + dv, 0)``, or the moved vol of a sticky-moneyness smile). Where the
vol does not move with the spot, the exercise boundary (which does not depend on the spot) is
solved once per vol shock and shared by that vol's spot shocks (:mod:`gpu_hedge._pricing.american_ladder`);
a moving smile's scenarios are stacked, several per call of at most :data:`STACK_ROWS` rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._backends import Backend
from .._pricing.american_greeks import american_greeks
from .._pricing.american_shared import american_greeks_shared, spot_ladder_shared
from .batches import device_size
from .reductions import GREEKS, segment_sum
from .scenarios import spot_shocks

__all__ = ["AMERICAN_OUTPUTS", "EXERCISE_WORDS", "STACK_ROWS", "american_greek_sums", "american_ladder_sums", "stacked_ladder"]

#: the book's ``exercise`` words and their codes (0 european, 1 american)
EXERCISE_WORDS = ("european", "american")
#: what an American row's pricing returns: the job's Greeks and the early-exercise flag
AMERICAN_OUTPUTS = (*GREEKS, "early_exercise")
#: rows per American pricing call of a ladder (scenarios stacked: bounded temporaries)
STACK_ROWS = 1 << 18


def _padded(bk: Backend, args: list[Any], w: Any, c: Any, extra: list[Any]) -> tuple[int, list[Any], Any, Any, list[Any]]:
    """``(rows, args, w, c, extra)`` lengthened to :func:`device_size` rows (compiling backends compile
    per shape; an American kernel's compile is long) with copies of the first row of weight 0."""
    m = int(args[0].shape[0])
    size = device_size(bk, m)
    if size == m or not m:
        return m, args, w, c, extra
    xp = bk.xp
    more = lambda a, fill=None: xp.concatenate([a, xp.broadcast_to(a[:1] if fill is None else fill, (size - m,))])  # noqa: E731
    return m, [more(a) for a in args], more(w, xp.zeros((1,), dtype=w.dtype)), more(c), [more(a) for a in extra]


def american_greek_sums(
    bk: Backend, model: str, args: list[Any], w: Any, c: Any, n_u: int, dt: Any, slope: Any = None, *, method: str = "alo"
) -> tuple[dict[str, Any], np.ndarray]:
    """:data:`AMERICAN_OUTPUTS` of American rows and the weighted sums of :data:`GREEKS` per
    underlying code, ``(len(GREEKS), n_u)`` on the host (one more row, the shadow delta
    ``delta + vega x slope``, with ``slope``); ``early_exercise`` comes back boolean. ``method``: the
    ALO scheme (``"alo"``, ``"alo-fast"``, ``"alo-reference"``)."""
    m, args, w, c, slopes = _padded(bk, args, w, c, [] if slope is None else [slope])
    out = american_greeks_shared(bk, args, AMERICAN_OUTPUTS, dt, model=model, method=method)
    out = {**out, "early_exercise": out["early_exercise"] > 0.5}
    rows = [segment_sum(bk, c, out[name] * w, n_u) for name in GREEKS]
    if slopes:
        rows.append(segment_sum(bk, c, (out["delta"] + out["vega"] * slopes[0]) * w, n_u))
    return {name: v[:m] for name, v in out.items()}, np.stack(rows)


def american_ladder_sums(
    bk: Backend, model: str, pairs: Sequence[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, dt: Any,
    moved: list[Any] | None = None, *, method: str = "alo",
) -> np.ndarray:  # fmt: skip
    """Weighted scenario P&L ``w x (V(S (1 + ds), vol') - V(S, vol))`` of American rows per underlying
    code, ``(len(pairs), n_u)`` on the host; ``vol' = max(vol + dv, 0)`` with ``vol`` the row's, or its
    vol after that spot move from ``moved`` (one array per :func:`spot_shocks` entry). Without
    ``moved``, one boundary per row and vol shock (:func:`_ladder_by_vol`); with it, the base value
    ``V(S, vol)`` is priced in the first stacked call, with the first scenarios (same kernel, same
    shapes wherever the ladder is asked for: one compilation on compiling backends)."""
    out = np.zeros((len(pairs), n_u))
    if not int(args[0].shape[0]) or not len(pairs):
        return out
    _, args, w, c, shifted = _padded(bk, args, w, c, list(moved or []))
    moved = shifted if moved is not None else None
    if moved is None:  # vols do not move with spot: one boundary per vol shock serves all its spot shocks
        return _ladder_by_vol(bk, model, pairs, args, w, c, n_u, dt, out, method)
    return stacked_ladder(bk, pairs, args, w, c, n_u, moved, STACK_ROWS,
                          lambda stacked, g: american_greeks(bk, stacked, ("price",), dt, model=model, method=method)["price"])  # fmt: skip


def stacked_ladder(
    bk: Backend, pairs: Sequence[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, moved: list[Any] | None,
    rows_per_call: int, price: Callable[[list[Any], int], Any],
) -> np.ndarray:  # fmt: skip
    """Scenario P&L per underlying code, ``(len(pairs), n_u)`` on the host, by full revaluation with
    ``price(stacked_args, g)``: the prices of ``g`` copies of the rows stacked (spot ``S (1 + ds)``,
    vol ``max(vol' + dv, 0)`` with ``vol'`` the row's or its moved vol), at most ``rows_per_call``
    rows per call; the base value ``V(S, vol)`` comes first, in the first call."""
    xp = bk.xp
    out = np.zeros((len(pairs), n_u))
    S, K, T, vol, r, q, phi = args
    m = int(S.shape[0])
    index = {ds: i for i, ds in enumerate(spot_shocks(pairs))}
    todo: list[tuple[float, float] | None] = [None, *pairs]  # None: the base value
    per_call = max(1, rows_per_call // m)
    base = None
    for lo in range(0, len(todo), per_call):
        group = todo[lo : lo + per_call]
        spots, vols = [], []
        for item in group:
            ds, dv = item if item is not None else (0.0, 0.0)
            at = moved[index[ds]] if moved is not None and item is not None else vol
            spots.append(S * (1.0 + ds) if ds else S)
            vols.append(xp.maximum(at + dv, 0.0) if dv else at)
        g = len(group)
        stacked = [xp.concatenate(spots), *(xp.concatenate([a] * g) for a in (K, T)), xp.concatenate(vols),
                   *(xp.concatenate([a] * g) for a in (r, q, phi))]  # fmt: skip
        prices = price(stacked, g)
        for j, item in enumerate(group):
            p = prices[j * m : (j + 1) * m]
            if item is None:
                base = p
            else:
                out[lo + j - 1] = segment_sum(bk, c, (p - base) * w, n_u)
    return out


def _ladder_by_vol(bk: Backend, model: str, pairs: Sequence[tuple[float, float]], args: list[Any], w: Any, c: Any, n_u: int, dt: Any,
                   out: np.ndarray, method: str = "alo") -> np.ndarray:  # fmt: skip
    """The ladder when each scenario's vol is ``max(vol + dv, 0)``: per distinct ``dv`` one
    :func:`~gpu_hedge._pricing.american_ladder.american_spot_ladder` call (one exercise boundary per
    row) prices all of that vol's spot shocks; the base value comes with the ``dv = 0`` group."""
    xp = bk.xp
    S, K, T, vol, r, q, phi = args
    groups: dict[float, list[int]] = {0.0: []}
    for i, (_, dv) in enumerate(pairs):
        groups.setdefault(float(dv), []).append(i)
    base = None
    for dv, which in groups.items():  # dv = 0 first: it carries the base value
        factors = [1.0 + float(pairs[i][0]) for i in which]
        if dv == 0.0:
            factors = [1.0, *factors]
        if not factors:
            continue
        v = xp.maximum(vol + dv, 0.0) if dv else vol
        prices = spot_ladder_shared(bk, [S, K, T, v, r, q, phi], factors, dt, model=model, method=method)
        if dv == 0.0:
            base, prices = prices[0], prices[1:]
        for i, p in zip(which, prices, strict=True):
            out[i] = segment_sum(bk, c, (p - base) * w, n_u)
    return out
