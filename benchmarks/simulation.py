"""Path-steps per second for GBM, Heston (QE and Euler) and Merton, per backend and dtype.

    python benchmarks/simulation.py [--paths 100000] [--steps 252] [--backends numpy,jax]
                                    [--dtypes float64,float32] [--repeat 3]
                                    [--out benchmarks/results/simulation.json]

Streams the paths with ``gpu_hedge.iter_paths`` (memory O(paths), as the hedging engine consumes
them) and keeps one running statistic so nothing is optimised away; the result is synchronised on
the device before the clock stops. Interleaved: for every round, each (model, backend, dtype) in
turn; one warm-up round (JIT compilation on JAX), then the best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, timed, versions, write_json  # noqa: E402

import gpu_hedge  # noqa: E402

MODELS: dict[str, tuple[Any, str | None]] = {
    "GBM": (gpu_hedge.GBM(spot=100.0, vol=0.2, rate=0.03, div=0.01), None),
    "Heston QE": (gpu_hedge.Heston(spot=100.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.6, rho=-0.7, rate=0.03), "qe"),
    "Heston Euler": (gpu_hedge.Heston(spot=100.0, v0=0.04, kappa=1.5, theta=0.04, xi=0.6, rho=-0.7, rate=0.03), "euler"),
    "Merton": (gpu_hedge.Merton(spot=100.0, vol=0.2, jump_intensity=0.5, jump_mean=-0.1, jump_std=0.15, rate=0.03), None),
}


def run_once(model: Any, scheme: str | None, backend: str, dtype: str, n_paths: int, n_steps: int) -> Any:
    bk = gpu_hedge.get_backend(backend)
    total = None
    for step in gpu_hedge.iter_paths(model, n_paths=n_paths, n_steps=n_steps, horizon=1.0, seed=2026,
                                     backend=bk, dtype=dtype, scheme=scheme):  # fmt: skip
        total = step.spot if total is None else total + step.spot
    return bk.sync(total)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paths", type=float, default=1e5)
    p.add_argument("--steps", type=int, default=252)
    p.add_argument("--backends", default=",".join(gpu_hedge.available_backends()))
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "simulation.json"))
    args = p.parse_args(argv)
    n_paths, n_steps = int(args.paths), args.steps
    backends = [b for b in args.backends.split(",") if b]
    dtypes = [d for d in args.dtypes.split(",") if d]
    console = Console()

    cases = [(m, b, d) for m in MODELS for b in backends for d in dtypes]
    times: dict[tuple[str, str, str], list[float]] = {c: [] for c in cases}
    first: dict[tuple[str, str, str], float] = {}
    for rnd in range(args.repeat + 1):
        for name, b, d in cases:
            model, scheme = MODELS[name]
            dt, _ = timed(lambda m=model, s=scheme, b=b, d=d: run_once(m, s, b, d, n_paths, n_steps))
            if rnd:
                times[(name, b, d)].append(dt)
            else:
                first[(name, b, d)] = dt
        console.log(f"round {rnd} done")

    work = n_paths * n_steps
    results = []
    table = Table(title=f"Path simulation, {n_paths:,} paths x {n_steps} steps, streamed; best of {args.repeat}")
    for col in ("model", "backend", "dtype", "best s", "M path-steps/s", "vs numpy float64", "first call s"):
        table.add_column(col, justify="left" if col in ("model", "backend", "dtype") else "right")
    for name, b, d in cases:
        best = min(times[(name, b, d)])
        base = min(times[(name, backends[0], dtypes[0])])
        results.append({"model": name, "backend": b, "dtype": d, "n_paths": n_paths, "n_steps": n_steps,
                        "best_s": best, "times_s": times[(name, b, d)], "first_call_s": first[(name, b, d)],
                        "path_steps_per_s": work / best})  # fmt: skip
        table.add_row(name, b, d, f"{best:.3f}", f"{work / best / 1e6:.1f}", f"{base / best:.2f}x", f"{first[(name, b, d)]:.3f}")
    console.print(table)
    data = {
        "benchmark": "simulation",
        "date": now_iso(),
        "command": " ".join(sys.argv),
        "machine": describe_machine(tuple(backends)),
        "versions": versions(),
        "settings": {"n_paths": n_paths, "n_steps": n_steps, "repeat": args.repeat, "horizon": 1.0, "seed": 2026},
        "results": results,
    }
    console.print(f"wrote {write_json(args.out, data)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
