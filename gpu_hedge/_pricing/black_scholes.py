"""Black-Scholes-Merton (spot, continuous yield) and Black-76 (forward) prices and analytic Greeks.

Both are the generalised Black formula with cost of carry ``b`` (Haug, *The Complete Guide to
Option Pricing Formulas*, 2nd ed., ch. 1 and 2): ``b = r - q`` for ``bsm``; ``b = 0`` for
``black76``, whose ``spot`` is the forward. With ``v = vol sqrt(T)``::

    d1 = (ln(S/K) + (b + vol^2/2) T) / v,   d2 = d1 - v
    V  = phi (S e^{(b-r)T} N(phi d1) - K e^{-rT} N(phi d2))

Units: theta = dV/dt per year (= -dV/dT), vega per 1.00 of vol, rho = dV/dr with q (bsm) or the
forward (black76) fixed, dividend_rho = dV/dq, charm/veta/color per year.
The kernel is pure array code on the ``xp`` namespace; it never branches on data.
"""

from __future__ import annotations

from typing import Any

from ._limits import heaviside, merge_limits, npdf


def black_kernel(model: str, names: tuple[str, ...], regular_only: bool = False):
    """Return ``kernel(xp, special, S, K, T, vol, r, q, phi) -> {name: array}`` for ``model``.

    ``regular_only=True`` promises expiry, vol and strike are all > 0 and skips the limit branch.
    """
    forward_input = model == "black76"

    def kernel(xp: Any, sp: Any, S: Any, K: Any, T: Any, vol: Any, r: Any, q: Any, phi: Any) -> dict[str, Any]:
        if regular_only:
            regular, Ts, vols, Ks = None, T, vol, K
        else:
            regular = (vol * T > 0) & (K > 0)
            # Safe stand-ins outside the regular region keep every branch finite (and gradients clean).
            Ts = xp.where(regular, T, 1.0)
            vols = xp.where(regular, vol, 1.0)
            Ks = xp.where(regular, K, 1.0)
        sqrtT = xp.sqrt(Ts)
        v = vols * sqrtT
        D = xp.exp(-r * T)
        if forward_input:
            b, Dq = 0.0, D
        else:
            b, Dq = r - q, xp.exp(-q * T)
        wanted = set(names)
        # Only what the requested Greeks use: delta alone needs one normal CDF and no density.
        legs = wanted & {"price", "theta", "rho", "dividend_rho"}
        KD = K * D
        KsD = KD if regular_only else Ks * D
        if legs or wanted & {"vega", "volga", "veta", "ultima"} or not regular_only:
            SDq = S * Dq

        def signed(x: Any) -> Any:  # phi x, without a pass when phi is the scalar +1
            return x if isinstance(phi, float) and phi == 1.0 else phi * x

        d1 = (xp.log(S / Ks) + (b + 0.5 * vols * vols) * Ts) / v
        if legs or wanted & {"dual_delta", "dual_gamma", "vanna", "volga", "charm", "veta", "color", "zomma", "ultima"}:
            d2 = d1 - v
        if legs or wanted & {"delta", "charm"}:
            N1 = sp.ndtr(signed(d1))
        if legs or "dual_delta" in wanted:
            N2 = sp.ndtr(signed(d2))
        if wanted & {"gamma", "speed", "zomma", "color", "vega", "volga", "veta", "ultima", "theta", "vanna", "charm"}:
            n1 = npdf(xp, d1)
        if legs:
            # The two legs of the price, shared by theta, rho and dividend_rho.
            A = phi * SDq * N1
            B = phi * KsD * N2
            price = xp.maximum(A - B, 0.0)
        if wanted & {"gamma", "speed", "zomma", "color"}:
            gamma = Dq * n1 / (S * v)
        if wanted & {"vega", "volga", "veta", "ultima"}:
            vega = SDq * n1 * sqrtT
        if wanted & {"charm", "veta", "color"}:
            dd1_dT = b / (vols * sqrtT) - d2 / (2.0 * Ts)  # d(d1)/dT
        reg: dict[str, Any] = {}
        for n in names:
            if n == "price":
                reg[n] = price
            elif n == "delta":
                reg[n] = phi * Dq * N1
            elif n == "gamma":
                reg[n] = gamma
            elif n == "vega":
                reg[n] = vega
            elif n == "theta":
                reg[n] = (r - b) * A - r * B - SDq * n1 * vols / (2.0 * sqrtT)
            elif n == "rho":
                reg[n] = -Ts * price if forward_input else Ts * B
            elif n == "dividend_rho":
                reg[n] = 0.0 * price if forward_input else -Ts * A
            elif n == "vanna":
                reg[n] = -Dq * n1 * d2 / vols
            elif n == "volga":
                reg[n] = vega * d1 * d2 / vols
            elif n == "charm":
                reg[n] = -Dq * (n1 * dd1_dT + phi * (b - r) * N1)
            elif n == "veta":
                reg[n] = -vega * ((b - r) + 1.0 / (2.0 * Ts) - d1 * dd1_dT)
            elif n == "speed":
                reg[n] = -gamma / S * (d1 / v + 1.0)
            elif n == "zomma":
                reg[n] = gamma * (d1 * d2 - 1.0) / vols
            elif n == "color":
                reg[n] = gamma * ((r - b) + 1.0 / (2.0 * Ts) + d1 * dd1_dT)
            elif n == "ultima":
                p = d1 * d2
                reg[n] = -vega / (vols * vols) * (p * (1.0 - p) + d1 * d1 + d2 * d2)
            elif n == "dual_delta":
                reg[n] = -phi * D * N2
            elif n == "dual_gamma":
                reg[n] = D * npdf(xp, d2) / (Ks * v)
        if regular_only:
            return reg

        # Zero variance (expiry 0 or vol 0) or zero strike: the option is a discounted forward or nothing.
        H = heaviside(xp, phi, S * xp.exp(b * T) - K)
        intrinsic = phi * (SDq - KD) * H
        lim = {
            "price": intrinsic,
            "delta": phi * Dq * H,
            "dual_delta": -phi * D * H,
            "theta": -phi * (b - r) * SDq * H - phi * r * KD * H,
            "rho": -T * intrinsic if forward_input else phi * KD * T * H,
            "dividend_rho": 0.0 * intrinsic if forward_input else -phi * T * SDq * H,
            "charm": -Dq * phi * (b - r) * H,
        }
        return merge_limits(xp, names, regular, reg, lim, H, SDq * xp.sqrt(T), T, vol)

    return kernel
