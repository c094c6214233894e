"""CuPy adapter. Importing this module imports CuPy; call only after the GPU probe said yes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import array_api_compat.cupy as xp_cupy
import cupy
import cupyx.scipy.special as csp
import numpy as np

SPECIAL = SimpleNamespace(
    ndtr=csp.ndtr,
    ndtri=csp.ndtri,
    log_ndtr=csp.log_ndtr,
    erfc=csp.erfc,
    erfcx=csp.erfcx,
    # Traced / asynchronous arrays cannot be inspected cheaply: compute both branches and select.
    lazy_where=lambda cond, if_true, if_false: cupy.where(cond, if_true(), if_false()),
)


class CupyBackend:
    """CuPy backend: arrays on the current CUDA device, whole-array kernels."""

    name = "cupy"
    capabilities = frozenset({"gpu"})
    xp = xp_cupy
    special = SPECIAL

    def __init__(self) -> None:
        dev = cupy.cuda.Device()
        props = cupy.cuda.runtime.getDeviceProperties(dev.id)
        self.device = f"cuda:{dev.id} ({props['name'].decode()})"

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        return cupy.asarray(x, dtype=dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return cupy.asnumpy(x)

    @staticmethod
    def jit(fn: Callable) -> Callable:
        return fn

    @staticmethod
    def sync(x: Any) -> Any:
        cupy.cuda.get_current_stream().synchronize()
        return x

    def elementwise(
        self,
        kernel: Callable[..., Mapping[str, Any]],
        arrays: Sequence[Any],
        names: Sequence[str],
        dtype: Any,
        key: Any = None,
    ) -> dict[str, Any]:
        arrs = [cupy.asarray(a, dtype=dtype) for a in arrays]
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
        res = kernel(self.xp, self.special, *arrs)
        return {n: cupy.ascontiguousarray(cupy.broadcast_to(res[n], shape)) for n in names}

    def __repr__(self) -> str:
        return f"CupyBackend(device={self.device!r})"
