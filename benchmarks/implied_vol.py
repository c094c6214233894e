"""Implied vols per second (BSM, float64) per gpu_hedge backend, against py_vollib_vectorized and QuantLib.

    python benchmarks/implied_vol.py [--sizes 1e5,1e6] [--backends numpy,jax] [--repeat 3]
                                     [--peers py_vollib_vectorized,quantlib] [--ql-sample 20000] [--sd 3]
                                     [--stand-in  (only while gpu_hedge.implied_vol does not exist)]
                                     [--out benchmarks/results/implied_vol.json]

Inputs: seeded random BSM options with known true vols (spot 5-1000 log-uniform, log-moneyness
ln(K/F) from -3 to +3 (--sd) standard deviations of the forward, expiry 1 day to 5 years log-uniform, vol
5-150 %, rate -1 % to 8 %, yield 0-5 %, calls and puts), priced with ``gpu_hedge.price`` on NumPy
in float64. Every implementation inverts the same prices.

For each size, in one process and interleaved (each implementation in turn, round after round):
one warm-up round (reported as the first call: numba / JAX compilation for that shape; its output is
the one checked for accuracy), then ``--repeat`` timed rounds, best reported (and the median,
with the ratio on medians). gpu_hedge runs on
every available backend, and on NumPy twice: with its default thread count and with
``cpu_fallback.NumpyBackend(threads=1)``, for the per-core figure (target: >= 1.5 M IV/s per core).

Timing is device-resident for gpu_hedge (inputs converted with ``backend.asarray`` before the
clock starts, output synchronised before it stops). py_vollib_vectorized is timed as a user calls
it, on NumPy arrays, with its 'c'/'p' flag array built beforehand (its own per-element conversion
of the flags is inside the call, and measured apart in the JSON). QuantLib's
``blackFormulaImpliedStdDev`` is a scalar function: it is timed in a Python loop over the first
``--ql-sample`` options and its time scaled to N (marked "scaled" in the table).

Accuracy: |iv - true vol| on the *identifiable* inputs: those where a price error of 1e-13 of the
price's scale, S e^-qT N(theta d1) + K e^-rT N(theta d2) (the two terms the price is the difference of),
moves the vol by at most 1e-10 (vega >= 1e-3 * scale), so that float64 prices determine the vol to
well within the 1e-8 failure threshold. Failures = NaN or error
> 1e-8 on identifiable inputs. gpu_hedge's own status==0 set (``return_status=True``) is compared
with that definition in the JSON.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The peers' import workaround must run before anything imports py_lets_be_rational: import _peers first.
import _peers  # noqa: E402
from _common import describe_machine, now_iso, timed, versions, write_json  # noqa: E402

import gpu_hedge  # noqa: E402

PVV = "py_vollib_vectorized"
QL = "QuantLib"
FAIL_TOL = 1e-8  # an identifiable option whose |iv - true| exceeds this (or is NaN) is a failure
PRICE_REL_NOISE = 1e-13  # price error assumed, relative to the price formula's two terms, for "identifiable"
VOL_NOISE = 1e-10  # ... and the vol error it may cause at most
TARGET_PER_CORE = 1.5e6


# --- inputs ---------------------------------------------------------------------------------------------


def make_inputs(n: int, seed: int = 20261124, sd: float = 3.0) -> dict[str, np.ndarray]:
    """Random BSM options with known vols, priced by gpu_hedge on NumPy (float64), and their identifiability."""
    rng = np.random.default_rng(seed)
    spot = np.exp(rng.uniform(math.log(5.0), math.log(1000.0), n))
    expiry = np.exp(rng.uniform(math.log(1 / 365), math.log(5.0), n))
    vol = rng.uniform(0.05, 1.50, n)
    rate = rng.uniform(-0.01, 0.08, n)
    div = rng.uniform(0.0, 0.05, n)
    z = rng.uniform(-sd, sd, n)  # strike in standard deviations around the forward
    fwd = spot * np.exp((rate - div) * expiry)
    strike = fwd * np.exp(z * vol * np.sqrt(expiry))
    call = rng.random(n) < 0.5
    g = gpu_hedge.greeks(spot, strike, expiry, vol, rate, div, call=call, greeks=("price", "vega"), backend="numpy", dtype="float64")
    price, vega = np.asarray(g["price"]), np.asarray(g["vega"])
    # the price's scale: the size of the two terms of theta (S e^-qT N(theta d1) - K e^-rT N(theta d2)), which
    # the price is computed from (for in-the-money options it is far above the price: they cancel)
    from scipy.special import ndtr

    theta = np.where(call, 1.0, -1.0)
    sd1 = vol * np.sqrt(expiry)
    d1 = np.log(fwd / strike) / sd1 + 0.5 * sd1
    scale = spot * np.exp(-div * expiry) * ndtr(theta * d1) + strike * np.exp(-rate * expiry) * ndtr(theta * (d1 - sd1))
    identifiable = (price > 0) & np.isfinite(price) & (vega * VOL_NOISE >= PRICE_REL_NOISE * scale)
    return {
        "price": price, "spot": spot, "strike": strike, "expiry": expiry, "rate": rate, "div": div, "call": call,
        "vol": vol, "z": z, "identifiable": identifiable,
    }  # fmt: skip


def accuracy(iv: np.ndarray, inputs: dict[str, np.ndarray], idx: np.ndarray | None = None) -> dict[str, Any]:
    """Errors against the true vols on the identifiable inputs (of the subsample ``idx`` when given)."""
    true, ident = inputs["vol"], inputs["identifiable"]
    if idx is not None:
        true, ident = true[idx], ident[idx]
    iv = np.asarray(iv, dtype=np.float64)
    err = np.abs(iv - true)
    e = err[ident]
    finite = np.isfinite(e)
    ef = e[finite]
    bad = np.flatnonzero(ident & ~(err <= FAIL_TOL))[:5]  # a few failing options, to reproduce them
    examples = []
    for j in bad:
        g = int(j if idx is None else idx[j])
        row = {k: (bool(v[g]) if v.dtype == bool else float(v[g])) for k, v in inputs.items() if k != "identifiable"}
        examples.append({"index": g, "iv": float(iv[j]), **row})
    return {
        "failure_examples": examples,
        "n_checked": int(ident.sum()),
        "max_err": float(ef.max()) if ef.size else None,
        "median_err": float(np.median(ef)) if ef.size else None,
        "nan_identifiable": int((~finite).sum()),
        "over_tol": int((ef > FAIL_TOL).sum()),
        "failures": int((~finite).sum() + (ef > FAIL_TOL).sum()),
        "n_unidentifiable": int((~ident).sum()),
        "nan_unidentifiable": int((~np.isfinite(iv[~ident])).sum()),
        "max_err_unidentifiable_finite": float(np.nanmax(err[~ident])) if np.isfinite(err[~ident]).any() else None,
    }


# --- implementations ------------------------------------------------------------------------------------


class Impl:
    label: str
    backend: str | None = None
    device: str = "cpu (host)"
    cores: int | None = 1  # CPU cores it uses, for the per-core figure (None: a GPU, not meaningful)
    sample: int | None = None  # times a subsample of this many options and scales (QuantLib)

    def prepare(self, inp: dict[str, np.ndarray]) -> float:
        raise NotImplementedError

    def run(self) -> Any:
        raise NotImplementedError

    def sync(self, out: Any) -> Any:
        return out

    def to_numpy(self, out: Any) -> np.ndarray:
        return np.asarray(out)

    def release(self) -> None:
        self.args = None


class GpuHedgeImpl(Impl):
    def __init__(self, backend: Any, label: str, cores: int | None) -> None:
        self.bk = gpu_hedge.get_backend(backend)
        self.backend = self.bk.name
        self.device = self.bk.device
        self.label = label
        self.cores = cores

    def prepare(self, inp):
        keys = ("price", "spot", "strike", "expiry", "rate", "div")
        dt, self.args = timed(
            lambda: [self.bk.asarray(inp[k], dtype=np.float64) for k in keys] + [self.bk.asarray(inp["call"])], self.bk.sync
        )
        return dt

    def run(self):
        a = self.args
        return gpu_hedge.implied_vol(*a[:6], call=a[6], model="bsm", backend=self.bk, dtype="float64")

    def run_with_status(self):
        a = self.args
        return gpu_hedge.implied_vol(*a[:6], call=a[6], model="bsm", backend=self.bk, dtype="float64", return_status=True)

    def sync(self, out):
        return self.bk.sync(out)

    def to_numpy(self, out):
        return np.asarray(self.bk.to_numpy(out), dtype=np.float64)


class PvvImpl(Impl):
    label = PVV

    def __init__(self, pvv) -> None:
        self.pvv = pvv

    def prepare(self, inp):
        self.flags = np.where(inp["call"], "c", "p")
        self.args = (inp["price"], inp["spot"], inp["strike"], inp["expiry"], inp["rate"])
        self.q = inp["div"]
        return 0.0

    def run(self):
        return self.pvv.vectorized_implied_volatility(
            *self.args, self.flags, q=self.q, model="black_scholes_merton", return_as="numpy", on_error="ignore"
        )

    def flag_conversion_s(self) -> float:
        """Seconds its per-element Python conversion of the 'c'/'p' flags takes (inside every call)."""
        from py_vollib_vectorized.util.data_format import _preprocess_flags

        return timed(lambda: _preprocess_flags(self.flags, np.float64))[0]


class QuantLibImpl(Impl):
    label = QL

    def __init__(self, ql, sample: int) -> None:
        self.ql = ql
        self.max_sample = sample

    def prepare(self, inp):
        m = min(self.max_sample, len(inp["price"]))
        self.sample = m
        T = inp["expiry"][:m]
        df = np.exp(-inp["rate"][:m] * T)
        fwd = inp["spot"][:m] * np.exp((inp["rate"][:m] - inp["div"][:m]) * T)
        typ = np.where(inp["call"][:m], self.ql.Option.Call, self.ql.Option.Put)
        # plain Python floats and ints: what a loop over a book would hand QuantLib
        self.args = list(zip(typ.tolist(), inp["strike"][:m].tolist(), fwd.tolist(), inp["price"][:m].tolist(), df.tolist(),
                             np.sqrt(T).tolist(), strict=True))  # fmt: skip
        return 0.0

    def run(self):
        f = self.ql.blackFormulaImpliedStdDev
        null = self.ql.nullDouble()  # no guess: QuantLib starts from its own approximation
        out = np.empty(len(self.args))
        for i, (typ, k, fwd, p, df, sqrt_t) in enumerate(self.args):
            try:
                out[i] = f(typ, k, fwd, p, df, 0.0, null, 1e-12, 100) / sqrt_t
            except RuntimeError:  # QuantLib throws when it cannot bracket or converge
                out[i] = np.nan
        return out


# --- stand-in (only while gpu_hedge.implied_vol does not exist; --stand-in) --------------------------


def _standin_implied_vol(price, spot, strike, expiry, rate=0.0, div=0.0, *, call=True, return_status=False, **_):
    """STAND-IN, not gpu_hedge: safeguarded Newton on the out-of-the-money Black price in NumPy, one thread.

    Only here so the harness can run before ``gpu_hedge.implied_vol`` exists."""
    from scipy.special import ndtr

    price, spot, strike, expiry, rate, div = (np.asarray(x, dtype=np.float64) for x in (price, spot, strike, expiry, rate, div))
    theta = np.where(np.asarray(call), 1.0, -1.0)
    fwd = spot * np.exp((rate - div) * expiry)
    p = price * np.exp(rate * expiry)  # undiscounted
    itm = theta * (fwd - strike) > 0
    otm = np.where(itm, p - theta * (fwd - strike), p)  # parity: the out-of-the-money option's price
    th = np.where(itm, -theta, theta)
    upper = np.where(th > 0, fwd, strike)
    status = np.where((otm > 0) & (otm < upper), 0, 1).astype(np.int8)
    lo = np.full_like(p, 1e-8)
    hi = np.full_like(p, 20.0)
    k = np.log(fwd / strike)
    s = np.sqrt(2.0 * np.abs(k)) + 0.2  # total vol; rough start
    s = np.clip(s, lo, hi)
    for _ in range(60):
        d1 = k / s + 0.5 * s
        d2 = d1 - s
        f = th * (fwd * ndtr(th * d1) - strike * ndtr(th * d2)) - otm
        vega = fwd * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
        lo = np.where(f < 0, s, lo)
        hi = np.where(f > 0, s, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = s - f / vega
        bad = ~((new > lo) & (new < hi))
        new = np.where(bad, 0.5 * (lo + hi), new)
        done = np.abs(new - s) <= 1e-15 * s
        s = new
        if np.all(done | (status != 0)):
            break
    vols = np.where(status == 0, s / np.sqrt(expiry), np.nan)
    return (vols, status) if return_status else vols


class StandinImpl(GpuHedgeImpl):
    def __init__(self) -> None:
        super().__init__("numpy", "STAND-IN numpy Newton, not gpu_hedge", 1)

    def run(self):
        a = self.args
        return _standin_implied_vol(*a[:6], call=a[6])

    def run_with_status(self):
        a = self.args
        return _standin_implied_vol(*a[:6], call=a[6], return_status=True)


# --- driver ---------------------------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def gpu_hedge_impls(backends: list[str], cpus: int) -> list[Impl]:
    from cpu_fallback import NumpyBackend, default_threads

    impls: list[Impl] = []
    for b in backends:
        if b == "numpy":
            t = default_threads()
            impls.append(GpuHedgeImpl("numpy", f"gpu_hedge numpy ({t} threads)", t))
            if t != 1:
                impls.append(GpuHedgeImpl(NumpyBackend(threads=1), "gpu_hedge numpy (1 thread)", 1))
        else:
            impl = GpuHedgeImpl(b, "", None)
            on_gpu = "gpu" in str(impl.device).lower() or impl.backend == "cupy"
            impl.cores = None if on_gpu else cpus
            impl.label = f"gpu_hedge {impl.backend} ({'GPU' if on_gpu else 'CPU'})"
            impls.append(impl)
    return impls


def bench(impls: list[Impl], sizes: list[int], repeat: int, seed: int, sd: float, console) -> tuple[list[dict], list[dict]]:
    results: list[dict[str, Any]] = []
    inputs_info: list[dict[str, Any]] = []
    for n in sizes:
        console.log(f"N = {n:,}: generating and pricing inputs")
        inp = make_inputs(n, seed, sd)
        info = {"n": n, "n_identifiable": int(inp["identifiable"].sum())}
        rec: dict[str, dict[str, Any]] = {}
        for impl in impls:
            rec[impl.label] = {
                "n": n, "implementation": impl.label, "backend": impl.backend, "device": impl.device, "cores": impl.cores,
                "h2d_s": impl.prepare(inp), "timed_n": impl.sample or n, "times_s": [],
            }  # fmt: skip
            if isinstance(impl, PvvImpl):
                rec[impl.label]["flag_conversion_s"] = impl.flag_conversion_s()
        for rnd in range(repeat + 1):
            for impl in impls:
                r = rec[impl.label]
                gc.collect()
                dt, out = timed(impl.run, impl.sync)
                if rnd == 0:
                    r["first_call_s"] = dt
                    iv = impl.to_numpy(out)
                    r.update(accuracy(iv, inp, np.arange(impl.sample) if impl.sample else None))
                    del iv
                else:
                    r["times_s"].append(dt)
                del out
            console.log(f"N = {n:,}: round {rnd}{' (warm-up)' if rnd == 0 else ''} done")
        # gpu_hedge's own notion of "identifiable": status == 0, compared with ours (untimed call)
        for impl in impls:
            if isinstance(impl, GpuHedgeImpl) and "status_ok" not in info:
                try:
                    vols, status = impl.run_with_status()
                    st = np.asarray(impl.bk.to_numpy(status))
                    ok = st == 0
                    ident = inp["identifiable"]
                    info.update({
                        "status_source": impl.label,
                        "status_ok": int(ok.sum()),
                        "status_counts": {int(c): int((st == c).sum()) for c in np.unique(st)},
                        "identifiable_and_status_ok": int((ok & ident).sum()),
                        "identifiable_not_status_ok": int((~ok & ident).sum()),
                        "status_ok_not_identifiable": int((ok & ~ident).sum()),
                    })  # fmt: skip
                    acc = accuracy(impl.to_numpy(vols), {**inp, "identifiable": ok})
                    info["errors_on_status_ok"] = {k: acc[k] for k in ("n_checked", "max_err", "median_err", "failures")}
                except Exception as e:  # noqa: BLE001 - informational only
                    info["status_error"] = f"{type(e).__name__}: {e}"
        inputs_info.append(info)
        base = rec[PVV] if PVV in rec else None
        base_rate = base["timed_n"] / min(base["times_s"]) if base else None
        base_rate_median = base["timed_n"] / float(np.median(base["times_s"])) if base else None
        for impl in impls:
            r = rec[impl.label]
            best = min(r["times_s"])
            rate = r["timed_n"] / best
            r["median_timed_s"] = float(np.median(r["times_s"]))  # the figure: medians of interleaved rounds
            r["ivs_per_s_median"] = r["timed_n"] / r["median_timed_s"]
            r["vs_py_vollib_vectorized_median"] = r["ivs_per_s_median"] / base_rate_median if base_rate_median else None
            r["best_timed_s"] = best
            r["best_s"] = best * n / r["timed_n"]  # scaled to N for a subsample
            r["scaled"] = r["timed_n"] != n
            r["first_call_scaled_s"] = r["first_call_s"] * n / r["timed_n"]
            r["ivs_per_s"] = rate
            r["ivs_per_s_per_core"] = rate / r["cores"] if r["cores"] else None
            r["vs_py_vollib_vectorized"] = rate / base_rate if base_rate else None
            results.append(r)
            impl.release()
        del inp
        gc.collect()
    return results, inputs_info


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="1e5,1e6", help="comma-separated N (default 1e5,1e6)")
    p.add_argument("--backends", default=None, help="comma-separated gpu_hedge backends (default: all available)")
    p.add_argument("--peers", default=f"{PVV},quantlib", help="comma-separated peers to run, or 'none'")
    p.add_argument("--ql-sample", type=int, default=20000, help="QuantLib: options timed in its Python loop, scaled to N")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds after one warm-up; best is reported")
    p.add_argument("--seed", type=int, default=20261124)
    p.add_argument("--sd", type=float, default=3.0, help="strikes uniform in +-SD standard deviations around the forward (default 3)")
    p.add_argument("--stand-in", action="store_true",
                   help="while gpu_hedge.implied_vol does not exist, exercise the harness with a NumPy stand-in")  # fmt: skip
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "implied_vol.json"))
    args = p.parse_args(argv)

    console = Console()
    if not console.is_terminal:
        console = Console(width=180)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    sizes = parse_sizes(args.sizes)
    machine = describe_machine(tuple(gpu_hedge.available_backends()))
    cpus = machine["cpus_usable"] or 1

    has_real = hasattr(gpu_hedge, "implied_vol")
    if not has_real and not args.stand_in:
        console.print(
            "[red]gpu_hedge.implied_vol does not exist in this checkout "
            f"({gpu_hedge.__file__}); nothing to benchmark.[/red] "
            "(--stand-in runs the harness and the peers against a NumPy stand-in.)"
        )
        return 2
    if has_real and args.stand_in:
        console.print("gpu_hedge.implied_vol exists: --stand-in ignored, benchmarking the real function")
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else list(gpu_hedge.available_backends())
    impls: list[Impl] = gpu_hedge_impls(backends, cpus) if has_real else [StandinImpl()]

    peers_wanted = [] if args.peers.strip().lower() == "none" else [s.strip().lower() for s in args.peers.split(",")]
    peer_status: dict[str, str] = {}
    peer_load_s: dict[str, float] = {}  # import + workaround + smoke test (numba compiles py_vollib_vectorized here)
    if PVV.lower() in peers_wanted:
        t_load, (pvv, why) = timed(_peers.load_py_vollib_vectorized)
        peer_load_s[PVV] = t_load
        peer_status[PVV] = why or "ok (with the numba workaround, see benchmarks/_peers.py)"
        if pvv is not None:
            impls.insert(0, PvvImpl(pvv))
    if "quantlib" in peers_wanted:
        t_load, (ql, why) = timed(_peers.load_quantlib)
        peer_load_s[QL] = t_load
        peer_status[QL] = why or "ok"
        if ql is not None:
            impls.append(QuantLibImpl(ql, args.ql_sample))
    for name, st in peer_status.items():
        console.log(f"peer {name}: {st}")

    results, inputs_info = bench(impls, sizes, args.repeat, args.seed, args.sd, console)

    title = f"BSM implied vol, float64; best of {args.repeat} after warm-up" + ("" if has_real else " — STAND-IN, NOT gpu_hedge")
    table = Table(title=title)
    cols = ("N", "implementation", "seconds", "M IV/s", "M IV/s per core", f"vs {PVV}", "(median)", "max err", "median err", "failures",
            "first call s")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "implementation" else "right")

    def fmt_e(x):
        return "-" if x is None else f"{x:.1e}"

    for r in results:
        label = r["implementation"] + (f" (loop, {r['timed_n']:,} scaled)" if r["scaled"] else "")
        table.add_row(
            f"{r['n']:,}", label, f"{r['best_s']:.4f}", f"{r['ivs_per_s'] / 1e6:.3f}",
            "-" if r["ivs_per_s_per_core"] is None else f"{r['ivs_per_s_per_core'] / 1e6:.3f}",
            "-" if r["vs_py_vollib_vectorized"] is None else f"{r['vs_py_vollib_vectorized']:.2f}x",
            "-" if r["vs_py_vollib_vectorized_median"] is None else f"{r['vs_py_vollib_vectorized_median']:.2f}x",
            fmt_e(r["max_err"]), fmt_e(r["median_err"]), f"{r['failures']:,} / {r['n_checked']:,}",
            f"{r['first_call_scaled_s']:.4f}",
        )  # fmt: skip
    console.print(table)
    for info in inputs_info:
        line = f"N = {info['n']:,}: {info['n_identifiable']:,} identifiable"
        if "status_ok" in info:
            line += (
                f"; {info['status_source']}: status==0 on {info['status_ok']:,} "
                f"(identifiable but status!=0: {info['identifiable_not_status_ok']:,}; "
                f"status==0 but not identifiable: {info['status_ok_not_identifiable']:,}; "
                f"on status==0: max err {fmt_e(info['errors_on_status_ok']['max_err'])}, "
                f"failures {info['errors_on_status_ok']['failures']:,})"
            )
        elif "status_error" in info:
            line += f"; return_status=True failed: {info['status_error']}"
        console.print(line)
    pvv_rows = [r for r in results if r["implementation"] == PVV]
    console.print(
        f"Identifiable = a price error of {PRICE_REL_NOISE:g} x (S e^-qT N(theta d1) + K e^-rT N(theta d2)) "
        f"moves the vol by <= {VOL_NOISE:g} "
        f"(vega >= {PRICE_REL_NOISE / VOL_NOISE:g} x that scale); failures = NaN or |iv - true| > {FAIL_TOL:g} on those. "
        "Per core: gpu_hedge numpy / its thread count; JAX on CPU / usable CPUs; py_vollib_vectorized (numba, serial) and "
        f"QuantLib (Python loop) use one core. Target for gpu_hedge: >= {TARGET_PER_CORE / 1e6:g} M IV/s per core. "
        "QuantLib: blackFormulaImpliedStdDev(accuracy 1e-12, no guess) per option, time for its sample scaled to N. "
        + (
            "py_vollib_vectorized's per-element flag conversion ('c'/'p' -> +-1) is inside its time: "
            + ", ".join(f"{r['flag_conversion_s']:.3f} s at N={r['n']:,}" for r in pvv_rows) + "."
            if pvv_rows else ""
        )
    )  # fmt: skip
    for name, st in peer_status.items():
        if not st.startswith("ok"):
            console.print(f"[yellow]peer {name} not run: {st}[/yellow]")

    from cpu_fallback import default_chunk, default_threads

    vers = versions()
    for d in ("py_vollib_vectorized", "py_lets_be_rational", "cody-special", "piecewise-rational", "numba", "llvmlite", "QuantLib"):
        vers[d] = _peers.dist_version(d)
    data = {
        "benchmark": "implied_vol",
        "date": now_iso(),
        "command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
        "machine": machine,
        "versions": vers,
        "settings": {
            "model": "bsm",
            "dtype": "float64",
            "gpu_hedge_function": "gpu_hedge.implied_vol" if has_real else "STAND-IN (benchmarks/implied_vol.py:_standin_implied_vol)",
            "sizes": sizes,
            "backends": backends if has_real else [],
            "repeat": args.repeat,
            "seed": args.seed,
            "sd": args.sd,
            "threads": default_threads(),
            "chunk": default_chunk(),
            "cpus_usable": cpus,
            "ql_sample": args.ql_sample,
            "peers": peer_status,
            "peer_load_s": peer_load_s,
            "env": {
                k: os.environ.get(k)
                for k in (
                    "GPU_HEDGE_NUM_THREADS",
                    "GPU_HEDGE_CHUNK",
                    "GPU_HEDGE_BACKEND",
                    "OMP_NUM_THREADS",
                    "NUMBA_NUM_THREADS",
                    "XLA_FLAGS",
                    "PY_LETS_BE_RATIONAL_ENABLE_NUMBA",
                )
            },  # fmt: skip
            "inputs": (
                f"spot 5-1000 log-uniform; ln(K/F) = z vol sqrt(T), z uniform -{args.sd:g}..{args.sd:g}; "
                "expiry 1/365-5 y log-uniform; vol 5-150 % "
                "uniform; rate -1..8 %; div 0..5 %; calls and puts 50/50; prices by gpu_hedge.price (numpy, float64)"
            ),
            "identifiable": (
                f"price > 0 and vega * {VOL_NOISE:g} >= {PRICE_REL_NOISE:g} * (S exp(-qT) N(theta d1) + K exp(-rT) N(theta d2)); "
                f"failures: NaN or |iv - true| > {FAIL_TOL:g} on identifiable inputs"
            ),
            "timing": (
                "gpu_hedge device-resident (backend.asarray before, backend.sync inside the clock). py_vollib_vectorized called "
                "on NumPy arrays with a prebuilt 'c'/'p' array, on_error='ignore', return_as='numpy'. QuantLib: Python loop over "
                "the first ql_sample options (blackFormulaImpliedStdDev, accuracy 1e-12, guess Null, 100 iterations), "
                "best_s scaled to N. Interleaved per size, warm-up round (first_call_s, accuracy) then 'repeat' timed rounds, best kept."
            ),
            "per_core": "gpu_hedge numpy: / threads; gpu_hedge jax on CPU: / cpus_usable; peers: 1 core; GPU: not given",
        },
        "inputs": inputs_info,
        "results": results,
    }
    path = write_json(args.out, data)
    console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
