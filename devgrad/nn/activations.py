"""Activation modules of PyTorch's nn beyond the classic ones: GELU, SiLU, ELU, Hardtanh, Mish
(their functions are ``devgrad.ops.activation_torch``'s, re-exported by ``nn.functional``)."""

from __future__ import annotations

from devgrad.core import Tensor
from devgrad.nn.module import Module
from devgrad.ops.activation_torch import elu, gelu, hardtanh, mish, silu


class GELU(Module):
    """x·Φ(x); ``approximate='tanh'`` uses the tanh approximation, as PyTorch's."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x·sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return silu(x)


class Mish(Module):
    """x·tanh(softplus(x))."""

    def forward(self, x: Tensor) -> Tensor:
        return mish(x)


class ELU(Module):
    """x for x > 0, alpha·(exp(x) − 1) otherwise."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Hardtanh(Module):
    """x clamped to [min_val, max_val] (gradient 0 at the bounds, as PyTorch's)."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0):
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val {min_val} is above max_val {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x: Tensor) -> Tensor:
        return hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"
