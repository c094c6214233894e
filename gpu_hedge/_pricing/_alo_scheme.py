"""Host-side constants of the Andersen-Lake-Offengelt scheme: nodes, quadrature and interpolation matrices.

The exercise boundary of a put is carried as ``H(z) = ln(B(tau) / X)^2`` on Chebyshev-Lobatto nodes
``z_i = -cos(i pi / n)`` (``sqrt(tau_i / T) = (1 + z_i) / 2``, so node 0 is ``tau = 0`` where
``B = X``). Every point at which the fixed-point equation and the price integral evaluate the
boundary is a fixed fraction of the option's own expiry, so the interpolation from the nodes to
those points is one constant matrix per scheme: the boundary at all quadrature points of a batch is
a single matrix product, the same on every backend. Built once per scheme with NumPy (float64) and
cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Scheme:
    """An ALO iteration scheme: ``nodes`` Chebyshev intervals (``nodes + 1`` points), ``fp_points``
    Gauss-Legendre points per fixed-point integral, ``iterations`` fixed-point steps (the first a
    Jacobi-Newton step), ``price_points`` Gauss-Legendre points of the early-exercise premium."""

    nodes: int
    fp_points: int
    iterations: int
    price_points: int


#: the default (``method="alo"``): within 1e-8 relative of the converged reference on random options spanning
#: 1 day to 5 years, vols 5-150 %, rates and yields 0-10 %, spots +-4 sd (tests/test_american.py)
DEFAULT = Scheme(nodes=32, fp_points=24, iterations=11, price_points=96)
#: ``method="alo-fast"``: ~2.5x faster, within ~3e-7 relative of the reference on the same set
FAST = Scheme(nodes=16, fp_points=24, iterations=9, price_points=48)
#: the converged reference the default is measured against
REFERENCE = Scheme(nodes=48, fp_points=96, iterations=30, price_points=256)


def _lagrange(nodes: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``L[e, i] = l_i(z_e)``: the barycentric Lagrange basis of Chebyshev-Lobatto ``nodes`` at ``z``."""
    n = len(nodes) - 1
    w = (-1.0) ** np.arange(n + 1)
    w[0] *= 0.5
    w[-1] *= 0.5
    diff = z[:, None] - nodes[None, :]
    exact = np.isclose(diff, 0.0, atol=1e-15)
    diff = np.where(exact, 1.0, diff)
    terms = w / diff
    L = terms / terms.sum(axis=1, keepdims=True)
    hit = exact.any(axis=1)
    L[hit] = exact[hit].astype(float)
    return L


@dataclass(frozen=True)
class Tables:
    """The numbers a scheme needs at run time (NumPy float64; the pricer moves them to its backend).

    Both integrals run over an angle, which makes their integrands smooth at both ends: the
    fixed-point integrals over ``m = tau sin(phi)^2`` (``m``: time from the node to the exercise
    date), the premium over ``s = sqrt(t) = sqrt(T) sin(theta)``; at the far end the boundary's
    own variable ``sqrt(tau - m) = sqrt(tau) cos(phi)`` is smooth, where ``sqrt(tau - m)`` would have
    a square-root singularity (the boundary behaves like ``sqrt(tau log tau)`` near expiry).
    """

    frac: np.ndarray  # (n,) tau_i / T at the nodes 1..n
    sin: np.ndarray  # (l,) sin(phi_j), phi_j Gauss-Legendre on [0, pi/2]
    cos: np.ndarray  # (l,) cos(phi_j)
    w: np.ndarray  # (l,) the weights
    fp_matrix: np.ndarray  # (n + 1, n * l) nodes -> boundary at tau_i cos(phi_j)^2
    price_sin: np.ndarray  # (p,) s_k / sqrt(T) = sin(theta_k)
    price_w: np.ndarray  # (p,) weights times cos(theta_k) (ds / sqrt(T))
    price_matrix: np.ndarray  # (n + 1, p) nodes -> boundary at T - t_k = T cos(theta_k)^2


def _angles(count: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(count)
    return 0.25 * np.pi * (1.0 + x), 0.25 * np.pi * w


@lru_cache(maxsize=8)
def tables(scheme: Scheme) -> Tables:
    """Build (and cache) the constant tables of ``scheme``."""
    n, n_fp, p = scheme.nodes, scheme.fp_points, scheme.price_points
    z = -np.cos(np.pi * np.arange(n + 1) / n)
    root = 0.5 * (1.0 + z)  # sqrt(tau_i / T)
    phi, w = _angles(n_fp)
    inner = root[1:, None] * np.cos(phi)[None, :]  # sqrt((tau_i - m_ij) / T)
    fp_matrix = _lagrange(z, (2.0 * inner - 1.0).reshape(-1)).T
    theta, wt = _angles(p)
    price_matrix = _lagrange(z, 2.0 * np.cos(theta) - 1.0).T
    return Tables(
        root[1:] ** 2, np.sin(phi), np.cos(phi), w, np.ascontiguousarray(fp_matrix),
        np.sin(theta), wt * np.cos(theta), np.ascontiguousarray(price_matrix),
    )  # fmt: skip
