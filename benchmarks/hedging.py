"""Delta-hedging throughput and memory: gpu_hedge.hedge per backend against a plain NumPy loop and pfhedge.

    python benchmarks/hedging.py [--paths 1e5] [--steps 252] [--quick] [--backends numpy,jax]
                                 [--repeat 3] [--seed 2026] [--no-pfhedge]
                                 [--out benchmarks/results/hedging-<device>.json]

Workload: a short European call (S0 = K = 100, vol 0.2, 1 year, rate 0), GBM paths, Black-Scholes
delta hedge at every step, proportional cost 1 bp of the traded notional; float64 everywhere.

Every implementation runs in a fresh subprocess (``--worker NAME``), so each has its own peak RSS:
``getrusage(RUSAGE_SELF).ru_maxrss`` over the whole worker (warm-up included) minus the RSS after its
imports (and, separately, the absolute value); read as VmHWM, since Linux carries
``ru_maxrss`` over fork + exec (a worker's would start at the driver's RSS). One warm-up run (JAX compiles there), then the best
of ``--repeat``. Implementations:

- ``gpu_hedge <backend>``: two timings. "hedge only": ``gh.hedge`` on paths pre-simulated with
  ``gh.simulate`` on the same backend (the simulation is not timed, but the paths, 8 B x paths x
  (steps + 1), are held in memory and count in the peak). "simulate + hedge": both, end to end
  (its peak is taken separately with VmHWM after ``clear_refs``).
- ``gpu_hedge <backend>``, "simulate + hedge, streamed" (worker ``streamed-<backend>``):
  ``gh.hedge_simulated``, which simulates each block of paths as it hedges it and never stores the
  path matrix; its own worker, so its peak is the whole worker's VmHWM (warm-up included) minus the
  RSS after imports. The driver checks its per-path P&L against ``gh.hedge`` on ``gh.simulate``
  paths of the same backend and seed: identical (difference 0) on NumPy, reported on JAX.
- ``plain numpy loop``: what a user writes (vectorised over paths, a Python loop over the dates,
  ``scipy.special.ndtr`` for delta), with gh.hedge's ledger exactly: premium received at t0,
  each trade paid at the price plus its cost, payoff at maturity, the hedge unwound at the last
  price with its cost. It runs on the same seed's ``gh.simulate`` NumPy paths as ``gpu_hedge
  numpy``; the driver asserts their per-path P&Ls agree to 1e-10 (the plain peer is the
  independent check of the engine).
- ``pfhedge`` (CPU torch, ``torch.set_default_dtype(float64)``): ``EuropeanOption(BrownianStock)``,
  ``Hedger(BlackScholes(derivative))``, ``compute_pl``; its own paths. pfhedge's P&L excludes the
  premium and charges no cost at maturity (no unwind); "hedge only" is ``compute_pl`` on simulated
  paths, "simulate + hedge" adds ``derivative.simulate``. Its mean/std are reported raw and after
  adding the premium and subtracting the unwind cost gh.hedge charges; the worker also runs
  gh.hedge on pfhedge's own paths (after its measurements) and reports the per-path difference.

Path-steps per second = paths x steps / best seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, peak_rss_mb, reset_peak_rss, rss_mb, versions, write_json  # noqa: E402

SPOT, STRIKE, VOL, MATURITY, RATE, COST = 100.0, 100.0, 0.2, 1.0, 0.0, 1e-4
PLAIN = "plain numpy loop"
CHECK_TOL = 1e-10


def maxrss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM (Linux; since exec or the last ``reset_peak_rss``), else
    ``getrusage(RUSAGE_SELF).ru_maxrss``. Linux keeps ``ru_maxrss`` across fork + exec, so a worker's
    ``ru_maxrss`` starts at the driver's RSS; VmHWM belongs to the worker's own address space."""
    return peak_rss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pnl_stats(pnl: Any) -> dict[str, float]:
    import numpy as np

    pnl = np.asarray(pnl, dtype=np.float64)
    return {"mean": float(pnl.mean()), "std": float(pnl.std(ddof=1)), "stderr_mean": float(pnl.std(ddof=1) / math.sqrt(pnl.size))}


# --- gpu_hedge -------------------------------------------------------------------------------------


def _gh_args():
    import gpu_hedge as gh

    return gh.Option(STRIKE, MATURITY, call=True, quantity=-1.0), gh.Periodic(), gh.Costs(proportional=COST)


def _start_backend(name: str) -> tuple[Any, float]:
    """The backend with its device / runtime started (NumPy: Numba's kernels loaded), and the
    seconds that took: done before a worker takes its memory baseline."""
    import numpy as np

    import gpu_hedge as gh

    bk = gh.get_backend(name)
    t0 = time.perf_counter()
    bk.sync(bk.special.ndtr(bk.asarray(np.zeros(4))))
    return bk, time.perf_counter() - t0


def worker_gpu_hedge(backend: str, n_paths: int, n_steps: int, repeat: int, seed: int, pnl_path: str) -> dict[str, Any]:
    import numpy as np

    import gpu_hedge as gh

    bk, t_init = _start_backend(backend)
    rss_import, maxrss_import = rss_mb(), maxrss_mb()
    option, strategy, costs = _gh_args()
    model = gh.GBM(SPOT, VOL, rate=RATE)

    def sim():
        p = gh.simulate(model, n_paths=n_paths, n_steps=n_steps, horizon=MATURITY, seed=seed, backend=bk, dtype="float64")
        bk.sync(p.spot)
        return p

    def hedge(p):
        # HedgeResult's arrays are host NumPy arrays: the result is synchronised when it returns
        return gh.hedge(p.spot, p.times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs, backend=bk, dtype="float64")

    paths = sim()
    rss_paths = rss_mb()
    paths_mb = n_paths * (n_steps + 1) * 8 / 2**20
    t0 = time.perf_counter()
    res = hedge(paths)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = hedge(paths)
        times.append(time.perf_counter() - t0)
    peak_hedge = maxrss_mb()
    np.save(pnl_path, res.pnl)
    out: dict[str, Any] = {
        "implementation": f"gpu_hedge {bk.name}", "backend": bk.name, "device": bk.device,
        "hedge_only": {"times_s": times, "best_s": min(times), "first_call_s": first,
                       "peak_rss_mb": peak_hedge, "peak_extra_mb": peak_hedge - rss_import,
                       "peak_extra_over_paths_mb": peak_hedge - rss_paths},
        "rss_after_imports_mb": rss_import, "maxrss_after_imports_mb": maxrss_import, "ru_maxrss_end_mb": ru_maxrss_mb(),
        "runtime_init_s": t_init,
        "rss_after_paths_mb": rss_paths, "paths_nominal_mb": paths_mb,
        "pnl": _pnl_stats(res.pnl), "mean_cost": float(res.costs.mean()), "premium": float(res.premium[0]),
        "paths_checksum": float(np.sum(np.asarray(gh.to_numpy(paths.spot[-1]), dtype=np.float64))),
    }  # fmt: skip
    del paths, res
    gc.collect()
    # end to end: simulate + hedge (one warm-up for the simulation's compilation, then best of repeat)
    reset_ok = reset_peak_rss()
    rss0 = rss_mb()
    t0 = time.perf_counter()
    hedge(sim())
    first_e2e = time.perf_counter() - t0
    times_e2e = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        hedge(sim())
        times_e2e.append(time.perf_counter() - t0)
    peak_e2e = peak_rss_mb() if reset_ok else maxrss_mb()
    out["end_to_end"] = {"times_s": times_e2e, "best_s": min(times_e2e), "first_call_s": first_e2e,
                         "peak_rss_mb": peak_e2e, "peak_extra_mb": peak_e2e - rss_import,
                         "peak_method": "VmHWM after clear_refs" if reset_ok else "VmHWM (whole worker)",
                         "rss_before_mb": rss0}  # fmt: skip
    if bk.name != "numpy":
        # after the measurements: this backend's hedge on the NumPy backend's paths (same seed), for the cross-check
        pn = gh.simulate(model, n_paths=n_paths, n_steps=n_steps, horizon=MATURITY, seed=seed, backend="numpy")
        g = gh.hedge(pn.spot, pn.times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs, backend=bk, dtype="float64")
        np.save(pnl_path.replace(".npy", "-on-numpy-paths.npy"), g.pnl)
    if bk.name == "numpy":
        from cpu_fallback import default_chunk, default_threads

        out["threads"], out["chunk"] = default_threads(), default_chunk()
    return out


def rss_split_mb() -> dict[str, float]:
    """RssAnon (the process's own memory) and RssFile (mapped files: shared library code such as
    LLVM's, shared between processes and reclaimable) now, in MB (Linux; {} elsewhere)."""
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile", "RssShmem"):
                out[key] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def worker_streamed(backend: str, n_paths: int, n_steps: int, repeat: int, seed: int, pnl_path: str) -> dict[str, Any]:
    """``gh.hedge_simulated``: simulate + hedge in one pass, the path matrix never stored. Its own process,
    so its peak (VmHWM over the whole worker, warm-up included) holds nothing but this entry point's."""
    import numpy as np

    import gpu_hedge as gh

    bk, t_init = _start_backend(backend)
    rss_import, maxrss_import = rss_mb(), maxrss_mb()
    option, strategy, costs = _gh_args()
    model = gh.GBM(SPOT, VOL, rate=RATE)

    def run():
        return gh.hedge_simulated(model, option, n_paths=n_paths, n_steps=n_steps, horizon=MATURITY, seed=seed, vol=VOL,
                                  strategy=strategy, costs=costs, backend=bk, dtype="float64")  # fmt: skip

    t0 = time.perf_counter()
    res = run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t0)
    peak = maxrss_mb()
    np.save(pnl_path, res.pnl)
    out: dict[str, Any] = {
        "implementation": f"gpu_hedge {bk.name}", "api": "hedge_simulated", "backend": bk.name, "device": bk.device,
        "streamed": {"times_s": times, "best_s": min(times), "first_call_s": first, "peak_rss_mb": peak,
                     "peak_extra_mb": peak - rss_import, "peak_method": "VmHWM (whole worker)"},
        "rss_after_imports_mb": rss_import, "maxrss_after_imports_mb": maxrss_import, "ru_maxrss_end_mb": ru_maxrss_mb(),
        "runtime_init_s": t_init, "rss_split_end_mb": rss_split_mb(),
        "pnl": _pnl_stats(res.pnl), "mean_cost": float(res.costs.mean()), "premium": float(res.premium[0]),
    }  # fmt: skip
    if bk.name == "numpy":
        from cpu_fallback import default_chunk, default_threads

        out["threads"], out["chunk"] = default_threads(), default_chunk()
    return out


STREAMED = "streamed-"  # worker name prefix: f"streamed-{backend}"


# --- the plain NumPy peer ----------------------------------------------------------------------------


def plain_hedge(spot, times, strike: float, expiry: float, vol: float, cost: float):
    """Short one call, delta-hedged at every date but the last, rate 0, proportional costs; per-path
    final cash. ``spot``: (n_times, n_paths). The ledger of gh.hedge: premium in at t0, every trade
    paid at the price plus ``cost x |trade| x price``, payoff out at expiry, hedge unwound (with its
    cost) at the last price."""
    import numpy as np
    from scipy.special import ndtr

    n_times = spot.shape[0]
    s0 = spot[0]
    tau = expiry - times[0]
    sd = vol * math.sqrt(tau)
    d1 = (np.log(s0 / strike) + 0.5 * vol * vol * tau) / sd
    cash = s0 * ndtr(d1) - strike * ndtr(d1 - sd)  # premium received for the short call
    holding = np.zeros_like(s0)
    for k in range(n_times - 1):
        s = spot[k]
        tau = expiry - times[k]
        sd = vol * math.sqrt(tau)
        delta = ndtr((np.log(s / strike) + 0.5 * vol * vol * tau) / sd)
        trade = delta - holding
        cash -= trade * s + cost * np.abs(trade) * s
        holding = delta
    s = spot[-1]
    cash -= np.maximum(s - strike, 0.0)
    cash += holding * s - cost * np.abs(holding) * s
    return cash


def worker_plain(n_paths: int, n_steps: int, repeat: int, seed: int, pnl_path: str) -> dict[str, Any]:
    import numpy as np

    import gpu_hedge as gh

    rss_import, maxrss_import = rss_mb(), maxrss_mb()
    p = gh.simulate(gh.GBM(SPOT, VOL, rate=RATE), n_paths=n_paths, n_steps=n_steps, horizon=MATURITY, seed=seed, backend="numpy")
    spot, times = np.ascontiguousarray(p.spot), np.asarray(p.times, dtype=np.float64)
    del p
    rss_paths = rss_mb()
    t0 = time.perf_counter()
    pnl = plain_hedge(spot, times, STRIKE, MATURITY, VOL, COST)
    first = time.perf_counter() - t0
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        pnl = plain_hedge(spot, times, STRIKE, MATURITY, VOL, COST)
        ts.append(time.perf_counter() - t0)
    peak = maxrss_mb()
    np.save(pnl_path, pnl)
    return {
        "implementation": PLAIN, "backend": None, "device": "cpu (host), 1 thread",
        "hedge_only": {"times_s": ts, "best_s": min(ts), "first_call_s": first, "peak_rss_mb": peak,
                       "peak_extra_mb": peak - rss_import, "peak_extra_over_paths_mb": peak - rss_paths},
        "rss_after_imports_mb": rss_import, "maxrss_after_imports_mb": maxrss_import, "ru_maxrss_end_mb": ru_maxrss_mb(),
        "rss_after_paths_mb": rss_paths,
        "pnl": _pnl_stats(pnl), "paths_checksum": float(np.sum(spot[-1])),
    }  # fmt: skip


# --- pfhedge -------------------------------------------------------------------------------------------


def worker_pfhedge(n_paths: int, n_steps: int, repeat: int, seed: int, pnl_path: str) -> dict[str, Any]:
    import numpy as np
    import pfhedge
    import torch
    from pfhedge.instruments import BrownianStock, EuropeanOption
    from pfhedge.nn import BlackScholes, Hedger

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(seed)
    rss_import, maxrss_import = rss_mb(), maxrss_mb()
    stock = BrownianStock(sigma=VOL, mu=0.0, cost=COST, dt=MATURITY / n_steps)
    derivative = EuropeanOption(stock, call=True, strike=STRIKE, maturity=MATURITY)
    model = BlackScholes(derivative)
    hedger = Hedger(model, model.inputs())

    def sim():
        derivative.simulate(n_paths=n_paths, init_state=(SPOT,))

    def pl():
        return hedger.compute_pl(derivative)

    ts_sim, ts_pl = [], []
    first = None
    with torch.no_grad():
        for rnd in range(repeat + 1):
            t0 = time.perf_counter()
            sim()
            t1 = time.perf_counter()
            out = pl()
            t2 = time.perf_counter()
            if rnd == 0:
                first = t2 - t0
            else:
                ts_sim.append(t1 - t0)
                ts_pl.append(t2 - t1)
        peak = maxrss_mb()
        spot = derivative.ul().spot  # (n_paths, n_steps + 1)
        if spot.shape != (n_paths, n_steps + 1):
            raise RuntimeError(f"pfhedge simulated {tuple(spot.shape)}, expected {(n_paths, n_steps + 1)} (dt rounding)")
        unit = hedger.compute_hedge(derivative)[:, 0, :]
        unwind = (COST * unit[:, -1].abs() * spot[:, -1]).numpy()
        premium = float(model.price(log_moneyness=derivative.log_moneyness(0), time_to_maturity=derivative.time_to_maturity(0),
                                    volatility=derivative.ul().volatility[:, [0]])[0, 0])  # fmt: skip
        pl_raw = out.numpy().copy()
        spot_np = spot.numpy().T.copy()
    adjusted = pl_raw + premium - unwind
    np.save(pnl_path, adjusted)
    e2e = [a + b for a, b in zip(ts_sim, ts_pl, strict=True)]
    res: dict[str, Any] = {
        "implementation": "pfhedge", "backend": "torch cpu", "device": f"cpu, {torch.get_num_threads()} torch threads",
        "versions": {"pfhedge": pfhedge.__version__, "torch": torch.__version__},
        "hedge_only": {"times_s": ts_pl, "best_s": min(ts_pl), "first_call_s": None, "peak_rss_mb": peak,
                       "peak_extra_mb": peak - rss_import},
        "end_to_end": {"times_s": e2e, "best_s": min(e2e), "first_call_s": first, "peak_rss_mb": peak,
                       "peak_extra_mb": peak - rss_import, "peak_method": "VmHWM (whole worker)"},
        "rss_after_imports_mb": rss_import, "maxrss_after_imports_mb": maxrss_import, "ru_maxrss_end_mb": ru_maxrss_mb(),
        "premium": premium, "pnl_raw": _pnl_stats(pl_raw), "pnl": _pnl_stats(adjusted),
        "pnl_plus_premium": _pnl_stats(pl_raw + premium), "mean_unwind_cost": float(unwind.mean()),
        "pnl_note": "pnl = compute_pl + BS premium - cost x |final hedge| x S_T (the unwind cost gh.hedge charges); "
                    "pnl_raw = compute_pl as pfhedge returns it (no premium, no unwind cost)",
    }  # fmt: skip
    # after the measurements: gh.hedge on pfhedge's own paths, per path
    import gpu_hedge as gh

    option, strategy, costs = _gh_args()
    times = np.arange(n_steps + 1) * (MATURITY / n_steps)
    g = gh.hedge(spot_np, times, option, vol=VOL, rate=RATE, strategy=strategy, costs=costs, backend="numpy")
    res["gh_on_pfhedge_paths_max_abs_diff"] = float(np.max(np.abs(g.pnl - adjusted)))
    return res


WORKERS = {"plain": worker_plain, "pfhedge": worker_pfhedge}
MODE_LABEL = {"hedge_only": "hedge only", "end_to_end": "simulate + hedge", "streamed": "simulate + hedge, streamed"}


# --- driver ---------------------------------------------------------------------------------------------


def spawn(name: str, args: argparse.Namespace, n_paths: int, pnl_path: str) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--paths", str(n_paths), "--steps", str(args.steps),
           "--repeat", str(args.repeat), "--seed", str(args.seed), "--pnl-file", pnl_path]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        return {"implementation": name, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_tag(results: list[dict[str, Any]], backends: list[str]) -> str:
    from _common import gpu_names

    gpus = gpu_names(tuple(backends))
    return "gpu-" + gpus[0].lower().replace(" ", "-") if gpus else "cpu"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--paths", type=float, default=1e5)
    p.add_argument("--steps", type=int, default=252)
    p.add_argument("--quick", action="store_true", help="1e4 paths (CI-speed smoke run)")
    p.add_argument("--backends", default=None, help="gpu_hedge backends (default: all available)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per worker (its best counts)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of all workers (the median of their bests is reported)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--no-pfhedge", action="store_true")
    p.add_argument("--out", default=None, help="default benchmarks/results/hedging-<device>.json")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--pnl-file", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    n_paths = 10_000 if args.quick else int(args.paths)

    if args.worker:
        if args.worker in WORKERS:
            out = WORKERS[args.worker](n_paths, args.steps, args.repeat, args.seed, args.pnl_file)
        elif args.worker.startswith(STREAMED):
            out = worker_streamed(args.worker[len(STREAMED) :], n_paths, args.steps, args.repeat, args.seed, args.pnl_file)
        else:
            out = worker_gpu_hedge(args.worker, n_paths, args.steps, args.repeat, args.seed, args.pnl_file)
        print(json.dumps(out))
        return 0

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    import gpu_hedge

    console = Console()
    if not console.is_terminal:
        console = Console(width=170)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(gpu_hedge.available_backends())
    names = [n for b in backends for n in (b, STREAMED + b)] + ["plain"] + ([] if args.no_pfhedge else ["pfhedge"])
    tmp = tempfile.mkdtemp(prefix="gh-hedging-bench-")
    results: dict[str, dict[str, Any]] = {}
    # rounds interleave the implementations (A B C, A B C, ...), so a slow spell of a shared machine
    # hits every one of them; each timing reported is the median over rounds of a round's best
    rounds: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for rnd in range(args.rounds):
        for name in names:
            if rounds[name] and "error" in rounds[name][-1]:
                continue
            console.log(f"round {rnd + 1}/{args.rounds}, worker {name}: {n_paths:,} paths x {args.steps} steps")
            rounds[name].append(spawn(name, args, n_paths, os.path.join(tmp, f"{name}.npy")))
            if "error" in rounds[name][-1]:
                console.log(f"[red]worker {name} failed: {rounds[name][-1]['error']}")
    for name, runs in rounds.items():
        results[name] = runs[-1]
        for mode in ("hedge_only", "end_to_end", "streamed"):
            if "error" not in runs[-1] and mode in runs[-1]:
                per_round = [r[mode]["best_s"] for r in runs]
                results[name][mode]["best_s_per_round"] = per_round
                results[name][mode]["best_s"] = float(np.median(per_round))
                results[name][mode]["peak_rss_mb"] = max(r[mode]["peak_rss_mb"] for r in runs)
                results[name][mode]["peak_extra_mb"] = max(r[mode]["peak_extra_mb"] for r in runs)
    pnl = {n: np.load(os.path.join(tmp, f"{n}.npy")) for n in names if "error" not in results[n]}

    # correctness: the plain loop against gh.hedge on the same paths (and the JAX backend against NumPy)
    checks: dict[str, Any] = {}
    if "numpy" in pnl and "plain" in pnl:
        same = results["numpy"]["paths_checksum"] == results["plain"]["paths_checksum"]
        d = float(np.max(np.abs(pnl["numpy"] - pnl["plain"])))
        checks["plain_vs_gpu_hedge_numpy_max_abs_diff"] = d
        checks["same_paths"] = same
        if not (same and d <= CHECK_TOL):
            console.print(f"[red]CHECK FAILED: plain loop vs gh.hedge numpy max |diff| = {d:.3e} (same paths: {same})")
    for b in backends:
        other = os.path.join(tmp, f"{b}-on-numpy-paths.npy")
        if b != "numpy" and "numpy" in pnl and os.path.exists(other):
            # the backends draw different paths from one seed: compare on the NumPy backend's paths
            checks[f"gpu_hedge_{b}_vs_numpy_same_paths_max_abs_diff"] = float(np.max(np.abs(np.load(other) - pnl["numpy"])))
    # hedge_simulated against gh.hedge on gh.simulate paths, same backend and seed (exact on NumPy)
    for b in backends:
        if STREAMED + b in pnl and b in pnl:
            checks[f"hedge_simulated_{b}_vs_hedge_on_simulate_max_abs_diff"] = float(np.max(np.abs(pnl[STREAMED + b] - pnl[b])))
    if "pfhedge" in results and "error" not in results["pfhedge"]:
        checks["gh_on_pfhedge_paths_max_abs_diff"] = results["pfhedge"]["gh_on_pfhedge_paths_max_abs_diff"]

    work = n_paths * args.steps
    ok = {n: r for n, r in results.items() if "error" not in r}
    base_pf = {m: ok["pfhedge"][m]["best_s"] for m in ("hedge_only", "end_to_end")} if "pfhedge" in ok else {}
    if "end_to_end" in base_pf:
        base_pf["streamed"] = base_pf["end_to_end"]  # streamed rows are simulate + hedge: against pfhedge's
    base_plain = ok["plain"]["hedge_only"]["best_s"] if "plain" in ok else None
    rows = []
    for r in ok.values():
        for mode in ("hedge_only", "end_to_end", "streamed"):
            if mode not in r:
                continue
            m = r[mode]
            m["path_steps_per_s"] = work / m["best_s"]
            m["speedup_vs_pfhedge"] = base_pf[mode] / m["best_s"] if mode in base_pf else None
            m["speedup_vs_plain"] = base_plain / m["best_s"] if (base_plain and mode == "hedge_only") else None
            rows.append((r["implementation"], mode, m, r))

    table = Table(title=f"Delta hedge of a short call, {n_paths:,} paths x {args.steps} steps, float64, 1 bp cost; median over "
                        f"{args.rounds} interleaved rounds of the best of {args.repeat} after a warm-up; each implementation "
                        "in its own process")  # fmt: skip
    cols = ("implementation", "timed", "best s", "M path-steps/s", "vs pfhedge", "vs plain", "first s", "peak RSS MB",
            "peak - imports MB", "P&L mean", "P&L std")  # fmt: skip
    for c in cols:
        table.add_column(c, justify="left" if c in ("implementation", "timed") else "right")
    for impl, mode, m, r in rows:
        fx = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
        table.add_row(
            impl, MODE_LABEL[mode], f"{m['best_s']:.3f}",
            f"{m['path_steps_per_s'] / 1e6:.1f}", fx(m["speedup_vs_pfhedge"]), fx(m["speedup_vs_plain"]),
            "-" if m.get("first_call_s") is None else f"{m['first_call_s']:.2f}", f"{m['peak_rss_mb']:.0f}",
            f"{m['peak_extra_mb']:.0f}", f"{r['pnl']['mean']:+.5f}", f"{r['pnl']['std']:.5f}",
        )  # fmt: skip
    console.print(table)
    paths_mb = n_paths * (args.steps + 1) * 8 / 2**20
    lines = [
        f"'hedge only' for gpu_hedge and the plain loop: paths pre-simulated with gh.simulate (not timed) and held in memory "
        f"({paths_mb:.0f} MB), which the peak includes; 'peak - imports' = peak RSS (VmHWM) - RSS after the worker's imports. "
        "'simulate + hedge' peak for gpu_hedge: VmHWM over those runs only. 'simulate + hedge, streamed': gh.hedge_simulated "
        "(paths simulated block by block as they are hedged, never stored), in its own worker: VmHWM over the whole worker "
        "(warm-up included); its 'vs pfhedge' is against pfhedge's simulate + hedge. pfhedge: one VmHWM for the whole worker.",
        "P&L includes the premium received and the unwind cost for every row; pfhedge's compute_pl (no premium, no cost at "
        "maturity) is adjusted: + premium - cost x |final hedge| x S_T.",
    ]
    if "pfhedge" in ok:
        pf = ok["pfhedge"]
        lines.append(f"pfhedge raw compute_pl: mean {pf['pnl_raw']['mean']:+.5f}, std {pf['pnl_raw']['std']:.5f}; + premium "
                     f"{pf['premium']:.6f}: mean {pf['pnl_plus_premium']['mean']:+.5f}; mean unwind cost {pf['mean_unwind_cost']:.5f}; "
                     f"{pf['device']}.")  # fmt: skip
    if "numpy" in ok and "threads" in ok["numpy"]:
        np_ = ok["numpy"]
        lines.append(f"gpu_hedge numpy backend: {np_['threads']} threads, chunk {np_['chunk']}; the plain loop is single-threaded.")
    lines.append("checks (max |per-path P&L difference|): " + ", ".join(f"{k} = {v:.2e}" if isinstance(v, float) else f"{k} = {v}"
                                                                         for k, v in checks.items()))  # fmt: skip
    for line in lines:
        console.print(line)

    tag = device_tag(list(ok.values()), backends)
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"hedging-{tag}.json"
    data = {
        "benchmark": "hedging",
        "date": now_iso(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "device": tag,
        "machine": describe_machine(tuple(backends)),
        "versions": versions(),
        "settings": {
            "n_paths": n_paths,
            "n_steps": args.steps,
            "repeat": args.repeat,
            "rounds": args.rounds,
            "seed": args.seed,
            "dtype": "float64",
            "workload": {
                "option": "short 1 European call",
                "spot": SPOT,
                "strike": STRIKE,
                "vol": VOL,
                "maturity": MATURITY,
                "rate": RATE,
                "model": "GBM",
                "strategy": "Periodic (BS delta every step)",
                "costs": f"proportional {COST:g} of traded notional",
            },
            "env": {
                k: os.environ.get(k)
                for k in ("GPU_HEDGE_NUM_THREADS", "GPU_HEDGE_CHUNK", "GPU_HEDGE_NUMBA", "OMP_NUM_THREADS", "XLA_FLAGS")
            },
            "notes": lines[:2],
        },
        "checks": checks,
        "results": list(results.values()),
    }
    console.print(f"wrote {write_json(out, data)}")
    failed = "plain_vs_gpu_hedge_numpy_max_abs_diff" in checks and not (
        checks["same_paths"] and checks["plain_vs_gpu_hedge_numpy_max_abs_diff"] <= CHECK_TOL
    )
    stream_np = checks.get("hedge_simulated_numpy_vs_hedge_on_simulate_max_abs_diff")
    if stream_np is not None and stream_np != 0.0:
        console.print(f"[red]CHECK FAILED: hedge_simulated numpy vs gh.hedge on gh.simulate max |diff| = {stream_np:.3e} (want 0)")
        failed = True
    return 1 if failed or any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
