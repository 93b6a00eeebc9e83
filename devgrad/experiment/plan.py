"""A run's plan: everything computed once from a validated spec, before any run folder exists.

``make_plan`` is the one way from a ``Spec`` to what a run is made of — its device (a
``Device`` object, resolved once), the data splits, the task, the monitored metric, whether
the training step is captured, MLflow tracking, and the model, optimizer and schedule. ``run``,
``resume``, ``redraw`` and a sweep's runs train from it; ``validate`` checks a spec with a
check-only plan, which describes the data without generating a large set and builds no model.
Every mistake a plan can find is found here, before anything is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from devgrad import nn, optim
from devgrad.backend import Device, cuda_available, cuda_unavailable_reason, parse_device
from devgrad.backend import device as resolve_device
from devgrad.data import DataSummary, Splits, build_splits, describe
from devgrad.data.dataset import split_sizes
from devgrad.experiment import memory, tracking, tracking_service
from devgrad.experiment.build import build_model, build_optimizer, build_scheduler
from devgrad.experiment.errors import RunError
from devgrad.experiment.schema import SpecError
from devgrad.experiment.spec import Spec
from devgrad.experiment.task import Task

__all__ = ["Plan", "auto_device_notice", "choose_device", "graph_choice", "load_splits", "make_plan", "with_device"]

# What a captured step is replayed as, by whether the device has CUDA graphs.
CAPTURED_AS = {True: "CUDA graphs", False: "plans of NumPy calls"}


@dataclass(frozen=True)
class Plan:
    """What one run is made of, computed once from its spec (``make_plan``).

    ``device`` is None and ``model``, ``optimizer`` and ``scheduler`` are None in a check-only
    plan (``devgrad validate``), whose ``splits`` may be a ``DataSummary`` of data it did not
    generate."""

    spec: Spec
    device: Device | None
    splits: Splits | DataSummary
    task: Task
    monitor: str  # the metric early stopping and best.npz watch (train_ when there is no validation split)
    mode: str  # "min" or "max": which way the monitored metric improves
    graph_reason: str | None  # why the training step runs eagerly; None: it is captured
    tracking: dict | None  # where MLflow logs the run (see ``tracking.settings``); None: not tracked
    model: nn.MLP | None = None
    optimizer: optim.Optimizer | None = None
    scheduler: Any = None

    @property
    def seed(self) -> int:
        """The run's seed: data, initial weights, shuffling and dropout streams all derive from it."""
        return self.spec.seed

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the data and the weights."""
        return np.dtype(self.spec.dtype)

    @property
    def captured(self) -> bool:
        """Whether the training step is captured and replayed (``train.capture``)."""
        return self.graph_reason is None

    def capture_text(self) -> str:
        """train.log's line on what ``train.capture`` does in this run, and why."""
        assert self.device is not None, "a check-only plan trains nothing"
        what = (f"the training step is captured and replayed as {CAPTURED_AS[self.device.supports_graphs]}"
                if self.captured else f"steps run eagerly ({self.graph_reason})")
        return f"train.capture {self.spec.train.capture}: {what}"


def with_device(spec: Spec, device: str | Device | None) -> Spec:
    """``spec`` with its device replaced by ``device`` (``--device``; a Device by its name), its
    spelling checked: config.yaml records the device the run was asked for."""
    if device is None:
        return spec
    text = device.name if isinstance(device, Device) else device
    try:
        parse_device(text)
    except ValueError as exc:
        raise SpecError([f"device (from --device): {exc}"], "--device") from None
    return dataclasses.replace(spec, device=text)


def choose_device(spec: Spec, device: str | Device | None) -> tuple[Spec, Device]:
    """The run's Device, resolved once: ``device`` (``--device``: a name or a Device) or the
    spec's own; and the spec recording the name it was asked for (config.yaml's device)."""
    if isinstance(device, Device):
        return dataclasses.replace(spec, device=device.name), device
    if device is None:
        return spec, resolve_device(spec.device)  # the spec's spelling is checked already
    try:
        chosen = resolve_device(device)
    except ValueError as exc:  # a misspelt --device
        raise SpecError([f"device (from --device): {exc}"], "--device") from None
    return dataclasses.replace(spec, device=device), chosen


def load_splits(spec: Spec) -> Splits:
    """The spec's data, read or generated, checked and split (the only place a run's data is made)."""
    return build_splits(spec.data.to_dict(), spec.seed, spec.task, spec.loss.name)


def make_plan(spec: Spec, device: str | Device | None = None, check_only: bool = False) -> Plan:
    """The plan of a run of ``spec`` on ``device`` (default: the spec's own), or a RunError,
    SpecError, DataError or DeviceError naming what stops it. ``check_only``: as far as checking
    needs (``devgrad validate``): no device, a large synthetic set described rather than made,
    no model."""
    spec, dev = (with_device(spec, device), None) if check_only else choose_device(spec, device)
    memory.check_fits(spec)  # a run too large for this machine fails before anything is allocated
    chosen = tracking.settings(spec.to_dict())
    if chosen is not None and not check_only:
        tracking.available()  # a missing client is the user's to fix, before any folder
        tracking_service.prepare()  # MLflow is imported by the tracker while the data loads
    data = spec.data.to_dict()
    splits = describe(data, spec.seed, spec.task, spec.loss.name) if check_only else load_splits(spec)
    _check_last_batch(spec, splits)
    task = Task.from_spec(spec, splits)
    monitor, mode = _monitor(spec, task, _has_validation(spec, splits))
    reason = graph_choice(spec, dev) if dev is not None else None
    plan = Plan(spec, dev, splits, task, monitor, mode, reason, chosen)
    if check_only:
        return plan
    assert isinstance(splits, Splits) and dev is not None
    model = build_model(spec, splits.n_features, task, dev)
    optimizer = build_optimizer(spec, model.parameters(), capturable=reason is None)
    return dataclasses.replace(plan, model=model, optimizer=optimizer, scheduler=build_scheduler(spec, optimizer))


def _check_last_batch(spec: Spec, splits: Splits | DataSummary) -> None:
    """A batch norm takes each training batch's variance: a last batch of one row has none."""
    if spec.model.norm != "batch":
        return
    n = len(splits.X_train) if isinstance(splits, Splits) else split_sizes(splits.n_samples,
                                                                          spec.data.split.to_dict())[0]
    size = spec.train.batch_size or n
    if n % size != 1 and n != 1:
        return
    near = (b for d in range(1, n) for b in (size + d, size - d) if 2 <= b <= n and n % b != 1)
    fit = next(near, None)  # the nearest batch size that leaves no single row over
    fix = f"choose another train.batch_size (e.g. {fit}) or " if fit else "use more training rows or "
    raise SpecError([f"train.batch_size: {size} leaves a last batch of 1 row of the {n} training rows, and "
                     f"model.norm batch cannot take the variance of one row; {fix}set model.norm: layer"],
                    spec.name)


def _has_validation(spec: Spec, splits: Splits | DataSummary) -> bool:
    if isinstance(splits, Splits):
        return len(splits.X_val) > 0
    return spec.data.split.val > 0  # a summarised set is large: a fraction above 0 has rows


def _monitor(spec: Spec, task: Task, has_validation: bool) -> tuple[str, str]:
    """The metric the run watches (its train_ form when there is no validation split) and its mode."""
    es = spec.train.early_stopping
    monitor = es.monitor
    if not has_validation and monitor.startswith("val_"):
        monitor = "train_" + monitor[len("val_"):]
    measured = {"loss", *task.metrics}
    if monitor.split("_", 1)[1] not in measured:
        raise RunError(f"train.early_stopping.monitor is {es.monitor}, which this {task.kind} run does not "
                       f"measure; choose from {', '.join(f'val_{m}' for m in sorted(measured))} (or train_...)")
    mode = es.mode if es.mode != "auto" else ("max" if monitor.endswith(("accuracy", "r2")) else "min")
    return monitor, mode


def graph_choice(spec: Spec, device: Device) -> str | None:
    """Whether the run captures its step (a CUDA graph; a NumPy plan on the CPU): None for yes,
    else why not."""
    setting = spec.train.capture
    if setting is False:
        return "train.capture is false"
    if not (device.supports_graphs or device.is_host):
        return f"{device} cannot capture a step"
    if spec.model.dropout > 0:  # with true, the spec already refused this
        return "model.dropout > 0: a replayed step would reuse one dropout mask"
    if spec.model.norm == "batch":  # with true, the spec already refused this
        return "model.norm is batch: its running statistics change inside the forward pass"
    return None


def auto_device_notice(requested: str) -> str | None:
    """What to tell the user when 'auto' fell back to the CPU."""
    if requested.strip().lower() == "auto" and not cuda_available():
        return f"device auto: CUDA is not available ({cuda_unavailable_reason()}); running on the CPU"
    return None
