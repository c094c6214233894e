"""The whole benchmark suite in one command, with one summary table and one combined JSON.

    python -m benchmarks [--quick] [--only greeks,hedging,...] [--skip book_job,...]
                         [--backends numpy,jax] [--out-dir DIR] [--dry-run]

Runs, in this order and in this process, each script's ``main(argv)``: ``greeks``, ``implied_vol``,
``simulation``, ``hedging``, ``book_job``, ``surface_fit`` and ``american`` (``hedging`` and ``book_job`` start their own worker
subprocesses). Each writes its own JSON to ``<out-dir>/<benchmark>-<device>.json``; the suite then
reads them back and prints one table: per benchmark and size, our best implementation's throughput,
each peer's throughput and the ratio ours / peer taken from that same run, the accuracy figure the
benchmark records (its max difference against its reference), and peak memory where recorded. The
combined result goes to ``<out-dir>/suite-<device>.json`` (device: ``cpu`` or ``gpu-<name>``, as
``hedging.py`` tags it), with the machine, date, versions, the command, and per benchmark the
command line it ran, the path of its JSON, its status and the extracted summary rows.

Options:

- ``--quick``: small sizes everywhere (47 s on an idle 2-core machine, longer when it is shared).
  Without ``--out-dir`` it writes to ``benchmarks/results/quick/``, so a smoke run never overwrites
  the full results.
- ``--only`` / ``--skip``: comma-separated benchmark names (``greeks``, ``implied_vol``,
  ``simulation``, ``hedging``, ``book_job``).
- ``--backends``: passed through to every benchmark (default: each script's own, all available).
- ``--out-dir``: where the JSON files go (default ``benchmarks/results/``). The files are always named
  ``<benchmark>-<device>.json``, so a full suite run writes ``greeks-cpu.json`` beside the
  standalone scripts' ``greeks.json`` and replaces ``hedging-cpu.json`` and ``book_job-cpu.json``.
- ``--dry-run``: print the command lines the suite would run, and stop.

The command lines, as standalone equivalents (the suite adds ``--backends`` when given, and always
``--out <out-dir>/<benchmark>-<device>.json``; ``--dry-run`` prints them):

- greeks: quick ``greeks.py --sizes 1e5 --repeat 3``; full ``greeks.py`` (1e5, 1e6, 1e7; best of 3).
- implied_vol: quick ``implied_vol.py --sizes 1e5 --repeat 2 --ql-sample 2000``; full ``implied_vol.py``
  (1e5, 1e6; QuantLib timed on 20,000 and scaled).
- simulation: quick ``simulation.py --paths 1e4 --steps 64 --repeat 2``; full ``simulation.py`` (1e5 paths x 252 steps).
- hedging: quick ``hedging.py --quick --rounds 1 --repeat 2`` (1e4 paths x 252 steps, pfhedge included);
  full ``hedging.py`` (1e5 paths x 252 steps, 3 rounds of best of 3, pfhedge included).
- book_job: quick ``book_job.py --quick`` (1e5 positions, both peers); full ``book_job.py`` (1e6 and 1e7: minutes).
- surface_fit: quick ``surface_fit.py --smoke`` (60 slices); full ``surface_fit.py`` (3 x 250 x 5 slices, SciPy loop once).
- american: quick ``american.py --smoke`` (2,000 options, QuantLib on 100); full ``american.py`` (1e5, QuantLib on 2,000).

Usage from code: ``suite.main(argv)``; ``suite.BENCHMARKS`` holds each benchmark's arguments and its
``extract_*`` function (JSON dict -> summary rows), usable on any of the scripts' JSON files.

A benchmark that raises, exits non-zero or writes no JSON is recorded with its error, the suite goes
on with the next one, and exits 1 at the end. Ratios are only ever taken within one run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
from _common import REPO, describe_machine, gpu_names, now_iso, versions, write_json  # noqa: E402

Row = dict[str, Any]
Entry = dict[str, Any]


# --- helpers for reading the benchmarks' JSON -----------------------------------------------------------


def _pos(x: Any) -> float | None:
    """``x`` as a float if it is a finite positive number, else None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _num(x: Any) -> float | None:
    """``x`` as a float if it is a number (inf allowed: a failed check), else None."""
    if isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _max_num(values: Iterable[Any]) -> float | None:
    nums = [v for v in (_num(x) for x in values) if v is not None]
    return max(nums) if nums else None


def _is_ours(rec: dict[str, Any]) -> bool:
    return str(rec.get("implementation", "")).startswith("gpu_hedge")


def _results(data: dict[str, Any]) -> list[dict[str, Any]]:
    res = data.get("results", [])
    return [r for r in res if isinstance(r, dict)] if isinstance(res, list) else []


def _group(recs: Iterable[dict[str, Any]], key: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for r in recs:
        out.setdefault(r.get(key), []).append(r)
    return out


def entry(
    implementation: str,
    throughput: Any,
    *,
    accuracy: Any = None,
    accuracy_vs: str | None = None,
    peak_mb: Any = None,
    note: str | None = None,
) -> Entry:
    """One implementation's figures in a summary row."""
    return {
        "implementation": implementation,
        "throughput": _pos(throughput),
        "accuracy": _num(accuracy),
        "accuracy_vs": accuracy_vs,
        "peak_mb": _num(peak_mb),
        "note": note,
    }


def make_row(case: str, size: Any, unit: str, ours: Entry | None, peers: list[Entry], *, memory: str | None = None) -> Row:
    """A summary row: our best entry, the peers' entries, each with ``ratio`` = our throughput / theirs."""
    for p in peers:
        a, b = (ours or {}).get("throughput"), p.get("throughput")
        p["ratio"] = a / b if a and b else None
    return {"case": case, "size": size, "unit": unit, "ours": ours, "peers": peers, "memory_metric": memory}


def _rate(rec: dict[str, Any], key: str) -> Any:
    """``rec[key + "_median"]`` (the throughput over the median of the timed rounds) where the benchmark
    records it, else ``rec[key]`` (its best round): ratios are taken on medians where they exist."""
    median = _pos(rec.get(f"{key}_median"))
    return median if median is not None else rec.get(key)


def _best(recs: list[dict[str, Any]], key: str) -> dict[str, Any] | None:
    good = [r for r in recs if _pos(_rate(r, key)) is not None]
    return max(good, key=lambda r: float(_rate(r, key))) if good else None


# --- per-benchmark extraction ---------------------------------------------------------------------------


def extract_greeks(data: dict[str, Any]) -> list[Row]:
    """greeks.py: per N, best gpu_hedge backend vs the plain NumPy+SciPy peer (the accuracy reference)."""
    rows = []
    mem = "peak RSS above the RSS just before the call (MB; under-reads at small N)"
    for n, recs in _group(_results(data), "n").items():
        best = _best([r for r in recs if _is_ours(r)], "options_per_s")
        ours = None
        if best is not None:
            diff = best.get("max_rel_diff")
            ours = entry(best["implementation"], _rate(best, "options_per_s"),
                         accuracy=_max_num(diff.values()) if isinstance(diff, dict) else None,
                         accuracy_vs="max rel diff vs plain numpy+scipy, 6 outputs", peak_mb=best.get("peak_extra_mb"))  # fmt: skip
        peers = [
            entry(str(r.get("implementation")), _rate(r, "options_per_s"), peak_mb=r.get("peak_extra_mb"),
                  note="accuracy reference" if "max_rel_diff" not in r else None)
            for r in recs if not _is_ours(r) and not r.get("floor")  # the memory-floor rows are not peers
        ]  # fmt: skip
        rows.append(make_row(f"N={n:,}" if isinstance(n, int) else f"N={n}", n, "options/s", ours, peers, memory=mem))
    return rows


def extract_implied_vol(data: dict[str, Any]) -> list[Row]:
    """implied_vol.py: per N, best gpu_hedge configuration vs py_vollib_vectorized and QuantLib; accuracy vs true vols."""
    rows = []
    acc_vs = "max |iv - true vol| on identifiable inputs"

    def one(r: dict[str, Any]) -> Entry:
        notes = []
        if r.get("failures") is not None and r.get("n_checked") is not None:
            notes.append(f"failures {r['failures']:,}/{r['n_checked']:,}")
        if r.get("scaled"):
            notes.append(f"timed on {r.get('timed_n', 0):,}, scaled")
        return entry(str(r.get("implementation")), _rate(r, "ivs_per_s"), accuracy=r.get("max_err"), accuracy_vs=acc_vs,
                     note="; ".join(notes) or None)  # fmt: skip

    for n, recs in _group(_results(data), "n").items():
        best = _best([r for r in recs if _is_ours(r)], "ivs_per_s")
        peers = [one(r) for r in recs if not _is_ours(r)]
        rows.append(make_row(f"N={n:,}" if isinstance(n, int) else f"N={n}", n, "IVs/s", one(best) if best else None, peers))
    return rows


def extract_simulation(data: dict[str, Any]) -> list[Row]:
    """simulation.py: per model and dtype, the fastest gpu_hedge backend vs the peers run for that model and dtype
    (plain NumPy loop, pfhedge; JSON "peers"), ratios ours / peer; accuracy: the terminal-spot check against E[S_T].

    Files written before the peers were added have no "peers" and no per-record check: their rows have no peers."""
    rows = []
    acc_vs = "|mean S_T / E[S_T] - 1| across paths, E[S_T] = S0 exp((r - q) T) (MC noise: z in note)"
    mem = "peak RSS above the RSS just before one untimed call, fresh subprocess, arrays >= 64 KiB mmapped, heap trimmed (MB)"
    raw_peers = data.get("peers")
    peer_recs = [r for r in raw_peers if isinstance(r, dict)] if isinstance(raw_peers, list) else []

    def one(r: dict[str, Any], name: str) -> Entry:
        ck = r.get("check") if isinstance(r.get("check"), dict) else {}
        z = _num(ck.get("z_mean_ST"))
        note = None if z is None else f"S_T mean z {z:+.1f}" + ("" if ck.get("ok", True) else ", check FAILED")
        return entry(name, _rate(r, "path_steps_per_s"), accuracy=ck.get("rel_err_mean_ST"),
                     accuracy_vs=acc_vs if "rel_err_mean_ST" in ck else None, peak_mb=r.get("peak_extra_mb"), note=note)  # fmt: skip

    ours_recs = [r for r in _results(data) if r.get("implementation") is None or _is_ours(r)]
    for (model, dtype), recs in _group(({**r, "_key": (r.get("model"), r.get("dtype"))} for r in ours_recs), "_key").items():
        best = _best(recs, "path_steps_per_s")
        ours = one(best, f"gpu_hedge {best.get('backend')} {dtype}") if best is not None else None
        peers = [one(r, str(r.get("label") or r.get("implementation")) + f" {dtype}")
                 for r in peer_recs if r.get("model") == model and r.get("dtype") == dtype]  # fmt: skip
        r0 = best or recs[0]
        n_paths, n_steps = r0.get("n_paths"), r0.get("n_steps")
        size = n_paths * n_steps if isinstance(n_paths, int) and isinstance(n_steps, int) else None
        case = f"{model}, {dtype}, {n_paths:,} x {n_steps}" if size else f"{model}, {dtype}"
        has_mem = any(e and e.get("peak_mb") is not None for e in [ours, *peers])
        rows.append(make_row(case, size, "path-steps/s", ours, peers, memory=mem if has_mem else None))
    return rows


def extract_hedging(data: dict[str, Any]) -> list[Row]:
    """hedging.py: "hedge only" (vs the plain loop and pfhedge) and "simulate + hedge" (streamed or not, vs pfhedge)."""
    settings = data.get("settings", {}) if isinstance(data.get("settings"), dict) else {}
    checks = data.get("checks", {}) if isinstance(data.get("checks"), dict) else {}
    n_paths, n_steps = settings.get("n_paths"), settings.get("n_steps")
    work = n_paths * n_steps if isinstance(n_paths, int) and isinstance(n_steps, int) else None
    mem = "peak RSS minus RSS after the worker's imports (MB)"
    ok = [r for r in _results(data) if "error" not in r]

    def rate(m: dict[str, Any]) -> float | None:
        if _pos(m.get("path_steps_per_s")):
            return float(m["path_steps_per_s"])
        return work / m["best_s"] if work and _pos(m.get("best_s")) else None

    def ours_candidates(modes: tuple[str, ...]) -> list[tuple[float, Entry]]:
        out = []
        for r in ok:
            if not _is_ours(r):
                continue
            b = r.get("backend") or str(r["implementation"]).split(" ", 1)[-1]
            for mode in modes:
                m = r.get(mode)
                if not isinstance(m, dict) or rate(m) is None:
                    continue
                if mode == "streamed":
                    key, vs = f"hedge_simulated_{b}_vs_hedge_on_simulate_max_abs_diff", f"gpu_hedge {b} hedge on simulated paths"
                elif b == "numpy":
                    key, vs = "plain_vs_gpu_hedge_numpy_max_abs_diff", "plain numpy loop, same paths"
                else:
                    key, vs = f"gpu_hedge_{b}_vs_numpy_same_paths_max_abs_diff", "gpu_hedge numpy, same paths"
                label = r["implementation"] + (" (streamed)" if mode == "streamed" else "")
                e = entry(label, rate(m), accuracy=checks.get(key), accuracy_vs=f"max |P&L diff| per path vs {vs}",
                          peak_mb=m.get("peak_extra_mb"))  # fmt: skip
                out.append((e["throughput"], e))
        return out

    def peer(name: str, mode: str) -> Entry | None:
        r = next((x for x in ok if x.get("implementation") == name), None)
        m = r.get(mode) if r else None
        if not isinstance(m, dict):
            return None
        key = "plain_vs_gpu_hedge_numpy_max_abs_diff" if name == "plain numpy loop" else "gh_on_pfhedge_paths_max_abs_diff"
        vs = "gpu_hedge numpy on the same paths" if name == "plain numpy loop" else "gpu_hedge on pfhedge's paths (P&L adjusted)"
        acc_vs = f"max |P&L diff| per path vs {vs}"
        return entry(name, rate(m), accuracy=checks.get(key), accuracy_vs=acc_vs, peak_mb=m.get("peak_extra_mb"))

    # a failed worker's record is {"implementation": <worker name>, "error": [...]}; worker "plain" is the plain loop
    failed = {"plain numpy loop" if r.get("implementation") == "plain" else str(r.get("implementation")) for r in _results(data)
              if "error" in r}  # fmt: skip
    rows = []
    size_txt = f"{n_paths:,} x {n_steps}" if work else "?"
    for case, modes, peer_modes in (
        ("hedge only", ("hedge_only",), (("plain numpy loop", "hedge_only"), ("pfhedge", "hedge_only"))),
        ("simulate + hedge", ("end_to_end", "streamed"), (("pfhedge", "end_to_end"),)),
    ):
        cands = ours_candidates(modes)
        ours = max(cands, key=lambda c: c[0])[1] if cands else None
        peers = []
        for name, mode in peer_modes:
            e = peer(name, mode)
            if e is None and name in failed:
                e = entry(name, None, note="worker failed")
            if e is not None:
                peers.append(e)
        if ours or peers:
            rows.append(make_row(f"{case}, {size_txt}", work, "path-steps/s", ours, peers, memory=mem))
    return rows


def extract_book_job(data: dict[str, Any]) -> list[Row]:
    """book_job.py: per N, best gpu_hedge backend vs pandas + py_vollib_vectorized and plain NumPy (end to end)."""
    rows = []
    mem = "peak RSS of the whole worker process during the job (MB)"
    acc_vs = "max rel diff vs gpu_hedge numpy (by-underlying delta, ladder P&L)"

    def acc(r: dict[str, Any]) -> float | None:
        d = r.get("max_rel_diff_vs_gpu_hedge_numpy")
        if not isinstance(d, dict):
            return None
        picked = [d[k] for k in ("by_underlying_delta", "ladder_pnl") if k in d]
        return _max_num(picked or d.values())

    def one(r: dict[str, Any]) -> Entry:
        note = None
        if "seconds" not in r:
            note = "timed out" if r.get("timed_out") else ("skipped" if r.get("skipped") else "failed")
        elif r.get("implementation") == "gpu_hedge numpy":
            note = "accuracy reference"
        return entry(str(r.get("implementation")), r.get("positions_per_s"), accuracy=acc(r), accuracy_vs=acc_vs,
                     peak_mb=r.get("peak_rss_mb"), note=note)  # fmt: skip

    for n, recs in _group(_results(data), "n").items():
        best = _best([r for r in recs if _is_ours(r)], "positions_per_s")
        peers = [one(r) for r in recs if not _is_ours(r)]
        rows.append(make_row(f"N={n:,}" if isinstance(n, int) else f"N={n}", n, "positions/s", one(best) if best else None, peers,
                             memory=mem))  # fmt: skip
    return rows


def extract_surface_fit(data: dict[str, Any]) -> list[Row]:
    """surface_fit.py: best gpu_hedge fit_surface backend vs the per-slice scipy least_squares loop; accuracy vs true vols."""
    recs = _results(data)
    acc_vs = "max per-slice RMSE vs the generating vols (vol points)"

    def one(r: dict[str, Any]) -> Entry:
        note = f"butterfly violations {r.get('butterfly_violations')}, calendar {r.get('calendar_violations')}"
        return entry(str(r.get("implementation")), _rate(r, "slices_per_s"), accuracy=r.get("rmse_true_max_volpt"),
                     accuracy_vs=acc_vs, note=note)  # fmt: skip

    best = _best([r for r in recs if _is_ours(r)], "slices_per_s")
    peers = [one(r) for r in recs if not _is_ours(r)]
    n = (data.get("settings") or {}).get("n_slices")
    return [make_row(f"slices={n:,}" if isinstance(n, int) else f"slices={n}", n, "slices/s", one(best) if best else None, peers)]


def extract_american(data: dict[str, Any]) -> list[Row]:
    """american.py: best gpu_hedge per-core throughput (ALO) vs each QuantLib engine; accuracy vs QdFp high precision."""
    recs = _results(data)
    acc_vs = "max relative price difference vs QuantLib QdFp high precision (QuantLib sample)"

    def one(r: dict[str, Any]) -> Entry:
        acc = (r.get("accuracy_vs_qdfp_high_precision") or {}).get("price_rel_max")
        return entry(str(r.get("implementation")), _rate(r, "options_per_s_per_core"), accuracy=acc, accuracy_vs=acc_vs,
                     note="per core; " + str(r.get("greeks")))  # fmt: skip

    best = _best([r for r in recs if _is_ours(r) and r.get("method") == "alo"], "options_per_s_per_core")
    peers = [one(r) for r in recs if not _is_ours(r)]
    n = (data.get("settings") or {}).get("n")
    return [make_row(f"n={n:,}" if isinstance(n, int) else f"n={n}", n, "options/s per core", one(best) if best else None, peers)]


# --- the registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script: its module (in benchmarks/), its quick and full arguments, and its summary extraction.

    ``entry`` replaces the module's ``main`` (tests use it to inject a failing benchmark)."""

    name: str
    module: str
    quick_args: tuple[str, ...]
    full_args: tuple[str, ...]
    extract: Callable[[dict[str, Any]], list[Row]]
    entry: Callable[[list[str]], int] | None = field(default=None, compare=False)

    def main(self) -> Callable[[list[str]], int]:
        if self.entry is not None:
            return self.entry
        return importlib.import_module(self.module).main

    def argv(self, quick: bool, backends: str | None, out: Path) -> list[str]:
        args = list(self.quick_args if quick else self.full_args)
        if backends:
            args += ["--backends", backends]
        return args + ["--out", str(out)]


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("greeks", "greeks", ("--sizes", "1e5", "--repeat", "3"), (), extract_greeks),
        Benchmark("implied_vol", "implied_vol", ("--sizes", "1e5", "--repeat", "2", "--ql-sample", "2000"), (), extract_implied_vol),
        Benchmark("simulation", "simulation", ("--paths", "1e4", "--steps", "64", "--repeat", "2"), (), extract_simulation),
        Benchmark("hedging", "hedging", ("--quick", "--rounds", "1", "--repeat", "2"), (), extract_hedging),
        Benchmark("book_job", "book_job", ("--quick",), (), extract_book_job),
        Benchmark("surface_fit", "surface_fit", ("--smoke",), (), extract_surface_fit),
        Benchmark("american", "american", ("--smoke",), (), extract_american),
    )
}


# --- running --------------------------------------------------------------------------------------------


def device_tag(backends: tuple[str, ...]) -> str:
    """The device tag: "cpu", or "gpu-<name>" of the first GPU the backends see (as hedging.py tags its JSON)."""
    gpus = gpu_names(backends)
    return "gpu-" + gpus[0].lower().replace(" ", "-") if gpus else "cpu"


def script_command(bench: Benchmark, argv: list[str]) -> str:
    """The equivalent standalone command line, relative to the repository root."""
    script = BENCH_DIR / f"{bench.module}.py"
    try:
        shown = script.relative_to(REPO)
    except ValueError:
        shown = script
    return shlex.join(["python", str(shown), *argv])


def run_one(bench: Benchmark, argv: list[str], out: Path, console: Any) -> dict[str, Any]:
    """Run one benchmark's ``main(argv)`` in this process and extract its summary; never raises (but on Ctrl-C)."""
    rec: dict[str, Any] = {
        "status": "ok", "argv": argv, "command": script_command(bench, argv), "json": str(out),
        "return_code": None, "error": None, "seconds": None, "rows": [],
    }  # fmt: skip
    before = out.stat().st_mtime_ns if out.is_file() else None
    t0 = time.perf_counter()
    saved_argv = sys.argv
    sys.argv = [str(BENCH_DIR / f"{bench.module}.py"), *argv]  # what the script records as its command
    try:
        rc = bench.main()(list(argv))
        rec["return_code"] = rc if isinstance(rc, int) else (0 if rc is None else 1)
    except SystemExit as e:  # argparse errors, or a script's raise SystemExit
        rec["return_code"] = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if rec["return_code"]:
            rec["error"] = f"SystemExit({e.code!r})"
    except Exception as e:  # noqa: BLE001 - one benchmark's failure must not stop the suite
        rec["error"] = f"{type(e).__name__}: {e}"
        rec["traceback"] = traceback.format_exc()[-4000:]
    finally:
        sys.argv = saved_argv
        rec["seconds"] = time.perf_counter() - t0
    if rec["return_code"] not in (None, 0) and rec["error"] is None:
        rec["error"] = f"main() returned {rec['return_code']}"
    # only a JSON written by this run counts: an older file at that path is another run's
    if out.is_file() and out.stat().st_mtime_ns != before:
        try:
            rec["rows"] = bench.extract(json.loads(out.read_text()))
            if not rec["rows"]:
                rec["extract_error"] = "no summary rows found in the JSON"
        except Exception as e:  # noqa: BLE001
            rec["extract_error"] = f"{type(e).__name__}: {e}"
    elif rec["error"] is None:
        rec["error"] = f"no JSON written to {out}"
    if rec["error"] or rec.get("extract_error"):
        rec["status"] = "failed"
        console.print(f"[red]benchmark {bench.name} failed: {rec['error'] or rec['extract_error']}[/red]")
    return rec


def _parse_names(text: str | None, parser: argparse.ArgumentParser, registry: dict[str, Benchmark]) -> list[str]:
    if not text:
        return []
    names = [s.strip().replace("-", "_") for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(registry)}")
    return names


# --- the summary table ----------------------------------------------------------------------------------


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:.3g}"


def _fmt_e(x: float | None) -> str:
    return "-" if x is None else f"{x:.1e}"


def _fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


REFERENCE = "accuracy reference"


def _fmt_acc(e: Entry | None) -> str:
    if not e:
        return "-"
    return "ref" if e.get("note") == REFERENCE else _fmt_e(e.get("accuracy"))


def _note(e: Entry | None) -> str | None:
    n = (e or {}).get("note")
    return None if n == REFERENCE else n


def summary_table(benchmarks: dict[str, dict[str, Any]], title: str) -> Any:
    """A Rich table: one line per (benchmark row, peer), our figures on a row's first line; failures as FAILED lines."""
    from rich.table import Table

    table = Table(title=title)
    cols = ("benchmark", "case", "ours (best)", "ours M/s", "ours diff", "ours MB", "peer", "peer M/s", "ours/peer", "peer diff",
            "peer MB", "note")  # fmt: skip
    text_cols = {"benchmark": None, "case": None, "ours (best)": 18, "peer": 20, "note": 22}  # name -> min width
    for c in cols:
        if c in text_cols:
            table.add_column(c, min_width=text_cols[c], overflow="fold")
        else:
            table.add_column(c, justify="right", no_wrap=True)

    def failed_line(name: str, rec: dict[str, Any]) -> None:
        table.add_row(name, "[red]FAILED[/red]", *[""] * 9, str(rec.get("error") or rec.get("extract_error"))[:80])

    for name, rec in benchmarks.items():
        rows = rec.get("rows") or []
        if rec.get("status") != "ok" and not rows:
            failed_line(name, rec)
            continue
        for row in rows:
            o = row.get("ours")
            ours_cells = [(o or {}).get("implementation", "-"), _fmt_rate((o or {}).get("throughput")), _fmt_acc(o)]
            ours_cells.append(_fmt_mb((o or {}).get("peak_mb")))
            ours_note = f"ours: {_note(o)}" if _note(o) else None
            for i, p in enumerate(row.get("peers") or [None]):
                first = i == 0
                left = [name, row.get("case", "")] + ours_cells if first else [""] * 6
                peer_note = _note(p)
                if first and ours_note and peer_note:
                    peer_note = f"peer: {peer_note}"
                notes = "; ".join(x for x in (ours_note if first else None, peer_note) if x)
                if p is None:
                    table.add_row(*left, "(no peer)", "-", "-", "-", "-", notes)
                    continue
                ratio = p.get("ratio")
                table.add_row(*left, p.get("implementation", "-"), _fmt_rate(p.get("throughput")),
                              "-" if ratio is None else f"{ratio:.2f}x", _fmt_acc(p), _fmt_mb(p.get("peak_mb")), notes)  # fmt: skip
        if rec.get("status") != "ok":
            failed_line(name, rec)
    return table


def legend(benchmarks: dict[str, dict[str, Any]]) -> list[str]:
    """Per benchmark: the throughput unit, what each 'max diff' is measured against, and what 'peak MB' is."""
    lines = []
    for name, rec in benchmarks.items():
        units: list[str] = []
        accs: list[str] = []
        mems: list[str] = []
        for row in rec.get("rows", []):
            for lst, v in [(units, row.get("unit")), (mems, row.get("memory_metric"))] + [
                (accs, (e or {}).get("accuracy_vs")) for e in [row.get("ours"), *(row.get("peers") or [])]
            ]:
                if v and v not in lst:
                    lst.append(v)
        if units:
            parts = [f"throughput in {', '.join(units)}"]
            parts.append("diff: " + (" | ".join(accs) if accs else "none recorded"))
            if mems:
                parts.append("MB: " + " | ".join(mems))
            lines.append(f"{name}: " + "; ".join(parts))
    return lines


# --- main -----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, registry: dict[str, Benchmark] | None = None) -> int:
    """Run the selected benchmarks, print the summary table, write ``suite-<device>.json``; 1 if any failed."""
    from rich.console import Console

    registry = BENCHMARKS if registry is None else registry
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes for every benchmark (about 2 minutes on 2 cores)")
    p.add_argument("--only", default=None, help=f"comma-separated benchmarks to run (of {', '.join(registry)})")
    p.add_argument("--skip", default=None, help="comma-separated benchmarks to leave out")
    p.add_argument("--backends", default=None, help="gpu_hedge backends, passed to every benchmark (default: all available)")
    p.add_argument("--out-dir", default=None,
                   help="where the JSON files go (default benchmarks/results/; with --quick benchmarks/results/quick/)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the command lines and stop")
    args = p.parse_args(argv)

    only = _parse_names(args.only, p, registry)
    skip = set(_parse_names(args.skip, p, registry))
    selected = [n for n in registry if (not only or n in only) and n not in skip]
    if not selected:
        p.error("no benchmark selected")
    default_out = BENCH_DIR / "results" / ("quick" if args.quick else "")
    out_dir = Path(args.out_dir) if args.out_dir else default_out

    console = Console()
    if not console.is_terminal:
        console = Console(width=190)
    if args.backends:
        backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    else:
        import gpu_hedge

        backends = tuple(gpu_hedge.available_backends())
    device = device_tag(backends)
    plans: dict[str, tuple[Benchmark, Path, list[str]]] = {}
    for n in selected:
        out = out_dir / f"{n}-{device}.json"
        plans[n] = (registry[n], out, registry[n].argv(args.quick, args.backends, out))
    if args.dry_run:
        for n, (b, _, bargv) in plans.items():
            console.print(f"{n}: {script_command(b, bargv)}", soft_wrap=True)
        return 0

    t0 = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for i, (n, (b, out, bargv)) in enumerate(plans.items(), 1):
        console.rule(f"[bold]{i}/{len(plans)} {n}[/bold]: {script_command(b, bargv)}")
        results[n] = run_one(b, bargv, out, console)
    total = time.perf_counter() - t0

    failed = [n for n, r in results.items() if r["status"] != "ok"]
    mode = "quick" if args.quick else "full"
    console.rule("[bold]summary")
    console.print(summary_table(results, f"Benchmark suite ({mode}), device {device}: ours vs peers, each ratio from one run"))
    console.print(
        "'M/s': millions of the benchmark's unit per second, over the median of its timed rounds where the benchmark records "
        "one (greeks, implied_vol, simulation; hedging takes its own median of rounds), else its best; "
        "'ours/peer': our best configuration's throughput / the peer's, same run; "
        "'diff': the max difference the benchmark records against its reference ('ref': this one is the reference); "
        "'MB': peak memory as the benchmark records it:"
    )
    for line in legend(results):
        console.print(f"  {line}", soft_wrap=True)
    data = {
        "benchmark": "suite",
        "date": now_iso(),
        "command": shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "device": device,
        "machine": describe_machine(backends),
        "versions": {**versions(), **_peer_versions()},
        "settings": {
            "mode": mode,
            "backends": list(backends),
            "backends_passed": args.backends,
            "selected": selected,
            "out_dir": str(out_dir),
            "total_s": total,
            "ratio": "ours / peer = our best implementation's throughput / the peer's, both from the same benchmark run",
        },
        "failed": failed,
        "benchmarks": results,
    }
    path = write_json(out_dir / f"suite-{device}.json", data)
    console.print(f"{len(results)} benchmark(s) in {total:.0f} s; wrote {path}")
    if failed:
        console.print(f"[red]failed: {', '.join(failed)}[/red]")
    return 1 if failed else 0


def _peer_versions() -> dict[str, str | None]:
    import importlib.metadata

    out: dict[str, str | None] = {}
    for d in ("pandas", "pyarrow", "numba", "py_vollib_vectorized", "QuantLib", "pfhedge", "torch", "rich"):
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            out[d] = None
    return out


if __name__ == "__main__":
    raise SystemExit(main())
