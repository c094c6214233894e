"""Shared type aliases."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import numpy.typing as npt

#: Anything that converts to an array: scalars, sequences, NumPy / CuPy / JAX arrays.
ArrayLike: TypeAlias = npt.ArrayLike | Any
#: An array on some backend (numpy.ndarray, cupy.ndarray or jax.Array).
Array: TypeAlias = Any
Model = Literal["bsm", "black76", "bachelier"]
OnInvalid = Literal["raise", "nan"]
