"""Build a run's model, optimizer and schedule from a resolved spec: lookups in the registries
of ``devgrad.nn`` and ``devgrad.optim`` (the spec took its names and options from them)."""

from __future__ import annotations

import numpy as np

from devgrad import nn, optim
from devgrad.experiment.spec import Spec
from devgrad.experiment.task import Task


def build_model(spec: Spec, n_features: int, task: Task, device) -> nn.MLP:
    """The spec's MLP, initialised from the run's seed on the host (same weights on any device)."""
    m = spec.model
    generator = np.random.default_rng([spec.seed, 0])
    return nn.MLP([n_features, *m.hidden, task.out_features], activation=m.activation, init=m.init,
                  dropout=m.dropout, bias=m.bias, generator=generator, device=device, dtype=spec.dtype, norm=m.norm)


def model_from_info(arch: dict, dtype: str, device) -> nn.MLP:
    """The MLP a run folder's model.json describes (``architecture``), weights still to be loaded:
    how ``load`` rebuilds a trained model without the spec's data."""
    return nn.MLP(arch["sizes"], activation=arch["activation"], dropout=arch["dropout"], bias=arch["bias"],
                  norm=arch.get("norm", "none"), device=device, dtype=dtype)


def build_optimizer(spec: Spec, params, capturable: bool = False) -> optim.Optimizer:
    """The spec's optimizer; ``capturable`` keeps its per-step values on the device (for CUDA graphs)."""
    cls = optim.OPTIMIZERS[spec.optimizer.name]
    options = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.optimizer.options.items()}  # betas
    return cls(params, capturable=capturable, **options)


def build_scheduler(spec: Spec, optimizer):
    """The spec's schedule (None for ``none``), behind a linear warm-up when ``warmup_epochs`` > 0.
    An option left at None means the run's length: its epochs after warm-up."""
    name = spec.schedule.name
    options = dict(spec.schedule.options)
    if name == "none":
        return None
    warmup = options.pop("warmup_epochs")
    span = max(spec.train.epochs - warmup, 1)
    options = {k: span if v is None else v for k, v in options.items()}
    # Built on the real optimizer: the warm-up below takes over its lr (schedules compute the lr
    # from the epoch in closed form, so the inner one is only asked for its shape).
    schedule = optim.SCHEDULES[name](optimizer, **options)
    if warmup:
        return optim.WarmupScheduler(optimizer, warmup=warmup, after=schedule)
    return schedule
