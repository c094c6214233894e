"""CUDA C++ source of the CuPy backend's counter-based normals kernel, and the helper that checks
its launch.

Pure Python: this module never imports CuPy, so the same string can be compiled anywhere (the tests
build it with a C++ compiler on the CPU behind a shim that defines what CUDA provides, see
``tests/test_cuda_source.py``). :mod:`gpu_hedge._backends._cupy` turns it into a ``cupy.RawKernel``.

The fused Black price + Greeks and the scenario ladder are no longer C++: they are Numba CUDA
kernels compiled from the same scalar element functions as the NumPy backend's Numba passes
(:mod:`gpu_hedge._backends._cuda_black`, :mod:`cpu_fallback._black_element`), so each formula is
written once. What stays here is not a duplicated formula:

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

Float type: the Box-Muller device function is overloaded on the float type, and the ``gh_log`` /
``gh_sqrt`` / ``gh_sincospi`` overloads call the ``f``-suffixed CUDA functions for ``float``
(``logf``, ``sincospif`` ...): the float32 kernel does no double-precision arithmetic.
"""

from __future__ import annotations

#: threads per block of the normals kernel
NORMALS_BLOCK = 256

# --- shared maths -------------------------------------------------------------------------------------------

MATH_SRC = r"""
// Overloads that keep float in float (the f-suffixed CUDA functions) and double in double.
__device__ __forceinline__ double gh_log(double x) { return log(x); }
__device__ __forceinline__ float gh_log(float x) { return logf(x); }
__device__ __forceinline__ double gh_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float gh_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ void gh_sincospi(double x, double* s, double* c) { sincospi(x, s, c); }
__device__ __forceinline__ void gh_sincospi(float x, float* s, float* c) { sincospif(x, s, c); }
"""

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
