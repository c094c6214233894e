"""A seeded synthetic options book, for demos, tests and benchmarks."""

from __future__ import annotations

import math

import numpy as np

BOOK_COLUMNS = ("underlying", "spot", "strike", "expiry", "vol", "rate", "div", "call", "quantity", "multiplier")


def demo_book(n: int, seed: int = 0, n_underlyings: int = 50) -> dict[str, np.ndarray]:
    """A synthetic book of ``n`` European equity options on ``n_underlyings`` underlyings.

    Columns (all NumPy arrays of length ``n``): ``underlying`` (int id), ``spot``, ``strike``,
    ``expiry`` (years), ``vol`` (decimal), ``rate`` and ``div`` (continuously compounded),
    ``call`` (bool), ``quantity`` (signed contracts, int), ``multiplier`` (100, int).

    Each underlying has its own spot (5 to 1,000, log-uniform), volatility level (15-55 %) and
    dividend yield (0-4 %, a third pay none); a few names carry most positions. Strikes lie within
    +-40 % of spot on a listed-strike grid, expiries from 1 day to 3 years (log-uniform, so short
    dates are common), vols follow a skewed smile and term structure around the underlying's level
    and stay within 10-80 %, and rates follow a gently upward curve (3.5-4.5 %).
    The same ``(n, seed, n_underlyings)`` gives the same book.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n_underlyings < 1:
        raise ValueError(f"n_underlyings must be >= 1, got {n_underlyings}")
    rng = np.random.default_rng(seed)

    # Underlyings: spot, vol level, dividend yield, and how popular each is.
    u_spot = np.round(np.exp(rng.uniform(math.log(5.0), math.log(1000.0), n_underlyings)), 2)
    u_vol = rng.uniform(0.15, 0.55, n_underlyings)
    u_div = np.round(rng.uniform(0.0, 0.04, n_underlyings), 4)
    u_div[rng.random(n_underlyings) < 1 / 3] = 0.0
    weight = rng.permutation(1.0 / np.arange(1, n_underlyings + 1) ** 0.8)
    weight /= weight.sum()

    underlying = rng.choice(n_underlyings, size=n, p=weight).astype(np.int64)
    spot = u_spot[underlying]

    # Strikes within +-40 % of spot, rounded to a listed-strike grid (never outside the band, never <= 0).
    tick = np.where(spot < 25.0, 0.5, np.where(spot < 200.0, 1.0, 5.0))
    lo = np.ceil(spot * 0.6 / tick) * tick
    hi = np.floor(spot * 1.4 / tick) * tick
    strike = np.clip(np.round(spot * rng.uniform(0.6, 1.4, n) / tick) * tick, lo, hi)

    expiry = np.exp(rng.uniform(math.log(1.0 / 365.0), math.log(3.0), n))

    # Vol: level x term structure, plus skew and smile in log-moneyness, plus noise; clipped to 10-80 %.
    k = np.log(strike / spot)
    term = 1.0 + 0.15 * np.exp(-expiry / 0.25) - 0.05 * np.minimum(expiry, 3.0) / 3.0
    vol = u_vol[underlying] * term - 0.20 * k + 0.30 * k * k / np.sqrt(np.maximum(expiry, 1 / 52))
    vol = np.clip(vol + rng.normal(0.0, 0.01, n), 0.10, 0.80)

    rate = 0.035 + 0.010 * (1.0 - np.exp(-expiry / 1.0))
    div = u_div[underlying]
    call = rng.random(n) < 0.5
    size = rng.geometric(0.08, n).clip(1, 500)
    quantity = np.where(rng.random(n) < 0.5, -size, size).astype(np.int64)
    multiplier = np.full(n, 100, dtype=np.int64)

    return {
        "underlying": underlying,
        "spot": spot,
        "strike": strike,
        "expiry": expiry,
        "vol": vol,
        "rate": rate,
        "div": div,
        "call": call,
        "quantity": quantity,
        "multiplier": multiplier,
    }
