"""Throughput of price + delta + gamma + vega + theta + rho (BSM, float64) per backend, against plain NumPy.

    python benchmarks/greeks.py [--sizes 1e5,1e6,1e7] [--backends numpy,jax] [--repeat 3]
                                [--out benchmarks/results/greeks.json]

For each size, in one process and interleaved (plain NumPy, then each gpu_hedge backend, round after
round): one warm-up round (its time is reported as the first call, which for JAX includes the
compilation for that shape; results of this round are checked against the plain implementation),
then ``--repeat`` timed rounds, of which the best and the median are reported (ratios on both).

Timing is device-resident: inputs are converted with ``backend.asarray`` before the clock starts,
outputs stay on the backend and are synchronised (``backend.sync``) before it stops. Host-to-device
and device-to-host copy times are measured once beside it. gpu_hedge validates its inputs (the
plain peer does not); that check is inside the timed call, as a user would run it.

With the NumPy backend, two more rows measure the memory floor (the seven inputs read once, six
fresh outputs written, nothing computed) on one and two threads, interleaved with the rest; from
them a second table gives the two-thread ceiling this machine allows (:func:`two_thread_ceiling`)
beside the measured two-threads-over-one ratio.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, parallel_capacity, peak_rss_mb, reset_peak_rss, rss_mb, timed, versions, write_json  # noqa: E402

import gpu_hedge  # noqa: E402

GREEKS6 = ("price", "delta", "gamma", "vega", "theta", "rho")
PLAIN = "plain numpy+scipy"
REL_FLOOR = 1e-10  # relative differences are taken against max(|ref|, REL_FLOOR * max|ref|)


# --- inputs and the plain peer -------------------------------------------------------------------------


def make_inputs(n: int, seed: int = 12345) -> tuple[np.ndarray, ...]:
    """Random but realistic BSM inputs: spot 5-1000 (log-uniform), strike within +-40 % of spot,
    expiry 1 day to 3 years (log-uniform), vol 10-80 %, rate 0-6 %, dividend yield 0-4 %, calls and puts mixed."""
    rng = np.random.default_rng(seed)
    spot = np.exp(rng.uniform(math.log(5.0), math.log(1000.0), n))
    strike = spot * rng.uniform(0.6, 1.4, n)
    expiry = np.exp(rng.uniform(math.log(1 / 365), math.log(3.0), n))
    vol = rng.uniform(0.10, 0.80, n)
    rate = rng.uniform(0.0, 0.06, n)
    div = rng.uniform(0.0, 0.04, n)
    call = rng.random(n) < 0.5
    return spot, strike, expiry, vol, rate, div, call


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def plain_bsm(S, K, T, v, r, q, call) -> dict[str, np.ndarray]:
    """Straightforward whole-array Black-Scholes-Merton price and five Greeks (what a user writes).

    theta = dV/dt per year, vega per 1.00 of vol, rho = dV/dr with q fixed."""
    sqrtT = np.sqrt(T)
    vs = v * sqrtT
    d1 = (np.log(S / K) + (r - q + 0.5 * v * v) * T) / vs
    d2 = d1 - vs
    dq = np.exp(-q * T)
    dr = np.exp(-r * T)
    pdf = np.exp(-0.5 * d1 * d1) * _INV_SQRT_2PI
    sign = np.where(call, 1.0, -1.0)
    nd1 = ndtr(sign * d1)
    nd2 = ndtr(sign * d2)
    Sdq = S * dq
    Kdr = K * dr
    return {
        "price": sign * (Sdq * nd1 - Kdr * nd2),
        "delta": sign * dq * nd1,
        "gamma": dq * pdf / (S * vs),
        "vega": Sdq * pdf * sqrtT,
        "theta": -Sdq * pdf * v / (2.0 * sqrtT) + sign * (q * Sdq * nd1 - r * Kdr * nd2),
        "rho": sign * K * T * dr * nd2,
    }


def max_rel_diff(got: dict[str, Any], ref: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for name, b in ref.items():
        a = np.asarray(gpu_hedge.to_numpy(got[name]), dtype=np.float64)
        finite = np.isfinite(a) & np.isfinite(b)
        if not np.array_equal(np.isfinite(a), np.isfinite(b)):
            out[name] = float("inf")
            continue
        bb = np.abs(b[finite])
        scale = float(bb.max()) if bb.size else 0.0
        denom = np.maximum(bb, REL_FLOOR * scale) if scale > 0 else np.ones_like(bb)
        out[name] = float(np.max(np.abs(a[finite] - b[finite]) / denom)) if bb.size else 0.0
    return out


# --- implementations ------------------------------------------------------------------------------------


class Impl:
    label: str
    backend: str | None = None
    device: str = "cpu (host)"

    def prepare(self, inputs) -> float:
        """Put the inputs where this implementation reads them; returns the seconds it took."""
        raise NotImplementedError

    def run(self) -> Any:
        raise NotImplementedError

    def sync(self, out: Any) -> Any:
        return out

    def to_numpy(self, out: Any) -> dict[str, np.ndarray]:
        return out

    def release(self) -> None:
        self.inputs = None


class PlainImpl(Impl):
    label = PLAIN

    def prepare(self, inputs) -> float:
        self.inputs = inputs
        return 0.0

    def run(self):
        return plain_bsm(*self.inputs)


class BackendImpl(Impl):
    def __init__(self, name: str, threads: int | None = None) -> None:
        if threads is not None:  # the NumPy backend on a fixed number of threads (the per-core figure)
            from cpu_fallback import NumpyBackend

            self.bk = NumpyBackend(threads=threads)
        else:
            self.bk = gpu_hedge.get_backend(name)
        self.backend = self.bk.name
        self.device = self.bk.device
        self.label = f"gpu_hedge {self.bk.name}" + (f" ({threads} thread{'s' if threads > 1 else ''})" if threads else "")

    def prepare(self, inputs) -> float:
        dt, self.inputs = timed(
            lambda: [self.bk.asarray(x, dtype=np.float64) for x in inputs[:6]] + [self.bk.asarray(inputs[6])],
            self.bk.sync,
        )
        return dt

    def run(self):
        a = self.inputs
        return gpu_hedge.greeks(*a[:6], call=a[6], greeks=GREEKS6, model="bsm", backend=self.bk, dtype="float64")

    def sync(self, out):
        return self.bk.sync(out)

    def to_numpy(self, out):
        return {k: self.bk.to_numpy(v) for k, v in out.items()}


class FloorImpl(Impl):
    """The memory traffic every implementation must pay, and nothing else: read the seven inputs
    once and write six fresh output arrays (allocated per call, so their pages are faulted and
    zeroed by the kernel as gpu_hedge's are), in the NumPy backend's native chunks on ``threads``
    threads, with one addition per element in a Numba loop. Not a peer: the part of gpu_hedge's
    time that more threads cannot shrink unless the memory system gives more (two-thread ceiling)."""

    backend = "numpy"
    floor = True

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.label = f"memory floor ({threads} thread{'s' if threads > 1 else ''})"

    def prepare(self, inputs) -> float:
        self.inputs = list(inputs[:6]) + [np.asarray(inputs[6], dtype=np.float64)]
        return 0.0

    def run(self):
        from cpu_fallback._backend import NATIVE_CHUNK
        from cpu_fallback._executor import run_chunked

        return run_chunked(_stream, self.inputs, GREEKS6, np.dtype(np.float64), chunk=NATIVE_CHUNK, threads=self.threads, into=True)


def _stream(*arrays: np.ndarray, out: dict[str, np.ndarray]) -> None:
    _stream_loop(*arrays, *out.values())


def _compile_stream() -> Any:
    import numba

    @numba.njit(nogil=True, cache=False)
    def loop(S, K, T, v, r, q, c, o0, o1, o2, o3, o4, o5):  # pragma: no cover - compiled
        for i in range(S.shape[0]):
            x = S[i] + K[i] + T[i] + v[i] + r[i] + q[i] + c[i]
            o0[i] = x
            o1[i] = x
            o2[i] = x
            o3[i] = x
            o4[i] = x
            o5[i] = x

    return loop


_stream_loop: Any = None


def two_thread_ceiling(one: float, floor1: float, floor2: float) -> float:
    """Best possible time(1 thread) / time(2 threads) when everything above the memory floor halves:
    ``one / ((one - floor1) / 2 + floor2)``."""
    return one / (max(one - floor1, 0.0) / 2.0 + floor2)


# --- driver ---------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def bench(sizes: list[int], backends: list[str], repeat: int, seed: int, console) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    impls: list[Impl] = [PlainImpl()] + [BackendImpl(b) for b in backends]
    if "numpy" in backends:
        global _stream_loop
        _stream_loop = _stream_loop or _compile_stream()
        impls += [BackendImpl("numpy", threads=1), FloorImpl(1), FloorImpl(2)]
    for n in sizes:
        console.log(f"N = {n:,}: generating inputs")
        inputs = make_inputs(n, seed)
        rec: dict[str, dict[str, Any]] = {}
        for impl in impls:
            rec[impl.label] = {
                "n": n, "implementation": impl.label, "backend": impl.backend, "device": impl.device,
                "h2d_s": impl.prepare(inputs), "times_s": [], "floor": getattr(impl, "floor", False),
            }  # fmt: skip
        ref = None
        for rnd in range(repeat + 1):
            for impl in impls:
                r = rec[impl.label]
                gc.collect()
                if rnd == 1:
                    rss0 = rss_mb()
                    reset_peak_rss()
                dt, out = timed(impl.run, impl.sync)
                if rnd == 0:
                    r["first_call_s"] = dt
                    t_d2h, host = timed(lambda f=impl.to_numpy, o=out: f(o))
                    r["d2h_s"] = t_d2h if impl.backend not in (None, "numpy") else 0.0
                    if getattr(impl, "floor", False):
                        pass  # not a result
                    elif ref is None:
                        ref = host
                    else:
                        r["max_rel_diff"] = max_rel_diff(host, ref)
                    del host
                else:
                    r["times_s"].append(dt)
                    if rnd == 1:
                        r["rss_before_mb"] = rss0
                        r["peak_rss_mb"] = peak_rss_mb()
                        r["peak_extra_mb"] = (r["peak_rss_mb"] - rss0) if rss0 is not None else None
                del out
            console.log(f"N = {n:,}: round {rnd}{' (warm-up)' if rnd == 0 else ''} done")
        del ref
        base = min(rec[PLAIN]["times_s"])
        base_median = float(np.median(rec[PLAIN]["times_s"]))
        for impl in impls:
            r = rec[impl.label]
            best = min(r["times_s"])
            r["best_s"] = best
            r["options_per_s"] = n / best
            r["speedup_vs_plain"] = base / best
            r["median_s"] = float(np.median(r["times_s"]))  # the figure: medians of interleaved rounds
            r["options_per_s_median"] = n / r["median_s"]
            r["speedup_vs_plain_median"] = base_median / r["median_s"]
            r["compile_s_est"] = max(0.0, r["first_call_s"] - best) if impl.backend == "jax" else None
            results.append(r)
            impl.release()
        one = rec.get("gpu_hedge numpy (1 thread)")
        if one is not None and "gpu_hedge numpy" in rec:  # thread scaling of the NumPy backend, same run
            two = rec["gpu_hedge numpy"]
            two["speedup_vs_one_thread"] = one["best_s"] / two["best_s"]
            two["speedup_vs_one_thread_median"] = one["median_s"] / two["median_s"]
            f1, f2 = rec["memory floor (1 thread)"]["best_s"], rec["memory floor (2 threads)"]["best_s"]
            two["two_thread_ceiling"] = two_thread_ceiling(one["best_s"], f1, f2)
            two["share_of_ceiling"] = two["speedup_vs_one_thread"] / two["two_thread_ceiling"]
        del inputs
        gc.collect()
    return results


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1e5,1e6,1e7", help="comma-separated N (default 1e5,1e6,1e7)")
    p.add_argument("--backends", default=None, help="comma-separated gpu_hedge backends (default: all available)")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds after one warm-up; best is reported")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "greeks.json"))
    args = p.parse_args(argv)

    console = Console()
    if not console.is_terminal:  # piped / redirected: do not squeeze the table into 80 columns
        console = Console(width=140)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(gpu_hedge.available_backends())
    sizes = parse_sizes(args.sizes)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")

    from cpu_fallback import default_chunk, default_threads

    results = bench(sizes, backends, args.repeat, args.seed, console)

    table = Table(title=f"BSM price + delta, gamma, vega, theta, rho; float64; best of {args.repeat} after warm-up")
    for col in ("N", "implementation", "best s", "M options/s", "vs plain", "median s", "vs plain (median)", "first call s",
                "max rel diff", "peak RSS +MB"):  # fmt: skip
        table.add_column(col, justify="left" if col == "implementation" else "right")
    for r in results:
        diff = r.get("max_rel_diff")
        table.add_row(
            f"{r['n']:,}", r["implementation"], f"{r['best_s']:.4f}", f"{r['options_per_s'] / 1e6:.2f}",
            "-" if r.get("floor") else f"{r['speedup_vs_plain']:.2f}x", f"{r['median_s']:.4f}",
            "-" if r.get("floor") else f"{r['speedup_vs_plain_median']:.2f}x", f"{r['first_call_s']:.4f}",
            "-" if r.get("floor") else "reference" if diff is None else f"{max(diff.values()):.1e}",
            "-" if r.get("peak_extra_mb") is None else f"{r['peak_extra_mb']:.0f}",
        )  # fmt: skip
    console.print(table)
    scaling = [r for r in results if "two_thread_ceiling" in r]
    if scaling:
        cap = parallel_capacity()
        t2 = Table(title=f"NumPy backend, 2 threads over 1 (parallel capacity now {cap:.2f} CPUs)")
        for col in ("N", "2 threads / 1", "(median)", "ceiling", "share of ceiling"):
            t2.add_column(col, justify="right")
        for r in scaling:
            ratio, ceiling = r["speedup_vs_one_thread"], r["two_thread_ceiling"]
            t2.add_row(f"{r['n']:,}", f"{ratio:.2f}x", f"{r['speedup_vs_one_thread_median']:.2f}x", f"{ceiling:.2f}x",
                       f"{r['share_of_ceiling']:.0%}")  # fmt: skip
        console.print(t2)
        console.print(
            "ceiling = t1 / ((t1 - floor1) / 2 + floor2): the one-thread time with everything above the memory floor "
            "halved and the floor at its measured two-thread time. The floor reads the inputs once and writes six fresh "
            "outputs (page faults included); memory floor rows are not peers."
        )
    console.print(
        f"threads (gpu_hedge NumPy backend): {default_threads()}, chunk: {default_chunk()}; plain peer is single-threaded "
        "whole-array NumPy. GPU/JAX timings are device-resident (transfers excluded, reported as h2d_s/d2h_s in the JSON). "
        "'vs plain' = plain time / this time; 'first call' includes JAX compilation for that shape. "
        "'peak RSS +MB' is above the RSS just before the call; glibc keeps freed blocks below its mmap threshold "
        "(up to 32 MB), so at small N it under-reads: trust it at large N."
    )

    data = {
        "benchmark": "greeks",
        "date": now_iso(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "machine": describe_machine(tuple(backends)),
        "versions": versions(),
        "settings": {
            "model": "bsm",
            "dtype": "float64",
            "greeks": list(GREEKS6),
            "sizes": sizes,
            "backends": backends,
            "repeat": args.repeat,
            "seed": args.seed,
            "threads": default_threads(),
            "chunk": default_chunk(),
            "env": {k: os.environ.get(k) for k in ("GPU_HEDGE_NUM_THREADS", "GPU_HEDGE_CHUNK", "GPU_HEDGE_BACKEND",
                                                    "OMP_NUM_THREADS", "XLA_FLAGS")},  # fmt: skip
            "timing": (
                "device-resident: inputs converted with backend.asarray before timing, outputs left on the backend and "
                "synchronised (backend.sync) before the clock stops; host-to-device (h2d_s) and device-to-host (d2h_s) "
                "copies measured separately. Interleaved per size: plain, then each backend, per round; round 0 is a "
                "warm-up (first_call_s, includes JAX compilation for the shape); best of 'repeat' rounds reported. "
                "gpu_hedge input validation is inside the timed call."
            ),
            "peer": "plain whole-array NumPy + scipy.special.ndtr, single thread (benchmarks/greeks.py:plain_bsm)",
            "max_rel_diff": f"vs the plain peer, |a-b| / max(|b|, {REL_FLOOR:g} * max|b|) per output, warm-up round",
            "peak_rss": (
                "peak_extra_mb = VmHWM after resetting it (clear_refs 5) before the first timed call, minus VmRSS just "
                "before; under-reads at small N because glibc keeps freed blocks below its dynamic mmap threshold"
            ),
        },
        "results": results,
    }
    path = write_json(args.out, data)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
