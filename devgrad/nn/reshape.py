"""Shape layers: Flatten and Unflatten (PyTorch's defaults: flatten every axis but the batch's)."""

from __future__ import annotations

from devgrad.core import Tensor
from devgrad.nn.module import Module
from devgrad.ops._util import one_axis


class Flatten(Module):
    """Collapse axes ``start_dim`` to ``end_dim`` (both included) into one: (N, 3, 4) → (N, 12)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size``: (N, 12) → (N, 3, 4)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        axis = one_axis(self.dim, x.ndim, "Unflatten")
        return x.reshape(x.shape[:axis] + self.unflattened_size + x.shape[axis + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
