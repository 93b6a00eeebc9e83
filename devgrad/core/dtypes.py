"""Dtypes: the default float and the names a dtype may be given by."""

from __future__ import annotations

import numpy as np

DEFAULT_FLOAT = np.float32

_DTYPE_ALIASES = {
    "float": np.float32, "float32": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int": np.int64, "int64": np.int64,
    "int32": np.int32, "long": np.int64, "bool": np.bool_, "uint8": np.uint8,
}


def as_dtype(dtype) -> np.dtype | None:
    """Normalise a dtype given as a string, NumPy type or dtype (None stays None)."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.strip().lower()
        if key not in _DTYPE_ALIASES:
            raise TypeError(f"unknown dtype {dtype!r}: use one of {', '.join(sorted(_DTYPE_ALIASES))}")
        return np.dtype(_DTYPE_ALIASES[key])
    return np.dtype(dtype)

