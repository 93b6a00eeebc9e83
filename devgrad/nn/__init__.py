"""Neural-network building blocks: Module, Parameter, layers, initialisers, losses."""

from devgrad.nn import functional, init, utils
from devgrad.nn.layers import (
    ACTIVATIONS, HIDDEN_ACTIVATIONS, MLP, NORMS, Dropout, Identity, LeakyReLU, Linear, LogSoftmax, ReLU, Sequential,
    Sigmoid, Softmax, Softplus, Tanh, activation,
)
from devgrad.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, HuberLoss, L1Loss, LogisticLoss, MSELoss, NLLLoss,
)
from devgrad.nn.containers import ModuleDict, ModuleList
from devgrad.nn.module import Module, Parameter
from devgrad.nn.activations import ELU, GELU, Hardtanh, Mish, SiLU
from devgrad.nn.embedding import Embedding
from devgrad.nn.hooks import RemovableHandle
from devgrad.nn.norm import BatchNorm1d, LayerNorm
from devgrad.nn.reshape import Flatten, Unflatten

__all__ = [
    "ACTIVATIONS", "ELU", "GELU", "HIDDEN_ACTIVATIONS", "MLP", "NORMS", "BCELoss", "BCEWithLogitsLoss", "BatchNorm1d",
    "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "Hardtanh", "HingeLoss", "HuberLoss", "Identity",
    "L1Loss", "LayerNorm", "LeakyReLU", "Linear", "LogSoftmax", "LogisticLoss", "MSELoss", "Mish", "Module",
    "ModuleDict", "ModuleList", "NLLLoss", "Parameter", "ReLU", "RemovableHandle", "Sequential", "SiLU", "Sigmoid",
    "Softmax", "Softplus", "Tanh", "Unflatten", "activation", "functional", "init", "utils",
]
