"""GPU suite in one command: devices, the GPU-marked tests, copy bandwidth and the main benchmarks per GPU backend.

    python -m benchmarks.gpu_suite [--cpu-dry-run] [--backends cupy,jax] [--dtypes float64,float32]
                                   [--budget 480] [--pytest-timeout 180] [--no-tests] [--repeat 5]
                                   [--out benchmarks/results/gpu_suite-<device>.json]
    python benchmarks/gpu_suite.py ...   (the same)

In order: (1) a probe process reports the devices CuPy and JAX see and the versions; (2) ``pytest -m
gpu -q`` runs in a subprocess with a timeout (pass / fail counts recorded); (3) one worker process
per GPU backend (CuPy, then JAX; separate processes so that JAX's preallocation and CuPy's memory
pool never compete, and so a hung or crashed backend is killed without losing the other's results)
measures, in priority order: the device-to-device copy bandwidth, Greeks on 1e7 options, the
delta-hedging engine (1e6 paths x 252 steps), Greeks on 1e8 options, a resident book's 9 x 5 ladder
(1e8 positions if memory and time allow), implied vol on 1e7 options, GBM and Heston simulation and
the streamed ``hedge_simulated``, each in float64 and float32; (4) a Rich table and a JSON file.

Every timing is device-resident and synchronised with ``backend.sync`` (or returns host arrays),
taken after a warm-up call whose excess over the best time is reported as compile time. Every
result is checked against the NumPy backend in float64 on a subsample (max relative difference), so
a fast wrong answer shows. The suite keeps to ``--budget`` seconds in all: each worker gets a share
and a deadline, lower-priority items are skipped (and say so) when the time is short, and a worker
past its deadline (+ 25 s) is killed (its finished items are kept). Exit status 1 when a GPU test fails or
times out, an item raises, a worker dies, or a result fails its check against NumPy; 0 otherwise.

Without a GPU it says so and exits 0. ``--cpu-dry-run`` runs the same code paths on the NumPy and
JAX-CPU backends with tiny sizes (timings meaningless; the plumbing and the checks are exercised).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the benchmark scripts import _common (and greeks) from this directory
    sys.path.insert(0, str(HERE))
from _common import REPO, describe_machine, gpu_names, now_iso, versions, write_json  # noqa: E402

GPU_BACKENDS = ("cupy", "jax")
DTYPES = ("float64", "float32")
# the hedging workload of benchmarks/hedging.py: short 1 call, S0 = K = 100, vol 0.2, 1 year, rate 0, 1 bp cost
SPOT, STRIKE, VOL, MATURITY, RATE, COST = 100.0, 100.0, 0.2, 1.0, 0.0, 1e-4
HEDGE_TARGET_S = 0.05
LADDER_TARGET_S = 1.0
VALUATION_DATE = "2026-01-02"  # generate_book's default valuation date
GREEKS6 = ("price", "delta", "gamma", "vega", "theta", "rho")

#: sizes for a GPU run and for the CPU dry run
SIZES: dict[str, dict[str, Any]] = {
    "gpu": {
        "copy_bytes": 2 * 2**30,
        "greeks": [10**7, 10**8],
        "greeks_base": 10**7,  # host-generated inputs; larger N tiles them on the device
        "hedge_paths": 10**6,
        "hedge_steps": 252,
        "book": 10**8,
        "book_base": 10**6,  # generated book; larger N repeats it
        "book_slice_rows": None,  # ResidentBook's default (4e6)
        "ladder": "default",  # 9 x 5
        "iv": 10**7,
        "sim_paths": 10**6,
        "sim_steps": 252,
        "check_sample": 20_000,  # Greeks / implied vol elements checked against NumPy
        "check_paths": 2_000,  # hedged paths checked against NumPy
        "sim_check_paths": 512,  # reference-mode simulation checked against NumPy
        "repeat": 5,
        "copy_repeat": 10,
        "item_time_s": 20.0,  # at most this long on timed repeats per item (at least one)
        "reserve_scale": 1.0,
        "pytest_paths": ["tests"],
    },
    "cpu-dry-run": {
        "copy_bytes": 8 * 2**20,
        "greeks": [10_000, 40_000],
        "greeks_base": 10_000,
        "hedge_paths": 1_000,
        "hedge_steps": 16,
        "book": 20_000,
        "book_base": 2_000,
        "book_slice_rows": 2_000,  # one slice shape: JAX compiles the ladder once per dtype
        "ladder": "spot=-0.1;0;0.1,vol=-0.05;0;0.05",  # 3 x 3: XLA compiles the 45-scenario kernel in ~6 s on this CPU
        "iv": 10_000,
        "sim_paths": 1_000,
        "sim_steps": 16,
        "check_sample": 2_000,
        "check_paths": 200,
        "sim_check_paths": 64,
        "repeat": 2,
        "copy_repeat": 3,
        "item_time_s": 2.0,
        "reserve_scale": 0.0,
        "pytest_paths": ["tests/test_backends.py"],
    },
}

#: rough seconds an item needs on a GPU machine; below this much time left it is skipped (x reserve_scale)
RESERVE_S = {"copy": 2, "greeks": 5, "greeks_big": 15, "hedge": 10, "book": 20, "implied_vol": 10, "simulate": 15, "hedge_simulated": 20}

#: relative-difference floors (see rel_diff) and check tolerances against NumPy float64, per dtype
FLOOR = {"float64": 1e-10, "float32": 1e-5}
TOL = {"float64": 1e-9, "float32": 2e-2}
BYTES_NOTE = (
    "Greeks bytes per option = bytes of the per-option input arrays + bytes of the outputs, counted from the arrays' dtypes: "
    "spot, strike, expiry, vol, rate and div are per-option arrays (6 x 8 B in float64), call is a bool array (1 B), "
    "the model, the Greek names and the dtype are scalars; outputs price, delta, gamma, vega, theta, rho (6 x 8 B): "
    "97 B per option in float64, 49 B in float32. That is the minimum traffic of one fused pass: gpu_hedge also validates "
    "the inputs (min/max reductions) inside the timed call and the kernel may make more passes, which the fraction of the "
    "copy bandwidth shows. '(kernel x)' beside it: the fused pricing kernel alone (call flags already +-1 in the dtype, "
    "no validation), 104 B per option in float64, 52 B in float32. "
    "Implied vol: price, spot, strike, expiry, rate, div arrays + bool call in, vol + int8 status out "
    "(58 B per option in float64)."
)


# --- small helpers ------------------------------------------------------------------------------------------


def rel_diff(got: Any, ref: Any, floor: float) -> dict[str, Any]:
    """``max_rel_diff`` = max |a - b| / max(|b|, floor * max|b|) over elements finite in both (floor 1: relative to max |b|),
    ``nan_only_here`` / ``finite_only_here``: elements NaN (or inf) in ``got`` but finite in ``ref`` / the other way round."""
    a = np.asarray(got, dtype=np.float64).ravel()
    b = np.asarray(ref, dtype=np.float64).ravel()
    fa, fb = np.isfinite(a), np.isfinite(b)
    out: dict[str, Any] = {"nan_only_here": int(np.count_nonzero(fb & ~fa)), "finite_only_here": int(np.count_nonzero(fa & ~fb))}
    both = fa & fb
    if not both.any():
        return {"max_rel_diff": 0.0 if fa.size == 0 or not (fa | fb).any() else math.inf, **out}
    bb = np.abs(b[both])
    scale = float(bb.max())
    denom = np.maximum(bb, floor * scale) if scale > 0 else np.ones_like(bb)
    return {"max_rel_diff": float(np.max(np.abs(a[both] - b[both]) / denom)), **out}


def fmt_size(n: int) -> str:
    """1e7 for 10_000_000, else the number with separators."""
    if n > 0 and 10 ** round(math.log10(n)) == n and n >= 1000:
        return f"1e{round(math.log10(n))}"
    return f"{n:,}"


def fmt_rate(x: float | None, unit: str) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def host_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def log(msg: str) -> None:
    print(f"[gpu_suite {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stream(cmd: list[str], env: dict[str, str], timeout: float, prefix: str) -> tuple[int | None, list[str], bool, float]:
    """Run ``cmd`` in the repository root, echoing its output (stdout + stderr) to stderr with ``prefix``.

    Returns ``(returncode or None if killed, output lines, timed_out, seconds)``; past ``timeout`` the process is killed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            print(prefix + line, end="" if line.endswith("\n") else "\n", file=sys.stderr, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        rc: int | None = proc.wait(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
        rc = None
    reader.join(timeout=10)
    return rc, lines, timed_out, time.perf_counter() - t0


# --- probe: devices and versions (its own process, so the driver never holds a CUDA context) ----------------


def probe() -> dict[str, Any]:
    """What CuPy, JAX and gpu_hedge see on this machine. Never raises."""
    out: dict[str, Any] = {"cupy": {"installed": importlib.util.find_spec("cupy") is not None}, "jax": {}}
    import gpu_hedge

    c = out["cupy"]
    try:
        gpu_hedge.get_backend("cupy")
        c["usable"] = True
    except Exception as exc:  # BackendUnavailableError says why
        c["usable"], c["reason"] = False, str(exc)
    if c["installed"]:
        try:
            import cupy

            rt = cupy.cuda.runtime
            c["version"] = cupy.__version__
            c["cuda_runtime"] = rt.runtimeGetVersion()
            c["cuda_driver"] = rt.driverGetVersion()
            devs = []
            for i in range(rt.getDeviceCount()):
                p = rt.getDeviceProperties(i)
                name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
                mem = round(p["totalGlobalMem"] / 2**30, 1)
                cc = f"{p['major']}.{p['minor']}"
                devs.append(
                    {"id": i, "name": name, "memory_gib": mem, "compute_capability": cc, "multiprocessors": p["multiProcessorCount"]}
                )
            c["devices"] = devs
        except Exception as exc:
            c["error"] = f"{type(exc).__name__}: {exc}"
    j = out["jax"]
    j["installed"] = importlib.util.find_spec("jax") is not None
    j["gpu_plugins"] = [m for m in ("jax_cuda12_plugin", "jax_cuda13_plugin") if importlib.util.find_spec(m) is not None]
    if j["installed"]:
        try:
            import jax

            j["version"] = jax.__version__
            j["default_backend"] = jax.default_backend()
            j["devices"] = [{"id": d.id, "platform": d.platform, "kind": getattr(d, "device_kind", d.platform)} for d in jax.devices()]
            try:
                gpus = jax.devices("gpu")
            except RuntimeError:
                gpus = []
            j["gpu_count"] = len(gpus)
        except Exception as exc:
            j["error"] = f"{type(exc).__name__}: {exc}"
            j["gpu_count"] = 0
    else:
        j["gpu_count"] = 0
    out["available_backends"] = list(gpu_hedge.available_backends())
    out["gpu_backends"] = [b for b in GPU_BACKENDS if (b == "cupy" and c.get("usable")) or (b == "jax" and j.get("gpu_count", 0) > 0)]
    out["gpu_names"] = gpu_names(GPU_BACKENDS)
    out["machine"] = describe_machine(GPU_BACKENDS)
    return out


# --- worker: one backend, all benchmarks ------------------------------------------------------------------


class Worker:
    """Runs the benchmark items on one backend within a deadline, saving its results after every item."""

    def __init__(self, backend: str, plan: dict[str, Any], result_path: Path) -> None:
        import gpu_hedge

        self.gh = gpu_hedge
        self.bk = gpu_hedge.get_backend(backend)
        self.ref = gpu_hedge.get_backend("numpy")
        self.plan = plan
        self.s = plan["sizes"]
        self.deadline = float(plan["deadline"])
        self.path = result_path
        self.copy_gbs: float | None = None
        self._cache: dict[str, Any] = {}
        self.out: dict[str, Any] = {"backend": self.bk.name, "device": self.bk.device, "memory": self.memory_info(), "results": []}

    # -- infrastructure --

    def remaining(self) -> float:
        return self.deadline - time.time()

    def log(self, msg: str) -> None:
        print(f"[{self.bk.name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        write_json(tmp, self.out)
        os.replace(tmp, self.path)

    def memory_info(self) -> dict[str, Any]:
        """Device memory (total / free) where the backend can tell."""
        info: dict[str, Any] = {"host_available_gb": (host_available_bytes() or 0) / 1e9}
        try:
            if self.bk.name == "cupy":
                import cupy

                free, total = cupy.cuda.runtime.memGetInfo()
                info.update(device_free_gb=free / 1e9, device_total_gb=total / 1e9)
            elif self.bk.name == "jax":
                import jax

                st = jax.devices()[0].memory_stats() or {}
                if "bytes_limit" in st:
                    info.update(device_limit_gb=st["bytes_limit"] / 1e9, device_in_use_gb=st.get("bytes_in_use", 0) / 1e9)
        except Exception as exc:
            info["error"] = f"{type(exc).__name__}: {exc}"
        return info

    def device_free(self) -> int | None:
        """Bytes this backend can still allocate (host memory for NumPy), None if unknown."""
        try:
            if self.bk.name == "cupy":
                import cupy

                return int(cupy.cuda.runtime.memGetInfo()[0] + cupy.get_default_memory_pool().free_bytes())
            if self.bk.name == "jax":
                import jax

                st = jax.devices()[0].memory_stats() or {}
                if "bytes_limit" in st:
                    return int(st["bytes_limit"] - st.get("bytes_in_use", 0))
                return host_available_bytes() if jax.devices()[0].platform == "cpu" else None
        except Exception:
            return None
        return host_available_bytes()

    def release(self) -> None:
        gc.collect()
        if self.bk.name == "cupy":
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()
            cupy.get_default_pinned_memory_pool().free_all_blocks()

    def measure(
        self, fn: Callable[[], Any], sync: Callable[[Any], Any] | None = None, repeat: int | None = None
    ) -> tuple[dict[str, Any], Any]:
        """One warm-up call, then up to ``repeat`` timed calls (fewer if they would exceed the item's time); best reported."""
        sync = sync or self.bk.sync
        want = int(repeat or self.s["repeat"])
        budget = max(0.0, min(float(self.s["item_time_s"]), 0.25 * self.remaining()))
        gc.collect()
        t0 = time.perf_counter()
        out = sync(fn())
        first = time.perf_counter() - t0
        times: list[float] = []
        while len(times) < want:
            out = None  # free the previous result before the next call
            t0 = time.perf_counter()
            out = sync(fn())
            times.append(time.perf_counter() - t0)
            if len(times) == 1:
                want = max(1, min(want, int(budget / max(times[0], 1e-9))))
        best = min(times)
        return {"time_s": best, "times_s": times, "first_call_s": first, "compile_s_est": max(0.0, first - best)}, out

    def sample(self, n: int, k: int) -> np.ndarray:
        rng = np.random.default_rng(self.plan["seed"] + 7)
        return np.unique(np.concatenate([[0, n - 1], rng.integers(0, n, size=min(k, n))])).astype(np.int64)

    def take(self, a: Any, idx: np.ndarray) -> np.ndarray:
        """Elements ``idx`` of a 1-D backend array, on the host as float64."""
        return np.asarray(self.bk.to_numpy(self.bk.xp.take(a, self.bk.asarray(idx))), dtype=np.float64)

    def item(self, bench: str, dtype: str | None, size: int | None, fn: Callable[[], dict[str, Any]], reserve: str) -> dict[str, Any]:
        rec: dict[str, Any] = {"benchmark": bench, "backend": self.bk.name, "device": self.bk.device, "dtype": dtype, "size": size}
        need = RESERVE_S[reserve] * float(self.s["reserve_scale"])
        left = self.remaining()
        if left < need:
            rec.update(status="skipped", reason=f"time budget: {left:.0f} s left, about {need:.0f} s needed")
        else:
            self.log(f"{bench} {dtype or ''} {fmt_size(size) if size else ''} ({left:.0f} s left)")
            t0 = time.perf_counter()
            try:
                rec.update(fn())
                rec.setdefault("status", "ok")
            except Exception as exc:
                oom = False
                try:
                    oom = bool(self.bk.is_out_of_memory(exc)) or isinstance(exc, MemoryError)
                except Exception:
                    pass
                rec.update(status="oom" if oom else "error", reason=f"{type(exc).__name__}: {str(exc)[:500]}")
                rec["traceback"] = traceback.format_exc()[-3000:]
            rec["wall_s"] = time.perf_counter() - t0
            self.release()
        if rec.get("status") == "ok" and rec.get("max_rel_diff") is not None and dtype in TOL:
            nan_ok = not rec.get("finite_only_here") and (rec.pop("_nan_allowed", False) or not rec.get("nan_only_here"))
            rec["check_ok"] = bool(rec["max_rel_diff"] <= TOL[dtype] and nan_ok)
            rec["check_ok"] = rec["check_ok"] and rec.pop("_extra_ok", True)
        rec.pop("_extra_ok", None)
        rec.pop("_nan_allowed", None)
        self.out["results"].append(rec)
        self.save()
        self.log(
            f"  -> {rec['status']}"
            + (f" {rec['time_s']:.4g} s" if "time_s" in rec else "")
            + (f" ({rec['reason']})" if "reason" in rec else "")
        )
        return rec

    # -- items --

    def copy_bandwidth(self) -> dict[str, Any]:
        """Device-to-device copy (``xp.asarray(a, copy=True)``) and an elementwise negate of a float64 array; read + write bytes."""
        xp, bk = self.bk.xp, self.bk
        n = int(self.s["copy_bytes"]) // 8
        a = bk.sync(xp.ones(n, dtype=xp.float64))
        nbytes = 2 * 8 * n
        res: dict[str, Any] = {"array_bytes": 8 * n, "bytes_moved": nbytes}
        for label, op, expect in (("copy", lambda: xp.asarray(a, copy=True), 1.0), ("negate", lambda: xp.negative(a), -1.0)):
            st, b = self.measure(op, repeat=int(self.s["copy_repeat"]))
            ok = float(bk.to_numpy(xp.min(b))) == expect == float(bk.to_numpy(xp.max(b)))
            res[label] = {**st, "gb_per_s": nbytes / st["time_s"] / 1e9, "correct": ok}
            del b
        self.copy_gbs = res["copy"]["gb_per_s"]
        return {
            **{k: res["copy"][k] for k in ("time_s", "times_s", "first_call_s")}, "throughput": res["copy"]["gb_per_s"] * 1e9,
            "throughput_unit": "B/s",
            "copy_gb_per_s": res["copy"]["gb_per_s"], "negate_gb_per_s": res["negate"]["gb_per_s"], "detail": res,
            "fraction_of_copy_bw": 1.0, "check_ok": res["copy"]["correct"] and res["negate"]["correct"],
            "size_label": f"{8 * n / 2**30:g} GiB" if 8 * n >= 2**30 else f"{8 * n / 2**20:g} MiB",
        }  # fmt: skip

    def greeks_host(self) -> tuple[np.ndarray, ...]:
        if "greeks_host" not in self._cache:
            from greeks import make_inputs  # benchmarks/greeks.py: realistic random BSM inputs

            self._cache["greeks_host"] = make_inputs(int(self.s["greeks_base"]), self.plan["seed"])
        return self._cache["greeks_host"]

    def device_inputs(self, n: int, dtype: str) -> list[Any]:
        """spot, strike, expiry, vol, rate, div (``dtype``) and call (bool) of ``n`` options on the device (host base tiled)."""
        host = self.greeks_host()
        base = host[0].size
        if n % base and n > base:
            raise ValueError(f"size {n} is not a multiple of the generated {base}")
        m = min(n, base)
        dev = [self.bk.asarray(x[:m], dtype=dtype) for x in host[:6]] + [self.bk.asarray(host[6][:m])]
        if n > base:
            dev = [self.bk.xp.tile(a, (n // base,)) for a in dev]
        return self.bk.sync(dev)

    def ref_inputs(self, idx: np.ndarray, dtype: str) -> list[np.ndarray]:
        """The host inputs at device positions ``idx``, rounded to ``dtype`` and back to float64 (call last)."""
        host = self.greeks_host()
        bi = idx % host[0].size
        return [x[bi].astype(dtype).astype(np.float64) for x in host[:6]] + [host[6][bi]]

    def greeks(self, n: int, dtype: str) -> dict[str, Any]:
        gh, bk = self.gh, self.bk
        dev = self.device_inputs(n, dtype)
        st, out = self.measure(lambda: gh.greeks(*dev[:6], call=dev[6], greeks=GREEKS6, model="bsm", backend=bk, dtype=dtype))
        in_bytes = sum(a.dtype.itemsize for a in dev)
        out_bytes = sum(out[k].dtype.itemsize for k in GREEKS6)
        idx = self.sample(n, int(self.s["check_sample"]))
        got = {k: self.take(out[k], idx) for k in GREEKS6}
        out = dev = None  # free the device arrays before the reference
        r = self.ref_inputs(idx, dtype)
        ref = gh.greeks(*r[:6], call=r[6], greeks=GREEKS6, model="bsm", backend=self.ref, dtype="float64")
        diffs = {k: rel_diff(got[k], ref[k], FLOOR[dtype]) for k in GREEKS6}
        worst = {f: max(d[f] for d in diffs.values()) for f in ("max_rel_diff", "nan_only_here", "finite_only_here")}
        bpo = in_bytes + out_bytes
        gbs = n * bpo / st["time_s"] / 1e9
        return {
            **st, "throughput": n / st["time_s"], "throughput_unit": "options/s", "bytes_per_option": bpo,
            "bytes_per_option_detail": {"inputs": in_bytes, "outputs": out_bytes}, "achieved_gb_per_s": gbs,
            "fraction_of_copy_bw": gbs / self.copy_gbs if self.copy_gbs else None,
            **worst, "max_rel_diff_per_greek": {k: d["max_rel_diff"] for k, d in diffs.items()}, "checked_elements": int(idx.size),
            "kernel_only": self.greeks_kernel_only(n, dtype),
        }  # fmt: skip

    def greeks_kernel_only(self, n: int, dtype: str) -> dict[str, Any]:
        """The fused pricing kernel alone (``elementwise(..., native="black:bsm")``), as ``greeks()`` calls it
        after validating: the call flags already +-1 in ``dtype``, no min/max passes. Its bytes are 7 inputs of
        ``dtype`` + 6 outputs; the fraction of copy bandwidth says how close the one pass comes to the memory limit."""
        from gpu_hedge._pricing.black_scholes import black_kernel

        bk, xp = self.bk, self.bk.xp
        dev = self.device_inputs(n, dtype)
        dt = getattr(xp, dtype)
        arrays = [*dev[:6], bk.sync(xp.where(dev[6], xp.asarray(1.0, dtype=dt), xp.asarray(-1.0, dtype=dt)))]
        dev = None
        kernel = black_kernel("bsm", GREEKS6, True)
        st, out = self.measure(lambda: bk.elementwise(kernel, arrays, GREEKS6, dt, key=("suite", "bsm", dtype), native="black:bsm"))
        bpo = sum(a.dtype.itemsize for a in arrays) + sum(out[k].dtype.itemsize for k in GREEKS6)
        out = arrays = None
        gbs = n * bpo / st["time_s"] / 1e9
        return {
            "time_s": st["time_s"], "first_call_s": st["first_call_s"], "bytes_per_option": bpo, "achieved_gb_per_s": gbs,
            "fraction_of_copy_bw": gbs / self.copy_gbs if self.copy_gbs else None,
        }  # fmt: skip

    def hedge_args(self) -> tuple[Any, Any, Any]:
        gh = self.gh
        return gh.Option(STRIKE, MATURITY, call=True, quantity=-1.0), gh.Periodic(), gh.Costs(proportional=COST)

    def hedge_paths(self) -> tuple[np.ndarray, np.ndarray]:
        """GBM paths ``(steps + 1, paths)`` simulated on the host by the NumPy backend (not timed) and the dates."""
        if "hedge_paths" not in self._cache:
            p = self.gh.simulate(self.gh.GBM(SPOT, VOL, rate=RATE), n_paths=int(self.s["hedge_paths"]), n_steps=int(self.s["hedge_steps"]),
                                 horizon=MATURITY, seed=self.plan["seed"], backend=self.ref, dtype="float64")  # fmt: skip
            self._cache["hedge_paths"] = (p.spot, np.asarray(p.times, dtype=np.float64))
        return self._cache["hedge_paths"]

    def path_sample(self, n: int) -> np.ndarray:
        """Checked paths: two contiguous runs (start and middle), so simulate(first_path=...) can regenerate them."""
        m = max(1, min(int(self.s["check_paths"]), n) // 2)
        return np.unique(np.concatenate([np.arange(m), n // 2 + np.arange(min(m, n - n // 2))]))

    def hedge(self, dtype: str) -> dict[str, Any]:
        gh, bk = self.gh, self.bk
        host, times = self.hedge_paths()
        n_steps, n = host.shape[0] - 1, host.shape[1]
        dev = bk.sync(bk.asarray(host, dtype=dtype))
        option, strategy, costs = self.hedge_args()
        run = lambda: gh.hedge(dev, times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs, backend=bk, dtype=dtype)  # noqa: E731
        st, res = self.measure(run, sync=lambda r: r)  # HedgeResult holds host arrays: it is synchronised when it returns
        dev = None
        idx = self.path_sample(n)
        ref = gh.hedge(host[:, idx].astype(dtype).astype(np.float64), times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs,
                       backend=self.ref, dtype="float64")  # fmt: skip
        diff = rel_diff(res.pnl[idx], ref.pnl, 1.0)
        return {
            **st, "size_label": f"{fmt_size(n)} x {n_steps}", "n_paths": n, "n_steps": n_steps,
            "throughput": n * n_steps / st["time_s"], "throughput_unit": "path-steps/s", "target_s": HEDGE_TARGET_S,
            "time_over_target": st["time_s"] / HEDGE_TARGET_S, "meets_target": st["time_s"] <= HEDGE_TARGET_S,
            **diff, "checked_paths": int(idx.size),
            "pnl_mean": float(np.mean(res.pnl)), "pnl_std": float(np.std(res.pnl)), "mean_cost": float(np.mean(res.costs)),
            "note": "paths simulated on the host (NumPy backend, not timed) and copied to the device; the time includes copying the "
                    "per-path results back (HedgeResult holds NumPy arrays)",
        }  # fmt: skip

    def hedge_simulated(self, dtype: str) -> dict[str, Any]:
        gh, bk = self.gh, self.bk
        n, n_steps, seed = int(self.s["hedge_paths"]), int(self.s["hedge_steps"]), self.plan["seed"]
        model = gh.GBM(SPOT, VOL, rate=RATE)
        option, strategy, costs = self.hedge_args()
        run = lambda: gh.hedge_simulated(model, option, n_paths=n, n_steps=n_steps, horizon=MATURITY, seed=seed, vol=VOL,  # noqa: E731
                                         strategy=strategy, costs=costs, backend=bk, dtype=dtype)  # fmt: skip
        st, res = self.measure(run, sync=lambda r: r)
        # the same paths again, from this backend's own streams (a path's shocks depend only on seed, path and step)
        idx = self.path_sample(n)
        runs = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1)
        sim = dict(n_steps=n_steps, horizon=MATURITY, seed=seed, backend=bk, dtype=dtype)
        parts = [bk.to_numpy(gh.simulate(model, n_paths=len(r), first_path=int(r[0]), **sim).spot) for r in runs]
        spot = np.concatenate([np.asarray(x, dtype=np.float64) for x in parts], axis=1)
        times = np.linspace(0.0, MATURITY, n_steps + 1)
        ref = gh.hedge(spot, times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs, backend=self.ref, dtype="float64")
        diff = rel_diff(res.pnl[idx], ref.pnl, 1.0)
        from gpu_hedge._hedging.loop import STATE

        # one pass per step at the least: the scan's carry (the ledger's per-path state with unhedged and premium,
        # the GBM state and the spot) read and written once; the normals are made in registers by a fused program
        bps = 2 * (len(STATE) + 2 + 1 + 1) * np.dtype(dtype).itemsize
        gbs = n * n_steps * bps / st["time_s"] / 1e9
        return {
            **st, "size_label": f"{fmt_size(n)} x {n_steps}", "n_paths": n, "n_steps": n_steps,
            "throughput": n * n_steps / st["time_s"], "throughput_unit": "path-steps/s", "target_s": HEDGE_TARGET_S,
            "time_over_target": st["time_s"] / HEDGE_TARGET_S, "meets_target": st["time_s"] <= HEDGE_TARGET_S,
            "bytes_per_path_step": bps, "achieved_gb_per_s": gbs,
            "carry_fraction_of_copy_bw": gbs / self.copy_gbs if self.copy_gbs else None,
            **diff, "checked_paths": int(idx.size),
            "note": "simulate + hedge on the device, paths never stored; checked against the NumPy engine on this backend's own "
                    "paths (regenerated with simulate(first_path=...))",
        }  # fmt: skip

    def book_base(self) -> tuple[Any, Any, Any]:
        """The generated base book, its market and the NumPy float64 ladder of it (not timed)."""
        if "book" not in self._cache:
            gh = self.gh
            book, market = gh.generate_book(int(self.s["book_base"]), seed=self.plan["seed"], valuation_date=VALUATION_DATE)
            rb = gh.ResidentBook(book, market, backend=self.ref, dtype="float64", valuation_date=VALUATION_DATE, **self.slice_kw())
            self._cache["book"] = (book, market, rb.ladder(self.s["ladder"]))
        return self._cache["book"]

    def slice_kw(self) -> dict[str, int]:
        return {} if self.s["book_slice_rows"] is None else {"slice_rows": int(self.s["book_slice_rows"])}

    def tiled_book(self, reps: int) -> Any:
        """The base book repeated ``reps`` times (position ids renumbered)."""
        import pandas as pd

        if self._cache.get("tiled", (None,))[0] != reps:
            self._cache.pop("tiled", None)
            gc.collect()
            book = self.book_base()[0]
            cols = {}
            for c in book.columns:
                s = book[c]
                if isinstance(s.dtype, pd.CategoricalDtype):
                    cols[c] = pd.Categorical.from_codes(np.tile(s.cat.codes.to_numpy(), reps), categories=s.cat.categories)
                elif c == "position_id":
                    cols[c] = np.arange(len(book) * reps, dtype=np.int64)
                else:
                    cols[c] = np.tile(s.to_numpy(), reps)
            self._cache["tiled"] = (reps, pd.DataFrame(cols, copy=False))
        return self._cache["tiled"][1]

    def book(self, dtype: str) -> dict[str, Any]:
        gh, bk = self.gh, self.bk
        book, market, ref_ladder = self.book_base()
        base = len(book)
        itemsize = np.dtype(dtype).itemsize
        t0 = time.perf_counter()
        rb0 = gh.ResidentBook(book, market, backend=bk, dtype=dtype, valuation_date=VALUATION_DATE, **self.slice_kw())
        t_base = time.perf_counter() - t0
        del rb0
        self.release()
        # the largest power of ten (down to the base book) that fits device memory, host memory and the time left
        n_scen = gh.Scenarios.coerce(self.s["ladder"]).size
        slice_rows = int(self.s["book_slice_rows"] or 4_000_000)
        notes, chosen = [], None
        n = int(self.s["book"])
        while n >= base:
            why = []
            dev_need = n * (8 + 5 * itemsize) + min(n, slice_rows) * (n_scen + 40) * itemsize
            free = self.device_free()
            if free is not None and dev_need > 0.7 * free:
                why.append(f"device memory: needs ~{dev_need / 1e9:.1f} GB, {free / 1e9:.1f} GB free")
            host_need = n * 200  # the tiled DataFrame (~50 B/row) and ResidentBook's host-side arrays while it validates
            avail = host_available_bytes()
            if avail is not None and host_need > 0.7 * avail:
                why.append(f"host memory: needs ~{host_need / 1e9:.1f} GB, {avail / 1e9:.1f} GB available")
            est = 1.3 * t_base * n / base + 10.0 * float(self.s["reserve_scale"])
            if est > 0.8 * self.remaining():
                why.append(f"time: building it would take ~{est:.0f} s, {self.remaining():.0f} s left")
            if not why:
                chosen = n
                break
            notes.append(f"{fmt_size(n)} positions not run ({'; '.join(why)})")
            n //= 10
        if chosen is None:
            return {"status": "skipped", "reason": "; ".join(notes)}
        reps = chosen // base
        big = self.tiled_book(reps) if reps > 1 else book
        t0 = time.perf_counter()
        rb = gh.ResidentBook(big, market, backend=bk, dtype=dtype, valuation_date=VALUATION_DATE, **self.slice_kw())
        t_build = time.perf_counter() - t0
        del big
        st, lad = self.measure(lambda: rb.ladder(self.s["ladder"]), sync=lambda x: x)  # a pandas frame: on the host
        same = all((lad[c].to_numpy() == ref_ladder[c].to_numpy()).all() for c in ("underlying", "spot_shock", "vol_shock"))
        diff = rel_diff(lad["pnl"].to_numpy(), reps * ref_ladder["pnl"].to_numpy(), 1.0) if same else {"max_rel_diff": math.inf}
        rb = None
        return {
            **st, "size": chosen, "scenarios": n_scen, "throughput": chosen * n_scen / st["time_s"],
            "throughput_unit": "position-scenarios/s",
            "positions_per_s": chosen / st["time_s"], "target_s": LADDER_TARGET_S, "time_over_target": st["time_s"] / LADDER_TARGET_S,
            "meets_target": st["time_s"] <= LADDER_TARGET_S, "build_s": t_build, "base_build_s": t_base, **diff,
            "_extra_ok": same,
            "note": "; ".join(notes + [f"book = the generated {fmt_size(base)}-position book repeated {reps} times; reference = "
                                      f"{reps} x the NumPy float64 ladder of that book; build_s (validation on the host + copy to the "
                                      "device) is not in the ladder time"]),
        }  # fmt: skip

    def implied_vol(self, dtype: str) -> dict[str, Any]:
        gh, bk = self.gh, self.bk
        n = int(self.s["iv"])
        dev = self.device_inputs(n, dtype)
        prices = bk.sync(gh.price(*dev[:6], call=dev[6], model="bsm", backend=bk, dtype=dtype))
        args = (prices, dev[0], dev[1], dev[2], dev[4], dev[5])
        run = lambda: gh.implied_vol(*args, call=dev[6], backend=bk, dtype=dtype, return_status=True, on_invalid="nan")  # noqa: E731
        st, (vol, status) = self.measure(run)
        in_bytes = prices.dtype.itemsize * 6 + dev[6].dtype.itemsize
        out_bytes = vol.dtype.itemsize + status.dtype.itemsize
        idx = self.sample(n, int(self.s["check_sample"]))
        got, p = self.take(vol, idx), self.take(prices, idx)
        ok_share = float(bk.to_numpy(bk.xp.mean(bk.xp.astype(status == 0, bk.xp.float64))))
        vol = status = prices = dev = args = None
        r = self.ref_inputs(idx, dtype)
        ref = gh.implied_vol(p, r[0], r[1], r[2], r[4], r[5], call=r[6], backend=self.ref, dtype="float64", on_invalid="nan")
        diff = rel_diff(got, ref, FLOOR[dtype])
        both = np.isfinite(got) & np.isfinite(ref)
        bpo = in_bytes + out_bytes
        gbs = n * bpo / st["time_s"] / 1e9
        return {
            **st, "throughput": n / st["time_s"], "throughput_unit": "IV/s", "bytes_per_option": bpo, "achieved_gb_per_s": gbs,
            "fraction_of_copy_bw": gbs / self.copy_gbs if self.copy_gbs else None, **diff,
            "_nan_allowed": dtype == "float32", "status_ok_share": ok_share, "checked_elements": int(idx.size),
            "max_abs_err_vs_true_vol": float(np.max(np.abs(got[both] - r[3][both]))) if both.any() else None,
            "note": "prices from gpu_hedge.price on the device in the same dtype; NaN where the vol is not identifiable (status)",
        }  # fmt: skip

    def simulate(self, name: str, dtype: str) -> dict[str, Any]:
        gh, bk, xp = self.gh, self.bk, self.bk.xp
        rate = 0.03
        model = gh.GBM(SPOT, VOL, rate=rate) if name == "gbm" else gh.Heston(SPOT, 0.04, 1.5, 0.04, 0.5, -0.7, rate=rate)
        n, n_steps, seed = int(self.s["sim_paths"]), int(self.s["sim_steps"]), self.plan["seed"]

        def sync(p: Any) -> Any:
            bk.sync(p.spot if p.variance is None else (p.spot, p.variance))
            return p

        st, p = self.measure(
            lambda: gh.simulate(model, n_paths=n, n_steps=n_steps, horizon=MATURITY, seed=seed, backend=bk, dtype=dtype), sync
        )
        last = xp.astype(p.spot[-1], xp.float64)
        mean = float(bk.to_numpy(xp.mean(last)))
        sd = float(bk.to_numpy(xp.std(last)))
        del p, last
        z = (mean - SPOT * math.exp(rate * MATURITY)) / (sd / math.sqrt(n)) if sd > 0 else math.inf
        m = int(self.s["sim_check_paths"])
        kw = dict(n_paths=m, n_steps=n_steps, horizon=MATURITY, seed=seed, reference=True)
        got = bk.to_numpy(gh.simulate(model, backend=bk, dtype=dtype, **kw).spot)
        ref = gh.simulate(model, backend=self.ref, dtype="float64", **kw).spot
        diff = rel_diff(got, ref, FLOOR[dtype])
        return {
            **st, "size_label": f"{fmt_size(n)} x {n_steps}", "n_paths": n, "n_steps": n_steps,
            "throughput": n * n_steps / st["time_s"], "throughput_unit": "path-steps/s", **diff,
            "mean_spot_T": mean, "martingale_z": z, "_extra_ok": bool(abs(z) < 6.0) if name == "gbm" else True,
            "note": "stored paths (simulate); check: reference-mode shocks (host-drawn, identical on every backend) on "
                    f"{m} paths vs NumPy, and z-score of mean S_T against S0 exp(rT) on the timed run (GBM: |z| < 6 required)",
        }  # fmt: skip

    def run_all(self) -> None:
        s = self.s
        dtypes = self.plan["dtypes"]
        self.item("copy D2D", "float64", int(s["copy_bytes"]) // 8, self.copy_bandwidth, "copy")
        small, *large = s["greeks"]
        for dt in dtypes:
            self.item("greeks", dt, small, lambda dt=dt: self.greeks(small, dt), "greeks")
        for dt in dtypes:
            self.item("hedge", dt, int(s["hedge_paths"]), lambda dt=dt: self.hedge(dt), "hedge")
        for n in large:
            for dt in dtypes:
                self.item("greeks", dt, n, lambda n=n, dt=dt: self.greeks(n, dt), "greeks_big")
        for dt in dtypes:
            self.item("book ladder", dt, int(s["book"]), lambda dt=dt: self.book(dt), "book")
        self._cache.pop("tiled", None)
        for dt in dtypes:
            self.item("implied vol", dt, int(s["iv"]), lambda dt=dt: self.implied_vol(dt), "implied_vol")
        self._cache.pop("greeks_host", None)
        for name in ("gbm", "heston"):
            for dt in dtypes:
                self.item(f"simulate {name}", dt, int(s["sim_paths"]), lambda name=name, dt=dt: self.simulate(name, dt), "simulate")
        for dt in dtypes:
            self.item("hedge_simulated", dt, int(s["hedge_paths"]), lambda dt=dt: self.hedge_simulated(dt), "hedge_simulated")
        self.out["memory_end"] = self.memory_info()
        self.out["finished"] = True
        self.save()


# --- driver -----------------------------------------------------------------------------------------------


def parse_pytest(lines: list[str], timed_out: bool) -> dict[str, Any]:
    """Counts from pytest's last summary line, or (killed before it) from the progress characters."""
    counts: dict[str, int] = {}
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|skipped|deselected|error|errors|no tests ran)\b", line) and (
            " in " in line or "no tests ran" in line
        ):
            for num, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed|warnings?)", line):
                counts[{"error": "errors", "warning": "warnings"}.get(word, word)] = int(num)
            counts["summary_line"] = line.strip("= ")  # type: ignore[assignment]
            break
    if not counts and timed_out:
        prog = "".join(m.group(1) for line in lines if (m := re.match(r"^([.sFExX]+)(\s+\[\s*\d+%\])?$", line.strip())))
        counts = {"passed": prog.count("."), "failed": prog.count("F"), "errors": prog.count("E"), "skipped": prog.count("s"),
                  "summary_line": "killed at the timeout; counts from the progress line"}  # type: ignore[dict-item]  # fmt: skip
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return {**counts, "failures": failures[:50]}


def run_tests(paths: list[str], timeout: float, env: dict[str, str], workers: int = 1) -> dict[str, Any]:
    """``pytest -m gpu`` over ``paths``; ``workers`` > 1 spreads it over that many pytest-xdist processes
    (each test body runs for CuPy and JAX-on-GPU: about 440 tests, mostly JAX compiles)."""
    import importlib.util

    spread = ["-n", str(workers)] if workers > 1 and importlib.util.find_spec("xdist") is not None else []
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", *spread, *paths]
    log(f"running {' '.join(cmd[1:])} (timeout {timeout:.0f} s)")
    rc, lines, timed_out, secs = stream(cmd, env, timeout, "[pytest] ")
    res = {
        "command": "python " + " ".join(cmd[1:]),
        "returncode": rc,
        "timed_out": timed_out,
        "seconds": secs,
        **parse_pytest(lines, timed_out),
    }
    if rc not in (0, 5) and not res.get("failed") and not res.get("errors"):
        res["output_tail"] = lines[-30:]
    return res


def run_worker(backend: str, plan: dict[str, Any], env: dict[str, str], timeout: float, tmp: Path) -> dict[str, Any]:
    plan_path, result_path = tmp / f"plan-{backend}.json", tmp / f"result-{backend}.json"
    write_json(plan_path, plan)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", backend, "--plan", str(plan_path), "--result", str(result_path)]
    rc, lines, timed_out, secs = stream(cmd, env, timeout, "")
    try:
        data = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        data = {"backend": backend, "results": []}
    data["worker"] = {"returncode": rc, "timed_out": timed_out, "seconds": secs}
    if rc != 0:
        data["worker"]["output_tail"] = lines[-40:]
    return data


def worker_env(backend: str, dry: bool) -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONUNBUFFERED"] = "1"
    if dry:
        env["JAX_PLATFORMS"] = "cpu"
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("GPU_HEDGE_NUM_THREADS", "1")  # a shared machine: stay on one core
    elif backend == "jax":
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.90")  # the worker is alone on the device
    else:
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # never let a stray JAX import take the device
    return env


def print_report(data: dict[str, Any], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    for line in data["notes"]:
        console.print(escape(line))
    t = data.get("tests") or {}
    if t:
        counts = ", ".join(f"{t[k]} {k}" for k in ("passed", "failed", "errors", "skipped", "deselected") if t.get(k))
        console.print(
            f"tests: {t['command']}: {counts or 'no counts'}"
            + (" [red](TIMED OUT)" if t.get("timed_out") else "")
            + f" in {t['seconds']:.0f} s"
        )
        for f in t.get("failures", [])[:10]:
            console.print(f"  [red]{escape(f)}")
    for w in data["workers"]:
        info = w.get("worker", {})
        if info.get("timed_out") or info.get("returncode") not in (0, None):
            console.print(f"[red]worker {w.get('backend')}: returncode {info.get('returncode')}, timed out {info.get('timed_out')}")
            for line in info.get("output_tail", [])[-8:]:
                console.print(f"  {escape(line)}")
    console.print(f"wrote {data['json_path']}")
    table = Table(title=f"gpu_hedge GPU suite, {data['device']} ({data['mode']}), {data['elapsed_s']:.0f} s")
    cols = ("benchmark", "backend", "dtype", "size", "best s", "compile s", "throughput", "of copy BW / target", "max rel diff", "check")
    for c in cols:
        table.add_column(c, justify="left" if c in ("benchmark", "backend", "dtype", "check") else "right")
    for r in data["results"]:
        st = r.get("status")
        if st != "ok":
            size = fmt_size(r["size"]) if r.get("size") else ""
            why = escape(f"{st}: {r.get('reason', '')[:70]}")
            table.add_row(r["benchmark"], r["backend"], r.get("dtype") or "", size, "-", "-", "-", "-", "-", f"[yellow]{why}")
            continue
        if r.get("fraction_of_copy_bw") is not None:
            frac = f"{r['fraction_of_copy_bw']:.2f} of copy"
            kernel = r.get("kernel_only") or {}
            if kernel.get("fraction_of_copy_bw") is not None:  # the fused kernel alone, without validation
                frac += f" (kernel {kernel['fraction_of_copy_bw']:.2f})"
        elif r.get("target_s") is not None:
            frac = f"{r['time_over_target']:.2f} x target" + (" ✓" if r["meets_target"] else " ✗")
        else:
            frac = "-"
        check = r.get("check_ok")
        compile_s = f"{r['compile_s_est']:.3g}" if r.get("compile_s_est") is not None else "-"
        table.add_row(
            r["benchmark"], r["backend"], r.get("dtype") or "", r.get("size_label") or fmt_size(r["size"]), f"{r['time_s']:.4g}",
            compile_s, fmt_rate(r.get("throughput"), r.get("throughput_unit", "")),
            frac, f"{r['max_rel_diff']:.1e}" if r.get("max_rel_diff") is not None else "-",
            "[green]ok" if check else ("[red]FAIL" if check is False else "-"),
        )  # fmt: skip
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--cpu-dry-run", action="store_true", help="NumPy and JAX-CPU backends, tiny sizes: exercises the suite without a GPU")
    p.add_argument("--backends", default=None, help="comma-separated backends (default: the GPU backends found; dry run: numpy,jax)")
    p.add_argument("--dtypes", default=",".join(DTYPES))
    p.add_argument("--budget", type=float, default=480.0, help="seconds for the whole suite (default 480); items past it are skipped")
    p.add_argument("--pytest-timeout", type=float, default=180.0, help="seconds for pytest -m gpu (default 180)")
    p.add_argument("--no-tests", action="store_true", help="skip the pytest -m gpu run")
    p.add_argument("--repeat", type=int, default=None, help="timed calls per item after the warm-up (default 5; dry run 2)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--out", default=None, help="default benchmarks/results/gpu_suite-<device>.json")
    p.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--plan", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.probe:
        print(json.dumps(probe(), default=str))
        return 0
    if args.worker:
        Worker(args.worker, json.loads(Path(args.plan).read_text()), Path(args.result)).run_all()
        return 0

    start = time.time()
    mode = "cpu-dry-run" if args.cpu_dry_run else "gpu"
    sizes = dict(SIZES[mode])
    if args.repeat is not None:
        sizes["repeat"] = max(1, args.repeat)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not dtypes or any(d not in DTYPES for d in dtypes):
        p.error(f"--dtypes: choose from {', '.join(DTYPES)}")

    log("probing devices")
    penv = os.environ.copy()
    penv.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.cpu_dry_run:
        penv["JAX_PLATFORMS"], penv["CUDA_VISIBLE_DEVICES"] = "cpu", ""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--probe"], cwd=REPO, env=penv, capture_output=True, text=True, timeout=180
    )
    try:
        devices = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"gpu_suite: the device probe failed (returncode {proc.returncode}):\n{proc.stderr[-2000:]}", file=sys.stderr)
        return 1
    cu, jx = devices["cupy"], devices["jax"]
    if not cu.get("installed"):
        cupy_line = "CuPy: not installed"
    else:
        devs = ", ".join(f"{d['name']} ({d['memory_gib']} GiB, cc {d['compute_capability']})" for d in cu.get("devices", []))
        cupy_line = f"CuPy {cu.get('version', '?')}: " + (devs if cu.get("usable") else f"unusable: {cu.get('reason') or cu.get('error')}")
    jax_line = f"JAX {jx.get('version', 'not installed')}: " + (
        ", ".join(f"{d['platform']}:{d['id']} {d['kind']}" for d in jx.get("devices", [])) or "-"
    )
    jax_line += f" (GPU plugins: {', '.join(jx.get('gpu_plugins') or []) or 'none'})"
    log(cupy_line)
    log(jax_line)

    if args.backends:
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    elif args.cpu_dry_run:
        backends = ["numpy"] + (["jax"] if "jax" in devices["available_backends"] else [])
    else:
        backends = list(devices["gpu_backends"])
    if not backends:
        print(
            "gpu_suite: NO GPU found on this machine, nothing to benchmark.\n"
            f"  {cupy_line}\n  {jax_line}\n"
            "  Run it on a machine with an NVIDIA GPU and CuPy (pip install 'gpu_hedge[cuda12]') and/or JAX with CUDA, "
            "or use --cpu-dry-run to exercise the suite here on the CPU with tiny sizes."
        )
        return 0
    unknown = [b for b in backends if b not in devices["available_backends"]]
    if unknown:
        p.error(f"backend(s) {', '.join(unknown)} not usable here (available: {', '.join(devices['available_backends'])})")

    tmp = Path(tempfile.mkdtemp(prefix="gh-gpu-suite-"))
    tests: dict[str, Any] | None = None
    if not args.no_tests:
        tenv = os.environ.copy()
        tenv.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        if args.cpu_dry_run:
            tenv["JAX_PLATFORMS"], tenv["CUDA_VISIBLE_DEVICES"] = "cpu", ""
        left = args.budget - (time.time() - start)
        # on the GPU machine: a few processes (JAX does not preallocate, so they share the device)
        n_proc = 1 if args.cpu_dry_run else max(1, min(4, (os.cpu_count() or 2) // 4))
        tests = run_tests(list(sizes["pytest_paths"]), min(args.pytest_timeout, max(10.0, 0.45 * left)), tenv, n_proc)

    workers = []
    for i, b in enumerate(backends):
        left = args.budget - (time.time() - start) - 10.0  # keep ~10 s for the report
        share = max(5.0, left / (len(backends) - i))
        plan = {"mode": mode, "sizes": sizes, "dtypes": dtypes, "seed": args.seed, "deadline": time.time() + share - 5.0}
        log(f"worker {b}: {share:.0f} s")
        workers.append(run_worker(b, plan, worker_env(b, args.cpu_dry_run), share + 20.0, tmp))

    results = [r for w in workers for r in w.get("results", [])]
    names = devices.get("gpu_names") or []
    device = "cpu-dry-run" if args.cpu_dry_run else slug(names[0] if names else "gpu")
    out = Path(args.out) if args.out else HERE / "results" / f"gpu_suite-{device}.json"
    copy = {
        w["backend"]: r["copy_gb_per_s"]
        for w in workers
        for r in w.get("results", [])
        if r["benchmark"] == "copy D2D" and r["status"] == "ok"
    }
    vers = versions()
    notes = [
        f"devices: {cupy_line}; {jax_line}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in vers.items() if v),
        f"copy bandwidth: device-to-device copy of a {sizes['copy_bytes'] / 2**20:g} MiB float64 array (read + write bytes), best of "
        f"{sizes['copy_repeat']}: " + (", ".join(f"{b} {v:.0f} GB/s" for b, v in copy.items()) or "-"),
        BYTES_NOTE,
        "Timing: inputs on the device before the clock starts, backend.sync before it stops; one warm-up call, then up to "
        f"{sizes['repeat']} timed calls (fewer when slow), best reported; compile s = first call - best.",
        "max rel diff vs NumPy float64 on a subsample: Greeks, implied vol, simulation elementwise, |a - b| / max(|b|, floor x max|b|) "
        f"(floor {FLOOR['float64']:g} float64, {FLOOR['float32']:g} float32); hedge P&L and ladder relative to max |b|. "
        f"check: <= {TOL['float64']:g} (float64), <= {TOL['float32']:g} (float32); a NaN where NumPy has a number fails (except "
        "float32 implied vols, where NaN is the documented answer for a price float32 cannot resolve), a number where NumPy has "
        "NaN always fails.",
    ]
    if args.cpu_dry_run:
        notes.insert(
            0, "CPU DRY RUN: NumPy / JAX-CPU backends, tiny sizes; the timings mean nothing, the plumbing and checks are exercised."
        )
    data = {
        "benchmark": "gpu_suite",
        "date": now_iso(),
        "command": " ".join(["python -m benchmarks.gpu_suite"] + (argv if argv is not None else sys.argv[1:])),
        "mode": mode,
        "device": device,
        "machine": devices.get("machine") or describe_machine(()),
        "versions": vers,
        "devices": devices,
        "settings": {
            "backends": backends,
            "dtypes": dtypes,
            "sizes": sizes,
            "budget_s": args.budget,
            "seed": args.seed,
            "workload": {
                "hedge": f"short 1 call S0=K={SPOT:g}, vol {VOL}, T={MATURITY:g}, rate {RATE}, Periodic(), proportional "
                f"cost {COST:g}, target {HEDGE_TARGET_S} s (float64)",
                "ladder": f"{sizes['ladder']}, target {LADDER_TARGET_S} s",
                "greeks": "bsm, price + delta, gamma, vega, theta, rho",
            },
            "floors": FLOOR,
            "tolerances": TOL,
        },  # fmt: skip
        "tests": tests,
        "copy_bandwidth_gb_per_s": copy,
        "results": results,
        "workers": workers,
        "notes": notes,
        "elapsed_s": time.time() - start,
        "json_path": str(out),
    }
    write_json(out, data)
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    print_report(data, console)
    failed = [r for r in results if r.get("status") == "error" or r.get("check_ok") is False]
    bad_tests = bool(tests and (tests.get("failed") or tests.get("errors") or tests.get("timed_out")))
    bad_workers = any(w["worker"].get("returncode") != 0 for w in workers)
    return 1 if failed or bad_tests or bad_workers else 0


if __name__ == "__main__":
    raise SystemExit(main())
