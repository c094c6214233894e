"""Shared helpers for the benchmarks: machine and version description, memory, timing, JSON."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names(backends: tuple[str, ...]) -> list[str]:
    """GPU names seen by the backends in use (empty on a CPU-only machine). Never raises."""
    names: list[str] = []
    if "cupy" in backends:
        try:
            import cupy

            for i in range(cupy.cuda.runtime.getDeviceCount()):
                n = cupy.cuda.runtime.getDeviceProperties(i)["name"]
                names.append(n.decode() if isinstance(n, bytes) else str(n))
        except Exception:
            pass
    if not names and "jax" in backends:
        try:
            import jax

            names = [getattr(d, "device_kind", str(d)) for d in jax.devices() if d.platform == "gpu"]
        except Exception:
            pass
    return names


_SPIN = """
import sys, time
n, start = int(sys.argv[1]), float(sys.argv[2])
while time.time() < start:
    pass
t0 = time.perf_counter()
x = 0
for i in range(n):
    x += i
print(time.perf_counter() - t0)
"""


def parallel_capacity(n: int = 3_000_000) -> float:
    """How many CPUs' worth of work this machine gives right now: ``usable CPUs`` times the time of
    one pure-Python spin over the time the same spins take when that many run at once (2.0 on an
    idle 2-core machine; about 1 when a shared host gives this guest one core's worth). Fresh
    interpreters (no fork of a threaded process), started together at a set wall-clock time.
    Recorded with every benchmark so thread-scaling figures can be read against it."""
    import sys

    try:
        k = len(os.sched_getaffinity(0))
    except AttributeError:
        k = os.cpu_count() or 1

    def spins(count: int) -> list[float]:
        start = time.time() + 0.3
        cmd = [sys.executable, "-c", _SPIN, str(n), repr(start)]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(count)]
        return [float(p.communicate()[0]) for p in procs]

    one = spins(1)[0]
    return round(k * one / max(spins(k)), 2)


def describe_machine(backends: tuple[str, ...]) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gb": mem_gb,
        "gpus": gpu_names(backends),
        "platform": platform.platform(),
        "parallel_capacity_at_start": parallel_capacity(),
    }


def _dist_version(*dists: str) -> str | None:
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def git_revision() -> str | None:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return None
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    import gpu_hedge

    out = {
        "python": platform.python_version(),
        "numpy": _dist_version("numpy"),
        "scipy": _dist_version("scipy"),
        "jax": _dist_version("jax"),
        "jaxlib": _dist_version("jaxlib"),
        "gpu_hedge": gpu_hedge.__version__,
        "gpu_hedge_git": git_revision(),
    }
    if importlib.util.find_spec("cupy") is not None:
        out["cupy"] = _dist_version("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy")
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --- memory -------------------------------------------------------------------------------------------


def rss_mb() -> float | None:
    """Current resident set size in MB (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark for this process (Linux ``clear_refs`` 5). True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS in MB since the last :func:`reset_peak_rss` (VmHWM), else ``getrusage``'s lifetime peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- timing -------------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], sync: Callable[[Any], Any] = lambda x: x) -> tuple[float, Any]:
    """Seconds for ``sync(fn())`` and its result."""
    t0 = time.perf_counter()
    out = sync(fn())
    return time.perf_counter() - t0, out


# --- output ---------------------------------------------------------------------------------------------


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_default) + "\n")
    return path


def _default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)
