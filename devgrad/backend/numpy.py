"""The CPU backend: NumPy arrays in host memory."""

from __future__ import annotations

import resource
import sys

import numpy as np

xp = np


def to_device(array) -> np.ndarray:
    """Return a host NumPy array (no copy when it already is one)."""
    return np.asarray(array)


def to_host(array) -> np.ndarray:
    """Return the array as a host NumPy array."""
    return np.asarray(array)


def scatter_add(target: np.ndarray, index, values) -> None:
    """target[index] += values, accumulating repeated indices."""
    np.add.at(target, index, values)


def generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def uniform(gen: np.random.Generator, shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return gen.random(shape, dtype=dtype)
    return gen.random(shape).astype(dtype)


def sigmoid_(x: np.ndarray) -> np.ndarray:
    """The logistic function in place."""
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
        x += 1
        np.reciprocal(x, out=x)
    return x


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place on one buffer; exp overflowing to inf gives exactly 0, silently."""
    with np.errstate(over="ignore"):
        out = np.negative(x, out=np.empty_like(x))  # an array even for 0-d input
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)
    return out


def synchronize() -> None:
    """NumPy work is synchronous: nothing to wait for."""


def memory_info() -> dict:
    """Peak resident memory of this process in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return {"peak_rss_bytes": peak if sys.platform == "darwin" else peak * 1024}
