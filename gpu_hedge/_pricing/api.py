"""Public pricing functions: price and Greeks for bsm / black76 / bachelier on any backend."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._backends import get_backend
from .._types import Array, ArrayLike, Model, OnInvalid
from ._inputs import Checked, check_dtype, check_inputs, check_model, check_outputs
from ._limits import GREEK_NAMES
from .american import AMERICAN_GREEKS
from .american_greeks import SCHEMES, american_greeks, check_names
from .autodiff import autodiff_kernel
from .bachelier import bachelier_kernel
from .black_scholes import black_kernel
from .dividends import DEFAULT_VOL_ADJUST, DIVIDEND_GREEKS, check_dividends, dividend_greeks, dividend_rows

METHODS = ("analytic", "autodiff")
EXERCISES = ("european", "american")


def checked_inputs(
    model: str, dtype: Any, backend: Any, arrays: tuple, call: Any, on_invalid: str, quote: str = "vol", method: str = "analytic"
) -> tuple[Any, np.dtype, Checked]:
    """``(backend, dtype, checked inputs)``: the argument handling of every public pricing function
    (:func:`greeks`, ``implied_vol``). Checks the model and the method, resolves ``dtype`` and ``backend``
    (``method="autodiff"`` needs a backend with automatic differentiation), then the inputs
    ``arrays`` = (spot, strike, expiry, ``quote``, rate, div) as :func:`check_inputs` does."""
    check_model(model)
    if method not in METHODS and method not in SCHEMES:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS + tuple(SCHEMES))}")
    dt = check_dtype(dtype)
    bk = get_backend(backend)
    if method == "autodiff" and "autodiff" not in bk.capabilities:
        raise ValueError(
            f"method='autodiff' needs the JAX backend; backend {bk.name!r} has no automatic differentiation "
            "(use backend='jax'; pip install 'gpu_hedge[jax]')"
        )
    return bk, dt, check_inputs(bk, model, arrays, call, dt, on_invalid, quote=quote)


def _kernel(model: str, names: tuple[str, ...], regular_only: bool = False):
    make = bachelier_kernel if model == "bachelier" else black_kernel
    return make(model, names, regular_only)


def _greek_names(greeks: str | Iterable[str] | None, american: bool = False) -> tuple[str, ...]:
    if greeks is None:
        return AMERICAN_GREEKS if american else GREEK_NAMES
    names = (greeks,) if isinstance(greeks, str) else tuple(greeks)
    unknown = [g for g in names if g not in GREEK_NAMES and g not in _NOT_CHECKED]
    if unknown:
        raise ValueError(f"unknown greek(s) {unknown}; valid names: {', '.join(GREEK_NAMES)}")
    if not names:
        raise ValueError("greeks= is empty; pass None for all Greeks or a list of names")
    return tuple(dict.fromkeys(names))


def check_exercise(exercise: Any, shape: tuple[int, ...], model: str) -> Any:
    """``None`` (all European), ``True`` (all American) or a boolean mask of ``shape`` (American rows)
    from ``exercise=``: "european" / "american", or a per-row array of those words."""
    if isinstance(exercise, str):
        words = np.asarray(exercise)
    else:
        try:
            words = np.asarray(exercise, dtype=object)
        except Exception as exc:  # noqa: BLE001 - any unconvertible input gets the same message
            raise ValueError(f"exercise={exercise!r}: expected 'european', 'american' or an array of them") from exc
    flat = np.array([str(w).lower() if isinstance(w, str) else w for w in words.reshape(-1)], dtype=object)
    bad = [i for i, w in enumerate(flat) if w not in EXERCISES]
    if bad:
        at = f"[{bad[0]}] " if words.ndim else ""
        raise ValueError(f"exercise{at}={flat[bad[0]]!r}: expected one of {', '.join(map(repr, EXERCISES))}")
    american = (flat == "american").reshape(words.shape).astype(bool)
    if not american.any():
        return None
    if model == "bachelier":
        raise ValueError("exercise='american' is not available for model='bachelier'; use 'bsm' or 'black76'")
    if american.all():
        return True
    try:
        return np.broadcast_to(american, shape)
    except ValueError as exc:
        raise ValueError(f"exercise has shape {american.shape}, which does not broadcast to the inputs' shape {shape}") from exc


def _run(
    bk: Any, model: str, names: tuple[str, ...], chk: Checked, dtype: Any, method: str, on_invalid: str = "raise",
    exercise: Any = None,
) -> dict[str, Array]:  # fmt: skip
    if exercise is not None:
        return _run_american(bk, model, names, chk, dtype, method, on_invalid, exercise)
    if method in SCHEMES:
        method = "analytic"
    if method == "analytic":
        kernel = _kernel(model, names, chk.regular)
    else:
        kernel = autodiff_kernel(_kernel(model, ("price",), chk.regular), bk.jvp, names)
    # the Black family's first-order Greeks, all inputs regular: a backend may run its own fused kernel
    native = f"black:{model}" if method == "analytic" and chk.regular and model != "bachelier" else None
    out = bk.elementwise(kernel, chk.arrays, names, dtype, key=(method, model, str(dtype), chk.regular), native=native)
    out = {n: out[n] for n in names}  # jit may hand back a dict in another order
    if chk.invalid is not None:
        xp = bk.xp
        out = {n: xp.where(chk.invalid, float("nan"), v) for n, v in out.items()}
    return check_outputs(bk, model, out, chk, dtype, on_invalid)


_NOT_CHECKED = ("boundary", "early_exercise")  # inf / NaN there is a documented value, not an overflow


def _scatter(bk: Any, base: Any, idx_b: Any, values: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """``base`` (NaN where None) of ``shape`` with the flat rows ``idx_b`` replaced by ``values``."""
    xp = bk.xp
    size = int(np.prod(shape))
    base = xp.broadcast_to(xp.reshape(base, (-1,)) if base is not None else xp.full((size,), math.nan, dtype=dtype), (size,))
    if "immutable" in bk.capabilities:
        merged = base.at[idx_b].set(values.astype(base.dtype))
    else:
        merged = base.copy()
        merged[idx_b] = values
    return xp.reshape(merged, shape)


def take_rows(bk: Any, arrays: Any, shape: tuple[int, ...], idx_b: Any) -> list[Any]:
    """The flat rows ``idx_b`` (a backend index array) of each of ``arrays`` broadcast to ``shape``."""
    xp = bk.xp
    return [xp.take(xp.reshape(xp.broadcast_to(xp.asarray(a), shape), (-1,)), idx_b) for a in arrays]


def _run_dividends(
    bk: Any, model: str, names: tuple[str, ...], chk: Checked, dtype: Any, method: str, on_invalid: str, exercise: Any,
    dividends: Any, vol_adjust: str,
) -> dict[str, Array]:  # fmt: skip
    """Rows with a cash dividend in ``(0, T]`` by :func:`.dividends.dividend_greeks` (escrowed closed
    form, or the Crank-Nicolson grid for American rows); the others exactly as without ``dividends``."""
    if model != "bsm":
        raise ValueError(f"dividends= needs model='bsm' (a spot price with cash dividends); got model={model!r}")
    bad = [n for n in names if n not in DIVIDEND_GREEKS]
    if bad:
        raise ValueError(f"greek(s) {bad} are not available with dividends=; available: {', '.join(DIVIDEND_GREEKS)}")
    xp = bk.xp
    schedule = check_dividends(dividends, chk.shape)
    size = int(np.prod(chk.shape))
    T = np.broadcast_to(np.asarray(bk.to_numpy(chk.arrays[2]), dtype=np.float64), chk.shape).reshape(-1)
    paying = dividend_rows(T, schedule) if schedule is not None else np.zeros(size, dtype=bool)
    american = np.zeros(size, dtype=bool) if exercise is None else np.broadcast_to(np.asarray(exercise, dtype=bool), chk.shape).reshape(-1)
    if not paying.any():
        return _run(bk, model, names, chk, dtype, method, on_invalid, exercise)
    plain = american & ~paying  # rows without a dividend keep their own pricer (ALO for American ones)
    ex = None if not plain.any() else True if plain.all() else plain.reshape(chk.shape)
    out = dict(_run(bk, model, names, chk, dtype, method, "nan", ex))
    idx = np.flatnonzero(paying)
    idx_b = bk.asarray(idx)
    flat = take_rows(bk, chk.arrays[:7], chk.shape, idx_b)
    got = dividend_greeks(bk, *flat, names, schedule.take(idx), american=american[idx], vol_adjust=vol_adjust, model=model, dtype=dtype)
    out = {n: _scatter(bk, out[n], idx_b, got[n], chk.shape, dtype) for n in names}
    if chk.invalid is not None:
        out = {n: xp.where(chk.invalid, math.nan, v) for n, v in out.items()}
    return check_outputs(bk, model, out, chk, dtype, on_invalid)


def _run_american(
    bk: Any, model: str, names: tuple[str, ...], chk: Checked, dtype: Any, method: str, on_invalid: str, exercise: Any
) -> dict[str, Array]:
    """American rows by ALO (:mod:`.american_greeks`), European rows (of a mixed ``exercise``) as before."""
    check_names(names)
    xp = bk.xp
    alo = method if method in SCHEMES else "alo"
    arrays = chk.arrays[:7]
    if exercise is True:
        out = american_greeks(bk, arrays, names, dtype, model=model, method=alo)
    else:
        euro_names = tuple(n for n in names if n not in _NOT_CHECKED)
        out = dict(_run(bk, model, euro_names, chk, dtype, "analytic" if method in SCHEMES else method, "nan"))
        idx = np.flatnonzero(exercise.reshape(-1))
        flat = [xp.reshape(xp.broadcast_to(xp.asarray(a), chk.shape), (-1,)) for a in arrays]
        idx_b = bk.asarray(idx)
        got = american_greeks(bk, [xp.take(a, idx_b) for a in flat], names, dtype, model=model, method=alo)
        for n in names:
            out[n] = _scatter(bk, out.get(n), idx_b, got[n], chk.shape, dtype)
    if "early_exercise" in out:
        ex = out["early_exercise"]
        out["early_exercise"] = ex > 0.5 if exercise is True else (ex > 0.5) & bk.asarray(np.broadcast_to(exercise, chk.shape))
    if chk.invalid is not None:
        out = {n: (v & ~chk.invalid if n == "early_exercise" else xp.where(chk.invalid, math.nan, v)) for n, v in out.items()}
    checked = check_outputs(bk, model, {n: out[n] for n in names if n not in _NOT_CHECKED}, chk, dtype, on_invalid)
    return {n: checked.get(n, out[n]) for n in names}


def greeks(
    spot: ArrayLike, strike: ArrayLike, expiry: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0, div: ArrayLike = 0.0, *,
    call: Any = True, model: Model = "bsm", greeks: str | Iterable[str] | None = None, method: str = "analytic",
    backend: Any = "auto", dtype: Any = "float64", on_invalid: OnInvalid = "raise", exercise: Any = "european",
    dividends: Any = None, vol_adjust: str = DEFAULT_VOL_ADJUST,
) -> Mapping[str, Array]:  # fmt: skip
    """Price and Greeks of European or American options, as ``{name: array}`` on the chosen backend.

    Models: ``"bsm"`` (spot ``S`` with continuous dividend yield ``div``), ``"black76"`` (``spot``
    is the forward or futures price; ``div`` ignored), ``"bachelier"`` (normal model on the
    forward ``spot``; ``vol`` is the normal vol; negative forwards and strikes allowed).
    Inputs broadcast. ``expiry`` in years, ``vol`` and rates as decimals (continuously compounded).

    Inputs are taken as stated or refused: numbers and real numeric arrays (NumPy, CuPy, JAX, lists)
    only; bools, strings, complex numbers and dates raise ValueError naming the argument (``call``
    is the one argument that takes bools and "call"/"put" strings). ``expiry`` may also be a time
    span, ``numpy.timedelta64`` (days or finer units), ``datetime.timedelta`` or ``pandas.Timedelta``,
    converted to years ACT/365 (seconds / (365 * 86400)); a ``datetime64`` or date is refused (there
    is no valuation date to subtract it from). A value the ``dtype`` cannot hold (1e39 in float32)
    is an error saying so, with the value as given.

    Names (all by default, in this order, or those listed in ``greeks``): price, delta, gamma,
    vega, theta, rho, dividend_rho, vanna, volga, charm, veta, speed, zomma, color, ultima,
    dual_delta, dual_gamma. Units: theta = dV/dt per year (decay negative), vega per 1.00 of vol,
    rho = dV/dr with q (bsm) or the forward (black76, bachelier) fixed, dividend_rho = dV/dq,
    charm / veta / color per year; dual_delta = dV/dK, dual_gamma = d2V/dK2.

    ``method="autodiff"`` differentiates the price with JAX (JAX backend only).

    ``exercise="american"`` (or a per-row array of "european" / "american"; ``bsm`` and ``black76``
    only) prices early exercise by the Andersen-Lake-Offengelt fixed-point method
    (``method="alo"``, the default for American rows, within 1e-8 of the converged scheme;
    ``"alo-fast"``, ~2.5x faster, within ~3e-7; ``"alo-reference"``: the converged scheme they are
    tested against). Names available: price, delta, gamma, vega, theta, rho,
    dividend_rho, vanna, volga, charm, dual_delta, dual_gamma, and two per-row outputs,
    ``early_exercise`` (immediate exercise optimal: the price is the intrinsic value) and
    ``boundary`` (the exercise boundary in spot at the option's expiry: a put is exercised at or
    below it, a call at or above it; 0 / inf where early exercise is never optimal). Delta and
    gamma are analytic on the computed boundary; the others are central differences of the
    whole computation (relative bump 1e-4 in vol and expiry, 1e-5 absolute in rates).

    ``dividends`` (``bsm`` only): discrete cash dividends, one schedule for every row (``(time,
    amount)`` pairs, a dict ``{time: amount}`` or an ``(m, 2)`` array), a list of one schedule per
    row (rows in C order of the broadcast inputs), or ``(times, amounts)`` 2-D arrays; times in
    years from valuation (a dividend at ``t <= 0`` has been paid; one in ``(0, T]`` counts), amounts
    in the spot's currency, on top of the yield ``div``. Rows with a dividend in ``(0, T]`` use the
    escrowed-dividend model (:mod:`gpu_hedge._pricing.dividends`): European ones the closed form
    on ``S - PV(dividends)`` with the volatility adjustment ``vol_adjust`` (``"beneder_vorst"``,
    default: ``vol`` stays the stock's own vol; ``"none"``: Hull's textbook model, ``vol`` is the
    vol of the escrowed spot; ``"simple"``), American ones a Crank-Nicolson grid with the exercise
    value on the quoted spot (about 1e-5 relative; ~100-250 options/s per core). Greeks are with
    respect to the quoted spot (chain rule through the escrowed spot and the adjusted vol); names
    available: price, delta, gamma, vega, theta, rho, dividend_rho. Rows without a dividend before
    expiry are priced exactly as without ``dividends``.

    At zero variance (``expiry == 0`` or ``vol == 0``) prices are the discounted intrinsic value
    and Greeks their limits; exactly at the money there gamma is +inf and Greeks whose limit
    depends on the path (speed, zomma, color, vanna, volga, ultima, charm, veta) are NaN.
    Invalid inputs raise ValueError naming the argument, index and value, or with
    ``on_invalid="nan"`` give NaN in those positions only. Valid inputs whose result is not finite
    outside those documented limits (the price at ``rate=-1e3``, where ``exp(-rate*expiry)``
    overflows) raise ValueError naming the output, the row and its inputs, or with
    ``on_invalid="nan"`` give NaN in that output at that row (never a stray inf); the row's other
    outputs are kept where they are finite.

    >>> g = greeks(100.0, 100.0, 1.0, 0.2, 0.05, call=True, greeks=("price", "delta"), backend="numpy")
    >>> round(float(g["price"]), 6), round(float(g["delta"]), 6)
    (10.450584, 0.636831)
    """
    if dividends is not None and greeks is None:
        greeks = DIVIDEND_GREEKS
    names = _greek_names(greeks, american=not (isinstance(exercise, str) and exercise == "european"))
    bk, dt, chk = checked_inputs(model, dtype, backend, (spot, strike, expiry, vol, rate, div), call, on_invalid, method=method)
    ex = check_exercise(exercise, chk.shape, model)
    if ex is None and names != tuple(n for n in names if n not in _NOT_CHECKED):
        raise ValueError("early_exercise and boundary are outputs of exercise='american' only")
    if dividends is not None:
        return _run_dividends(bk, model, names, chk, dt, method, on_invalid, ex, dividends, vol_adjust)
    return _run(bk, model, names, chk, dt, method, on_invalid, ex)


def price(
    spot: ArrayLike, strike: ArrayLike, expiry: ArrayLike, vol: ArrayLike, rate: ArrayLike = 0.0, div: ArrayLike = 0.0, *,
    call: Any = True, model: Model = "bsm", backend: Any = "auto", dtype: Any = "float64", on_invalid: OnInvalid = "raise",
    exercise: Any = "european", method: str = "analytic", dividends: Any = None, vol_adjust: str = DEFAULT_VOL_ADJUST,
) -> Array:  # fmt: skip
    """European or American option price under ``model`` as an array on the chosen backend (see
    :func:`greeks`; ``exercise="american"``: Andersen-Lake-Offengelt; ``dividends``: discrete cash
    dividends, escrowed model).

    >>> round(float(price(100.0, 100.0, 1.0, 0.2, 0.05, call=False, backend="numpy")), 6)
    5.573526
    """
    return greeks(
        spot, strike, expiry, vol, rate, div, call=call, model=model, greeks=("price",),
        backend=backend, dtype=dtype, on_invalid=on_invalid, exercise=exercise, method=method, dividends=dividends,
        vol_adjust=vol_adjust,
    )["price"]  # fmt: skip
