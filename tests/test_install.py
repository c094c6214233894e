"""Install hygiene: compiled kernels are cached outside the package, the install works from any
directory, and a stale ``cpu_fallback`` folder is a clear error.

The failure these guard against: Numba's ``cache=True`` wrote ``*.nbi`` / ``*.nbc`` files into
``site-packages/cpu_fallback/__pycache__/``; pip's uninstall left them, and the folder became a
namespace package hiding a later editable install (``cannot import name 'NumpyBackend' from
'cpu_fallback' (unknown location)``). ``.ci/run`` runs README's two commands in order in one clone,
so the tests below that run from another directory see exactly what a newcomer's install does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cpu_fallback
import gpu_hedge

PACKAGE_DIRS = [Path(cpu_fallback.__file__).parent, Path(gpu_hedge.__file__).parent]
CLI = Path(sys.executable).with_name("gpu-hedge")

# every kind of native kernel: Black Greeks, call flags, implied vol, ndtr, a hedge, the simulation steps
KERNELS = """
import numpy as np, gpu_hedge as gh
n = 20_000
s = np.linspace(80.0, 120.0, n)
g = gh.greeks(s, 100.0, 0.5, 0.2, call=np.arange(n) % 2 == 0, greeks=["price", "delta", "gamma", "vega", "theta", "rho"])
v = gh.implied_vol(g["price"], s, 100.0, 0.5, call=np.arange(n) % 2 == 0)
assert np.allclose(v, 0.2, atol=1e-9), float(np.nanmax(abs(v - 0.2)))
for model in (gh.GBM(spot=100.0, vol=0.2), gh.Heston(spot=100.0, v0=0.04, kappa=2.0, theta=0.04, xi=0.5, rho=-0.7)):
    r = gh.hedge_simulated(model, gh.Option(strike=100.0, expiry=0.25), n_paths=5000, n_steps=8, horizon=0.25,
                           seed=1, vol=0.2, strategy=gh.Periodic(), backend="numpy")
    assert np.isfinite(r.pnl).all()
print("ok")
"""


def _nb_files(dirs: list[Path]) -> set[Path]:
    return {p for d in dirs for p in d.rglob("*.nb[ic]")}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPU_HEDGE_BACKEND", "GPU_HEDGE_NUMBA")}
    env.update(extra)
    return env


def test_compiled_kernels_are_cached_outside_the_package(tmp_path):
    before = _nb_files(PACKAGE_DIRS)
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-c", KERNELS], cwd=tmp_path, env=_env(GPU_HEDGE_CACHE_DIR=str(cache)),
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert _nb_files(PACKAGE_DIRS) - before == set(), "Numba wrote its cache inside the installed package"
    cached = {p.name for p in cache.rglob("*.nbi")}
    # one index per compiled kernel, and every module with kernels is represented
    for module in ("_black.", "_iv.", "_ndtr_kernel.", "_hedge.", "_steps."):
        assert any(name.startswith(module) for name in cached), (module, sorted(cached))


def test_cache_dir_setting(monkeypatch, tmp_path):
    from cpu_fallback._jit import cache_dir

    monkeypatch.setenv("GPU_HEDGE_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    for off in ("0", "off", "none", ""):
        monkeypatch.setenv("GPU_HEDGE_CACHE_DIR", off)
        assert cache_dir() is None
    monkeypatch.delenv("GPU_HEDGE_CACHE_DIR")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "nb"))
    assert cache_dir() == tmp_path / "nb"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    default = cache_dir()
    assert default is not None and "gpu_hedge" in default.parts
    assert not any(default.is_relative_to(d) for d in PACKAGE_DIRS)


def test_cache_off_or_unwritable_still_computes(tmp_path):
    """No on-disk cache (switched off, or a directory that cannot be written) still compiles and runs."""
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory would be")
    before = _nb_files(PACKAGE_DIRS)
    for setting in ("off", str(blocked / "sub")):
        out = subprocess.run([sys.executable, "-c", KERNELS], cwd=tmp_path, env=_env(GPU_HEDGE_CACHE_DIR=setting),
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ok"
    assert _nb_files(PACKAGE_DIRS) - before == set()
    assert list(tmp_path.rglob("*.nbi")) == []


def test_import_from_another_directory(tmp_path):
    code = "import gpu_hedge as gh, cpu_fallback; print(cpu_fallback.__file__); print(float(gh.price(100.0, 100.0, 1.0, 0.2)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    where, value = out.stdout.split()
    assert Path(where) == Path(cpu_fallback.__file__)
    assert float(value) == pytest.approx(7.965567455405804, rel=1e-12)  # BS ATM call, S = K = 100, T = 1, vol 0.2


@pytest.mark.skipif(not CLI.exists(), reason="the gpu-hedge console script is not installed beside this interpreter")
def test_cli_from_another_directory(tmp_path):
    env = _env(PATH=f"{CLI.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run([str(CLI), "backends"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "numpy" in out.stdout and '"auto" picks' in out.stdout
    out = subprocess.run([str(CLI), "demo", "--n", "2000"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "2,000 positions" in out.stdout
    assert list(tmp_path.iterdir()) == []  # the demo writes nothing where it runs


def test_stale_cpu_fallback_folder_is_a_clear_error(tmp_path):
    """A ``cpu_fallback`` folder holding only leftovers, found first on the path, is an ImportError that
    names the folder to delete (not 'cannot import name NumpyBackend ... (unknown location)')."""
    stale = tmp_path / "site" / "cpu_fallback" / "__pycache__"
    stale.mkdir(parents=True)
    (stale / "_black._pass_d-31.py311.nbi").write_bytes(b"")
    gpu_root = Path(gpu_hedge.__file__).parents[1]
    # the stale folder first, then gpu_hedge's own location (no cpu_fallback found there first)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "gpu_hedge").symlink_to(gpu_root / "gpu_hedge")
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(shim)]))
    out = subprocess.run([sys.executable, "-c", "import gpu_hedge"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    if "cpu_fallback" in out.stdout + out.stderr and out.returncode == 0:
        pytest.fail("a stale cpu_fallback folder was imported silently")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: gpu_hedge: 'cpu_fallback' resolved to a folder without its sources")
    assert str(tmp_path / "site" / "cpu_fallback") in last


def test_kernel_cache_goes_stale_when_any_package_source_changes(tmp_path):
    """A kernel inlines functions of other modules (the Black passes ``_black_element``'s): its cache
    stamp covers every source file of the package, so editing one of those recompiles it."""
    from cpu_fallback._jit import _package_stamp

    for name in ("_kernel.py", "_inlined.py"):
        (tmp_path / name).write_text("x = 1\n")
    before = _package_stamp(str(tmp_path))
    (tmp_path / "_inlined.py").write_text("x = 2\n")
    _package_stamp.cache_clear()
    after = _package_stamp(str(tmp_path))
    (tmp_path / "notes.txt").write_text("not a source")
    _package_stamp.cache_clear()
    assert before != after and _package_stamp(str(tmp_path)) == after
