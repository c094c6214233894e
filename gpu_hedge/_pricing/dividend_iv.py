"""Implied volatility of prices of options on stocks with discrete cash dividends (escrowed model).

The model is :mod:`.dividends`': the Black-Scholes-Merton value on the escrowed spot
``S* = S - PV(dividends in (0, T])`` at the vol ``vol* = k vol``, where ``k`` (the documented vol
adjustment: 1 for ``"none"``, ``S / S*`` for ``"simple"``, Beneder-Vorst's time-weighted factor by
default) depends on the spot, the rate and the schedule but not on ``vol``. So a European price's
implied vol is the European implied vol of the price on the escrowed inputs, divided by ``k``
(exact; the same statuses, judged on the escrowed spot, so a call above ``S*`` is ``ABOVE_MAX``).
An American price is inverted by :mod:`.american_iv`'s safeguarded secant on the Crank-Nicolson
price of :func:`.dividends.dividend_greeks`, started from that European implied vol. Rows without a
dividend in ``(0, T]`` are not passed here (the caller keeps its plain inversion for them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .american_iv import american_implied_vol
from .api import _scatter
from .dividends import DividendSchedule, dividend_greeks, escrowed_inputs


def dividend_implied_vol(
    bk: Any, arrays: list[Any], schedule: DividendSchedule, american: Any, european: Callable[[list[Any]], dict[str, Any]],
    dtype: Any, *, vol_adjust: str, status_codes: Any,
) -> tuple[Any, Any]:  # fmt: skip
    """``(vol, status)`` of 1-D backend ``arrays`` (spot, strike, expiry, price, rate, div, phi) of
    ``n`` rows that pay a dividend before expiry; ``schedule`` of those ``n`` rows; ``american`` a
    host bool array per row; ``european(arrays) -> {"vol", "status"}`` the plain European inversion."""
    xp = bk.xp
    S, K, T, P, r, q, phi = arrays
    esc = escrowed_inputs(xp, S, T, r, xp.ones_like(S), schedule, vol_adjust)  # vol 1: esc.vol is k
    out = european([esc.spot, K, T, P, r, q, phi])
    k = esc.k
    vol, status = out["vol"] / k, out["status"]
    if not american.any():
        return vol, status
    idx = np.flatnonzero(american)
    take = bk.asarray(idx)
    sub = [xp.take(a, take) for a in arrays]
    sub_k = xp.take(k, take)
    sub_schedule = schedule.take(idx)
    sub_spot = xp.take(esc.spot, take)

    def euro_iv(price: Any) -> Any:
        return european([sub_spot, sub[1], sub[2], price, sub[4], sub[5], sub[6]])["vol"] / sub_k

    def evaluate(v: Any, names: tuple[str, ...]) -> dict[str, Any]:
        S_, K_, T_, _, r_, q_, phi_ = sub
        return dividend_greeks(bk, S_, K_, T_, v, r_, q_, phi_, names, sub_schedule, american=True, vol_adjust=vol_adjust, dtype=dtype)

    am_vol, am_status = american_implied_vol(
        bk, sub, euro_iv, dtype, model="bsm", method="alo", status_codes=status_codes, evaluate=evaluate
    )
    n = (int(vol.shape[0]),)
    return _scatter(bk, vol, take, am_vol, n, dtype), _scatter(bk, status, take, am_status, n, status.dtype)
