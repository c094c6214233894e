"""CUDA C++ source of the CuPy backend's fused kernels, and the small helpers that assemble it.

Pure Python: this module never imports CuPy, so the same strings can be compiled anywhere (the
tests build them with a C++ compiler on the CPU behind a shim that defines what CUDA provides, see
``tests/test_cuda_source.py``). :mod:`gpu_hedge._backends._cupy` turns them into
``cupy.ElementwiseKernel`` / ``cupy.RawKernel`` objects.

Three kernels:

- **Black price + first-order Greeks** (:func:`black_kernel_spec`): the generalised Black formula of
  :mod:`gpu_hedge._pricing.black_scholes` (``regular_only=True``: expiry, vol and strike > 0) for
  ``bsm`` (``b = r - q``) and ``black76`` (``b = 0``), same formulas and order of operations, theta
  per year, vega and rho per 1.00. One pass: 7 inputs read, the requested outputs written.
- **Scenario ladder** (:func:`ladder_kernel_spec`): ``gpu_hedge._book.risk.ladder_kernel``, one
  output per (spot shock, vol shock) pair with the shocks baked into the source as constants.
- **Standard normals** (:data:`NORMALS_SRC`): counter-based Philox4x32-10 + Box-Muller, one launch
  per time step writing the ``(count, n_paths)`` block directly.

Bit layout of the normals. Normals ``2m`` and ``2m + 1`` (``m = 0 ... ceil(count / 2) - 1``) of path
``p`` at time step ``s`` under seed ``seed`` (an integer in [0, 2**64)):

- Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC11; Random123's ``philox4x32``, 10 rounds) with key
  ``(k0, k1) = (seed mod 2**32, seed >> 32)`` and counter ``(c0, c1, c2, c3) = (m, s, p mod 2**32,
  p >> 32)`` gives four 32-bit words ``x0 ... x3``;
- float64: ``u1 = (x1 * 2**21 + (x0 >> 11) + 1) * 2**-53`` in (0, 1] and ``u2 = (x3 * 2**21 +
  (x2 >> 11)) * 2**-53`` in [0, 1) (53-bit uniforms); float32: ``u1 = ((x1 >> 8) + 1) * 2**-24``,
  ``u2 = (x3 >> 8) * 2**-24`` (the top 24 bits of the same words, so float32 draws follow the
  float64 ones to about float precision);
- Box-Muller: ``z[2m] = sqrt(-2 ln u1) cos(2 pi u2)``, ``z[2m + 1] = sqrt(-2 ln u1) sin(2 pi u2)``
  (``sincospi(2 u2)``); an odd ``count`` drops the last sine;
- antithetic: an odd path ``p`` takes path ``p - 1``'s words and writes minus its normals.

So a draw depends only on (seed, path, step, index): the first ``m`` paths of a run are an
``m``-path run, and a range of paths starting at ``first_path`` is that slice of one big run.

Float type: every device function is a template on the float type ``X``, and the ElementwiseKernel
bodies use CuPy's type placeholder ``F`` (``F S, F K, ...``; not ``T``, which is the expiry's name),
so one source serves float32 and float64. The ``gh_exp`` / ``gh_log`` / ``gh_sqrt`` / ``gh_ncdf``
overloads call the ``f``-suffixed CUDA functions for ``float`` (``expf``, ``normcdff`` ...), and
every constant is cast to ``X``: a float32 kernel does no double-precision arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

#: the outputs of the Black kernel, in the order of ``gh_black``'s output arguments
NAMES = ("price", "delta", "gamma", "vega", "theta", "rho")
#: the models the fused kernels know (``b = r - q`` and ``b = 0``)
MODELS = ("bsm", "black76")
#: at most this many scenarios per ladder kernel (more are split over launches): kernel parameters
#: are one CuPy ``CArray`` each (up to 64 B for 3-d arrays) in CUDA's 4 KiB parameter space
LADDER_GROUP = 48
#: threads per block of the normals kernel
NORMALS_BLOCK = 256

# --- shared maths -------------------------------------------------------------------------------------------

MATH_SRC = r"""
// Overloads that keep float in float (the f-suffixed CUDA functions) and double in double.
__device__ __forceinline__ double gh_exp(double x) { return exp(x); }
__device__ __forceinline__ float gh_exp(float x) { return expf(x); }
__device__ __forceinline__ double gh_log(double x) { return log(x); }
__device__ __forceinline__ float gh_log(float x) { return logf(x); }
__device__ __forceinline__ double gh_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float gh_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double gh_ncdf(double x) { return normcdf(x); }
__device__ __forceinline__ float gh_ncdf(float x) { return normcdff(x); }
__device__ __forceinline__ void gh_sincospi(double x, double* s, double* c) { sincospi(x, s, c); }
__device__ __forceinline__ void gh_sincospi(float x, float* s, float* c) { sincospif(x, s, c); }
// max(x, 0) that keeps a NaN (as xp.maximum does; fmax would drop it)
template <typename X> __device__ __forceinline__ X gh_max0(X x) { return x < X(0) ? X(0) : x; }
"""

# --- Black price and Greeks -------------------------------------------------------------------------------------

BLACK_SRC = r"""
// Price and first-order Greeks of the generalised Black formula, regular region (T, vol, K > 0):
// b = r - q (bsm) or 0 (black76, S is the forward); phi = +1 call, -1 put. Same formulas and order of
// operations as gpu_hedge._pricing.black_scholes.black_kernel(regular_only=True).
template <typename X, bool FORWARD>
__device__ __forceinline__ void gh_black(X S, X K, X T, X vol, X r, X q, X phi,
                                         X& price, X& delta, X& gamma, X& vega, X& theta, X& rho) {
  const X sqrtT = gh_sqrt(T);
  const X v = vol * sqrtT;
  const X D = gh_exp(-r * T);
  const X b = FORWARD ? X(0) : r - q;
  const X Dq = FORWARD ? D : gh_exp(-q * T);
  const X SDq = S * Dq;
  const X d1 = (gh_log(S / K) + (b + X(0.5) * vol * vol) * T) / v;
  const X N1 = gh_ncdf(phi * d1);
  const X N2 = gh_ncdf(phi * (d1 - v));
  const X n1 = X(0.3989422804014327) * gh_exp(X(-0.5) * d1 * d1);  // density at d1
  const X A = phi * SDq * N1;        // the two legs of the price
  const X B = phi * (K * D) * N2;
  const X p = gh_max0(A - B);
  price = p;
  delta = phi * Dq * N1;
  gamma = Dq * n1 / (S * v);
  vega = SDq * n1 * sqrtT;
  theta = (r - b) * A - r * B - SDq * n1 * vol / (X(2) * sqrtT);
  rho = FORWARD ? -T * p : T * B;
}

// Price for the ladder (gpu_hedge._book.risk.ladder_kernel's price()): shared terms passed in; a
// total deviation v sqrt(T) <= 0 (a vol shocked to 0) gives the discounted intrinsic value.
template <typename X>
__device__ __forceinline__ X gh_black_price(X s, X lnsk, X k_disc, X s_disc, X b, X T, X sqrtT, X v, X phi) {
  const X sv = v * sqrtT;
  if (!(sv > X(0))) return gh_max0(phi * (s * s_disc - k_disc));
  const X d1 = (lnsk + (b + X(0.5) * v * v) * T) / sv;
  return gh_max0(phi * (s * s_disc * gh_ncdf(phi * d1) - k_disc * gh_ncdf(phi * (d1 - sv))));
}
"""

#: the ElementwiseKernel preamble of the Black and ladder kernels
PREAMBLE = MATH_SRC + BLACK_SRC

#: the inputs of the Black kernel (``F``: CuPy's type placeholder, the float type of the call)
BLACK_INPUTS = "F S, F K, F T, F vol, F r, F q, F phi"
LADDER_INPUTS = BLACK_INPUTS + ", F w"


class KernelSpec(NamedTuple):
    """The arguments of ``cupy.ElementwiseKernel(in_params, out_params, body, name, preamble=preamble)``."""

    name: str
    in_params: str
    out_params: str
    body: str
    preamble: str

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(p.split()[-1] for p in self.out_params.split(","))


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"no fused kernel for model {model!r}; expected one of {MODELS}")


def black_kernel_spec(model: str, names: Sequence[str]) -> KernelSpec:
    """The fused Black kernel writing ``names`` (a subset of :data:`NAMES`, in that output order).

    The body calls ``gh_black`` with the requested outputs bound to the kernel's output references
    and the others to locals the compiler drops (with everything only they need).
    """
    _check_model(model)
    names = tuple(names)
    if not names or not set(names) <= set(NAMES) or len(set(names)) != len(names):
        raise ValueError(f"names must be distinct names from {NAMES}, got {names}")
    unused = [n for n in NAMES if n not in names]
    args = ", ".join(n if n in names else f"gh_unused_{n}" for n in NAMES)
    body = (f"F {', '.join(f'gh_unused_{n}' for n in unused)};\n" if unused else "") + (
        f"gh_black<F, {'true' if model == 'black76' else 'false'}>(S, K, T, vol, r, q, phi, {args});"
    )
    out_params = ", ".join(f"F {n}" for n in names)
    return KernelSpec(f"gh_black_{model}", BLACK_INPUTS, out_params, body, PREAMBLE)


def cuda_literal(x: float) -> str:
    """``x`` as a C++ double literal that parses back to the same double (Python's shortest repr)."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x}")
    return repr(x)


def ladder_kernel_spec(model: str, pairs: Sequence[tuple[float, float]], first: int = 0) -> KernelSpec:
    """The ladder kernel for scenarios ``first ... first + len(pairs) - 1``: inputs S, K, T, vol, r, q,
    phi, w; outputs ``s<first> ...``, ``s<j> = w (V(S (1 + ds_j), max(vol + dv_j, 0)) - V(S, vol))``.

    The shocks are constants in the source, cast to ``F`` as NumPy/CuPy cast a Python float meeting a
    float32 array: ``S * F(1 + ds)``, ``lnsk + F(log1p(ds))`` (``math.log1p``), ``vol + F(dv)``; an
    unshocked vol (``dv == 0``) is used as is, like the generic kernel.
    """
    _check_model(model)
    if not pairs:
        raise ValueError("a ladder needs at least one (spot shock, vol shock) pair")
    forward = model == "black76"
    lines = [
        "const F sqrtT = gh_sqrt(T);",
        "const F disc = gh_exp(-r * T);",
        f"const F s_disc = {'disc' if forward else 'gh_exp(-q * T)'};",
        f"const F b = {'F(0)' if forward else 'r - q'};",
        "const F k_disc = K * disc;",
        "const F lnsk = gh_log(S / K);",
        "const F base = gh_black_price<F>(S, lnsk, k_disc, s_disc, b, T, sqrtT, vol, phi);",
    ]
    for j, (ds, dv) in enumerate(pairs, start=first):
        s = f"S * F({cuda_literal(1.0 + float(ds))})"
        lm = f"lnsk + F({cuda_literal(math.log1p(float(ds)))})"
        v = f"gh_max0(vol + F({cuda_literal(dv)}))" if dv else "vol"
        lines.append(f"s{j} = (gh_black_price<F>({s}, {lm}, k_disc, s_disc, b, T, sqrtT, {v}, phi) - base) * w;")
    out_params = ", ".join(f"F s{j}" for j in range(first, first + len(pairs)))
    return KernelSpec(f"gh_ladder_{model}", LADDER_INPUTS, out_params, "\n".join(lines), PREAMBLE)


# --- counter-based normals ------------------------------------------------------------------------------------

PHILOX_SRC = r"""
// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC11;
// Random123): the counter c[0..3] is replaced by the 4 output words; key (k0, k1).
__device__ __forceinline__ void gh_philox4x32_10(unsigned int c[4], unsigned int k0, unsigned int k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }  // key schedule (Weyl sequence)
    const unsigned long long p0 = (unsigned long long)0xD2511F53u * c[0];
    const unsigned long long p1 = (unsigned long long)0xCD9E8D57u * c[2];
    const unsigned int hi0 = (unsigned int)(p0 >> 32), lo0 = (unsigned int)p0;
    const unsigned int hi1 = (unsigned int)(p1 >> 32), lo1 = (unsigned int)p1;
    c[0] = hi1 ^ c[1] ^ k0;
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k1;
    c[3] = lo0;
  }
}

// Box-Muller on the four words x: u1 in (0, 1] (never 0: finite log), u2 in [0, 1).
//   double: u1 = (x1 2^21 + x0 >> 11 + 1) 2^-53, u2 = (x3 2^21 + x2 >> 11) 2^-53 (53-bit uniforms)
//   float:  u1 = (x1 >> 8 + 1) 2^-24,              u2 = (x3 >> 8) 2^-24            (24-bit uniforms)
//   z0 = sqrt(-2 ln u1) cos(2 pi u2),  z1 = sqrt(-2 ln u1) sin(2 pi u2)
__device__ __forceinline__ void gh_box_muller(const unsigned int x[4], double& z0, double& z1) {
  const unsigned long long a = ((unsigned long long)x[1] << 21) | (x[0] >> 11);
  const unsigned long long c = ((unsigned long long)x[3] << 21) | (x[2] >> 11);
  const double u1 = (double)(a + 1) * 1.1102230246251565e-16;  // 2^-53
  const double u2 = (double)c * 1.1102230246251565e-16;
  const double rad = gh_sqrt(-2.0 * gh_log(u1));
  double s, co;
  gh_sincospi(2.0 * u2, &s, &co);
  z0 = rad * co;
  z1 = rad * s;
}
__device__ __forceinline__ void gh_box_muller(const unsigned int x[4], float& z0, float& z1) {
  const float u1 = (float)((x[1] >> 8) + 1u) * 5.9604644775390625e-08f;  // 2^-24
  const float u2 = (float)(x[3] >> 8) * 5.9604644775390625e-08f;
  const float rad = gh_sqrt(-2.0f * gh_log(u1));
  float s, co;
  gh_sincospi(2.0f * u2, &s, &co);
  z0 = rad * co;
  z1 = rad * s;
}

// Normals 2m and 2m+1 of column j (path first_path + j) of the (count, n_paths) row-major block `out`.
// Counter (m, step, path low word, path high word), key (seed low word, seed high word); antithetic:
// an odd path draws its even partner's words and writes minus its normals.
template <typename X>
__device__ __forceinline__ void gh_normals_item(X* out, unsigned long long seed, long long first_path, long long n_paths,
                                                long long count, unsigned int step, int antithetic, long long m, long long j) {
  unsigned long long path = (unsigned long long)(first_path + j);
  const bool flip = antithetic && (path & 1ull);
  if (flip) path -= 1ull;
  unsigned int x[4] = {(unsigned int)m, step, (unsigned int)path, (unsigned int)(path >> 32)};
  gh_philox4x32_10(x, (unsigned int)seed, (unsigned int)(seed >> 32));
  X z0, z1;
  gh_box_muller(x, z0, z1);
  out[2 * m * n_paths + j] = flip ? -z0 : z0;
  if (2 * m + 1 < count) out[(2 * m + 1) * n_paths + j] = flip ? -z1 : z1;
}
"""

NORMALS_KERNELS = r"""
// Grid: x over the paths (grid-stride), y over the pairs of normals m = 0 ... ceil(count / 2) - 1.
#define GH_NORMALS_KERNEL(NAME, X)                                                                   \
  extern "C" __global__ void NAME(X* out, unsigned long long seed, long long first_path,             \
                                  long long n_paths, long long count, unsigned int step, int antithetic) { \
    const long long pairs = (count + 1) / 2;                                                         \
    for (long long m = blockIdx.y; m < pairs; m += gridDim.y)                                        \
      for (long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x; j < n_paths;               \
           j += (long long)blockDim.x * gridDim.x)                                                   \
        gh_normals_item<X>(out, seed, first_path, n_paths, count, step, antithetic, m, j);           \
  }
GH_NORMALS_KERNEL(gh_normals_f64, double)
GH_NORMALS_KERNEL(gh_normals_f32, float)
"""

#: the whole normals module (``cupy.RawModule``): kernels ``gh_normals_f64`` and ``gh_normals_f32``
NORMALS_SRC = MATH_SRC + PHILOX_SRC + NORMALS_KERNELS
NORMALS_KERNEL_NAMES = {"float64": "gh_normals_f64", "float32": "gh_normals_f32"}

_U64 = 1 << 64


def normals_launch(
    seed: int, step: int, count: int, n_paths: int, first_path: int = 0, *, max_grid_x: int = 65535
) -> tuple[tuple[int, int], tuple[int, ...]]:
    """Checked arguments of a normals launch: ``((grid_x, grid_y), (seed, first_path, n_paths, count,
    step))``; ``grid_x`` 0 means nothing to draw. ValueError for anything the counter cannot hold
    (seed in [0, 2**64), step in [0, 2**32), paths below 2**63, count below 2**33)."""
    seed, step, count, n_paths, first_path = (int(v) for v in (seed, step, count, n_paths, first_path))
    if not 0 <= seed < _U64:
        raise ValueError(f"seed = {seed} must be in [0, 2**64)")
    if not 0 <= step < 1 << 32:
        raise ValueError(f"step = {step} must be in [0, 2**32)")
    if count < 0 or n_paths < 0 or first_path < 0 or count > 1 << 33 or first_path + n_paths > 1 << 63:
        raise ValueError(f"bad shape: count = {count}, n_paths = {n_paths}, first_path = {first_path}")
    pairs = (count + 1) // 2
    grid = (0, 0) if pairs == 0 or n_paths == 0 else (min(-(-n_paths // NORMALS_BLOCK), max_grid_x), min(pairs, 65535))
    return grid, (seed, first_path, n_paths, count, step)
