"""Shared fixtures: one test body, every backend usable here.

``bk`` is parametrised over the backends this machine can run (NumPy, and JAX on CPU when it is
installed; CuPy where a GPU is present). Restrict with ``GPU_HEDGE_TEST_BACKENDS=numpy,jax``.
Tests marked ``gpu`` skip cleanly without a CUDA device.
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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "bk" in metafunc.fixturenames:
        params = [pytest.param(n, marks=[pytest.mark.gpu] if n == "cupy" else [], id=n) for n in BACKENDS]
        metafunc.parametrize("bk", params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "cupy" in gpu_hedge.available_backends():
        return
    skip = pytest.mark.skip(reason="needs a usable CUDA device (CuPy); none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def xp_of():
    """The array namespace a backend name returns."""
    return lambda name: gpu_hedge.get_backend(name).xp
