"""Neural-network building blocks: Module, Parameter, layers, initialisers, losses."""

from devgrad.nn import functional, init, utils
from devgrad.nn.layers import (
    ACTIVATIONS, HIDDEN_ACTIVATIONS, MLP, Dropout, Identity, LeakyReLU, Linear, LogSoftmax, ReLU, Sequential, Sigmoid,
    Softmax, Softplus, Tanh, activation,
)
from devgrad.nn.loss import (
    BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, HuberLoss, L1Loss, LogisticLoss, MSELoss, NLLLoss,
)
from devgrad.nn.module import Module, ModuleDict, ModuleList, Parameter

__all__ = [
    "ACTIVATIONS", "HIDDEN_ACTIVATIONS", "MLP", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "HingeLoss",
    "HuberLoss", "Identity", "L1Loss", "LeakyReLU", "Linear", "LogSoftmax", "LogisticLoss", "MSELoss", "Module",
    "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid", "Softmax", "Softplus",
    "Tanh", "activation", "functional", "init", "utils",
]
