"""Path-steps per second for GBM, Heston (QE and Euler) and Merton, per backend and dtype, beside the peers a user would pick instead.

    python benchmarks/simulation.py [--paths 100000] [--steps 252] [--backends numpy,jax]
                                    [--dtypes float64,float32] [--repeat 3] [--peers plain,pfhedge|none]
                                    [--no-memory] [--out benchmarks/results/simulation.json]

gpu_hedge: streams the paths with ``gpu_hedge.iter_paths`` (memory O(paths), as the hedging engine
consumes them) and keeps one running statistic (the sum of the spot over the dates) so nothing is
optimised away; the result is synchronised on the device before the clock stops.

Peers (``--peers``; default both, pfhedge skipped with a note when torch or pfhedge is missing), with
the same paths x steps, model parameters, horizon (1 year, equal steps) and dtype, the same running
statistic and the same terminal-spot check:

- ``plain numpy``: what a user writes by hand: a Python loop over the steps, fresh
  ``np.random.default_rng(seed)`` per run, ``rng.standard_normal(n_paths, dtype=dtype)`` per shock and
  step, memory O(paths). GBM: exact log-normal step. Heston: full-truncation Euler (what users
  typically write; v+ = max(v, 0) in drift and diffusion, log-Euler spot step, two normals per step),
  compared with gpu_hedge's "Heston Euler" row. Merton: the GBM step times ``rng.poisson(lam dt)``
  jumps with normal log sizes (sum of N of them = N mean + sqrt(N) std Z), compensated drift
  r - q - lam (exp(mean + std^2 / 2) - 1), three draws per step.
- ``pfhedge`` (CPU torch, its default thread count, recorded): ``generate_geometric_brownian``
  (mu = r - q), ``generate_heston`` and ``generate_merton_jump`` (mu = r - q, the same jump
  compensation as gpu_hedge's). Each materialises the whole (paths, steps + 1) tensor (column 0 is
  the start, so it is asked for steps + 1 columns). ``generate_heston`` is Andersen's QE (psi_c 1.5,
  gamma1 = gamma2 = 1/2) without the martingale correction and without a rate: its output is
  multiplied by exp((r - q) t) (timed), and it is compared with gpu_hedge's "Heston QE" row.

Interleaved: for every round, each case in turn (per model: gpu_hedge per backend and dtype, then the
peers); one warm-up round (JIT compilation on JAX; the checks are computed from its output, untimed),
then the best of ``--repeat`` (the ratios to the peers also on the medians). Columns:

- ``ours/peer``: the fastest gpu_hedge backend for the peer's model and dtype, over the peer, both
  from this run (per backend in the JSON).
- ``peak MB``: after the timed rounds, one untimed pass in a fresh subprocess (``--no-memory`` skips it)
  with glibc's ``MALLOC_MMAP_THRESHOLD_=65536``, so every array of 64 KiB or more is its own mmap and is
  returned when freed: per case one warm-up, then ``malloc_trim(0)`` (free heap pages go back too, so
  reusing them counts) and VmHWM after ``clear_refs`` minus the RSS just before one call (Linux; the
  kernel's RSS counters are approximate to a few hundred KB). gpu_hedge and the plain loop hold
  O(paths); pfhedge holds (paths, steps + 1) tensors.
- checks on the terminal spot across paths, against closed forms (no shared random numbers):
  ``E[S_T] z`` = (mean S_T - S0 exp((r - q) T)) / standard error; ``E[log S_T] z`` likewise against
  log S0 + (r - q - sigma^2/2) T (Merton: - lam k T + lam mean T; Heston: - (1/2) int_0^T E[v_t] dt);
  ``sd log S_T`` against sigma sqrt(T) (Merton: sqrt((sigma^2 + lam (mean^2 + std^2)) T); Heston: no
  closed form here, compare across rows). |z| above 4 flags a parameterisation or scheme problem.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, peak_rss_mb, reset_peak_rss, rss_mb, timed, versions, write_json  # noqa: E402
from _peers import dist_version, load_pfhedge  # noqa: E402

import gpu_hedge  # noqa: E402

HORIZON = 1.0
SEED = 2026
Z_FLAG = 4.0

MODELS: dict[str, tuple[Any, str | None]] = {
    "GBM": (gpu_hedge.GBM(spot=100.0, vol=0.2, rate=0.03, div=0.01), None),
    "Heston QE": (gpu_hedge.Heston(spot=100.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.6, rho=-0.7, rate=0.03), "qe"),
    "Heston Euler": (gpu_hedge.Heston(spot=100.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.6, rho=-0.7, rate=0.03), "euler"),
    "Merton": (gpu_hedge.Merton(spot=100.0, vol=0.2, jump_intensity=0.5, jump_mean=-0.1, jump_std=0.15, rate=0.03), None),
}


def run_once(model: Any, scheme: str | None, backend: str, dtype: str, n_paths: int, n_steps: int) -> Any:
    """gpu_hedge: ``(sum of the spot over the dates, terminal spot)``, synchronised."""
    bk = gpu_hedge.get_backend(backend)
    total = last = None
    for step in gpu_hedge.iter_paths(model, n_paths=n_paths, n_steps=n_steps, horizon=HORIZON, seed=SEED,
                                     backend=bk, dtype=dtype, scheme=scheme):  # fmt: skip
        last = step.spot
        total = step.spot if total is None else total + step.spot
    return bk.sync(total), last  # the terminal spot is an input of the total: done when it is


# --- plain NumPy: what a user writes by hand ----------------------------------------------------------


def plain_gbm(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dt = HORIZON / n_steps
    drift, scale = (m.rate - m.div - 0.5 * m.vol**2) * dt, m.vol * math.sqrt(dt)
    s = np.full(n, m.spot, dtype=dtype)
    total = s.copy()
    for _ in range(n_steps):
        z = rng.standard_normal(n, dtype=dtype)
        s = s * np.exp(drift + scale * z)
        total += s
    return total, s


def plain_heston_euler(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Full-truncation Euler (Lord, Koekkoek and van Dijk 2010), log-Euler spot step."""
    rng = np.random.default_rng(seed)
    dt = HORIZON / n_steps
    sqdt, rho_c, mu = math.sqrt(dt), math.sqrt(1.0 - m.rho**2), m.rate - m.div
    s = np.full(n, m.spot, dtype=dtype)
    v = np.full(n, m.v0, dtype=dtype)
    total = s.copy()
    for _ in range(n_steps):
        z1 = rng.standard_normal(n, dtype=dtype)
        z2 = rng.standard_normal(n, dtype=dtype)
        vp = np.maximum(v, 0.0)
        root = np.sqrt(vp) * sqdt
        s = s * np.exp((mu - 0.5 * vp) * dt + root * (m.rho * z2 + rho_c * z1))
        v = v + m.kappa * (m.theta - vp) * dt + m.xi * root * z2
        total += s
    return total, s


def plain_merton(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dt = HORIZON / n_steps
    k = math.exp(m.jump_mean + 0.5 * m.jump_std**2) - 1.0
    drift, scale = (m.rate - m.div - m.jump_intensity * k - 0.5 * m.vol**2) * dt, m.vol * math.sqrt(dt)
    s = np.full(n, m.spot, dtype=dtype)
    total = s.copy()
    for _ in range(n_steps):
        z = rng.standard_normal(n, dtype=dtype)
        n_jumps = rng.poisson(m.jump_intensity * dt, n).astype(dtype)
        zj = rng.standard_normal(n, dtype=dtype)
        s = s * np.exp(drift + scale * z + n_jumps * m.jump_mean + np.sqrt(n_jumps) * m.jump_std * zj)
        total += s
    return total, s


# --- pfhedge (CPU torch) --------------------------------------------------------------------------------


def _torch_dtype(dtype: str) -> Any:
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[dtype]


def pfhedge_gbm(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[Any, Any]:
    import torch
    from pfhedge.stochastic import generate_geometric_brownian

    torch.manual_seed(seed)
    spot = generate_geometric_brownian(n, n_steps + 1, init_state=(m.spot,), sigma=m.vol, mu=m.rate - m.div,
                                       dt=HORIZON / n_steps, dtype=_torch_dtype(dtype))  # fmt: skip
    return spot.sum(1), spot[:, -1]


def pfhedge_heston(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[Any, Any]:
    import torch
    from pfhedge.stochastic import generate_heston

    torch.manual_seed(seed)
    dt, tdt = HORIZON / n_steps, _torch_dtype(dtype)
    spot, _ = generate_heston(n, n_steps + 1, init_state=(m.spot, m.v0), kappa=m.kappa, theta=m.theta, sigma=m.xi,
                              rho=m.rho, dt=dt, dtype=tdt)  # fmt: skip
    spot = spot * torch.exp((m.rate - m.div) * dt * torch.arange(n_steps + 1, dtype=tdt))  # pfhedge's Heston has no rate
    return spot.sum(1), spot[:, -1]


def pfhedge_merton(m: Any, dtype: str, n: int, n_steps: int, seed: int) -> tuple[Any, Any]:
    import torch
    from pfhedge.stochastic import generate_merton_jump

    torch.manual_seed(seed)
    spot = generate_merton_jump(n, n_steps + 1, init_state=(m.spot,), mu=m.rate - m.div, sigma=m.vol,
                                jump_per_year=m.jump_intensity, jump_mean=m.jump_mean, jump_std=m.jump_std,
                                dt=HORIZON / n_steps, dtype=_torch_dtype(dtype))  # fmt: skip
    return spot.sum(1), spot[:, -1]


# peer -> gpu_hedge model row it is compared with -> (label, function)
PEERS: dict[str, dict[str, tuple[str, Callable[..., Any]]]] = {
    "plain": {
        "GBM": ("plain numpy (exact log-normal step)", plain_gbm),
        "Heston Euler": ("plain numpy (full-truncation Euler)", plain_heston_euler),
        "Merton": ("plain numpy (Poisson jumps)", plain_merton),
    },
    "pfhedge": {
        "GBM": ("pfhedge generate_geometric_brownian", pfhedge_gbm),
        "Heston QE": ("pfhedge generate_heston (QE, no martingale corr.)", pfhedge_heston),
        "Merton": ("pfhedge generate_merton_jump", pfhedge_merton),
    },
}
PEER_IMPL = {"plain": "plain numpy loop", "pfhedge": "pfhedge"}
PEER_CONVENTIONS = {
    "plain": "np.random.default_rng(seed) per run, standard_normal(n_paths, dtype) per shock and step; memory O(paths); "
             "Heston: full-truncation Euler (compared with gpu_hedge's Heston Euler); Merton: rng.poisson(lam dt) jump counts, "
             "sum of N normal log-jumps = N mean + sqrt(N) std Z, drift r - q - lam (exp(mean + std^2/2) - 1) - sigma^2/2",
    "pfhedge": "CPU torch, default thread count; materialises (paths, steps + 1); GBM and Merton mu = r - q, Merton compensation "
               "lam (exp(mean + std^2/2) - 1) as gpu_hedge's; generate_heston: Andersen QE (psi_c 1.5, gamma 1/2) with no martingale "
               "correction and no rate, output times exp((r - q) t), timed (compared with gpu_hedge's Heston QE); three random "
               "tensors per Heston step (randn, rand for the variance, randn for the spot)",
}  # fmt: skip


# --- closed-form checks of the terminal spot -----------------------------------------------------------


def exact_moments(model: Any) -> dict[str, float | None]:
    """E[S_T], E[log S_T] and sd(log S_T) (None where no closed form is used) at T = HORIZON."""
    t = HORIZON
    mu = model.mu if isinstance(model, gpu_hedge.GBM) else model.rate - model.div
    out: dict[str, float | None] = {"mean_ST": model.spot * math.exp(mu * t)}
    if isinstance(model, gpu_hedge.GBM):
        out["mean_log_ST"] = math.log(model.spot) + (mu - 0.5 * model.vol**2) * t
        out["sd_log_ST"] = model.vol * math.sqrt(t)
    elif isinstance(model, gpu_hedge.Merton):
        lam, a, b = model.jump_intensity, model.jump_mean, model.jump_std
        out["mean_log_ST"] = math.log(model.spot) + (mu - lam * model.compensator - 0.5 * model.vol**2 + lam * a) * t
        out["sd_log_ST"] = math.sqrt((model.vol**2 + lam * (a**2 + b**2)) * t)
    else:  # Heston: E[v_t] = theta + (v0 - theta) exp(-kappa t)
        k, th = model.kappa, model.theta
        int_ev = th * t + (model.v0 - th) * (1.0 - math.exp(-k * t)) / k
        out["mean_log_ST"] = math.log(model.spot) + mu * t - 0.5 * int_ev
        out["sd_log_ST"] = None
    return out


def _to_float64(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    return np.asarray(gpu_hedge.to_numpy(x) if not isinstance(x, np.ndarray) else x, dtype=np.float64)


def terminal_check(terminal: Any, model: Any) -> dict[str, Any]:
    """Sample moments of S_T and log S_T across paths against :func:`exact_moments`, as z-scores
    (sample moment minus exact over its standard error; for the sd from the sample fourth moment)."""
    s = _to_float64(terminal)
    n = s.size
    ex = exact_moments(model)
    out: dict[str, Any] = {"n": n, "finite": bool(np.isfinite(s).all()), **{f"exact_{k}": v for k, v in ex.items()}}
    if not out["finite"] or n < 2:
        out["ok"] = False
        return out
    log_s = np.log(s)
    mean, sd = float(s.mean()), float(s.std(ddof=1))
    lmean, lsd = float(log_s.mean()), float(log_s.std(ddof=1))
    m4 = float(np.mean((log_s - lmean) ** 4))
    se_lsd = math.sqrt(max(m4 - lsd**4, 0.0) / n) / (2.0 * lsd) if lsd > 0 else math.inf
    out.update({"mean_ST": mean, "sd_ST": sd, "mean_log_ST": lmean, "sd_log_ST": lsd})
    out["z_mean_ST"] = (mean - ex["mean_ST"]) / (sd / math.sqrt(n))
    out["rel_err_mean_ST"] = abs(mean / ex["mean_ST"] - 1.0)
    out["z_mean_log_ST"] = (lmean - ex["mean_log_ST"]) / (lsd / math.sqrt(n))
    out["z_sd_log_ST"] = None if ex["sd_log_ST"] is None else (lsd - ex["sd_log_ST"]) / se_lsd
    zs = [out["z_mean_ST"], out["z_mean_log_ST"], out["z_sd_log_ST"]]
    out["ok"] = all(abs(z) <= Z_FLAG for z in zs if z is not None)
    return out


# --- cases, and the memory pass ------------------------------------------------------------------------

Case = tuple[str, str, str, str]  # (kind: "ours" | a peer's name, model key, backend or "", dtype)
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}  # the memory worker's glibc: every array of >= 64 KiB is its own mmap


def build_cases(backends: list[str], dtypes: list[str], peers: list[str]) -> list[Case]:
    """Per model: gpu_hedge per backend and dtype, then the peers compared with that model (float64 / float32)."""
    cases: list[Case] = []
    for name in MODELS:
        cases += [("ours", name, b, d) for b in backends for d in dtypes]
        cases += [(peer, name, "", d) for peer in peers if name in PEERS[peer] for d in dtypes if d in ("float64", "float32")]
    return cases


def case_call(case: Case, n_paths: int, n_steps: int) -> Callable[[], Any]:
    """The case's run, returning ``(running statistic, terminal spot)``."""
    kind, name, b, d = case
    model, scheme = MODELS[name]
    if kind == "ours":
        return lambda: run_once(model, scheme, b, d, n_paths, n_steps)
    fn = PEERS[kind][name][1]
    return lambda: fn(model, d, n_paths, n_steps, SEED)


def case_key(case: Case) -> str:
    return "|".join(case)


def memory_worker(cases: list[Case], n_paths: int, n_steps: int) -> dict[str, Any]:
    """Run in a fresh process with :data:`MALLOC_ENV`: per case, one warm-up (gpu_hedge: the same shape, so JAX
    compiles and NumPy's kernels load; peers: 1,000 paths, to start their libraries), then one run between
    ``clear_refs`` and VmHWM. Arrays are their own mmaps, released when freed, so no case reuses memory that an
    earlier one left in the allocator: the peak above the RSS before the call is what this call needs."""
    import ctypes
    import gc

    if not reset_peak_rss():
        return {"error": "no /proc/self/clear_refs: peak RSS cannot be taken per case"}
    try:  # glibc: hand the free pages inside the heap back too, so reusing them counts as new memory
        trim: Callable[[], Any] = ctypes.CDLL(None).malloc_trim
        trim_arg: tuple[int, ...] = (0,)
    except (OSError, AttributeError):
        trim, trim_arg = (lambda *a: None), ()
    peaks: dict[str, float] = {}
    gc.collect()
    for case in cases:  # no gc.collect() per case (0.1 s each with torch and JAX loaded): the runs make no cycles
        case_call(case, n_paths if case[0] == "ours" else min(n_paths, 1000), n_steps)()
        trim(*trim_arg)
        reset_peak_rss()
        rss0 = rss_mb() or 0.0
        res = case_call(case, n_paths, n_steps)()
        peaks[case_key(case)] = peak_rss_mb() - rss0
        del res
    return {"peaks": peaks, "rss_end_mb": rss_mb(), "malloc_trim": bool(trim_arg)}


def measure_memory(cases: list[Case], n_paths: int, n_steps: int, backends: list[str], dtypes: list[str],
                   peers: list[str]) -> tuple[dict[Case, float | None], dict[str, Any]]:  # fmt: skip
    """Peak memory per case, from one untimed :func:`memory_worker` subprocess; never raises."""
    env = " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items())
    method = f"fresh subprocess, glibc {env}; per case one warm-up, malloc_trim(0), then VmHWM after clear_refs minus the RSS "
    info: dict[str, Any] = {"method": method + "just before one untimed call"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "memory.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--paths", str(n_paths), "--steps", str(n_steps),
               "--backends", ",".join(backends), "--dtypes", ",".join(dtypes), "--peers", ",".join(peers) or "none",
               "--memory-worker", str(path)]  # fmt: skip
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MALLOC_ENV}, timeout=3600)
            data = json.loads(path.read_text()) if proc.returncode == 0 and path.is_file() else None
            if data is None:
                info["error"] = f"memory worker exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"
        except (OSError, subprocess.SubprocessError, ValueError) as e:
            data, info["error"] = None, f"memory worker failed: {type(e).__name__}: {e}"
        info["seconds"] = time.perf_counter() - t0
    if data and "error" in data:
        info["error"] = data["error"]
    peaks = (data or {}).get("peaks", {})
    return {c: peaks.get(case_key(c)) for c in cases}, info


# --- main -----------------------------------------------------------------------------------------------


def _parse_peers(text: str, parser: argparse.ArgumentParser) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in PEERS]
    if bad:
        parser.error(f"unknown peer(s) {', '.join(bad)}; choose from {', '.join(PEERS)} or 'none'")
    return names


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    doc = __doc__ or ""
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog="\n".join(doc.splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--paths", type=float, default=1e5)
    p.add_argument("--steps", type=int, default=252)
    p.add_argument("--backends", default=",".join(gpu_hedge.available_backends()))
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--peers", default="plain,pfhedge",
                   help="comma-separated peers to run beside gpu_hedge, in the same interleaved rounds: 'plain' (a plain NumPy "
                        "loop over the steps) and/or 'pfhedge' (pfhedge.stochastic on CPU torch, skipped with a note when torch "
                        "or pfhedge is not installed), or 'none' (default: plain,pfhedge)")  # fmt: skip
    p.add_argument(
        "--no-memory", action="store_true", help="skip the untimed peak-memory pass (one extra run of every case in a fresh subprocess)"
    )
    p.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "simulation.json"))
    args = p.parse_args(argv)
    n_paths, n_steps = int(args.paths), args.steps
    backends = [b for b in args.backends.split(",") if b]
    dtypes = [d for d in args.dtypes.split(",") if d]
    peers = _parse_peers(args.peers, p)
    if args.memory_worker:
        if "pfhedge" in peers and load_pfhedge()[0] is None:
            peers.remove("pfhedge")
        write_json(args.memory_worker, memory_worker(build_cases(backends, dtypes, peers), n_paths, n_steps))
        return 0
    console = Console() if Console().is_terminal else Console(width=200)

    skipped: dict[str, str] = {}
    torch_info: dict[str, Any] = {}
    if "pfhedge" in peers:
        mod, why = load_pfhedge()
        if mod is None:
            skipped["pfhedge"] = why or "unavailable"
            peers.remove("pfhedge")
            console.print(f"[yellow]pfhedge skipped: {escape(str(why))}[/yellow]")
        else:
            import torch

            torch_info = {"torch_threads": torch.get_num_threads(), "torch_threads_note": "left at torch's default"}
    cases = build_cases(backends, dtypes, peers)

    times: dict[Case, list[float]] = {c: [] for c in cases}
    first: dict[Case, float] = {}
    checks: dict[Case, dict[str, Any]] = {}
    for rnd in range(args.repeat + 1):
        for case in cases:
            dt, out = timed(case_call(case, n_paths, n_steps))
            if rnd:
                times[case].append(dt)
            else:
                first[case] = dt
                checks[case] = terminal_check(out[1], MODELS[case[1]][0])
            del out
        console.log(f"round {rnd} done")
    if args.no_memory:
        peak: dict[Case, float | None] = dict.fromkeys(cases)
        mem_info: dict[str, Any] = {"method": "skipped (--no-memory)"}
    else:
        peak, mem_info = measure_memory(cases, n_paths, n_steps, backends, dtypes, peers)
        console.log(f"memory pass done in {mem_info['seconds']:.1f} s" + (f": {mem_info['error']}" if "error" in mem_info else ""))

    work = n_paths * n_steps
    best = {c: min(times[c]) for c in cases}
    rate = {c: work / best[c] for c in cases}
    median = {c: float(np.median(times[c])) for c in cases}  # the figure: medians of interleaved rounds
    rate_median = {c: work / median[c] for c in cases}
    results, peer_results = [], []
    for case in cases:
        kind, name, b, d = case
        common = {"model": name, "dtype": d, "n_paths": n_paths, "n_steps": n_steps, "best_s": best[case],
                  "times_s": times[case], "first_call_s": first[case], "path_steps_per_s": rate[case],
                  "median_s": median[case], "path_steps_per_s_median": rate_median[case],
                  "peak_extra_mb": peak[case], "check": checks[case]}  # fmt: skip
        if kind == "ours":
            results.append({"implementation": f"gpu_hedge {b}", "backend": b, **common})
            continue
        ours = {ob: rate[("ours", name, ob, d)] for ob in backends if ("ours", name, ob, d) in rate}
        best_b = max(ours, key=ours.__getitem__) if ours else None
        peer_results.append({
            "implementation": PEER_IMPL[kind], "peer": kind, "label": PEERS[kind][name][0], **common,
            "compared_with": f"gpu_hedge {name} {d}",
            "ours_best": None if best_b is None else {"implementation": f"gpu_hedge {best_b}", "path_steps_per_s": ours[best_b]},
            "ratio_ours_over_peer": None if best_b is None else ours[best_b] / rate[case],
            # on medians, our fastest backend by its median
            "ratio_ours_over_peer_median": max((rate_median[("ours", name, ob, d)] for ob in ours), default=0.0) / rate_median[case]
            if ours else None,
            "ratio_by_backend": {ob: r / rate[case] for ob, r in ours.items()},
        })  # fmt: skip

    def fz(z: Any) -> str:
        if z is None:
            return "-"
        txt = f"{z:+.1f}"
        return f"[red]{txt}[/red]" if abs(z) > Z_FLAG else txt

    title = (f"Path simulation, {n_paths:,} paths x {n_steps} steps (gpu_hedge streamed), best of {args.repeat}; "
             f"peers: {', '.join(peers) or 'none'}")  # fmt: skip
    table = Table(title=title)
    cols = ("model", "implementation", "dtype", "best s", "M path-steps/s", "vs numpy float64", "ours/peer best / median", "peak MB",
            "E[S_T] z", "E[log S_T] z", "sd log S_T (exact)", "first call s")  # fmt: skip
    for col in cols:
        table.add_column(escape(col), justify="left" if col in ("model", "implementation", "dtype") else "right")
    by_case = {("ours", r["model"], r["backend"], r["dtype"]): r for r in results}
    by_case.update({(r["peer"], r["model"], "", r["dtype"]): r for r in peer_results})
    for case in cases:
        kind, name, b, d = case
        r, ck = by_case[case], checks[case]
        if kind == "ours":
            base = best.get(("ours", name, backends[0], dtypes[0]))
            impl, vs_np, ratio = f"gpu_hedge {b}", f"{base / best[case]:.2f}x" if base else "-", ""
        else:
            impl, vs_np = r["label"], ""
            rt, rm = r["ratio_ours_over_peer"], r["ratio_ours_over_peer_median"]
            ratio = "-" if rt is None else f"{rt:.2f}x / {rm:.2f}x ({r['ours_best']['implementation'].removeprefix('gpu_hedge ')})"
        sd_txt = "-" if "sd_log_ST" not in ck else f"{ck['sd_log_ST']:.4f}"
        if ck.get("exact_sd_log_ST") is not None and "sd_log_ST" in ck:
            sd_txt += f" ({ck['exact_sd_log_ST']:.4f}, z {fz(ck['z_sd_log_ST'])})"
        pk = peak[case]
        pk_txt = "-" if pk is None else (f"{pk:.1f}" if pk < 10 else f"{pk:.0f}")
        table.add_row(name, impl, d, f"{best[case]:.3f}", f"{rate[case] / 1e6:.1f}", vs_np, ratio, pk_txt,
                      fz(ck.get("z_mean_ST")), fz(ck.get("z_mean_log_ST")), sd_txt, f"{first[case]:.3f}")  # fmt: skip
    console.print(table)
    for name, why in skipped.items():
        console.print(f"{name} skipped: {escape(why)}")
    bad = [f"{c[0] if c[0] != 'ours' else 'gpu_hedge ' + c[2]} {c[1]} {c[3]}" for c in cases if not checks[c].get("ok")]
    if bad:
        console.print(f"[red]terminal-spot check |z| > {Z_FLAG:g} (or non-finite): {'; '.join(bad)}[/red]")

    vers = versions()
    if "pfhedge" in peers:
        vers.update({"pfhedge": dist_version("pfhedge"), "torch": dist_version("torch")})
    data = {
        "benchmark": "simulation",
        "date": now_iso(),
        "command": " ".join(sys.argv),
        "machine": describe_machine(tuple(backends)),
        "versions": vers,
        "settings": {
            "n_paths": n_paths,
            "n_steps": n_steps,
            "repeat": args.repeat,
            "horizon": HORIZON,
            "seed": SEED,
            "models": {k: {"class": type(m).__name__, "scheme": s, **dataclasses.asdict(m)} for k, (m, s) in MODELS.items()},
            "peers": peers,
            "peers_skipped": skipped,
            **torch_info,
            "peer_conventions": {k: PEER_CONVENTIONS[k] for k in peers},
            "ratio": "ours / peer = the fastest gpu_hedge backend's path-steps/s for the peer's model and dtype / the peer's, same run",
            "peak_memory": {"field": "peak_extra_mb (MB), null where not measured", **mem_info},
            "check": f"terminal spot across paths vs closed forms (see exact_* fields): z = (sample - exact) / standard error; "
            f"ok when every |z| <= {Z_FLAG:g}; computed on the warm-up round's output, untimed",
        },
        "results": results,
        "peers": peer_results,
    }
    console.print(f"wrote {write_json(args.out, data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
