"""How much memory a run needs, estimated from its spec before anything is allocated, and a
clear refusal when it cannot fit in the memory this machine has available.

The estimate counts what a run holds at its peak: the data while it is read (or generated) and
split, then kept as float64 splits and as the loaders' copies in the run's dtype; the model's
weights, gradients, optimizer state and the checkpoint copies of them; a training batch's
activations. It is host memory: on a GPU the loaders, model and activations live on the device,
and the checkpoint copies come back to the host, so the host total is not smaller by much.
"""

from __future__ import annotations

import math
import os
from itertools import pairwise
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from devgrad.core import Tensor
from devgrad.data.dataset import split_sizes
from devgrad.data.shapes import FLOAT64, DataShape, data_shape
from devgrad.experiment.build import build_optimizer
from devgrad.experiment.errors import RunError
from devgrad.experiment.spec import Spec

LABEL_BYTES = 8  # int64 class indices or float64 targets
# Checkpoint copies of the weights and the optimizer state: the newest epoch's, the best
# epoch's, and the host copy being written.
SNAPSHOTS = 3
# Per row and layer of a training step: the linear output, the activation's output, and the
# gradients of both in backward.
ACTIVATION_COPIES = 4
EVAL_BATCH = 4096  # the trainer evaluates in batches of at least this many rows
STAND_IN = 64  # size of the parameter the optimizer's state is measured on
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Estimate:
    """A run's memory at its peak (bytes), and its parts: the data, the model (weights,
    gradients, optimizer state, checkpoint copies), a training batch's activations."""

    data_bytes: int
    model_bytes: int
    activation_bytes: int
    peak_bytes: int
    n_parameters: int
    batch_rows: int
    widths: tuple
    shape: DataShape


def optimizer_state_per_value(spec: Spec) -> tuple[float, float]:
    """Optimizer values per parameter value: (state, which checkpoints copy: Adam 2, SGD
    without momentum 0; scratch buffers), measured by one step of the spec's optimizer on a
    stand-in parameter."""
    p = Tensor(np.zeros(STAND_IN, dtype=spec.dtype), requires_grad=True, device="cpu")
    (p * p).sum().backward()
    optimizer = build_optimizer(spec, [p])
    optimizer.step()
    sizes = [(key.startswith("_"), v.size) for state in optimizer.state.values() for key, v in state.items()
             if hasattr(v, "shape") and v.size == STAND_IN]
    return (sum(size for scratch, size in sizes if not scratch) / STAND_IN,
            sum(size for scratch, size in sizes if scratch) / STAND_IN)


def estimate(spec: Spec, shape: DataShape | None = None) -> Estimate:
    """The memory a run of ``spec`` needs, from the spec and the data's shape (``data_shape``;
    where that is unknown without reading, the data counts as nothing and one feature)."""
    shape = shape or data_shape(spec.data.to_dict()) or DataShape(0, 1, None, 0, "the data", "use less data")
    itemsize = np.dtype(spec.dtype).itemsize
    n, f = shape.n_samples, shape.n_features
    n_train = split_sizes(n, spec.data.split.to_dict())[0]
    classes = shape.n_classes or 1  # unknown before the labels are read: one output
    out = classes if classes > 2 or (classes == 2 and spec.loss.name == "cross_entropy") else 1
    widths = (f, *spec.model.hidden, out)
    n_parameters = sum(a * b + (b if spec.model.bias else 0) for a, b in pairwise(widths))
    state, scratch = optimizer_state_per_value(spec)
    model = math.ceil(n_parameters * itemsize * (2 + state + scratch + SNAPSHOTS * (1 + state)))
    rows = spec.train.batch_size or n_train
    rows = min(rows, n_train) if n_train else rows
    train_step = rows * sum(widths[1:]) * itemsize * ACTIVATION_COPIES
    eval_rows = min(max(rows, EVAL_BATCH), n) if n else rows
    evaluation = eval_rows * max(a + b for a, b in pairwise(widths)) * itemsize
    activations = max(train_step, evaluation)
    # Splitting copies the rows the reader returned; then the float64 splits stay for the run,
    # beside the loaders' copies in the run's dtype and one shuffled copy of the train split.
    build = max(shape.read_bytes, 2 * n * (f * FLOAT64 + LABEL_BYTES))
    kept = n * (f * FLOAT64 + LABEL_BYTES) + (n + n_train) * (f * itemsize + LABEL_BYTES)
    peak = max(build, kept + model + activations)
    return Estimate(max(build, kept), model, activations, peak, n_parameters, rows, widths, shape)


def _meminfo_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_free() -> int | None:
    """What this process's cgroup (v2) still lets it allocate, where a limit is set."""
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def available_memory() -> tuple[int, str] | None:
    """(bytes that can still be allocated, where that number comes from), or None where this
    system does not say: MemAvailable of /proc/meminfo, lowered to a container's (cgroup v2)
    remaining limit; without /proc, the free physical pages (os.sysconf)."""
    found = []
    available = _meminfo_available()
    if available is not None:
        found.append((available, "MemAvailable in /proc/meminfo"))
    free = _cgroup_free()
    if free is not None:
        found.append((max(free, 0), "the memory limit of this container (cgroup memory.max)"))
    if not found:
        try:
            found.append((os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical memory"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(found)


def size_text(n_bytes: float) -> str:
    """Bytes for people: '512 B', '3.2 MiB', '37.3 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def check_fits(spec: Spec) -> Estimate:
    """The run's estimate; a RunError (the estimate, what is available, what to change) when
    it exceeds the memory this machine has available."""
    est = estimate(spec)
    available = available_memory()
    if available is None or est.peak_bytes <= available[0]:
        return est
    free, source = available
    parts = [
        (est.data_bytes, f"the data ({est.shape.what}) {size_text(est.data_bytes)}", est.shape.smaller),
        (est.model_bytes, f"the model ({est.n_parameters:,} parameters: {spec.dtype} weights, gradients, "
                          f"{spec.optimizer.name} state and checkpoint copies) {size_text(est.model_bytes)}",
         f"make model.hidden {list(spec.model.hidden)} smaller (fewer or narrower layers)"),
        (est.activation_bytes, f"a training batch's activations ({est.batch_rows:,} rows through layer widths "
                               f"{list(est.widths)}) {size_text(est.activation_bytes)}",
         "set train.batch_size (null trains on the whole train split at once)" if spec.train.batch_size is None
         else f"use a smaller train.batch_size than {spec.train.batch_size}"),
    ]
    largest = max(parts, key=lambda part: part[0])
    raise RunError(f"{spec.name}: this run needs about {size_text(est.peak_bytes)} of memory, more than the "
                   f"{size_text(free)} available ({source}): {'; '.join(p[1] for p in parts)}. The largest part is "
                   f"{largest[1].split(' (')[0]}: {largest[2]}")
