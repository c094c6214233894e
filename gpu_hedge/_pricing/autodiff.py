"""Greeks by automatic differentiation of the price (JAX backend).

Each Greek is a partial derivative of the same price kernel the analytic path uses, taken in
forward mode: the price is elementwise, so one Jacobian-vector product with a tangent of ones
gives a whole array of partials, and nesting JVPs gives the second and third orders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Argument positions in kernel(S, K, T, vol, r, q, phi).
_S, _K, _T, _VOL, _R, _Q = range(6)

#: Greek -> (sign, directions of differentiation).
DERIVATIVES: dict[str, tuple[float, tuple[int, ...]]] = {
    "price": (1.0, ()),
    "delta": (1.0, (_S,)),
    "gamma": (1.0, (_S, _S)),
    "vega": (1.0, (_VOL,)),
    "theta": (-1.0, (_T,)),
    "rho": (1.0, (_R,)),
    "dividend_rho": (1.0, (_Q,)),
    "vanna": (1.0, (_S, _VOL)),
    "volga": (1.0, (_VOL, _VOL)),
    "charm": (-1.0, (_S, _T)),
    "veta": (-1.0, (_VOL, _T)),
    "speed": (1.0, (_S, _S, _S)),
    "zomma": (1.0, (_S, _S, _VOL)),
    "color": (-1.0, (_S, _S, _T)),
    "ultima": (1.0, (_VOL, _VOL, _VOL)),
    "dual_delta": (1.0, (_K,)),
    "dual_gamma": (1.0, (_K, _K)),
}


def autodiff_kernel(price_kernel: Callable, jvp: Callable, names: tuple[str, ...]) -> Callable:
    """``kernel(xp, special, S, K, T, vol, r, q, phi) -> {name: array}`` built from ``price_kernel`` by JVPs."""

    def kernel(xp: Any, sp: Any, *args: Any) -> dict[str, Any]:
        phi = args[6]

        def price(*six: Any) -> Any:
            return price_kernel(xp, sp, *six, phi)["price"]

        def partial(f: Callable, i: int) -> Callable:
            def df(*six: Any) -> Any:
                tangents = tuple(xp.ones_like(a) if j == i else xp.zeros_like(a) for j, a in enumerate(six))
                return jvp(f, six, tangents)[1]

            return df

        out = {}
        for name in names:
            sign, dirs = DERIVATIVES[name]
            f = price
            for i in dirs:
                f = partial(f, i)
            val = f(*args[:6])
            out[name] = -val if sign < 0 else val
        return out

    return kernel
