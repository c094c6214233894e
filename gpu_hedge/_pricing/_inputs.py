"""Input checking for the pricing API: one pass per argument, errors that say what and where."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backends import array_backend, to_numpy

MODELS = ("bsm", "black76", "bachelier")
_CALL_WORDS = {"call": True, "c": True, "put": False, "p": False}


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {', '.join(map(repr, MODELS))}")
    return model


def check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype {dtype!r} is not a dtype; use 'float64' or 'float32'") from exc
    if dt not in (np.float64, np.float32):
        raise ValueError(f"dtype {dtype!r} is not supported; use 'float64' (default) or 'float32'")
    return dt


def _index(shape: tuple[int, ...], flat: int) -> str:
    if len(shape) == 0:
        return ""
    idx = np.unravel_index(flat, shape)
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _first_bad(name: str, x: Any, bad: Any, rule: str, model: str) -> ValueError:
    bad_h = to_numpy(bad).reshape(-1)
    x_h = np.broadcast_to(to_numpy(x), np.shape(bad)).reshape(-1)
    i = int(np.flatnonzero(bad_h)[0])
    count = int(bad_h.sum())
    more = f" ({count} invalid values in all)" if count > 1 else ""
    return ValueError(f"{name}{_index(np.shape(bad), i)} = {x_h[i].item()!r} is invalid for model={model!r}: {rule}{more}")


def _phi_kernel(xp: Any, sp: Any, call: Any) -> dict[str, Any]:
    # JAX and CuPy hand the flags over already cast to the run's dtype, NumPy as booleans
    return {"phi": call * 2.0 - 1.0}


def to_phi(call: Any, dtype: np.dtype, bk: Any) -> Any:
    """``call`` (bool, array of bools, or "call"/"put"/"C"/"P" strings) as +1.0 / -1.0."""
    if isinstance(call, (bool, np.bool_)):
        return 1.0 if call else -1.0
    if isinstance(call, str):
        key = call.strip().lower()
        if key not in _CALL_WORDS:
            raise ValueError(f"call = {call!r} is not an option type; use True/False or 'call'/'put'/'C'/'P'")
        return 1.0 if _CALL_WORDS[key] else -1.0
    if array_backend(call) in ("cupy", "jax"):
        if array_backend(call) != bk.name:
            call = to_numpy(call)  # another device's array: through the host
        else:
            if call.dtype != bk.xp.bool:
                raise ValueError(f"call must be boolean or strings; got a {call.dtype} array")
            return bk.xp.where(call, 1.0, -1.0)
    arr = np.asarray(call)
    if arr.dtype == np.bool_:
        # 2 x - 1 through the backend's elementwise runner (NumPy: chunked on its threads)
        return bk.elementwise(_phi_kernel, [bk.asarray(arr)], ("phi",), dtype, key=("phi",), native="call_sign")["phi"]
    if arr.dtype.kind in "US" or arr.dtype == object:
        flat = arr.reshape(-1)
        out = np.empty(flat.shape, dtype=dtype)
        for i, word in enumerate(flat):
            w = str(word.decode() if isinstance(word, bytes) else word).strip().lower()
            if w not in _CALL_WORDS:
                raise ValueError(
                    f"call{_index(arr.shape, i)} = {word!r} is not an option type; use True/False or 'call'/'put'/'C'/'P'"
                )
            out[i] = 1.0 if _CALL_WORDS[w] else -1.0
        return out.reshape(arr.shape)
    raise ValueError(f"call must be a bool, an array of bools, or 'call'/'put'/'C'/'P' strings; got dtype {arr.dtype}")


@dataclass(frozen=True)
class Rule:
    name: str
    lower: float | None  # None: any finite value
    strict: bool  # lower bound excluded

    def describe(self) -> str:
        if self.lower is None:
            return f"{self.name} must be finite"
        op = ">" if self.strict else ">="
        return f"{self.name} must be finite and {op} {self.lower:g}"


def rules(model: str, quote: str = "vol") -> tuple[Rule, ...]:
    """Rules for (spot, strike, expiry, quote, rate, div); ``quote`` is "vol" (pricing) or "price"
    (implied vol: any finite price, whose bounds are judged by the solver, not rejected here)."""
    positive = model != "bachelier"
    return (
        Rule("spot", 0.0 if positive else None, strict=True),
        Rule("strike", 0.0 if positive else None, strict=False),
        Rule("expiry", 0.0, strict=False),
        Rule("vol", 0.0, strict=False) if quote == "vol" else Rule("price", None, strict=False),
        Rule("rate", None, strict=False),
        Rule("div", None, strict=False),
    )


@dataclass
class Checked:
    arrays: list[Any]  # spot, strike, expiry, vol, rate, div, phi
    shape: tuple[int, ...]
    invalid: Any  # boolean mask of the broadcast shape, or None
    regular: bool  # every expiry, vol (and strike, lognormal models) > 0: no zero-variance limits needed


def check_inputs(
    bk: Any, model: str, values: tuple[Any, ...], call: Any, dtype: np.dtype, on_invalid: str, quote: str = "vol"
) -> Checked:
    """Convert to ``bk`` arrays of ``dtype``, check every rule, and raise or mask per ``on_invalid``.

    ``values`` are (spot, strike, expiry, vol, rate, div), or with ``quote="price"`` (spot, strike,
    expiry, price, rate, div).
    """
    if on_invalid not in ("raise", "nan"):
        raise ValueError(f"on_invalid={on_invalid!r}; expected 'raise' or 'nan'")
    arrays: list[Any] = []
    bads: list[Any] = []
    regular = True
    for rule, x in zip(rules(model, quote), values, strict=True):
        kind = array_backend(x)
        if kind is None:
            try:
                x = np.asarray(x, dtype=dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{rule.name} must be numeric; got {x!r:.80}") from exc
        elif kind not in ("numpy", bk.name):
            x = to_numpy(x)  # another device's array: through the host
        x = bk.asarray(x, dtype=dtype)
        if model != "bsm" and rule.name == "div":
            arrays.append(x)  # ignored by black76 and bachelier: not checked
            continue
        xp = bk.xp
        lo, hi = bk.min_max(x) if x.size else (1.0, 1.0)  # NaN propagates
        ok = math.isfinite(lo) and math.isfinite(hi)
        if ok and rule.lower is not None:
            ok = lo > rule.lower if rule.strict else lo >= rule.lower
        if not ok:  # slow path: locate the offending values
            bad = ~xp.isfinite(x)
            if rule.lower is not None:
                bad = bad | ((x <= rule.lower) if rule.strict else (x < rule.lower))
            if on_invalid == "raise":
                raise _first_bad(rule.name, x, bad, rule.describe(), model)
            bads.append(bad)
            x = xp.where(bad, _SAFE[rule.name], x)
            lo = float(xp.min(x))
        if rule.name in ("expiry", "vol") or (rule.name == "strike" and model != "bachelier"):
            regular = regular and lo > 0
        arrays.append(x)
    phi = to_phi(call, dtype, bk)
    if not isinstance(phi, float):
        phi = bk.asarray(phi, dtype=dtype)
    arrays.append(phi)
    names = [r.name for r in rules(model, quote)] + ["call"]
    try:
        shape = tuple(np.broadcast_shapes(*(tuple(np.shape(a)) for a in arrays)))
    except ValueError:
        shapes = ", ".join(f"{n}{tuple(np.shape(a))}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"input shapes do not broadcast together: {shapes}") from None
    invalid = None
    if bads:
        xp = bk.xp
        invalid = bads[0]
        for b in bads[1:]:
            invalid = invalid | b
        invalid = xp.broadcast_to(invalid, shape)
    return Checked(arrays, shape, invalid, regular)


_SAFE = {"spot": 1.0, "strike": 1.0, "expiry": 1.0, "vol": 0.2, "price": 0.1, "rate": 0.0, "div": 0.0}
