"""Fitting a daily SVI surface history: ``gh.fit_surface`` (one batched solve) against a per-slice SciPy loop.

    python benchmarks/surface_fit.py [--underlyings 3] [--dates 250] [--expiries 5] [--strikes 15]
                                     [--noise 0.003] [--backends numpy,jax] [--repeat 3] [--scipy-repeat 1]
                                     [--smoke] [--out benchmarks/results/surface_fit.json]

Workload (issue 17, point 6): 3 underlyings x 250 quote dates x 5 expiries = 3,750 slices, each of
``--strikes`` quotes. Groups are ``(underlying, date)``. The true smiles are power-law SSVI
(Gatheral-Jacquier 2014; gamma 0.5, eta (1 + |rho|) <= 2, so free of butterfly and calendar
arbitrage), with the ATM vol, skew and curvature of each underlying moving day to day as
mean-reverting random walks; expiries 1, 2, 3, 6 and 12 months; strikes at -2.5 .. +1.5 ATM
standard deviations in log-moneyness. Quoted vols = true vols + Gaussian noise (``--noise``, in
vol units; 0.003 = 0.3 vol points). ``--smoke`` shrinks it to 3 x 4 x 5 slices.

Implementations, on the same frame and the same (uniform) weights, in one process:

- ``gpu_hedge.fit_surface(frame, model="svi", backend=...)`` on each backend: every slice of
  every group in one vectorised Levenberg-Marquardt solve with the butterfly and calendar
  conditions. Timed from the DataFrame to the returned ``VolSurface`` (packing included); on JAX
  one warm-up call first (compilation, reported as ``first_call_s``), then ``--repeat`` timed
  calls; on NumPy the first call is the first of the ``--repeat`` timed calls. Best and median kept.
- ``scipy least_squares loop``: what a user writes: a Python loop over the slices calling
  ``scipy.optimize.least_squares`` (TRF, bounds ``b >= 0``, ``|rho| < 1``, ``sigma > 0``,
  finite-difference Jacobian) on raw SVI, with residuals in total variance scaled by the
  slice's mean quoted ``w`` as ``fit_surface`` does, from a generic start. No arbitrage
  constraints (a user's plain fit). ``--scipy-repeat`` timed runs (no warm-up needed).

Fit quality per implementation: per-slice RMSE in vol points (x 100) against the true
(noiseless) vols and against the quoted vols, median and max over slices; butterfly and calendar
violations from ``VolSurface.arbitrage_report()`` (the SciPy parameters go through
``VolSurface.from_params`` with the quotes' k span, so both are checked on the same grids).
Speed ratio = the SciPy loop's median time / the implementation's median time.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import describe_machine, now_iso, versions, write_json  # noqa: E402

import gpu_hedge  # noqa: E402
from gpu_hedge._surface.surface import VolSurface  # noqa: E402

EXPIRIES = (1 / 12, 2 / 12, 3 / 12, 6 / 12, 1.0)
SCIPY = "scipy least_squares loop"


# --- inputs ---------------------------------------------------------------------------------------------


def make_frame(underlyings: int, dates: int, expiries: int, strikes: int, noise: float, seed: int) -> pd.DataFrame:
    """Quotes of a daily SSVI surface history; ``vol`` noisy, ``true_vol`` the generating smile."""
    rng = np.random.default_rng(seed)
    Ts = np.array(EXPIRIES[:expiries] if expiries <= len(EXPIRIES) else np.linspace(1 / 12, 2.0, expiries))
    rows = []
    for u in range(underlyings):
        atm = 0.12 + 0.08 * u  # long-run ATM vol per underlying: 12 %, 20 %, 28 %
        x_vol, x_rho, x_eta = 0.0, 0.0, 0.0
        spot = 100.0 * (1 + u)
        for d in range(dates):
            # mean-reverting daily moves of the ATM level, the skew and the curvature
            x_vol = 0.97 * x_vol + 0.04 * rng.standard_normal()
            x_rho = 0.95 * x_rho + 0.05 * rng.standard_normal()
            x_eta = 0.95 * x_eta + 0.05 * rng.standard_normal()
            spot *= math.exp(0.01 * rng.standard_normal())
            vol0 = atm * math.exp(x_vol)
            rho = float(np.clip(-0.55 + 0.2 * x_rho, -0.9, -0.1))
            eta = min(1.2 * math.exp(x_eta), 1.95 / (1 + abs(rho)))
            term = vol0 * (1.0 + 0.1 * np.sqrt(Ts))  # upward-sloping ATM term structure
            theta = term**2 * Ts
            phi = eta / np.sqrt(theta)  # power law, gamma = 0.5
            for T, th, ph in zip(Ts, theta, phi, strict=True):
                sd = math.sqrt(th)
                k = np.linspace(-2.5 * sd, 1.5 * sd, strikes)
                w = 0.5 * th * (1 + rho * ph * k + np.sqrt((ph * k + rho) ** 2 + 1 - rho * rho))
                true = np.sqrt(w / T)
                fwd = spot * math.exp(0.02 * T)
                quoted = np.maximum(true + noise * rng.standard_normal(strikes), 0.01)
                g = f"U{u}/{d:03d}"
                rows.append(pd.DataFrame({"group": g, "expiry_years": T, "strike": fwd * np.exp(k), "forward": fwd,
                                          "vol": quoted, "true_vol": true}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def slices_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (group, expiry) slice, in order: k, T, forward, quoted and true vols."""
    out = []
    for (g, T), s in frame.groupby(["group", "expiry_years"], sort=False):
        f = float(s["forward"].iloc[0])
        out.append({"group": g, "T": float(T), "forward": f, "k": np.log(s["strike"].to_numpy(float) / f),
                    "vol": s["vol"].to_numpy(float), "true": s["true_vol"].to_numpy(float)})  # fmt: skip
    return out


# --- the user's loop ------------------------------------------------------------------------------------


def scipy_loop(slices: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw SVI per slice by ``scipy.optimize.least_squares``: a Python loop, as a user writes it."""
    from scipy.optimize import least_squares

    lo = np.array([-np.inf, 0.0, -0.999, -np.inf, 1e-4])
    hi = np.array([np.inf, np.inf, 0.999, np.inf, np.inf])
    rows = []
    for s in slices:
        k, wq = s["k"], s["vol"] ** 2 * s["T"]
        scale = wq.mean()

        def resid(p, k=k, wq=wq, scale=scale):
            a, b, rho, m, sig = p
            return (a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sig * sig)) - wq) / scale

        x0 = np.array([0.5 * wq.min(), 0.1, -0.5, 0.0, 0.1])
        r = least_squares(resid, x0, bounds=(lo, hi), method="trf")
        rows.append({"group": s["group"], "expiry_years": s["T"], "forward": s["forward"], "a": r.x[0], "b": r.x[1],
                     "rho": r.x[2], "m": r.x[3], "sigma": r.x[4], "k_min": k.min(), "k_max": k.max(),
                     "status": "converged" if r.success else "failed"})  # fmt: skip
    return pd.DataFrame(rows)


# --- quality --------------------------------------------------------------------------------------------


def quality(surface: VolSurface, slices: list[dict[str, Any]]) -> dict[str, Any]:
    """RMSE (vol points) vs true and quoted vols per slice; arbitrage violations from arbitrage_report()."""
    p = surface.params.set_index(["group", "expiry_years"])
    cols = p[["a", "b", "rho", "m", "sigma"]]
    rt, rq = [], []
    for s in slices:
        a, b, rho, m, sig = cols.loc[(s["group"], s["T"])].to_numpy(float)
        k = s["k"]
        w = a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sig * sig))
        v = np.sqrt(np.maximum(w, 0.0) / s["T"])
        rt.append(100 * math.sqrt(np.mean((v - s["true"]) ** 2)))
        rq.append(100 * math.sqrt(np.mean((v - s["vol"]) ** 2)))
    rep = surface.arbitrage_report()
    rt_a, rq_a = np.array(rt), np.array(rq)
    status = surface.params["status"].value_counts().to_dict()
    return {
        "rmse_true_median_volpt": float(np.median(rt_a)), "rmse_true_p95_volpt": float(np.percentile(rt_a, 95)),
        "rmse_true_max_volpt": float(rt_a.max()),
        "rmse_quoted_median_volpt": float(np.median(rq_a)), "rmse_quoted_max_volpt": float(rq_a.max()),
        "butterfly_violations": int((~rep["butterfly_ok"]).sum()), "calendar_violations": int((~rep["calendar_ok"]).sum()),
        "g_min": float(rep["g_min"].min()), "status": {str(k): int(v) for k, v in status.items()},
    }  # fmt: skip


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--underlyings", type=int, default=3)
    ap.add_argument("--dates", type=int, default=250)
    ap.add_argument("--expiries", type=int, default=5)
    ap.add_argument("--strikes", type=int, default=15)
    ap.add_argument("--noise", type=float, default=0.003, help="quote noise, vol units (0.003 = 0.3 vol points)")
    ap.add_argument("--backends", default=None, help="comma-separated gpu_hedge backends (default: all available)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scipy-repeat", type=int, default=1)
    ap.add_argument("--no-scipy", action="store_true", help="skip the SciPy loop")
    ap.add_argument("--smoke", action="store_true", help="3 x 4 x 5 slices, repeat 1: seconds")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--out", default="benchmarks/results/surface_fit.json")
    args = ap.parse_args(argv)
    if args.smoke:
        args.dates, args.repeat, args.scipy_repeat = 4, 1, 1

    from rich.console import Console
    from rich.table import Table

    console = Console()
    backends = args.backends.split(",") if args.backends else list(gpu_hedge.available_backends())
    machine = describe_machine(tuple(backends))
    frame = make_frame(args.underlyings, args.dates, args.expiries, args.strikes, args.noise, args.seed)
    slices = slices_of(frame)
    n_slices = len(slices)
    fit_frame = frame.drop(columns="true_vol")
    console.print(f"{n_slices:,} slices ({args.underlyings} x {args.dates} x {args.expiries}), {len(frame):,} quotes")

    results: list[dict[str, Any]] = []
    for name in backends:
        bk = gpu_hedge.get_backend(name)
        t0 = time.perf_counter()
        surf = gpu_hedge.fit_surface(fit_frame, model="svi", backend=bk)
        first = time.perf_counter() - t0
        times = [first] if bk.name == "numpy" else []  # nothing to compile on NumPy: its first call is a timed one
        for _ in range(args.repeat - len(times)):
            t0 = time.perf_counter()
            surf = gpu_hedge.fit_surface(fit_frame, model="svi", backend=bk)
            times.append(time.perf_counter() - t0)
        results.append({"implementation": f"gpu_hedge fit_surface ({bk.name})", "backend": bk.name, "device": bk.device,
                        "first_call_s": first, "times_s": times, **quality(surf, slices)})  # fmt: skip
        console.print(f"  {results[-1]['implementation']}: best {min(times):.3f} s")
    if not args.no_scipy:
        times = []
        for _ in range(args.scipy_repeat):
            t0 = time.perf_counter()
            params = scipy_loop(slices)
            times.append(time.perf_counter() - t0)
        surf = VolSurface.from_params(params.assign(model="svi"), model="svi")
        results.append({"implementation": SCIPY, "backend": None, "device": "cpu (host), 1 core",
                        "first_call_s": None, "times_s": times, **quality(surf, slices)})  # fmt: skip
        console.print(f"  {SCIPY}: best {min(times):.3f} s")

    peer = next((r for r in results if r["implementation"] == SCIPY), None)
    for r in results:
        r["n_slices"] = n_slices
        r["best_s"] = min(r["times_s"])
        r["median_s"] = float(np.median(r["times_s"]))
        r["slices_per_s"] = n_slices / r["best_s"]
        r["slices_per_s_median"] = n_slices / r["median_s"]
    for r in results:
        r["speedup_vs_scipy_loop"] = peer["median_s"] / r["median_s"] if peer else None

    table = Table(title=f"SVI surface fit: {n_slices:,} slices x {args.strikes} quotes, noise {100 * args.noise:g} vol pt")
    for c in ("implementation", "best s", "median s", "slices/s", "vs SciPy loop", "RMSE true med/max (vol pt)",
              "RMSE quoted med", "butterfly viol.", "calendar viol.", "first call s"):  # fmt: skip
        table.add_column(c, justify="left" if c == "implementation" else "right")
    for r in results:
        sp = r["speedup_vs_scipy_loop"]
        table.add_row(
            r["implementation"], f"{r['best_s']:.3f}", f"{r['median_s']:.3f}", f"{r['slices_per_s']:,.0f}",
            f"{sp:.1f}x" if sp else "-", f"{r['rmse_true_median_volpt']:.3f} / {r['rmse_true_max_volpt']:.3f}",
            f"{r['rmse_quoted_median_volpt']:.3f}", f"{r['butterfly_violations']:,}", f"{r['calendar_violations']:,}",
            f"{r['first_call_s']:.2f}" if r["first_call_s"] is not None else "-",
        )  # fmt: skip
    console.print(table)
    console.print(
        "Ratio = SciPy loop median / implementation median, same run. RMSE per slice against the generating (noiseless) "
        "vols and the quoted vols; violations from VolSurface.arbitrage_report(). The SciPy loop runs on one core."
    )
    data = {
        "benchmark": "surface_fit",
        "date": now_iso(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine,
        "versions": versions(),
        "settings": {
            "underlyings": args.underlyings,
            "dates": args.dates,
            "expiries": args.expiries,
            "strikes": args.strikes,
            "noise_vol": args.noise,
            "seed": args.seed,
            "repeat": args.repeat,
            "scipy_repeat": args.scipy_repeat,
            "backends": backends,
            "n_slices": n_slices,
            "n_quotes": len(frame),
            "env": {k: os.environ.get(k) for k in ("GPU_HEDGE_NUM_THREADS", "GPU_HEDGE_BACKEND", "OMP_NUM_THREADS", "XLA_FLAGS")},
            "inputs": "power-law SSVI (gamma 0.5) per (underlying, date), mean-reverting daily ATM vol/skew/curvature; "
            "expiries 1,2,3,6,12 months; k = -2.5..+1.5 ATM sd; quoted = true + N(0, noise)",
            "fit_surface": "model='svi', weights=None (uniform), defaults (calendar=True, max_iter=100); timed DataFrame -> VolSurface",
            "scipy_loop": "least_squares(method='trf', bounds b>=0, |rho|<=0.999, sigma>=1e-4, 2-point jac) per slice, "
            "residual (w_svi - w_quoted) / mean(w_quoted), x0 = (0.5 min w, 0.1, -0.5, 0, 0.1); no arbitrage constraints",
        },  # fmt: skip
        "results": results,
    }
    path = write_json(args.out, data)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
