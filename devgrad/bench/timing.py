"""Timing for ``devgrad bench``: blocks of calls long enough to time, taken in turns.

Times are seconds per call; each block ends with the device's synchronize so that queued
GPU work is counted. Implementations take turns block by block (or, for PyTorch, in phases
of their own) so that a drifting machine speed reaches all of them alike.
"""

from __future__ import annotations

import statistics
import time


def calibrate(fn, sync, min_block_s: float) -> int:
    """Warm up, then find how many calls make one block of at least ``min_block_s``."""
    for _ in range(3):
        fn()
    sync()
    inner = 1
    while True:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        sync()
        if time.perf_counter() - start >= min_block_s or inner >= 1 << 14:
            return inner
        inner *= 2


def block(fn, sync, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - start) / inner


def time_calls(fn, sync, repeat: int, min_block_s: float) -> list[float]:
    """Seconds per call over ``repeat`` blocks, each long enough to time reliably."""
    inner = calibrate(fn, sync, min_block_s)
    return [block(fn, sync, inner) for _ in range(repeat)]


def time_interleaved(impls: dict, repeat: int, min_block_s: float, inner: dict | None = None,
                     pause_s: float = 0.0) -> dict:
    """Like ``time_calls`` for several implementations, taking turns block by block.

    On a shared machine the available CPU drifts; interleaving exposes every implementation
    to the same drift, so their ratio stays meaningful even when absolute times wobble.
    ``inner`` (calls per block, by name) is calibrated when not given, and filled in.
    ``pause_s``: a sleep before every block, so that the worker threads of the previous block's
    BLAS (OpenBLAS spins for a while after each call) have gone idle and steal no core from it.
    """
    if inner is None:
        inner = {}
    for name, (fn, sync) in impls.items():
        if name not in inner:
            inner[name] = calibrate(fn, sync, min_block_s)
    samples: dict = {name: [] for name in impls}
    for _ in range(repeat):
        for name, (fn, sync) in impls.items():
            if pause_s:
                time.sleep(pause_s)
            samples[name].append(block(fn, sync, inner[name]))
    return samples


def time_in_rounds(ours: dict, theirs: dict, repeat: int, min_block_s: float, rounds: int = 3,
                   settle_s: float = 0.3, pause_s: float = 0.0) -> dict:
    """Time ``ours`` interleaved block by block, and ``theirs`` (PyTorch) in phases of its own,
    alternating over ``rounds`` so a drift of the machine's speed reaches both alike.

    PyTorch runs its own thread pool; interleaved with NumPy's, the two fight for the cores
    (OpenMP workers spin for a while after each op), hence separate phases, each followed
    by a pause that lets the spinning threads go idle; ``pause_s`` is the pause before each block.
    """
    inner: dict = {}
    samples: dict = {name: [] for name in (*ours, *theirs)}
    per_round = [repeat // rounds + (1 if i < repeat % rounds else 0) for i in range(rounds)]
    for count in per_round:
        if not count:
            continue
        for group in (ours, theirs):
            for name, values in time_interleaved(group, count, min_block_s, inner, pause_s).items():
                samples[name] += values
            time.sleep(settle_s)
    return samples


def stats(samples: list[float]) -> dict:
    q = statistics.quantiles(samples, n=4) if len(samples) >= 2 else [samples[0]] * 3
    return {"median_ms": statistics.median(samples) * 1e3, "iqr_ms": (q[2] - q[0]) * 1e3, "runs": len(samples)}
