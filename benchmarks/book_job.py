"""The book risk job end to end: Parquet in, Greeks + aggregates by underlying + the 9 x 5 ladder, Parquet out.

    python benchmarks/book_job.py [--sizes 1e6,1e7] [--quick] [--no-peers] [--backends numpy,jax]
                                  [--peer-timeout 300] [--seed 0] [--american 0.3]
                                  [--out benchmarks/results/book_job-<device>.json]

``--american F``: each row American with probability F (an ``exercise`` column; the peers, which
price European options only, are skipped), for the issue-16 comparison with the all-European job.

The book (``gh.generate_book(n, seed)``, 50 underlyings, valuation date 2026-01-02) is written
beforehand with ``gh.write_book`` as ``book.parquet`` + ``market.csv`` (not timed). Each
implementation then runs in a fresh subprocess (``--worker NAME``): imports, one warm-up job on a
2,000-row book (numba / JAX initialisation; not timed), then the timed job on the full book, once.
The clock covers everything a batch job does: reading the Parquet book and the market CSV, joining
market data, validation (gpu_hedge), per-position price + delta, gamma, vega, theta, rho, sums by
underlying, the full-revaluation ladder (``Scenarios.default()``: spot -20 %..+20 % by 5 % x vol
-10..+10 points by 5, 45 scenarios, shocked vols floored at 0), and writing ``positions.parquet``,
``by_underlying.parquet`` and ``ladder.parquet``. For JAX the timed job includes compiling the
kernels for the partition shape (2^20 rows), as a batch run pays it once per process.

Peak RSS: VmHWM of the worker, reset (``clear_refs`` 5) just before the timed job, so it is the
largest resident size of the whole process (interpreter and libraries included) during the job.

Implementations:

- ``gpu_hedge <backend>``: ``gh.risk(book.parquet, market.csv, scenarios=Scenarios.default(),
  valuation_date=..., backend=..., out=DIR)`` (partitions of 1e6 rows; positions streamed to disk).
- ``pandas + py_vollib_vectorized``: what a user writes with that package: ``pd.read_parquet``,
  merge the market data, ``vectorized_black_scholes_merton`` for the price and ``get_all_greeks``
  (model ``black_scholes_merton``) for the Greeks, converted to gh's units (its vega and rho are per
  1 %: x 100; its theta is the one-day change: x 365), groupby sums, the ladder by 45 full
  revaluations with ``vectorized_black_scholes_merton`` and groupby sums, ``to_parquet``.
  Its Greeks are finite differences (delta and gamma with dS = 0.01, vega +-1 vol point, theta a
  one-day step), so its per-underlying delta agrees with the closed form only to their truncation
  error; its ladder (prices only) is the like-for-like check.
- ``plain numpy+scipy``: pandas read and merge, closed forms with ``scipy.special.ndtr``
  (``greeks.py``'s ``plain_bsm``), ``np.bincount`` by underlying code, 45 full revaluations,
  ``to_parquet``. Single-threaded whole-array NumPy.

A peer that runs longer than ``--peer-timeout`` seconds at a size is stopped and reported as such;
nothing is extrapolated. Correctness: every implementation's by-underlying delta and ladder P&L are
compared with ``gpu_hedge numpy``'s (same size), as max |a - b| / max(|b|, 1e-10 x max|b|).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, peak_rss_mb, reset_peak_rss, rss_mb, versions, write_json  # noqa: E402

VALUATION_DATE = "2026-01-02"
N_UNDERLYINGS = 50
WARMUP_ROWS = 2_000
PVV = "pandas + py_vollib_vectorized"
PLAIN = "plain numpy+scipy"
PEERS = (PVV, PLAIN)
REL_FLOOR = 1e-10
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho")


# --- the user-written peers ------------------------------------------------------------------------


def _read_join(book_path: str, market_path: str):
    """pandas read of the book and market data, market joined on, years to expiry (ACT/365)."""
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(book_path)
    mkt = pd.read_csv(market_path).rename(columns={"vol": "market_vol"})
    df["underlying"] = df["underlying"].astype(str)
    df = df.merge(mkt, on="underlying", how="left")
    tau = (pd.to_datetime(df["expiry"]) - pd.Timestamp(VALUATION_DATE)).dt.days.to_numpy(dtype=np.float64) / 365.0
    sigma = df["vol"].fillna(df["market_vol"]).to_numpy(dtype=np.float64)
    w = (df["quantity"] * df["multiplier"]).to_numpy(dtype=np.float64)
    return df, mkt, tau, sigma, w


def _finish(out: Path, df, mkt, greeks: dict, w, ladder_rows: list, by) -> None:
    """Positions, by-underlying and ladder tables written as Parquet (zstd, like gh.risk)."""
    import pandas as pd

    positions = pd.DataFrame({"position_id": df["position_id"].astype(str), "underlying": df["underlying"], **greeks,
                              "value": greeks["price"] * w,
                              **{f"position_{g}": greeks[g] * w for g in GREEKS[1:]}})  # fmt: skip
    positions.to_parquet(out / "positions.parquet", compression="zstd", index=False)
    spot = mkt.set_index("underlying")["spot"].reindex(by.index)
    by.insert(1, "spot", spot)
    by["dollar_delta"] = by["delta"] * by["spot"]
    by["dollar_gamma_1pct"] = by["gamma"] * by["spot"] ** 2 / 100.0
    by["vega_per_point"] = by["vega"] / 100.0
    by["theta_per_day"] = by["theta"] / 365.0
    by.reset_index().to_parquet(out / "by_underlying.parquet", compression="zstd", index=False)
    pd.concat(ladder_rows, ignore_index=True).to_parquet(out / "ladder.parquet", compression="zstd", index=False)


def job_pvv(book_path: str, market_path: str, out: Path, pairs: list[tuple[float, float]], pvv: Any) -> None:
    import numpy as np
    import pandas as pd

    df, mkt, tau, sigma, w = _read_join(book_path, market_path)
    flag = df["option_type"].astype(str).str.lower().to_numpy()  # 'c' / 'p'
    S, K = df["spot"].to_numpy(dtype=np.float64), df["strike"].to_numpy(dtype=np.float64)
    r, q = df["rate"].to_numpy(dtype=np.float64), df["div"].to_numpy(dtype=np.float64)
    price = pvv.vectorized_black_scholes_merton(flag, S, K, tau, r, sigma, q, return_as="numpy")
    g = pvv.get_all_greeks(flag, S, K, tau, r, sigma, q, model="black_scholes_merton", return_as="dict")
    greeks = {"price": np.asarray(price), "delta": np.asarray(g["delta"]), "gamma": np.asarray(g["gamma"]),
              "vega": np.asarray(g["vega"]) * 100.0,  # per 1 % -> per 1.00
              "theta": np.asarray(g["theta"]) * 365.0,  # one-day change -> per year
              "rho": np.asarray(g["rho"]) * 100.0}  # fmt: skip
    sums = pd.DataFrame({"value": greeks["price"] * w, **{k: greeks[k] * w for k in GREEKS[1:]}})
    grp = sums.groupby(df["underlying"].to_numpy(), sort=True)
    by = grp.sum()
    by.insert(0, "positions", grp.size())
    by.index.name = "underlying"
    ladder_rows = []
    for ds, dv in pairs:
        p = pvv.vectorized_black_scholes_merton(flag, S * (1.0 + ds), K, tau, r, np.maximum(sigma + dv, 0.0), q, return_as="numpy")
        pnl = pd.Series((np.asarray(p) - greeks["price"]) * w).groupby(df["underlying"].to_numpy(), sort=True).sum()
        ladder_rows.append(pd.DataFrame({"underlying": pnl.index, "spot_shock": ds, "vol_shock": dv, "pnl": pnl.to_numpy()}))
    _finish(out, df, mkt, greeks, w, ladder_rows, by)


def job_plain(book_path: str, market_path: str, out: Path, pairs: list[tuple[float, float]]) -> None:
    import numpy as np
    import pandas as pd
    from greeks import plain_bsm  # the whole-array closed forms a user writes (benchmarks/greeks.py)
    from scipy.special import ndtr

    df, mkt, tau, sigma, w = _read_join(book_path, market_path)
    call = df["option_type"].astype(str).str.upper().to_numpy() == "C"
    S, K = df["spot"].to_numpy(dtype=np.float64), df["strike"].to_numpy(dtype=np.float64)
    r, q = df["rate"].to_numpy(dtype=np.float64), df["div"].to_numpy(dtype=np.float64)
    names = mkt["underlying"].to_numpy()
    codes = pd.Categorical(df["underlying"], categories=names).codes
    n_u = len(names)
    greeks = plain_bsm(S, K, tau, sigma, r, q, call)
    sums = {"positions": np.bincount(codes, minlength=n_u), "value": np.bincount(codes, greeks["price"] * w, n_u),
            **{k: np.bincount(codes, greeks[k] * w, n_u) for k in GREEKS[1:]}}  # fmt: skip
    by = pd.DataFrame(sums, index=pd.Index(names, name="underlying"))
    held = sums["positions"] > 0
    by = by[held]

    def bsm_price(s, v):
        sign = np.where(call, 1.0, -1.0)
        sv = v * np.sqrt(tau)
        ok = sv > 0
        d1 = (np.log(s / K) + (r - q + 0.5 * v * v) * tau) / np.where(ok, sv, 1.0)
        fwd_s, fwd_k = s * np.exp(-q * tau), K * np.exp(-r * tau)
        p = sign * (fwd_s * ndtr(sign * d1) - fwd_k * ndtr(sign * (d1 - sv)))
        return np.where(ok, p, np.maximum(sign * (fwd_s - fwd_k), 0.0))  # vol floored at 0: discounted intrinsic

    base = bsm_price(S, sigma)
    ladder_rows = []
    for ds, dv in pairs:
        pnl = np.bincount(codes, (bsm_price(S * (1.0 + ds), np.maximum(sigma + dv, 0.0)) - base) * w, n_u)
        ladder_rows.append(pd.DataFrame({"underlying": by.index, "spot_shock": ds, "vol_shock": dv, "pnl": pnl[held]}))
    _finish(out, df, mkt, greeks, w, ladder_rows, by)


# --- the worker ------------------------------------------------------------------------------------


def worker(name: str, book: str, market: str, warm_book: str, warm_market: str, out: str, american_method: str = "alo") -> dict[str, Any]:
    import numpy as np

    import gpu_hedge as gh

    pairs = gh.Scenarios.default().pairs()
    info: dict[str, Any] = {"implementation": name}
    if name.startswith("gpu_hedge "):
        backend = name.split(" ", 1)[1]
        bk = gh.get_backend(backend)
        bk.sync(bk.asarray(np.zeros(4)))
        info.update(backend=bk.name, device=bk.device)

        def job(b: str, m: str, d: Path) -> None:
            gh.risk(
                b, m, scenarios=gh.Scenarios.default(), valuation_date=VALUATION_DATE, backend=bk, out=d, american_method=american_method
            )

        if bk.name == "numpy":
            from cpu_fallback import default_threads

            info["threads"] = default_threads()
    elif name == PVV:
        from _peers import dist_version, load_py_vollib_vectorized

        pvv, why = load_py_vollib_vectorized()
        if pvv is None:
            return {"implementation": name, "skipped": why}
        info.update(backend=None, device="cpu (host), 1 thread", version=dist_version("py_vollib_vectorized"))

        def job(b: str, m: str, d: Path) -> None:
            job_pvv(b, m, d, pairs, pvv)
    elif name == PLAIN:
        info.update(backend=None, device="cpu (host), 1 thread")

        def job(b: str, m: str, d: Path) -> None:
            job_plain(b, m, d, pairs)
    else:
        raise SystemExit(f"unknown worker {name!r}")

    out_dir = Path(out)
    warm = out_dir.parent / (out_dir.name + "-warm")
    warm.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    job(warm_book, warm_market, warm)
    info["warmup_s"] = time.perf_counter() - t0
    shutil.rmtree(warm, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    gc.collect()
    info["rss_before_mb"] = rss_mb()
    info["peak_reset"] = reset_peak_rss()
    t0 = time.perf_counter()
    job(book, market, out_dir)
    info["seconds"] = time.perf_counter() - t0
    info["peak_rss_mb"] = peak_rss_mb()
    return info


# --- driver ----------------------------------------------------------------------------------------


def _rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("inf")
    scale = float(np.abs(b).max()) if b.size else 0.0
    if scale == 0.0:
        return float(np.abs(a - b).max()) if a.size else 0.0
    return float((np.abs(a - b) / np.maximum(np.abs(b), REL_FLOOR * scale)).max())


def compare(out: Path, ref: Path) -> dict[str, float]:
    """Max relative differences of by-underlying delta (and the other sums) and ladder P&L, ``out`` vs ``ref``."""
    import pandas as pd

    a = pd.read_parquet(out / "by_underlying.parquet").set_index("underlying").sort_index()
    b = pd.read_parquet(ref / "by_underlying.parquet").set_index("underlying").sort_index()
    res: dict[str, float] = {}
    if list(a.index) != list(b.index):
        return {"by_underlying_index_mismatch": float("inf")}
    for col in ("value", "delta", "gamma", "vega", "theta", "rho"):
        res[f"by_underlying_{col}"] = _rel(a[col], b[col])
    key = ["underlying", "spot_shock", "vol_shock"]
    la = pd.read_parquet(out / "ladder.parquet").set_index(key).sort_index()
    lb = pd.read_parquet(ref / "ladder.parquet").set_index(key).sort_index()
    if not la.index.equals(lb.index):
        res["ladder_index_mismatch"] = float("inf")
    else:
        res["ladder_pnl"] = _rel(la["pnl"], lb["pnl"])
    return res


def run_worker(
    name: str, n: int, files: dict[str, str], out: Path, timeout: float | None, console, american_method: str = "alo"
) -> dict[str, Any]:
    res_path = out.parent / (out.name + ".json")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--book", files["book"], "--market", files["market"],
           "--warm-book", files["warm_book"], "--warm-market", files["warm_market"],
           "--job-out", str(out), "--result", str(res_path), "--american-method", american_method]  # fmt: skip
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        console.log(f"N = {n:,}: {name}: stopped after {timeout:.0f} s")
        return {"implementation": name, "n": n, "timed_out": True, "timeout_s": timeout}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        console.log(f"N = {n:,}: {name}: worker failed\n{proc.stderr[-3000:]}")
        return {"implementation": name, "n": n, "failed": proc.stderr[-3000:]}
    r = json.loads(res_path.read_text())
    r["n"] = n
    r["worker_wall_s"] = wall
    if "seconds" in r:
        console.log(f"N = {n:,}: {name}: {r['seconds']:.2f} s, peak {r['peak_rss_mb']:.0f} MB")
    else:
        console.log(f"N = {n:,}: {name}: skipped ({r.get('skipped')})")
    return r


def with_exercise(book: Any, fraction: float, seed: int) -> Any:
    """``book`` with an ``exercise`` column, each row American with probability ``fraction`` (seeded);
    unchanged for 0."""
    if fraction <= 0:
        return book
    import numpy as np

    american = np.random.default_rng([seed, 16]).random(len(book)) < fraction
    return book.assign(exercise=np.where(american, "american", "european"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1e6,1e7", help="comma-separated numbers of positions (default 1e6,1e7)")
    p.add_argument("--quick", action="store_true", help="1e5 positions only")
    p.add_argument("--no-peers", action="store_true", help="gpu_hedge backends only")
    p.add_argument("--backends", default=None, help="comma-separated gpu_hedge backends (default: all available)")
    p.add_argument("--peer-timeout", type=float, default=300.0, help="seconds after which a peer is stopped (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--american", type=float, default=0.0,
                   help="fraction of rows with exercise=american (seeded; default 0: no exercise column). Peers are skipped: "
                   "they price European options only")  # fmt: skip
    p.add_argument("--american-method", default="alo", help="ALO scheme of the American rows: alo (default), alo-fast, alo-reference")
    p.add_argument("--workdir", default=None, help="where books and outputs go (default: a temporary directory, removed)")
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/book_job-<device>.json)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    for a in ("--book", "--market", "--warm-book", "--warm-market", "--job-out", "--result"):
        p.add_argument(a, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        r = worker(args.worker, args.book, args.market, args.warm_book, args.warm_market, args.job_out, args.american_method)
        Path(args.result).write_text(json.dumps(r, default=str))
        return 0

    from rich.console import Console
    from rich.table import Table

    import gpu_hedge as gh

    console = Console()
    if not console.is_terminal:
        console = Console(width=150)
    sizes = [100_000] if args.quick else [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(gh.available_backends())
    if not 0.0 <= args.american <= 1.0:
        p.error(f"--american {args.american}: a fraction in [0, 1]")
    impls = [f"gpu_hedge {b}" for b in backends] + ([] if args.no_peers or args.american > 0 else list(PEERS))
    machine = describe_machine(tuple(backends))
    device = "gpu" if machine["gpus"] else "cpu"
    out_json = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"book_job-{device}.json"

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="book_job-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        wb, wm = gh.generate_book(WARMUP_ROWS, N_UNDERLYINGS, seed=args.seed + 1, valuation_date=VALUATION_DATE)
        wb = with_exercise(wb, args.american, args.seed + 1)
        warm_book, warm_market = gh.write_book(wb, wm, work / "warm")
        for n in sizes:
            console.log(f"N = {n:,}: generating and writing the book (not timed)")
            book, market = gh.generate_book(n, N_UNDERLYINGS, seed=args.seed, valuation_date=VALUATION_DATE)
            book = with_exercise(book, args.american, args.seed)
            book_path, market_path = gh.write_book(book, market, work / f"book-{n}")
            del book, market
            gc.collect()
            files = {"book": str(book_path), "market": str(market_path), "warm_book": str(warm_book), "warm_market": str(warm_market)}
            book_mb = book_path.stat().st_size / 2**20
            rec: dict[str, dict[str, Any]] = {}
            ref_dir = None
            for name in impls:
                job_out = work / f"out-{n}-{name.replace(' ', '_').replace('+', '')}"
                r = run_worker(name, n, files, job_out, args.peer_timeout if name in PEERS else None, console, args.american_method)
                r["book_parquet_mb"] = book_mb
                if "seconds" in r:
                    r["positions_per_s"] = n / r["seconds"]
                    r["outputs_mb"] = sum(f.stat().st_size for f in job_out.glob("*.parquet")) / 2**20
                    if name == "gpu_hedge numpy":
                        ref_dir = job_out
                        summ = json.loads((job_out / "summary.json").read_text())
                        r["rows_valid"], r["rows_invalid"] = summ["rows_valid"], summ["rows_invalid"]
                        r["gh_timings"] = summ["timings"]
                    elif ref_dir is not None:
                        r["max_rel_diff_vs_gpu_hedge_numpy"] = compare(job_out, ref_dir)
                rec[name] = r
            for name in impls:  # ratios: this implementation's speed against each peer's, same size
                r = rec[name]
                for peer in PEERS:
                    pr = rec.get(peer, {})
                    if "seconds" in r and "seconds" in pr:
                        r[f"speedup_vs {peer}"] = pr["seconds"] / r["seconds"]
                results.append(r)
            for d in work.glob(f"out-{n}-*"):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()
            shutil.rmtree(work / f"book-{n}", ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    table = Table(title="Book job end to end: Parquet in -> Greeks + by-underlying sums + 9x5 full-revaluation ladder -> Parquet out")
    cols = (
        ["N", "implementation", "seconds", "M positions/s", "peak RSS MB"] + [f"vs {p}" for p in PEERS] + ["max rel diff (delta / ladder)"]
    )
    for c in cols:
        table.add_column(c, justify="left" if c == "implementation" else "right")
    for r in results:
        if "seconds" not in r:
            why = f"stopped after {r['timeout_s']:.0f} s" if r.get("timed_out") else ("skipped" if r.get("skipped") else "failed")
            table.add_row(f"{r['n']:,}", r["implementation"], why, "-", "-", *["-" for _ in PEERS], "-")
            continue
        d = r.get("max_rel_diff_vs_gpu_hedge_numpy")
        inf = float("inf")
        diff = "reference" if d is None else f"{d.get('by_underlying_delta', inf):.1e} / {d.get('ladder_pnl', inf):.1e}"
        table.add_row(
            f"{r['n']:,}", r["implementation"], f"{r['seconds']:.2f}", f"{r['positions_per_s'] / 1e6:.3f}", f"{r['peak_rss_mb']:.0f}",
            *[f"{r[f'speedup_vs {p}']:.1f}x" if f"speedup_vs {p}" in r else "-" for p in PEERS], diff,
        )  # fmt: skip
    console.print(table)
    console.print(
        "One timed job per implementation per size, each in a fresh process after a 2,000-row warm-up job; JAX's time includes "
        "compiling for the partition shape. Peak RSS = VmHWM of the worker during the job (whole process). 'vs X' = X's seconds / "
        "this row's seconds. Max rel diff vs gpu_hedge numpy: |a-b| / max(|b|, 1e-10 max|b|); py_vollib_vectorized's Greeks are "
        "finite differences, so its delta differs by their truncation error."
    )
    data = {
        "benchmark": "book_job",
        "date": now_iso(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine,
        "device": device,
        "versions": {**versions(), **{d: _ver(d) for d in ("pandas", "pyarrow", "py_vollib_vectorized", "numba")}},
        "settings": {
            "sizes": sizes,
            "backends": backends,
            "implementations": impls,
            "seed": args.seed,
            "american_fraction": args.american,
            "american_method": args.american_method,
            "n_underlyings": N_UNDERLYINGS,
            "valuation_date": VALUATION_DATE,
            "scenarios": "Scenarios.default(): spot -0.2:0.2:0.05 x vol -0.1:0.1:0.05 (45)",
            "peer_timeout_s": args.peer_timeout,
            "warmup_rows": WARMUP_ROWS,
            "env": {
                k: os.environ.get(k)
                for k in ("GPU_HEDGE_NUM_THREADS", "GPU_HEDGE_CHUNK", "GPU_HEDGE_BACKEND", "OMP_NUM_THREADS", "XLA_FLAGS")
            },
            "timing": "end to end in a fresh subprocess per implementation and size, after a warm-up job on a 2,000-row book; one timed "
            "run: Parquet + CSV read, join, (validation), Greeks, sums by underlying, 45-scenario full-revaluation ladder, "
            "Parquet outputs written. JAX includes compilation for the partition shape.",
            "peak_rss": "VmHWM of the worker after clear_refs 5 just before the timed job: whole-process peak during the job",
            "max_rel_diff": f"vs gpu_hedge numpy at the same size: |a-b| / max(|b|, {REL_FLOOR:g} * max|b|)",
        },  # fmt: skip
        "results": results,
    }
    path = write_json(out_json, data)
    console.print(f"wrote {path}")
    return 0


def _ver(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
