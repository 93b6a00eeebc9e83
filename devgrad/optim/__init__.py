"""Optimizers, learning-rate schedules and gradient clipping."""

from devgrad.optim.adam import Adam, AdamW
from devgrad.optim.clip import clip_grad_norm_, clip_grad_value_
from devgrad.optim.optimizer import Optimizer
from devgrad.optim.rmsprop import Adagrad, RMSprop
from devgrad.optim.schedule import (
    CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, StepLR, WarmupScheduler,
)
from devgrad.optim.sgd import SGD

__all__ = [
    "SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR", "LRScheduler", "LinearLR",
    "Optimizer", "RMSprop", "StepLR", "WarmupScheduler", "clip_grad_norm_", "clip_grad_value_",
]
