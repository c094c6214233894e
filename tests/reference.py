"""Independent high-precision reference for option prices and Greeks.

Everything here is computed with closed-form formulas evaluated in mpmath at
``DPS`` (>= 40) decimal digits, so the results are correctly rounded float64
values of the *exact* mathematical Greek at the exact float inputs given
(no cancellation issues at this precision).  Nothing here imports gpu_hedge.

Conventions (phi = +1 call / -1 put):

* ``bsm``       Black-Scholes-Merton on spot S with continuous dividend yield q
                (generalised BSM with cost of carry b = r - q).
* ``black76``   ``S`` is the forward F (carry b = 0), q is ignored.
* ``bachelier`` ``S`` is the forward F (may be negative, so may K), ``sigma``
                is the absolute normal vol, q is ignored.

Greeks are plain partial derivatives of V(S, K, T, sigma, r, q):
theta = -dV/dT, charm = -d2V/dSdT, veta = -d2V/dsigma dT, color = -d3V/dS2dT,
rho = dV/dr with q (bsm) or F (black76 / bachelier) fixed, dividend_rho = dV/dq.

Public helpers: ``ref_greeks``, ``ref_noise``, ``ref_table``, ``random_cases``,
``mp_price``, ``GREEK_NAMES``, ``MODELS``.
"""

from __future__ import annotations

import mpmath
import numpy as np

mp = mpmath.mp

DPS = 50

GREEK_NAMES = (
    "price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho",
    "vanna", "volga", "charm", "veta", "speed", "zomma", "color", "ultima",
    "dual_delta", "dual_gamma",
)
MODELS = ("bsm", "black76", "bachelier")
INPUT_NAMES = ("S", "K", "T", "sigma", "r", "q")

# relative size of the one-ulp input perturbation used by ref_noise
_ULP_REL = mpmath.mpf(2) ** -52


# ---------------------------------------------------------------------------
# closed forms (mpf in, mpf out; caller sets the precision)
# ---------------------------------------------------------------------------

def _npdf(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _ncdf(x):
    # erfc based: accurate in both tails
    return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def _gbs(S, K, T, sigma, r, b, phi, bsm_rho):
    """Generalised Black-Scholes (Haug) with cost of carry b, all 17 Greeks.

    bsm_rho=True: r and q = r - b are the inputs (bsm); rho is taken with q
    fixed and dividend_rho = dV/dq = -dV/db.  bsm_rho=False (black76): b = 0
    does not depend on r, rho = dV/dr|_F = -T V and dividend_rho = 0.
    """
    sqT = mpmath.sqrt(T)
    v = sigma * sqT
    d1 = (mpmath.log(S / K) + (b + sigma * sigma / 2) * T) / v
    d2 = d1 - v
    E = mpmath.exp((b - r) * T)       # e^{-qT} for bsm, e^{-rT} for black76
    D = mpmath.exp(-r * T)
    Nd1 = _ncdf(phi * d1)
    Nd2 = _ncdf(phi * d2)
    nd1 = _npdf(d1)
    nd2 = _npdf(d2)
    # dd1/dT and dd2/dT
    A1 = b / v - d2 / (2 * T)

    price = phi * (S * E * Nd1 - K * D * Nd2)
    delta = phi * E * Nd1
    gamma = E * nd1 / (S * v)
    vega = S * E * nd1 * sqT
    theta = (-S * E * nd1 * sigma / (2 * sqT)
             - phi * (b - r) * S * E * Nd1
             - phi * r * K * D * Nd2)
    carry_rho = phi * T * S * E * Nd1          # dV/db at r fixed
    if bsm_rho:
        rho = -T * price + carry_rho            # = phi T K e^{-rT} N(phi d2)
        dividend_rho = -carry_rho
    else:
        rho = -T * price
        dividend_rho = mpmath.mpf(0)
    vanna = -E * nd1 * d2 / sigma
    volga = vega * d1 * d2 / sigma
    charm = -E * (phi * (b - r) * Nd1 + nd1 * A1)
    veta = vega * (r - b + d1 * A1 - 1 / (2 * T))
    speed = -gamma / S * (1 + d1 / v)
    zomma = gamma * (d1 * d2 - 1) / sigma
    color = gamma * (r - b + d1 * A1 + 1 / (2 * T))
    ultima = vega / (sigma * sigma) * (d1 * d1 * d2 * d2 - d1 * d2 - d1 * d1 - d2 * d2)
    dual_delta = -phi * D * Nd2
    dual_gamma = D * nd2 / (K * v)
    return {
        "price": price, "delta": delta, "gamma": gamma, "vega": vega,
        "theta": theta, "rho": rho, "dividend_rho": dividend_rho,
        "vanna": vanna, "volga": volga, "charm": charm, "veta": veta,
        "speed": speed, "zomma": zomma, "color": color, "ultima": ultima,
        "dual_delta": dual_delta, "dual_gamma": dual_gamma,
    }


def _bachelier(F, K, T, sigma, r, phi):
    sqT = mpmath.sqrt(T)
    w = sigma * sqT
    d = (F - K) / w
    D = mpmath.exp(-r * T)
    Nd = _ncdf(phi * d)
    nd = _npdf(d)

    price = D * (phi * (F - K) * Nd + w * nd)
    delta = D * phi * Nd
    gamma = D * nd / w
    vega = D * sqT * nd
    theta = r * price - D * nd * sigma / (2 * sqT)
    rho = -T * price
    vanna = -D * d * nd / sigma
    volga = D * sqT * d * d * nd / sigma
    charm = r * delta + D * nd * d / (2 * T)
    veta = vega * (r - (1 + d * d) / (2 * T))
    speed = -D * d * nd / (w * w)
    zomma = D * nd * (d * d - 1) / (sigma * sigma * sqT)
    color = gamma * (r + (1 - d * d) / (2 * T))
    ultima = D * sqT * nd * (d ** 4 - 3 * d * d) / (sigma * sigma)
    return {
        "price": price, "delta": delta, "gamma": gamma, "vega": vega,
        "theta": theta, "rho": rho, "dividend_rho": mpmath.mpf(0),
        "vanna": vanna, "volga": volga, "charm": charm, "veta": veta,
        "speed": speed, "zomma": zomma, "color": color, "ultima": ultima,
        "dual_delta": -delta, "dual_gamma": gamma,
    }


def _check_model(model):
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")


def _mp_greeks(model, S, K, T, sigma, r, q, call):
    """All 17 Greeks as mpf at the current working precision (mpf inputs)."""
    phi = 1 if call else -1
    if model == "bsm":
        return _gbs(S, K, T, sigma, r, r - q, phi, True)
    if model == "black76":
        return _gbs(S, K, T, sigma, r, mpmath.mpf(0), phi, False)
    if model == "bachelier":
        return _bachelier(S, K, T, sigma, r, phi)
    _check_model(model)


def _mpf_args(S, K, T, sigma, r, q):
    # mpf(float) is exact
    return tuple(mpmath.mpf(float(x)) for x in (S, K, T, sigma, r, q))


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def mp_price(model, S, K, T, sigma, r, q, call, dps=DPS):
    """mpmath price V(S, K, T, sigma, r, q) as an mpf (inputs may be mpf).

    Evaluated at max(dps, current mp.dps) digits so it can be fed to
    ``mpmath.diff`` (which raises the working precision internally).
    The result is returned unrounded at that precision.
    """
    _check_model(model)
    with mpmath.workdps(max(int(dps), mp.dps)):
        args = [mpmath.mpf(x) for x in (S, K, T, sigma, r, q)]
        phi = 1 if call else -1
        Sx, Kx, Tx, sx, rx, qx = args
        sqT = mpmath.sqrt(Tx)
        if model == "bachelier":
            w = sx * sqT
            d = (Sx - Kx) / w
            return mpmath.exp(-rx * Tx) * (phi * (Sx - Kx) * _ncdf(phi * d) + w * _npdf(d))
        if model == "bsm":
            F = Sx * mpmath.exp((rx - qx) * Tx)
        else:
            F = Sx
        v = sx * sqT
        d1 = (mpmath.log(F / Kx) + v * v / 2) / v
        d2 = d1 - v
        return mpmath.exp(-rx * Tx) * phi * (F * _ncdf(phi * d1) - Kx * _ncdf(phi * d2))


def ref_greeks(model, S, K, T, sigma, r, q, call):
    """dict name -> float: the 17 Greeks at the exact float inputs, to ~DPS digits."""
    _check_model(model)
    with mpmath.workdps(DPS):
        g = _mp_greeks(model, *_mpf_args(S, K, T, sigma, r, q), bool(call))
        return {k: float(g[k]) for k in GREEK_NAMES}


def _noise_from(model, args, call, base):
    """max over one-ulp relative input bumps of |g(bumped) - g(base)| (mpf)."""
    noise = {k: mpmath.mpf(0) for k in GREEK_NAMES}
    one_up = 1 + _ULP_REL
    for i, x in enumerate(args):
        if x == 0:
            continue
        if model != "bsm" and i == 5:      # q is ignored: zero sensitivity
            continue
        bumped = list(args)
        bumped[i] = x * one_up              # exact in mpf
        g = _mp_greeks(model, *bumped, call)
        for k in GREEK_NAMES:
            dv = abs(g[k] - base[k])
            if dv > noise[k]:
                noise[k] = dv
    return noise


def ref_noise(model, S, K, T, sigma, r, q, call):
    """dict name -> float: how much a one-ulp (relative 2**-52) change of any
    single nonzero input moves the exact Greek (max over inputs).

    Tests should accept |err| <= 1e-12 * |ref| + C * noise.
    """
    _check_model(model)
    with mpmath.workdps(DPS):
        args = _mpf_args(S, K, T, sigma, r, q)
        base = _mp_greeks(model, *args, bool(call))
        noise = _noise_from(model, args, bool(call), base)
        return {k: float(noise[k]) for k in GREEK_NAMES}


def _ref_and_noise_one(model, S, K, T, sigma, r, q, call):
    with mpmath.workdps(DPS):
        args = _mpf_args(S, K, T, sigma, r, q)
        base = _mp_greeks(model, *args, bool(call))
        noise = _noise_from(model, args, bool(call), base)
        return ([float(base[k]) for k in GREEK_NAMES],
                [float(noise[k]) for k in GREEK_NAMES])


def random_cases(n, seed, model):
    """Reproducible random option inputs: dict of float64 arrays S, K, T,
    sigma, r, q and bool array ``call``.

    T log-uniform in [1/365, 30]; r in [-0.02, 0.10]; q in [0, 0.08];
    moneyness z uniform in [-12, 12] standard deviations (far both ways).
    bsm / black76: S log-uniform in [1, 1e4], sigma log-uniform in
    [0.01, 3], K = F exp(z sigma sqrt T) with F the forward.
    bachelier: F uniform in [-200, 200] with |F| >= 1, normal vol
    sigma = s_rel * |F| with s_rel log-uniform in [0.01, 3],
    K = F + z sigma sqrt T.
    """
    _check_model(model)
    rng = np.random.default_rng([int(seed), MODELS.index(model)])
    n = int(n)
    T = np.exp(rng.uniform(np.log(1 / 365), np.log(30.0), n))
    r = rng.uniform(-0.02, 0.10, n)
    q = rng.uniform(0.0, 0.08, n)
    z = rng.uniform(-12.0, 12.0, n)
    srel = np.exp(rng.uniform(np.log(0.01), np.log(3.0), n))
    call = rng.random(n) < 0.5
    if model == "bachelier":
        F = rng.uniform(1.0, 200.0, n) * np.where(rng.random(n) < 0.5, -1.0, 1.0)
        sigma = srel * np.abs(F)
        K = F + z * sigma * np.sqrt(T)
        S = F
    else:
        S = np.exp(rng.uniform(0.0, np.log(1e4), n))
        sigma = srel
        F = S * np.exp((r - q) * T) if model == "bsm" else S
        K = F * np.exp(z * sigma * np.sqrt(T))
    return {
        "S": np.asarray(S, dtype=np.float64),
        "K": np.asarray(K, dtype=np.float64),
        "T": np.asarray(T, dtype=np.float64),
        "sigma": np.asarray(sigma, dtype=np.float64),
        "r": np.asarray(r, dtype=np.float64),
        "q": np.asarray(q, dtype=np.float64),
        "call": np.asarray(call, dtype=bool),
    }


def _table_chunk(payload):
    model, rows = payload
    return [_ref_and_noise_one(model, *row) for row in rows]


def ref_table(cases, model, processes=1):
    """dict name -> (ref array, noise array) for every case in ``cases``
    (a dict of arrays as returned by ``random_cases``).

    Serial by default (about 2 s for 300 cases x 3 models); ``processes`` > 1
    uses a fork process pool (results are identical).
    """
    _check_model(model)
    cols = [np.broadcast_to(np.asarray(cases[k], dtype=np.float64), np.shape(cases["S"])).ravel()
            for k in INPUT_NAMES]
    call = np.broadcast_to(np.asarray(cases["call"], dtype=bool), np.shape(cases["S"])).ravel()
    shape = np.shape(cases["S"])
    rows = [tuple(float(c[i]) for c in cols) + (bool(call[i]),) for i in range(call.size)]

    results = None
    if processes > 1:
        try:
            import multiprocessing as mpc
            nchunk = processes * 4
            chunks = [rows[i::nchunk] for i in range(nchunk)]
            ctx = mpc.get_context("fork") if hasattr(__import__("os"), "fork") else mpc.get_context()
            with ctx.Pool(processes) as pool:
                parts = pool.map(_table_chunk, [(model, c) for c in chunks])
            results = [None] * len(rows)
            for j, part in enumerate(parts):
                results[j::nchunk] = part
        except Exception:  # pragma: no cover - fall back to serial
            results = None
    if results is None:
        results = _table_chunk((model, rows))

    ref = np.array([res[0] for res in results], dtype=np.float64).reshape(-1, len(GREEK_NAMES))
    noise = np.array([res[1] for res in results], dtype=np.float64).reshape(-1, len(GREEK_NAMES))
    return {k: (ref[:, j].reshape(shape), noise[:, j].reshape(shape))
            for j, k in enumerate(GREEK_NAMES)}
