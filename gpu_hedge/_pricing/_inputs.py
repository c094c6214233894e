"""Input checking for the pricing API: one pass per argument, errors that say what and where."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._backends import device_array_kind, to_numpy

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


def _shown(given: np.ndarray, idx: tuple[int, ...]) -> str:
    """The user's value at ``idx``, as they gave it."""
    v = given[idx]
    return repr(v) if given.dtype.kind in "mMO" else repr(v.item())


def _first_bad(
    name: str, x: Any, bad: Any, rule: str, model: str, given: Any = None, dtype: Any = None, stated: Any = None
) -> ValueError:
    """The error for the first ``bad`` value of ``x``; ``given`` (the user's numbers before the cast to
    ``dtype``) supplies the value shown, and tells a value that overflowed the cast from a bad one;
    ``stated`` (timedeltas, objects: what the user wrote before conversion), when given, is shown too."""
    bad_h = to_numpy(bad)
    shape = np.shape(bad_h)
    flat = bad_h.reshape(-1)
    i = int(np.flatnonzero(flat)[0])
    idx = np.unravel_index(i, shape) if shape else ()
    count = int(flat.sum())
    more = f" ({count} invalid values in all)" if count > 1 else ""
    src = np.broadcast_to(to_numpy(x if given is None else given), shape)
    where = f"{name}{_index(shape, i)}"
    if given is not None and dtype is not None and src.dtype.kind in "fiu":
        g, c = src[idx].item(), np.broadcast_to(to_numpy(x), shape)[idx].item()
        if math.isfinite(g) and not math.isfinite(c):
            return ValueError(
                f"{where} = {g!r} overflows {np.dtype(dtype).name} (largest finite value "
                f"{float(np.finfo(dtype).max):.8g}); pass dtype='float64' or rescale{more}"
            )
        if g != 0 and c == 0:
            rule += f" ({g!r} underflows {np.dtype(dtype).name} to 0)"
    value = _shown(src, idx)
    if stated is not None and np.shape(stated) == np.shape(src):
        value = f"{_shown(stated, idx)} ({value} years, ACT/365)" if stated.dtype.kind == "m" else _shown(stated, idx)
    return ValueError(f"{where} = {value} is invalid for model={model!r}: {rule}{more}")


def _stated(x: Any) -> np.ndarray | None:
    """What the user wrote, when conversion changed it (timedeltas, object arrays), for messages."""
    if device_array_kind(x) is not None:
        return None
    arr = np.asarray(x)
    return arr if arr.dtype.kind in "mO" else None


#: Day count of timedelta expiries: ACT/365, a year is 365 days of 86,400 seconds.
SECONDS_PER_YEAR = 365.0 * 86400.0

_NOT_NUMBERS = (bool, np.bool_, str, bytes, np.str_, np.bytes_)


def _not_a_number(name: str, what: str) -> ValueError:
    span = " (or a timedelta: ACT/365 years)" if name == "expiry" else ""
    return ValueError(f"{name} must be numeric: a number or a numeric array{span}; got {what}")


def _a_date(name: str, what: str) -> ValueError:
    if name != "expiry":
        return _not_a_number(name, what)
    return ValueError(
        f"expiry must be a time to expiry in years or a timedelta; got {what}, a date: there is no valuation "
        "date to subtract it from; pass (expiry_date - valuation_date) as a timedelta64, or years"
    )


def _timedelta_years(name: str, arr: np.ndarray) -> np.ndarray:
    """A timedelta64 array as years, ACT/365 (NaT becomes NaN, which the rules then refuse)."""
    if name != "expiry":
        raise _not_a_number(name, f"a {arr.dtype} value (only expiry takes a time span)")
    unit = np.datetime_data(arr.dtype)[0]
    if unit == "generic":
        raise ValueError("expiry is a timedelta64 without a unit; give one, e.g. np.timedelta64(30, 'D')")
    if unit in ("Y", "M"):
        raise ValueError(
            f"expiry is a {arr.dtype} value: years and months have no fixed length; "
            "pass years as a float, or a timedelta64 in days or finer units (ACT/365)"
        )
    return arr / np.timedelta64(1, "s") / SECONDS_PER_YEAR


def _number(name: str, v: Any, where: str = "") -> float:
    """One Python object (a scalar, or an element of an object array) as a float, or refused."""
    label = f"{name}{where}"
    if isinstance(v, _NOT_NUMBERS):
        raise _not_a_number(label, f"{type(v).__name__} {v!r:.80}")
    if isinstance(v, _dt.timedelta):  # pandas' Timedelta included
        if name != "expiry":
            raise _not_a_number(label, f"the time span {v!r} (only expiry takes one)")
        return v.total_seconds() / SECONDS_PER_YEAR
    if isinstance(v, (_dt.date, np.datetime64)):  # datetime, pandas' Timestamp included
        raise _a_date(label, f"{v!r}")
    if isinstance(v, np.timedelta64):
        return float(_timedelta_years(name, np.asarray(v)))
    if isinstance(v, (complex, np.complexfloating)):
        raise _not_a_number(label, f"the complex number {v!r}")
    try:
        return float(v)
    except OverflowError:
        raise ValueError(f"{label} = {v!r:.80} overflows float64") from None
    except (TypeError, ValueError):
        raise _not_a_number(label, f"{type(v).__name__} {v!r:.80}") from None


def _scan(name: str, seq: list | tuple, prefix: tuple[int, ...] = ()) -> None:
    """Refuse bools and strings inside (nested) lists, which NumPy would silently turn into numbers."""
    types = set(map(type, seq))
    if not any(issubclass(t, (*_NOT_NUMBERS, list, tuple)) for t in types):
        return
    for i, e in enumerate(seq):
        if isinstance(e, (list, tuple)):
            _scan(name, e, (*prefix, i))
        elif isinstance(e, _NOT_NUMBERS):
            where = "[" + ", ".join(str(j) for j in (*prefix, i)) + "]"
            raise _not_a_number(f"{name}{where}", f"{type(e).__name__} {e!r:.80}")


def host_numbers(name: str, x: Any) -> np.ndarray:
    """``x`` (a host value: scalar, sequence, NumPy array) as a real NumPy array of float, int or uint dtype.

    Taken as stated or refused with a ValueError naming ``name``: bools, strings, complex numbers
    and dates are refused; for ``expiry`` timedeltas (NumPy, ``datetime``, pandas) become years, ACT/365.
    """
    if isinstance(x, np.ndarray) and x.dtype.kind in "fiu":
        return x  # the common case: nothing to convert
    if isinstance(x, (list, tuple)):
        _scan(name, x)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise _not_a_number(name, f"{x!r:.80}") from exc
    kind = arr.dtype.kind
    if kind in "fiu":
        return arr
    noun = "value" if arr.ndim == 0 else "array"
    if kind == "b":
        raise _not_a_number(name, f"bool {arr.item()!r}" if arr.ndim == 0 else "a bool array")
    if kind in "US":
        raise _not_a_number(name, f"str {arr.item()!r:.80}" if arr.ndim == 0 else f"an array of strings ({arr.dtype})")
    if kind == "c":
        raise _not_a_number(name, f"a complex {noun} ({arr.dtype})")
    if kind == "m":
        return _timedelta_years(name, arr)
    if kind == "M":
        raise _a_date(name, repr(arr[()]) if arr.ndim == 0 else f"an array of dtype {arr.dtype}")
    if kind == "O":
        flat = arr.reshape(-1)
        out = np.empty(flat.shape, dtype=np.float64)
        for i, v in enumerate(flat):
            out[i] = _number(name, v, _index(arr.shape, i))
        return out.reshape(arr.shape)
    raise _not_a_number(name, f"a {noun} of dtype {arr.dtype}")


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
    if (kind := device_array_kind(call)) is not None:
        if kind != bk.name:
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


def to_device_or_host(bk: Any, name: str, x: Any) -> Any:
    """``x`` as ``bk``'s own array if it is one (real numeric dtype, else refused), else as :func:`host_numbers`."""
    kind = device_array_kind(x)
    if kind is not None:
        if kind == bk.name:
            k = x.dtype.kind
            if k not in "fiu":
                raise _not_a_number(name, f"a {kind} array of dtype {x.dtype}")
            return x
        x = to_numpy(x)  # another device's array: through the host
    return host_numbers(name, x)


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
    given: list[Any] = field(default_factory=list)  # the six inputs as given, before the cast (for messages)


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
    given_all: list[Any] = []
    for rule, raw in zip(rules(model, quote), values, strict=True):
        given = to_device_or_host(bk, rule.name, raw)
        with np.errstate(over="ignore"):  # an overflowing cast is reported below, with the value given
            x = given.astype(dtype, copy=False) if isinstance(given, np.ndarray) else given
            x = bk.asarray(x, dtype=dtype)
        given_all.append(given)
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
                raise _first_bad(rule.name, x, bad, rule.describe(), model, given, dtype, _stated(raw))
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
    return Checked(arrays, shape, invalid, regular, given_all)


_SAFE = {"spot": 1.0, "strike": 1.0, "expiry": 1.0, "vol": 0.2, "price": 0.1, "rate": 0.0, "div": 0.0}


#: Greeks whose zero-variance limit exactly at the money is documented as +-inf or NaN (see ``_limits``).
_LIMIT_NONFINITE = frozenset(
    ("gamma", "dual_gamma", "theta", "vanna", "volga", "charm", "veta", "speed", "zomma", "color", "ultima")
)
_INPUT_NAMES = ("spot", "strike", "expiry", "vol", "rate", "div")


def _limit_at_the_money(bk: Any, model: str, chk: Checked) -> Any:
    """Where the kernels take the zero-variance limit exactly at the money (the same tests as theirs)."""
    xp = bk.xp
    S, K, T, vol, r, q, phi = chk.arrays
    with np.errstate(all="ignore"):
        if model == "bachelier":
            regular, m = vol * T > 0, S - K
        else:
            b = 0.0 if model == "black76" else r - q
            regular, m = (vol * T > 0) & (K > 0), S * xp.exp(b * T) - K
        return ~regular & (phi * m == 0)


def _overflow_hint(model: str, row: dict[str, float], dtype: np.dtype) -> str:
    """Which exponential of the row leaves ``dtype``'s range, if one does."""
    T, r, q = row["expiry"], row["rate"], row["div"]
    terms = {"exp(-rate*expiry)": -r * T}
    if model == "bsm":
        terms.update({"exp(-div*expiry)": -q * T, "exp((rate-div)*expiry)": (r - q) * T})
    top = math.log(float(np.finfo(dtype).max))
    for text, e in terms.items():
        if math.isfinite(e) and abs(e) > top:
            return f"{text} = exp({e:.6g}) is out of {dtype.name}'s range"
    return f"an intermediate of the closed form leaves {dtype.name}'s range"


def check_outputs(bk: Any, model: str, out: dict[str, Any], chk: Checked, dtype: np.dtype, on_invalid: str) -> dict[str, Any]:
    """Outputs that are not finite where the inputs were valid: an error naming the row and its inputs,
    or with ``on_invalid="nan"`` NaN there (so that no inf stands for an overflow).

    One sum per output on the fast path (one pass, cheaper than ``min_max``). Not counted: rows
    already invalid (``on_invalid="nan"``) and the documented zero-variance limits at the money
    (gamma +inf, theta -inf at expiry, path-dependent Greeks NaN).
    """
    xp = bk.xp
    atm = None
    for n, v in out.items():
        if math.isfinite(float(xp.sum(v))):
            continue  # the fast path: a finite sum has finite terms (a sum that overflows is checked below)
        bad = ~xp.isfinite(v)
        if chk.invalid is not None:
            bad = bad & ~chk.invalid
        if n in _LIMIT_NONFINITE and not chk.regular:
            atm = _limit_at_the_money(bk, model, chk) if atm is None else atm
            bad = bad & ~atm
        if not bool(xp.any(bad)):
            continue
        if on_invalid == "nan":
            out[n] = xp.where(bad, math.nan, v)
            continue
        bad_h = np.broadcast_to(to_numpy(bad), chk.shape)
        i = int(np.flatnonzero(bad_h.reshape(-1))[0])
        idx = np.unravel_index(i, chk.shape) if chk.shape else ()

        def at(a: Any, idx: tuple[Any, ...] = idx) -> Any:  # element ``idx`` of a broadcast input or output
            return a if isinstance(a, float) else np.broadcast_to(to_numpy(a), chk.shape)[idx]

        value = at(v).item()
        shown = ", ".join(f"{name}={_shown(np.asarray(at(g)), ())}" for name, g in zip(_INPUT_NAMES, chk.given, strict=True))
        call = bool(at(chk.arrays[6]) > 0)
        row = {name: float(at(a)) for name, a in zip(_INPUT_NAMES, chk.arrays, strict=False)}
        count = int(bad_h.sum())
        more = f"; {count} values of {n} in all" if count > 1 else ""
        raise ValueError(
            f"{n}{_index(chk.shape, i)} is not finite ({value!r}) for {shown}, call={call} (model={model!r}): "
            f"each input is valid but {_overflow_hint(model, row, dtype)}{more}. "
            "Rescale the inputs, or pass on_invalid='nan' to get NaN in such rows"
        )
    return out
