"""The NumPy backend's native path-simulation steps (Numba), used through ``elementwise(native=...)``.

- ``("heston_qe", constants)``: one step of Andersen's QE scheme, bit for bit the numbers of
  ``gpu_hedge._simulation.heston.HestonQEStep.advance`` (the reference, which every other backend
  runs; ``constants`` come from its ``native`` attribute): same formulas, branches and order of
  operations, no fused multiply-adds (tested). Where the generic step evaluates both branches for
  every path and selects, this one evaluates the branch each path takes. The normal CDF,
  logarithms and the spot's ``exp`` stay vectorised calls per chunk, as in
  :mod:`cpu_fallback._black`: one compiled pass finds each path's branch and the arguments of its
  logarithms, NumPy's ``log`` runs on them, a second pass finishes the step.
- ``("merton", constants)``: one exact Merton jump-diffusion step, bit for bit
  ``gpu_hedge._simulation.merton.MertonStep``'s: the Poisson count by inversion against the survival
  probabilities, the log-normal jump and the diffusion in one compiled pass between NumPy's ``ndtr``
  and ``exp`` (the generic step makes about 25 whole-array passes for it).
- ``("heston_euler", constants)``: one full-truncation Euler step of Heston, bit for bit
  ``HestonEulerStep``'s, in one compiled pass and NumPy's ``exp``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._black import _full
from ._jit import njit
from ._ndtr import ndtr
from ._ndtr_kernel import JIT

#: the outputs of :func:`heston_qe` and :func:`heston_euler`, in this order: the spot and the variance after the step
QE_NAMES = ("s0", "s1")


def _constants(values: tuple[float, ...], count: int, name: str) -> np.ndarray:
    c = np.array(values, dtype=np.float64)
    if c.shape != (count,):
        raise ValueError(f"{name} takes {count} constants, got {c.size}")
    return c


def _work(out: Mapping[str, np.ndarray], names: tuple[str, ...], n: int) -> list[np.ndarray]:
    """float64 arrays to work a step in, one per state name: the outputs themselves, or temporaries
    for float32 outputs (float32 runs work the step in float64 and round the state once)."""
    return [out[k] if out[k].dtype == np.float64 else np.empty(n) for k in names]


def _store(out: Mapping[str, np.ndarray], names: tuple[str, ...], work: list[np.ndarray], spot: np.ndarray) -> None:
    """The spot from its log step (``work[0]``: exp, NumPy's, times the spot), then every state into its output."""
    np.exp(work[0], out=work[0])
    work[0] *= spot
    for k, w in zip(names, work, strict=True):
        if out[k] is not w:
            out[k][:] = w


#: no contraction into fused multiply-adds, so that each operation rounds as the generic step's
#: NumPy operation does: the exponential branch's log((1 - p) / tail) cancels where tail ~ 1 - p,
#: and one rounding apart would show as a visible relative difference in a tiny variance
_EXACT = {k: v for k, v in JIT.items() if k != "fastmath"}
_QUAD, _ALIVE, _OK, _TAIL = 1, 2, 4, 8  # bits of ``code``: branch, mean > 0, K0* exists, tail < 1 - p


@njit(nogil=True, **_EXACT)
def _qe_branch(v: Any, z1: Any, tail: Any, c: Any, logs: Any, t1: Any, t2: Any, code: Any) -> None:  # pragma: no cover
    """Each path's branch and the arguments of its logarithms (NumPy's ``log`` comes next), given
    ``tail`` = ndtr(-z1) = 1 - U:
    ``logs[i]`` the moment-generating function's, ``logs[n + i]`` the exponential branch's
    (1 - p) / tail; ``t1`` V of the quadratic branch or beta, ``t2`` A b^2 a / arg; ``code`` bits."""
    decay, theta, var1, var2, psi_c, big_a = c[0], c[1], c[2], c[3], c[4], c[5]
    n = v.shape[0]
    for i in range(n):
        vi = v[i]
        mean = theta + (vi - theta) * decay
        var = vi * var1 + var2
        alive = mean > 0.0
        mean_s = mean if alive else 1.0
        psi = var / (mean_s * mean_s) if alive else psi_c
        bits = _ALIVE if alive else 0
        logs[n + i] = 1.0
        if psi <= psi_c:  # quadratic branch (and paths whose variance stays at 0)
            two_over_psi = 2.0 / min(max(psi, 1e-300), psi_c)
            b2 = two_over_psi - 1.0 + math.sqrt(two_over_psi) * math.sqrt(two_over_psi - 1.0)
            a = mean_s / (1.0 + b2)
            root = math.sqrt(b2) + z1[i]
            arg = 1.0 - 2.0 * big_a * a
            arg_s = arg if arg > 0.0 else 1.0
            t1[i] = a * (root * root)
            t2[i] = big_a * b2 * a / arg_s
            logs[i] = arg_s
            bits |= _QUAD | (_OK if arg > 0.0 else 0)
        else:  # exponential branch, by inversion of U = ndtr(Zv)
            p = (psi - 1.0) / (psi + 1.0)
            beta = (1.0 - p) / mean_s
            if tail[i] < 1.0 - p:
                logs[n + i] = (1.0 - p) / tail[i]
                bits |= _TAIL
            ok = beta > big_a
            logs[i] = p + beta * (1.0 - p) / (beta - big_a if ok else 1.0)
            t1[i] = beta
            bits |= _OK if ok else 0
        code[i] = bits


@njit(nogil=True, **_EXACT)
def _qe_finish(v: Any, z0: Any, c: Any, logs: Any, t1: Any, t2: Any, code: Any, v_next: Any, log_step: Any) -> None:  # pragma: no cover
    """``v_next`` and the spot's log step, given :func:`_qe_branch`'s outputs with ``logs`` logged."""
    k0, k1, k2, k3, k4, drift = c[6], c[7], c[8], c[9], c[10], c[11]
    n = v.shape[0]
    for i in range(n):
        vi = v[i]
        bits = code[i]
        alive = (bits & _ALIVE) != 0
        if bits & _QUAD:
            vn = t1[i] if alive else 0.0
            log_mgf = t2[i] - 0.5 * logs[i] if alive else 0.0
        else:
            vn = logs[n + i] / t1[i] if bits & _TAIL else 0.0
            log_mgf = logs[i]
        k0_star = -log_mgf - (k1 + 0.5 * k3) * vi if bits & _OK else k0
        v_next[i] = vn
        log_step[i] = drift + k0_star + k1 * vi + k2 * vn + math.sqrt(k3 * vi + k4 * vn) * z0[i]


def heston_qe(constants: tuple[float, ...]) -> Any:
    """``kernel(spot, v, z0, z1, out=...)`` for :func:`cpu_fallback.run_chunked` with ``into=True``:
    one QE step of each path in the chunk, writing the state after it: ``out["s0"]`` (spot) and
    ``out["s1"]`` (variance). float32 outputs: the step is worked in float64 (bit for bit the float64
    step from the float32 state and shocks) and rounded once when stored.

    ``constants`` = (decay, theta, var1, var2, psi_c, A, K0, K1, K2, K3, K4, drift): e^(-kappa dt);
    theta; the conditional variance ``v var1 + var2``; the switching level; Andersen's A and K0 ... K4;
    and (rate - div) dt. ``HestonQEStep.native`` computes them."""
    c = _constants(constants, 12, "heston_qe")

    def kernel(spot: Any, v: Any, z0: Any, z1: Any, out: Mapping[str, np.ndarray]) -> None:
        n = next(iter(out.values())).shape[0]
        spot, v, z0, z1 = (_full(a, n) for a in (spot, v, z0, z1))
        tail = ndtr(-z1)  # 1 - U, exact in the far tail: the generic step's CDF, on every path
        logs, t1, t2, code = np.empty(2 * n), np.empty(n), np.empty(n), np.empty(n, dtype=np.int8)
        _qe_branch(v, z1, tail, c, logs, t1, t2, code)
        np.log(logs, out=logs)
        log_step, v_next = work = _work(out, QE_NAMES, n)
        _qe_finish(v, z0, c, logs, t1, t2, code, v_next, log_step)
        _store(out, QE_NAMES, work, spot)

    # ~6 temporaries of 8 bytes per path: 16,384 paths keep them within L2
    kernel.chunk = 16384  # type: ignore[attr-defined]
    return kernel


#: the output of :func:`merton`: the spot after the step
MERTON_NAMES = ("s0",)


@njit(nogil=True, **_EXACT)
def _merton_pass(z0: Any, z1: Any, tail: Any, c: Any, survival: Any, log_step: Any) -> None:  # pragma: no cover - compiled
    """The log step of each path given ``tail`` = ndtr(-z2): the jump count N = #{n: tail < P(N > n)}."""
    drift, scale, jump_mean, jump_std = c[0], c[1], c[2], c[3]
    for i in range(z0.shape[0]):
        jumps = 0.0
        for s in survival:
            jumps = jumps + (1.0 if tail[i] < s else 0.0)
        log_jump = jumps * jump_mean + math.sqrt(jumps) * jump_std * z1[i]
        log_step[i] = drift + log_jump + scale * z0[i]


def merton(constants: tuple[float, ...]) -> Any:
    """``kernel(spot, z0, z1, z2, out=...)`` for :func:`cpu_fallback.run_chunked` with ``into=True``:
    one Merton step of each path in the chunk, writing ``out["s0"]`` (the spot after it); float32
    outputs are the float64 step rounded once.

    ``constants`` = (drift, scale, jump_mean, jump_std, P(N > 0), P(N > 1), ...): the step's log
    drift (compensated), vol sqrt(dt), the jump sizes' log mean and standard deviation, and the
    Poisson count's survival probabilities. ``MertonStep.native`` computes them."""
    c = np.array(constants[:4], dtype=np.float64)
    survival = np.array(constants[4:], dtype=np.float64)
    if c.shape != (4,):
        raise ValueError(f"merton takes at least 4 constants, got {len(constants)}")

    def kernel(spot: Any, z0: Any, z1: Any, z2: Any, out: Mapping[str, np.ndarray]) -> None:
        n = next(iter(out.values())).shape[0]
        spot, z0, z1, z2 = (_full(a, n) for a in (spot, z0, z1, z2))
        tail = ndtr(-z2)  # 1 - U, exact in the far tail
        (log_step,) = work = _work(out, MERTON_NAMES, n)
        _merton_pass(z0, z1, tail, c, survival, log_step)
        _store(out, MERTON_NAMES, work, spot)

    return kernel


@njit(nogil=True, **_EXACT)
def _euler_pass(v: Any, z0: Any, z1: Any, c: Any, v_next: Any, log_step: Any) -> None:  # pragma: no cover - compiled
    """The variance after the step and the spot's log step, in ``HestonEulerStep.advance``'s order."""
    kappa, theta, xi, rho, rho_bar, carry, dt = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    for i in range(v.shape[0]):
        vi = v[i]
        v_pos = max(vi, 0.0)
        root = math.sqrt(v_pos * dt)
        v_next[i] = vi + kappa * (theta - v_pos) * dt + xi * root * z1[i]
        shock = rho * z1[i] + rho_bar * z0[i]
        log_step[i] = (carry - 0.5 * v_pos) * dt + root * shock


def heston_euler(constants: tuple[float, ...]) -> Any:
    """``kernel(spot, v, z0, z1, out=...)``: one full-truncation Euler step, writing ``out["s0"]``
    (spot) and ``out["s1"]`` (the variance state, which may go negative); float32 outputs are the
    float64 step rounded once. ``constants`` = (kappa, theta, xi, rho, sqrt(1 - rho^2), rate - div,
    dt), from ``HestonEulerStep.native``."""
    c = _constants(constants, 7, "heston_euler")

    def kernel(spot: Any, v: Any, z0: Any, z1: Any, out: Mapping[str, np.ndarray]) -> None:
        n = next(iter(out.values())).shape[0]
        spot, v, z0, z1 = (_full(a, n) for a in (spot, v, z0, z1))
        log_step, v_next = work = _work(out, QE_NAMES, n)
        _euler_pass(v, z0, z1, c, v_next, log_step)
        _store(out, QE_NAMES, work, spot)

    return kernel


#: native simulation steps by name: (kernel factory, the state names it writes)
STEPS = {"heston_qe": (heston_qe, QE_NAMES), "heston_euler": (heston_euler, QE_NAMES), "merton": (merton, MERTON_NAMES)}
