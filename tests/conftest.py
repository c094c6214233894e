"""Shared fixtures: one test body, every backend usable here.

``bk`` is parametrised over the backends this machine can run (NumPy, and JAX on CPU when it is
installed; CuPy where a GPU is present). Restrict with ``GPU_HEDGE_TEST_BACKENDS=numpy,jax``.
Tests marked ``gpu`` skip cleanly without a GPU; the ``bk`` parameters that run on a GPU (CuPy, JAX
with a GPU) carry the mark, so ``pytest -m gpu`` runs every backend-parametrised test there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gpu_hedge

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _test_backends() -> list[str]:
    usable = list(gpu_hedge.available_backends())
    wanted = os.environ.get("GPU_HEDGE_TEST_BACKENDS")
    if wanted:
        names = [w.strip() for w in wanted.split(",") if w.strip()]
        return [n for n in names if n in usable]
    return usable


BACKENDS = _test_backends()


def _on_gpu(name: str) -> bool:
    """Whether backend ``name`` runs on a GPU here (CuPy always; JAX when its default device is one)."""
    if name == "cupy":
        return True
    if name == "jax":
        from gpu_hedge._backends import _jax_gpu_status

        return _jax_gpu_status()
    return False


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bk" in metafunc.fixturenames:
        # ``pytest -m gpu`` selects every test body on every backend that runs on a GPU here
        params = [pytest.param(n, marks=[pytest.mark.gpu] if _on_gpu(n) else [], id=n) for n in BACKENDS]
        metafunc.parametrize("bk", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(_on_gpu(n) for n in gpu_hedge.available_backends()):
        return
    skip = pytest.mark.skip(reason="needs a GPU (CuPy with a CUDA device, or JAX with a GPU); none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def xp_of():
    """The array namespace a backend name returns."""
    return lambda name: gpu_hedge.get_backend(name).xp
