"""Optimizers, learning-rate schedules and gradient clipping."""

from devgrad.optim.adam import Adam, AdamW
from devgrad.nn.utils import clip_grad_norm_, clip_grad_value_
from devgrad.optim import lr_scheduler
from devgrad.optim.optimizer import Optimizer
from devgrad.optim.rmsprop import Adagrad, RMSprop
from devgrad.optim.lr_scheduler import (
    CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler, StepLR, WarmupScheduler,
)
from devgrad.optim.sgd import SGD
from devgrad.optim.adaptive_schedules import OneCycleLR, ReduceLROnPlateau

# The names specs use (``optimizer: {name: adam}``, ``schedule: {name: cosine}``); a spec's
# options and their defaults are the constructors' keyword parameters.
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
SCHEDULES = {"step": StepLR, "exponential": ExponentialLR, "cosine": CosineAnnealingLR, "linear": LinearLR,
             "plateau": ReduceLROnPlateau, "onecycle": OneCycleLR}

__all__ = [
    "OPTIMIZERS", "SCHEDULES", "SGD", "Adagrad", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR",
    "LRScheduler", "LinearLR", "OneCycleLR", "Optimizer", "RMSprop", "ReduceLROnPlateau", "StepLR",
    "WarmupScheduler", "clip_grad_norm_", "clip_grad_value_", "lr_scheduler",
]
