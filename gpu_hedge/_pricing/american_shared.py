"""American prices and Greeks of many rows that share exercise boundaries: one solve per boundary.

A unit-strike put's Andersen-Lake-Offengelt boundary depends on ``(T, r, q, vol)`` only (a call's
on ``(T, q, r, vol)``, by symmetry), never on spot or strike. In a book, every strike of one
underlying and expiry priced off the underlying's vol has the same boundary: the synthetic demo
book of 1e6 rows has about 3,000 distinct ones. :func:`shared_american_greeks` finds the distinct
boundary inputs on the host (``np.unique``), solves each boundary once (and once per bump of the
bumped Greeks), and evaluates each row's premium integral on its boundary, gathered per row, in a
per-row kernel run by ``Backend.elementwise``. The values are those of
:func:`.american_greeks.american_greeks` (the same arithmetic; the boundary solved for the group
instead of for each row), to rounding. :func:`shared_spot_ladder` does the same for the prices at
several spot factors (a scenario ladder's spot shocks at one vol).

Rows that share little (per-row vols from a smile) keep the per-row pricers: :func:`american_greeks_shared`
and :func:`spot_ladder_shared` send the rows of groups of at least :data:`_MIN_GROUP` to the shared
pass and the others to the per-row one (:func:`sharing_rows`), results back in row order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._backends import device_size
from ._alo_scheme import DEFAULT, Scheme
from .american_greeks import _H_RATE, _H_REL, SCHEMES, american_greeks, check_names, unit_boundary, unit_put_on
from .american_ladder import american_spot_ladder

__all__ = ["SHARED_GREEKS", "american_greeks_shared", "sharing_rows", "shared_american_greeks", "shared_spot_ladder", "spot_ladder_shared"]

#: what :func:`shared_american_greeks` computes
SHARED_GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho", "vanna", "volga", "charm", "dual_delta", "dual_gamma",
                 "early_exercise", "boundary")  # fmt: skip
_MIN_GROUP = 4  # rows of a boundary group of at least this size take the shared pass
_MIN_ROWS = 64  # ... when there are at least this many of them
_SHARE_ABOVE = 0.05  # ... and they are at least this fraction of the rows


def _host(a: Any, n: int) -> np.ndarray:
    from .._backends import to_numpy

    return np.broadcast_to(np.asarray(to_numpy(a), dtype=np.float64), (n,))


def _unit_rates(model: str, r: np.ndarray, q: np.ndarray, call: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unit put's rates: a call is the put with r and q exchanged; Black-76 has q = r."""
    if model == "black76":
        q = r
    return np.where(call, q, r), np.where(call, r, q)


def groups(T: np.ndarray, vol: np.ndarray, r: np.ndarray, q: np.ndarray, call: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)``: a row of each distinct ``(T, vol, r, q, call)`` and each row's group. Calls
    and puts are kept apart (their unit puts can coincide, their rate bumps do not), so every bump
    of :func:`shared_american_greeks` moves all rows of a group alike."""
    _, first, inverse = np.unique(np.stack([T, vol, r, q, call.astype(np.float64)], axis=1), axis=0, return_index=True,
                                  return_inverse=True)  # fmt: skip
    return first, inverse.reshape(-1)


def sharing_rows(model: str, arrays: Sequence[Any], min_group: int = _MIN_GROUP) -> np.ndarray | None:
    """Host indices of the rows (backend arrays S, K, T, vol, r, q, phi) whose boundary inputs at least
    ``min_group`` rows share, or None when they are too few to be worth a separate pass."""
    n = int(arrays[0].shape[0])
    if n < _MIN_ROWS:
        return None
    T, vol, r, q, phi = (_host(a, n) for a in arrays[2:7])
    first, inverse = groups(T, vol, r, q, phi > 0)
    if len(first) == n:  # every row its own boundary
        return None
    rows = np.flatnonzero(np.bincount(inverse)[inverse] >= min_group)
    return rows if len(rows) >= _MIN_ROWS and len(rows) >= _SHARE_ABOVE * n else None


_PAD_MIN = 64  # compiling backends: shared-row subsets and boundary groups padded to powers of two from here


def _split(bk: Any, model: str, arrays: Sequence[Any], run_shared: Any, run_rows: Any) -> Any:
    """``run_shared`` on the rows that share boundaries, ``run_rows`` on the others (or on all when few
    share), results (dicts or lists of backend arrays) back in row order."""
    shared = sharing_rows(model, arrays)
    if shared is None:
        return run_rows(list(arrays))
    n = int(arrays[0].shape[0])
    xp = bk.xp
    rest = np.setdiff1d(np.arange(n), shared, assume_unique=True)

    def on(run: Any, idx: np.ndarray) -> Any:  # padded to a compiled size, results cut back
        full = np.concatenate([idx, np.full(device_size(bk, len(idx), _PAD_MIN) - len(idx), idx[0])])
        got = run([xp.take(a, bk.asarray(full)) for a in arrays])
        cut = lambda v: v[: len(idx)]  # noqa: E731
        return {k: cut(v) for k, v in got.items()} if isinstance(got, dict) else [cut(v) for v in got]

    a = on(run_shared, shared)
    if not len(rest):
        return a
    b = on(run_rows, rest)
    back = bk.asarray(np.argsort(np.concatenate([shared, rest]), kind="stable"))
    join = lambda x, y: xp.take(xp.concatenate([x, y]), back)  # noqa: E731
    return {k: join(a[k], b[k]) for k in a} if isinstance(a, dict) else [join(x, y) for x, y in zip(a, b, strict=True)]


def american_greeks_shared(
    bk: Any, arrays: Sequence[Any], names: Sequence[str], dtype: Any, *, model: str = "bsm", method: str = "alo"
) -> dict[str, Any]:
    """:func:`.american_greeks.american_greeks` of 1-D rows, the rows that share boundaries (groups of
    at least :data:`_MIN_GROUP`) by :func:`shared_american_greeks`; ``method`` one of :data:`SCHEMES`."""
    scheme = SCHEMES[method]
    return _split(bk, model, arrays, lambda a: shared_american_greeks(bk, a, names, dtype, model=model, scheme=scheme),
                  lambda a: american_greeks(bk, a, tuple(names), dtype, model=model, method=method))  # fmt: skip


def spot_ladder_shared(
    bk: Any, arrays: Sequence[Any], factors: Sequence[float], dtype: Any, *, model: str = "bsm", method: str = "alo"
) -> list[Any]:
    """:func:`.american_ladder.american_spot_ladder`, the rows that share boundaries by :func:`shared_spot_ladder`."""
    scheme = SCHEMES[method]
    return _split(bk, model, arrays, lambda a: shared_spot_ladder(bk, a, factors, dtype, model=model, scheme=scheme),
                  lambda a: american_spot_ladder(bk, a, factors, dtype, model=model, scheme=scheme))  # fmt: skip


def _row_kernel(scheme: Scheme, factors: tuple[float, ...] | None):
    """``kernel(xp, special, S, K, T, vol, ur, uq, phi, xmax, *Y columns)``: the caller's price, delta,
    gamma, boundary, flag (``factors`` None) or the prices at ``S x f`` (outputs ``s0 ...``)."""

    def kernel(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, ur: Any, uq: Any, phi: Any, xmax: Any, *cols: Any):
        arrs = xp.broadcast_arrays(S, K, T, vol, ur, uq, phi, xmax, *cols)
        shape = arrs[0].shape
        S, K, T, vol, ur, uq, phi, xmax, *cols = (xp.reshape(a, (-1,)) for a in arrs)
        call = phi > 0
        Y = xp.stack(cols, axis=1)
        if factors is not None:
            out = {}
            for i, f in enumerate(factors):
                Sf = S * f if f != 1.0 else S
                u = unit_put_on(xp, special, xp.where(call, K / Sf, Sf / K), T, ur, uq, vol, Y, xmax, scheme)
                out[f"s{i}"] = xp.reshape(xp.where(call, Sf, K) * u["price"], shape)
            return out
        x = xp.where(call, K / S, S / K)
        u = unit_put_on(xp, special, x, T, ur, uq, vol, Y, xmax, scheme)
        b = u["boundary"]
        res = {
            "price": xp.where(call, S, K) * u["price"],
            "delta": xp.where(call, u["price"] - x * u["delta"], u["delta"]),
            "gamma": xp.where(call, x * x * u["gamma"] / S, u["gamma"] / K),
            "boundary": xp.where(call, xp.where(b > 0, K / xp.where(b > 0, b, 1.0), float("inf")), K * b),
            "early_exercise": u["early_exercise"],
        }
        return {k: xp.reshape(v, shape) for k, v in res.items()}

    return kernel


def _boundary_kernel(scheme: Scheme):
    """``kernel(xp, special, T, vol, ur, uq) -> {"xmax", "y0" ...}``: unit-put boundaries, one per row."""

    def kernel(xp: Any, special: Any, T: Any, vol: Any, ur: Any, uq: Any) -> dict[str, Any]:
        T, vol, ur, uq = (xp.reshape(a, (-1,)) for a in xp.broadcast_arrays(T, vol, ur, uq))
        Y, xmax = unit_boundary(xp, special, T, ur, uq, vol, scheme)
        return {"xmax": xmax, **{f"y{j}": Y[:, j] for j in range(scheme.nodes + 1)}}

    return kernel


_ROW_OUTPUTS = ("price", "delta", "gamma", "boundary", "early_exercise")


class _Rows:
    """The rows, their unit rates and boundary groups, on the host and the backend."""

    def __init__(self, bk: Any, model: str, arrays: Sequence[Any], dtype: Any):
        self.bk, self.model, self.dtype = bk, model, dtype
        n = int(arrays[0].shape[0])
        self.S, self.K = arrays[0], arrays[1]
        self.T, self.vol, self.r, self.q, self.phi = (_host(a, n) for a in arrays[2:])
        self.call = self.phi > 0
        self.first, inverse = groups(self.T, self.vol, self.r, self.q, self.call)
        self.inverse = bk.asarray(inverse)

    def dev(self, a: np.ndarray) -> Any:
        return self.bk.asarray(np.ascontiguousarray(a), dtype=self.dtype)

    def boundaries(self, T: np.ndarray, vol: np.ndarray, ur: np.ndarray, uq: np.ndarray, scheme: Scheme) -> tuple[Any, list[Any]]:
        """``(xmax, [H at node j])`` of the groups' unit puts, solved by one backend kernel (compiled
        once per scheme and padded size on a compiling backend: the group count varies by batch)."""
        k = len(T)
        size = device_size(self.bk, k, _PAD_MIN)  # the group count varies by batch
        args = [self.dev(np.concatenate([a, np.full(size - k, a[0])])) for a in (T, vol, ur, uq)]
        names = ("xmax", *(f"y{j}" for j in range(scheme.nodes + 1)))
        key = ("american_boundary", scheme, str(np.dtype(self.dtype)))
        got = self.bk.elementwise(_boundary_kernel(scheme), args, names, self.dtype, key=key)
        return got["xmax"], [got[n] for n in names[1:]]

    def run(self, T: np.ndarray, vol: np.ndarray, r: np.ndarray, q: np.ndarray, scheme: Scheme, factors: tuple[float, ...] | None) -> dict:
        """The row kernel at the (possibly bumped) inputs: one boundary per group of the unbumped rows
        (a bump moves every row of a group alike), gathered per row."""
        xp = self.bk.xp
        ur, uq = _unit_rates(self.model, r, q, self.call)
        xmax, cols = self.boundaries(T[self.first], vol[self.first], ur[self.first], uq[self.first], scheme)
        idx = self.inverse
        cols = [xp.take(c, idx) for c in cols]
        args = [self.S, self.K, *(self.dev(a) for a in (T, vol, ur, uq, self.phi)), xp.take(xmax, idx), *cols]
        names = (
            tuple(f"s{i}" for i in range(len(factors)))
            if factors is not None
            else ("price", "delta", "gamma", "boundary", "early_exercise")
        )
        key = ("american_shared", scheme, factors, str(np.dtype(self.dtype)))
        return self.bk.elementwise(_row_kernel(scheme, factors), args, names, self.dtype, key=key)


def shared_american_greeks(
    bk: Any, arrays: Sequence[Any], names: Sequence[str], dtype: Any, *, model: str = "bsm", scheme: Scheme = DEFAULT
) -> dict[str, Any]:
    """American outputs ``names`` (of :data:`SHARED_GREEKS`) of 1-D validated backend ``arrays`` (S, K,
    T, vol, r, q, phi), as :func:`.american_greeks.american_greeks` computes them (same bumps), with
    one boundary solve per distinct ``(T, vol, r, q)`` of the unit put and bump."""
    check_names(tuple(names))
    rows = _Rows(bk, model, arrays, dtype)
    T, vol, r, q = rows.T, rows.vol, rows.r, rows.q
    wanted = set(names)
    base = rows.run(T, vol, r, q, scheme, None)
    out = {n: base[n] for n in ("price", "delta", "gamma", "boundary", "early_exercise") if n in wanted}
    S, K = rows.S, rows.K
    if wanted & {"vega", "vanna", "volga"}:
        h = _H_REL * vol
        up, dn = rows.run(T, vol + h, r, q, scheme, None), rows.run(T, vol - h, r, q, scheme, None)
        hd = rows.dev(h)
        out["vega"] = (up["price"] - dn["price"]) / (2.0 * hd)
        out["vanna"] = (up["delta"] - dn["delta"]) / (2.0 * hd)
        out["volga"] = (up["price"] - 2.0 * base["price"] + dn["price"]) / (hd * hd)
    if wanted & {"theta", "charm"}:
        h = _H_REL * T
        up, dn = rows.run(T + h, vol, r, q, scheme, None), rows.run(T - h, vol, r, q, scheme, None)
        hd = rows.dev(h)
        out["theta"] = -(up["price"] - dn["price"]) / (2.0 * hd)
        out["charm"] = -(up["delta"] - dn["delta"]) / (2.0 * hd)
    if "rho" in wanted:  # Black-76: q = r moves with r (the forward fixed)
        up = rows.run(T, vol, r + _H_RATE, q + _H_RATE if model == "black76" else q, scheme, None)
        dn = rows.run(T, vol, r - _H_RATE, q - _H_RATE if model == "black76" else q, scheme, None)
        out["rho"] = (up["price"] - dn["price"]) / (2.0 * _H_RATE)
    if "dividend_rho" in wanted:
        if model == "black76":
            out["dividend_rho"] = 0.0 * S
        else:
            up, dn = rows.run(T, vol, r, q + _H_RATE, scheme, None), rows.run(T, vol, r, q - _H_RATE, scheme, None)
            out["dividend_rho"] = (up["price"] - dn["price"]) / (2.0 * _H_RATE)
    if "dual_delta" in wanted:
        out["dual_delta"] = (base["price"] - S * base["delta"]) / K
    if "dual_gamma" in wanted:
        out["dual_gamma"] = S * S * base["gamma"] / (K * K)
    return {n: out[n] for n in names}


def shared_spot_ladder(
    bk: Any, arrays: Sequence[Any], factors: Sequence[float], dtype: Any, *, model: str = "bsm", scheme: Scheme = DEFAULT
) -> list[Any]:
    """American prices of the rows at spot ``S x f`` for each ``f`` (one backend array per factor),
    one boundary solve per distinct boundary input."""
    factors = tuple(float(f) for f in factors)
    if not factors:
        return []
    rows = _Rows(bk, model, arrays, dtype)
    got = rows.run(rows.T, rows.vol, rows.r, rows.q, scheme, factors)
    return [got[f"s{i}"] for i in range(len(factors))]
