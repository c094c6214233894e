"""benchmarks/gpu_suite.py without a GPU: the CPU dry run (tiny sizes) and the no-GPU path.

Every run hides the GPUs (``CUDA_VISIBLE_DEVICES=""``, ``JAX_PLATFORMS=cpu``), so these tests take the
CPU path on any machine and never start the full suite.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import gpu_suite  # noqa: E402

#: (benchmark, dtype) rows a dry run writes per backend with the default sizes and both dtypes
EXPECTED = {("copy D2D", "float64")} | {
    (b, dt)
    for dt in ("float64", "float32")
    for b in ("greeks", "hedge", "book ladder", "implied vol", "simulate gbm", "simulate heston", "hedge_simulated")
}


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", GPU_HEDGE_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_suite", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def _check_results(data: dict[str, Any], backend: str) -> None:
    rows = [r for r in data["results"] if r["backend"] == backend]
    assert {(r["benchmark"], r["dtype"]) for r in rows} == EXPECTED
    assert sum(r["benchmark"] == "greeks" for r in rows) == 4  # two sizes x two dtypes
    for r in rows:
        where = f"{r['benchmark']} {r['dtype']} {backend}: {r.get('reason')}"
        assert r["status"] == "ok", where
        assert r["time_s"] > 0 and all(t > 0 for t in r["times_s"]) and r["first_call_s"] > 0, where
        assert r["throughput"] > 0, where
        assert r["check_ok"] is True, where
        if r["benchmark"] != "copy D2D":
            tol = 1e-9 if r["dtype"] == "float64" else 2e-2
            assert 0 <= r["max_rel_diff"] <= tol, where
            assert r["finite_only_here"] == 0, where
        if r["benchmark"] == "greeks":
            assert r["bytes_per_option"] == (97 if r["dtype"] == "float64" else 49)
            assert 0 < r["fraction_of_copy_bw"]
        if r["benchmark"] in ("hedge", "hedge_simulated"):
            assert r["target_s"] == gpu_suite.HEDGE_TARGET_S and r["n_steps"] == 16
        if r["benchmark"] == "book ladder":
            assert r["size"] == 20_000 and r["scenarios"] == 9 and r["build_s"] > 0
    assert data["copy_bandwidth_gb_per_s"][backend] > 0
    worker = next(w for w in data["workers"] if w["backend"] == backend)
    assert worker["worker"]["returncode"] == 0 and worker["finished"]


def test_no_gpu_path_exits_0_with_a_clear_message(tmp_path: Path) -> None:
    out = tmp_path / "suite.json"
    r = _run(["--out", str(out)], timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "NO GPU found" in r.stdout and "--cpu-dry-run" in r.stdout
    assert "CuPy" in r.stdout and "JAX" in r.stdout
    assert not out.exists()


def test_cpu_dry_run_numpy(tmp_path: Path) -> None:
    """The whole suite on the NumPy backend, tiny sizes, the pytest step included: a few seconds."""
    out = tmp_path / "suite.json"
    r = _run(["--cpu-dry-run", "--backends", "numpy", "--out", str(out)], timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "gpu_suite" and data["mode"] == "cpu-dry-run" and data["device"] == "cpu-dry-run"
    for key in ("date", "machine", "versions", "devices", "settings", "tests", "notes", "elapsed_s"):
        assert key in data
    assert {"cupy", "jax", "gpu_backends", "available_backends"} <= set(data["devices"])
    assert data["tests"]["returncode"] == 0 and not data["tests"]["timed_out"] and data["tests"].get("failed", 0) == 0
    assert data["settings"]["backends"] == ["numpy"]
    _check_results(data, "numpy")
    assert r.stdout.rstrip().splitlines()[-1].startswith("└")  # the table comes last


@pytest.mark.slow
def test_cpu_dry_run_jax(tmp_path: Path) -> None:
    """The same on JAX (CPU): about 45 s here, XLA compiles some twenty kernels."""
    out = tmp_path / "suite.json"
    r = _run(["--cpu-dry-run", "--backends", "jax", "--no-tests", "--out", str(out)], timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["tests"] is None
    _check_results(data, "jax")


def test_rel_diff_and_pytest_parsing() -> None:
    d = gpu_suite.rel_diff([1.0, 2.0 + 2e-9, math.nan, 5.0], [1.0, 2.0, 3.0, math.nan], 1e-10)
    assert d["max_rel_diff"] == pytest.approx(1e-9) and d["nan_only_here"] == 1 and d["finite_only_here"] == 1
    assert gpu_suite.rel_diff([0.0, 1e-12], [0.0, 0.0], 1.0)["max_rel_diff"] == pytest.approx(1e-12)
    done = gpu_suite.parse_pytest(
        ["..F.s", "FAILED tests/test_x.py::test_y[cupy] - assert 0", "1 failed, 3 passed, 1 skipped, 9 deselected in 2.1s"], False
    )
    assert (done["passed"], done["failed"], done["skipped"], done["deselected"]) == (3, 1, 1, 9)
    assert done["failures"] == ["FAILED tests/test_x.py::test_y[cupy] - assert 0"]
    killed = gpu_suite.parse_pytest(["..F.s..  [ 40%]", "...E"], True)
    assert (killed["passed"], killed["failed"], killed["errors"], killed["skipped"]) == (8, 1, 1, 1)


def test_stream_kills_at_the_timeout() -> None:
    rc, lines, timed_out, secs = gpu_suite.stream(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"], os.environ.copy(), 2.0, "[t] "
    )
    assert rc is None and timed_out and lines == ["started"] and secs < 30
