"""American prices of each row at several spots, on one exercise boundary per row.

The Andersen-Lake-Offengelt boundary of a unit-strike put depends on the expiry, the rates and
the vol, never on the spot (:mod:`.american`); a call is the put ``P(K, S, q, r)``, whose unit
boundary does not depend on ``S`` either. So a scenario ladder's spot shocks at one vol need one
boundary solve (the expensive part: nodes x points x iterations normal CDFs per row) and then only
the premium integral per spot (``price_points`` CDFs). :func:`american_spot_ladder` is what the
risk job's American ladder calls once per vol shock; its prices are those of
:func:`.american_greeks.american_greeks` at ``S x factor`` (the same arithmetic, the boundary
shared), on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._alo_scheme import DEFAULT, Scheme
from .american_greeks import _BATCH_ROWS, _SUB_ROWS, unit_boundary, unit_put_on

__all__ = ["american_spot_ladder"]


def _rows(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, call: Any, factors: Sequence[float], scheme: Scheme):
    """Prices at ``S x f`` for each ``f`` of ``factors`` (a list of arrays), the boundary solved once."""
    ur, uq = xp.where(call, q, r), xp.where(call, r, q)  # the unit put's rates (calls by symmetry)
    Y, xmax = unit_boundary(xp, special, T, ur, uq, vol, scheme)
    out = []
    for f in factors:
        Sf = S * f if f != 1.0 else S
        u = unit_put_on(xp, special, xp.where(call, K / Sf, Sf / K), T, ur, uq, vol, Y, xmax, scheme)
        out.append(xp.where(call, Sf, K) * u["price"])
    return out


def _kernel(model: str, factors: tuple[float, ...], scheme: Scheme, sub_rows: int | None):
    names = tuple(f"s{i}" for i in range(len(factors)))

    def kernel(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        arrs = xp.broadcast_arrays(S, K, T, vol, r, q, phi)
        shape = arrs[0].shape
        flat = [xp.reshape(a, (-1,)) for a in arrs]
        flat[-1] = flat[-1] > 0
        if model == "black76":
            flat[5] = flat[4]
        size = flat[0].shape[0]
        step = max(sub_rows or size, 1)
        parts = [_rows(xp, special, *(a[i : i + step] for a in flat), factors, scheme) for i in range(0, size, step)] or [
            _rows(xp, special, *flat, factors, scheme)
        ]
        return {n: xp.reshape(xp.concatenate([p[j] for p in parts]) if len(parts) > 1 else parts[0][j], shape) for j, n in enumerate(names)}

    return kernel, names


def american_spot_ladder(
    bk: Any, arrays: list[Any], factors: Sequence[float], dtype: Any, *, model: str = "bsm", scheme: Scheme = DEFAULT
) -> list[Any]:
    """American prices of 1-D validated backend ``arrays`` (spot, strike, expiry, vol, rate, div, phi;
    phi = +1 call / -1 put) at spot ``S x f`` for each ``f`` of ``factors``: a list of backend arrays,
    one per factor, each row on its own boundary (one solve per row for all factors)."""
    if model not in ("bsm", "black76"):
        raise ValueError(f"exercise='american' is not available for model={model!r}; use 'bsm' or 'black76'")
    factors = tuple(float(f) for f in factors)
    if not factors:
        return []
    chunked = "chunked" in bk.capabilities
    kernel, names = _kernel(model, factors, scheme, _SUB_ROWS if chunked else None)
    key = ("american_spot_ladder", model, factors, scheme, str(np.dtype(dtype)))
    n = int(arrays[0].shape[0])
    if chunked or n <= _BATCH_ROWS:
        got = bk.elementwise(kernel, arrays, names, dtype, key=key)
        return [got[name] for name in names]
    xp = bk.xp  # whole-array backends: padded batches of a fixed size (bounded memory, one compilation)
    pieces: list[list[Any]] = [[] for _ in names]
    for lo in range(0, n, _BATCH_ROWS):
        part = [a[lo : lo + _BATCH_ROWS] for a in arrays]
        short = _BATCH_ROWS - int(part[0].shape[0])
        if short:
            part = [xp.concatenate([p, xp.broadcast_to(p[:1], (short,))]) for p in part]
        got = bk.elementwise(kernel, part, names, dtype, key=key)
        for j, name in enumerate(names):
            pieces[j].append(got[name][: _BATCH_ROWS - short])
    return [xp.concatenate(p) for p in pieces]
