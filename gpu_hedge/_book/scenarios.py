"""Scenario ladders: the spot x vol shocks of a full-revaluation ladder (:class:`Scenarios`) and the
kernel that prices every scenario of a position in one pass (:func:`ladder_kernel`).

Conventions: a spot shock is relative (-0.05 = spot down 5 %), a vol shock absolute (0.05 = vol up
5 points; a shocked vol is floored at 0); a scenario's P&L is the weighted change of value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Scenarios", "ladder_kernel", "spot_shocks"]


@dataclass(frozen=True)
class Scenarios:
    """A full-revaluation ladder: every ``spot_shocks`` (relative: -0.05 = spot down 5 %) crossed with
    every ``vol_shocks`` (absolute: 0.05 = vol up 5 points; shocked vols are floored at 0).

    ``Scenarios.parse("spot=-0.2:0.2:0.05,vol=-0.1:0.1:0.05")`` (start:stop:step, inclusive) or
    explicit lists ``spot=-0.1;0;0.1``; ``Scenarios.default()`` is spot -20 %..+20 % by 5 % x vol
    -10..+10 points by 5 (9 x 5).
    """

    spot_shocks: tuple[float, ...]
    vol_shocks: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        for name in ("spot_shocks", "vol_shocks"):
            values = getattr(self, name)
            if not values or not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
                raise ValueError(f"Scenarios.{name} must be a non-empty sequence of finite numbers, got {values!r}")
        if any(v <= -1 for v in self.spot_shocks):
            raise ValueError(f"Scenarios.spot_shocks must be > -1 (a relative move), got {self.spot_shocks!r}")

    @classmethod
    def default(cls) -> Scenarios:
        """Spot -20 %..+20 % by 5 % x vol -10..+10 points by 5 (9 x 5 = 45 scenarios)."""
        return cls.parse("spot=-0.2:0.2:0.05,vol=-0.1:0.1:0.05")

    @classmethod
    def coerce(cls, spec: Scenarios | str | None) -> Scenarios | None:
        """A :class:`Scenarios`, ``"default"``, a spec string or None, as Scenarios (or None)."""
        if isinstance(spec, str):
            return cls.default() if spec == "default" else cls.parse(spec)
        return spec

    @classmethod
    def parse(cls, spec: str) -> Scenarios:
        """Scenarios from ``"spot=start:stop:step,vol=a;b;c"`` (ranges inclusive; vol defaults to 0)."""
        parts: dict[str, tuple[float, ...]] = {}
        for item in spec.split(","):
            if not item.strip():
                continue
            key, _, body = item.partition("=")
            key = key.strip().lower()
            if key not in ("spot", "vol") or not body:
                raise ValueError(f"scenario spec {spec!r}: expected items like spot=-0.2:0.2:0.05 or vol=-0.1;0;0.1")
            try:
                if ":" in body:
                    start, stop, step = (float(x) for x in body.split(":"))
                    if step <= 0:
                        raise ValueError
                    count = int(math.floor((stop - start) / step + 1e-9)) + 1
                    values = tuple(round(start + i * step, 12) for i in range(count))
                else:
                    values = tuple(float(x) for x in body.split(";"))
            except ValueError:
                raise ValueError(f"scenario spec {spec!r}: cannot read {item!r} (start:stop:step with step > 0, or a;b;c)") from None
            parts[key] = values
        if "spot" not in parts:
            raise ValueError(f"scenario spec {spec!r} has no spot shocks")
        return cls(parts["spot"], parts.get("vol", (0.0,)))

    @property
    def size(self) -> int:
        """The number of scenarios (spot shocks x vol shocks)."""
        return len(self.spot_shocks) * len(self.vol_shocks)

    def pairs(self) -> list[tuple[float, float]]:
        """Every ``(spot_shock, vol_shock)``, spot-major (the ladder's row order)."""
        return [(s, v) for s in self.spot_shocks for v in self.vol_shocks]


def spot_shocks(pairs: Sequence[tuple[float, float]]) -> list[float]:
    """The distinct spot shocks of ``pairs``, in order of appearance (the moved vols' order)."""
    return list(dict.fromkeys(ds for ds, _ in pairs))


def ladder_kernel(model: str, pairs: Sequence[tuple[float, float]], moving: bool = False) -> Callable[..., dict]:
    """``kernel(xp, sp, S, K, T, vol, r, q, phi, w) -> {"s<j>": w x (V(S(1+ds_j), vol+dv_j) - V(S, vol))}``:
    every scenario of the ladder in one pass over the positions, sharing what the scenarios have in
    common (log-moneyness, sqrt(T), discount factors). Same generalised Black formula as
    :mod:`gpu_hedge._pricing.black_scholes` (b = r - q for bsm, 0 for black76); a shocked vol is
    floored at 0, where the price is the discounted intrinsic value. Positions are before expiry.

    ``moving``: the kernel takes one more vol array per distinct spot shock (:func:`spot_shocks`
    order), ``kernel(..., w, vol_at_0, vol_at_1, ...)``: each position's vol after that spot move
    (a sticky-moneyness smile re-read at the moved strike), used in place of ``vol`` there."""
    forward = model == "black76"
    spot_index = {ds: i for i, ds in enumerate(spot_shocks(pairs))}

    def price(xp: Any, sp: Any, s: Any, lnsk: Any, k_disc: Any, s_disc: Any, b: Any, T: Any, sqrtT: Any, v: Any, phi: Any) -> Any:
        sv = v * sqrtT
        ok = sv > 0
        d1 = (lnsk + (b + 0.5 * v * v) * T) / xp.where(ok, sv, 1.0)
        p = phi * (s * s_disc * sp.ndtr(phi * d1) - k_disc * sp.ndtr(phi * (d1 - sv)))
        return xp.where(ok, xp.maximum(p, 0.0), xp.maximum(phi * (s * s_disc - k_disc), 0.0))

    def kernel(xp: Any, sp: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any, w: Any, *moved: Any) -> dict:
        sqrtT = xp.sqrt(T)
        disc = xp.exp(-r * T)
        s_disc, b = (disc, 0.0) if forward else (xp.exp(-q * T), r - q)
        k_disc = K * disc
        lnsk = xp.log(S / K)
        base = price(xp, sp, S, lnsk, k_disc, s_disc, b, T, sqrtT, vol, phi)
        out = {}
        for j, (ds, dv) in enumerate(pairs):
            at = moved[spot_index[ds]] if moving else vol
            v = xp.maximum(at + dv, 0.0) if dv else at
            p = price(xp, sp, S * (1.0 + ds), lnsk + math.log1p(ds), k_disc, s_disc, b, T, sqrtT, v, phi)
            out[f"s{j}"] = (p - base) * w
        return out

    return kernel
