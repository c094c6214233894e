"""American prices and Greeks in the caller's terms: calls by symmetry, degenerate rows, bumps, batches.

:func:`american_greeks` is what ``price``/``greeks``/``implied_vol``, the risk job and the hedging
engine call with validated backend arrays. It maps every row to a unit-strike put
(``C(S, K, r, q) = P(K, S, q, r)``; Black-76: ``q = r`` on the forward), prices it on the ALO
boundary of :mod:`.american`, and maps price, delta and gamma back by homogeneity
(``dC/dS = P' (x') - x' P''(x')`` ... see ``_to_caller``). Rows without early exercise (a put with
``r <= 0`` and ``r <= q``; a call with ``q <= 0`` and ``q <= r``) are European; rows at zero
variance (``expiry == 0`` or ``vol == 0``) are worth the best discounted deterministic exercise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._alo_scheme import DEFAULT, FAST, REFERENCE, Scheme
from ._limits import INV_SQRT_2PI
from .american import AMERICAN_GREEKS, EXTRA_OUTPUTS, put_boundary, put_unit

#: ``method=`` for American rows: the scheme each name runs
SCHEMES: dict[str, Scheme] = {"alo": DEFAULT, "alo-fast": FAST, "alo-reference": REFERENCE}
_H_REL = 1e-4  # relative bump of vol and expiry
_H_RATE = 1e-5  # absolute bump of r and q
_BUMPED = {"vega", "vanna", "volga", "theta", "charm", "rho", "dividend_rho"}
_SUB_ROWS = 256  # rows per pass on chunked (CPU) backends: the (rows, nodes, points) temporaries stay in cache
_BATCH_ROWS = 16384  # rows per call on whole-array backends (bounded memory, one compilation per size)


def check_names(names: tuple[str, ...]) -> None:
    """Refuse Greeks American options do not have here, naming them."""
    bad = [n for n in names if n not in AMERICAN_GREEKS and n not in EXTRA_OUTPUTS]
    if bad:
        raise ValueError(
            f"greek(s) {bad} are not available for exercise='american'; available: {', '.join(AMERICAN_GREEKS + EXTRA_OUTPUTS)}"
        )


def _deterministic_put(xp: Any, x: Any, T: Any, r: Any, q: Any) -> tuple[Any, Any]:
    """Zero-variance unit put: the best of exercising now, at expiry, or at the interior extremum
    ``t* = ln(r / (q x)) / (r - q)``; returns (value, d value / dx)."""

    def intrinsic(t: Any) -> tuple[Any, Any]:
        v = xp.exp(-r * t) - x * xp.exp(-q * t)
        return xp.maximum(v, 0.0), xp.where(v > 0, -xp.exp(-q * t), 0.0)

    safe = xp.where((r != q) & (r > 0) & (q > 0), r - q, 1.0)
    ts = xp.log(xp.where((r > 0) & (q > 0), r / xp.where(q > 0, q * x, 1.0), 1.0)) / safe
    ts = xp.where((r != q) & (r > 0) & (q > 0) & (ts > 0) & (ts < T), ts, 0.0)
    v0, d0 = intrinsic(0.0 * T)
    vT, dT = intrinsic(T)
    vs, ds = intrinsic(ts)
    best = xp.maximum(xp.maximum(v0, vT), vs)
    delta = xp.where(best == v0, d0, xp.where(best == vT, dT, ds))
    return best, delta


def _euro_put_unit(xp: Any, ndtr: Any, x: Any, T: Any, r: Any, q: Any, vol: Any) -> tuple[Any, Any, Any]:
    vT = vol * xp.sqrt(T)
    d1 = (xp.log(x) + (r - q) * T) / vT + 0.5 * vT
    d2 = d1 - vT
    eq = xp.exp(-q * T)
    price = xp.exp(-r * T) * ndtr(-d2) - x * eq * ndtr(-d1)
    return price, -eq * ndtr(-d1), eq * INV_SQRT_2PI * xp.exp(-0.5 * d1 * d1) / (x * vT)


def _branches(xp: Any, T: Any, vol: Any, r: Any, q: Any) -> tuple[Any, Any, tuple[Any, Any, Any, Any]]:
    """``(alo, european, (T, vol, r, q) with safe stand-ins where the ALO branch is not taken)`` of
    unit puts: early exercise (ALO), no early exercise (European), or zero variance (the others)."""
    degenerate = (T <= 0) | (vol <= 0)
    european = (r <= 0) & (r <= q) & ~degenerate
    alo = ~(degenerate | european)
    return alo, european, tuple(xp.where(alo, a, s) for a, s in ((T, 1.0), (vol, 0.2), (r, 0.05), (q, 0.0)))


def unit_boundary(xp: Any, special: Any, T: Any, r: Any, q: Any, vol: Any, scheme: Scheme) -> tuple[Any, Any]:
    """``(Y, xmax)`` of unit puts (:func:`.american.put_boundary`), stand-ins where ALO does not apply."""
    _, _, (Ts, vs, rs, qs) = _branches(xp, T, vol, r, q)
    return put_boundary(xp, special, Ts, rs, qs, vs, scheme)


def unit_put_on(xp: Any, special: Any, x: Any, T: Any, r: Any, q: Any, vol: Any, Y: Any, xmax: Any, scheme: Scheme) -> dict[str, Any]:
    """Unit-strike put on rows of any kind at spot/strike ``x``, on their boundary ``(Y, xmax)`` from
    :func:`unit_boundary` (the European and zero-variance rows ignore it)."""
    alo, european, (Ts, vs, rs, qs) = _branches(xp, T, vol, r, q)
    out = put_unit(xp, special, x, Ts, rs, qs, vs, Y, xmax, scheme)
    Te = xp.where(european, T, 1.0)
    ve = xp.where(european, vol, 0.2)
    e_price, e_delta, e_gamma = _euro_put_unit(xp, special.ndtr, x, Te, r, q, ve)
    d_price, d_delta = _deterministic_put(xp, x, T, r, q)
    pick = lambda a, e, d: xp.where(alo, a, xp.where(european, e, d))  # noqa: E731
    intrinsic = xp.maximum(1.0 - x, 0.0)
    price = pick(out["price"], e_price, d_price)
    return {
        "price": price,
        "delta": pick(out["delta"], e_delta, d_delta),
        "gamma": pick(out["gamma"], e_gamma, 0.0 * x),
        "boundary": pick(out["boundary"], 0.0 * x, xp.where(T <= 0, 1.0, float("nan"))),
        "early_exercise": xp.where(alo, out["early_exercise"], (~european) & (intrinsic > 0) & (price <= intrinsic)),
    }


def _unit_put(xp: Any, special: Any, x: Any, T: Any, r: Any, q: Any, vol: Any, scheme: Scheme) -> dict[str, Any]:
    """Unit-strike put on rows of any kind: early exercise (ALO), European, or zero variance."""
    Y, xmax = unit_boundary(xp, special, T, r, q, vol, scheme)
    return unit_put_on(xp, special, x, T, r, q, vol, Y, xmax, scheme)


def _caller(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, call: Any, scheme: Scheme) -> dict[str, Any]:
    """Price, delta, gamma, boundary and flag of each row in the caller's terms (``call`` boolean)."""
    x = xp.where(call, K / S, S / K)
    u = _unit_put(xp, special, x, T, xp.where(call, q, r), xp.where(call, r, q), vol, scheme)
    scale = xp.where(call, S, K)
    price = scale * u["price"]
    # a call is the put P(K', S') with strike K' = S: by homogeneity dC/dS = p(x') - x' p'(x'), d2C/dS2 = x'^2 p''(x') / S
    delta = xp.where(call, u["price"] - x * u["delta"], u["delta"])
    gamma = xp.where(call, x * x * u["gamma"] / S, u["gamma"] / K)
    b = u["boundary"]
    boundary = xp.where(call, xp.where(b > 0, K / xp.where(b > 0, b, 1.0), float("inf")), K * b)
    return {"price": price, "delta": delta, "gamma": gamma, "boundary": boundary, "early_exercise": u["early_exercise"]}


def american_kernel(names: tuple[str, ...], model: str, scheme: Scheme, sub_rows: int | None):
    """``kernel(xp, special, S, K, T, vol, r, q, phi) -> {name: array}`` for ``Backend.elementwise``.
    Chunked (CPU) backends (``sub_rows`` set) solve the bumped inputs one after another on small
    passes; whole-array backends solve them stacked as one batch (one traced computation instead of
    one per bump: JAX compiles the kernel of all twelve Greeks in the time of the price's)."""
    check_names(names)
    wanted = set(names)

    def variants(vol: Any, T: Any, r: Any, q: Any) -> dict[str, tuple[Any, Any, Any, Any]]:
        """The (vol, T, r, q) at which the method runs: the inputs and their central bumps."""
        out = {"base": (vol, T, r, q)}
        if wanted & {"vega", "vanna", "volga"}:
            h = _H_REL * vol
            out["vol+"], out["vol-"] = (vol + h, T, r, q), (vol - h, T, r, q)
        if wanted & {"theta", "charm"}:
            h = _H_REL * T
            out["T+"], out["T-"] = (vol, T + h, r, q), (vol, T - h, r, q)
        if "rho" in wanted:  # Black-76: q = r moves with r (the forward fixed)
            qu, qd = (q + _H_RATE, q - _H_RATE) if model == "black76" else (q, q)
            out["r+"], out["r-"] = (vol, T, r + _H_RATE, qu), (vol, T, r - _H_RATE, qd)
        if "dividend_rho" in wanted and model != "black76":
            out["q+"], out["q-"] = (vol, T, r, q + _H_RATE), (vol, T, r, q - _H_RATE)
        return out

    def solve(xp: Any, special: Any, S: Any, K: Any, call: Any, at: dict[str, tuple[Any, Any, Any, Any]]) -> dict[str, dict[str, Any]]:
        if sub_rows is not None or len(at) == 1:
            return {k: _caller(xp, special, S, K, T, vol, r, q, call, scheme) for k, (vol, T, r, q) in at.items()}
        m, keys = S.shape[0], list(at)
        cat = lambda i: xp.concatenate([at[k][i] for k in keys])  # noqa: E731
        rep = lambda a: xp.concatenate([a] * len(keys))  # noqa: E731
        both = _caller(xp, special, rep(S), rep(K), cat(1), cat(0), cat(2), cat(3), rep(call), scheme)
        return {k: {n: v[j * m : (j + 1) * m] for n, v in both.items()} for j, k in enumerate(keys)}

    def rows(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, call: Any) -> dict[str, Any]:
        if model == "black76":
            q = r
        at = variants(vol, T, r, q)
        got = solve(xp, special, S, K, call, at)
        base = got["base"]
        out = {n: base[n] for n in ("price", "delta", "gamma", "boundary", "early_exercise") if n in wanted}
        if "vol+" in got:
            up, dn, h = got["vol+"], got["vol-"], _H_REL * vol
            out["vega"] = (up["price"] - dn["price"]) / (2.0 * h)
            out["vanna"] = (up["delta"] - dn["delta"]) / (2.0 * h)
            out["volga"] = (up["price"] - 2.0 * base["price"] + dn["price"]) / (h * h)
        if "T+" in got:
            up, dn, h = got["T+"], got["T-"], _H_REL * T
            out["theta"] = -(up["price"] - dn["price"]) / (2.0 * h)
            out["charm"] = -(up["delta"] - dn["delta"]) / (2.0 * h)
        if "r+" in got:
            out["rho"] = (got["r+"]["price"] - got["r-"]["price"]) / (2.0 * _H_RATE)
        if "dividend_rho" in wanted:
            out["dividend_rho"] = 0.0 * S if model == "black76" else (got["q+"]["price"] - got["q-"]["price"]) / (2.0 * _H_RATE)
        if "dual_delta" in wanted:  # homogeneity: V = S dV/dS + K dV/dK
            out["dual_delta"] = (base["price"] - S * base["delta"]) / K
        if "dual_gamma" in wanted:
            out["dual_gamma"] = S * S * base["gamma"] / (K * K)
        return {n: out[n] for n in names}

    def kernel(xp: Any, special: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        arrs = xp.broadcast_arrays(S, K, T, vol, r, q, phi)
        shape = arrs[0].shape
        flat = [xp.reshape(a, (-1,)) for a in arrs]
        flat[-1] = flat[-1] > 0
        size = flat[0].shape[0]
        step = sub_rows or size
        parts = [rows(xp, special, *(a[i : i + step] for a in flat)) for i in range(0, size, max(step, 1))]
        if not parts:
            parts = [rows(xp, special, *flat)]
        return {n: xp.reshape(xp.concatenate([p[n] for p in parts]) if len(parts) > 1 else parts[0][n], shape) for n in names}

    return kernel


def _solves(names: Sequence[str], model: str) -> int:
    """How many boundary solves a row of ``names`` takes: the inputs and two per bumped group."""
    groups = ({"vega", "vanna", "volga"}, {"theta", "charm"}, {"rho"}, {"dividend_rho"} if model != "black76" else set())
    return 1 + 2 * sum(bool(set(names) & g) for g in groups)


def american_greeks(
    bk: Any, arrays: list[Any], names: tuple[str, ...], dtype: Any, *, model: str = "bsm", method: str = "alo"
) -> dict[str, Any]:
    """American outputs ``names`` for validated backend ``arrays`` (spot, strike, expiry, vol, rate, div,
    phi with phi = +1 call / -1 put), of their broadcast shape. ``method``: ``"alo"`` (default
    scheme, 1e-8), ``"alo-fast"`` (~2.5x faster, ~3e-7) or ``"alo-reference"`` (the converged scheme the
    others are tested against)."""
    if method not in SCHEMES:
        raise ValueError(f"unknown method {method!r} for exercise='american'; expected one of {', '.join(SCHEMES)}")
    if model == "bachelier":
        raise ValueError("exercise='american' is not available for model='bachelier'; use 'bsm' or 'black76'")
    check_names(names)
    xp = bk.xp
    scheme = SCHEMES[method]
    chunked = "chunked" in bk.capabilities
    kernel = american_kernel(tuple(names), model, scheme, _SUB_ROWS if chunked else None)
    key = ("american", model, method, tuple(names), str(np.dtype(dtype)))
    if chunked:
        return bk.elementwise(kernel, arrays, names, dtype, key=key)
    # whole-array backends: fixed-size batches (padded), so memory stays bounded and one compilation serves all;
    # the bumped inputs are solved stacked (american_kernel), so a batch holds _BATCH_ROWS solves
    batch = max(1024, _BATCH_ROWS // _solves(names, model))
    shape = np.broadcast_shapes(*(tuple(np.shape(a)) for a in arrays))
    size = int(np.prod(shape, dtype=np.int64))
    if size <= batch:
        return bk.elementwise(kernel, arrays, names, dtype, key=key)
    flat = [xp.reshape(xp.broadcast_to(xp.asarray(a), shape), (-1,)) for a in arrays]
    pieces: dict[str, list[Any]] = {n: [] for n in names}
    for lo in range(0, size, batch):
        part = [a[lo : lo + batch] for a in flat]
        short = batch - part[0].shape[0]
        if short:  # pad with the batch's first row: same compiled shape
            part = [xp.concatenate([p, xp.broadcast_to(p[:1], (short,))]) for p in part]
        got = bk.elementwise(kernel, part, names, dtype, key=key)
        for n in names:
            pieces[n].append(got[n][: batch - short])
    return {n: xp.reshape(xp.concatenate(pieces[n]), shape) for n in names}
