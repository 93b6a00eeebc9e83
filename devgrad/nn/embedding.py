"""Embedding lookup (``nn.Embedding``, ``F.embedding``) and ``F.one_hot``."""

from __future__ import annotations

import numpy as np

from devgrad.core import DEFAULT_FLOAT, Tensor
from devgrad.creation import zeros
from devgrad.nn import init as init_
from devgrad.nn.module import Module, Parameter
from devgrad.ops._util import index_array
from devgrad.ops.elementwise import Where
from devgrad.ops.shape import getitem


def _indices(index, weight: Tensor, name: str):
    # a negative index is refused, as PyTorch's: a padding value of -1 would otherwise silently
    # read the table's last row
    data = index_array(index, weight, name)
    rows = weight.shape[0]
    if weight.device.host_reads_are_free and data.size and (data.min() < 0 or data.max() >= rows):
        raise IndexError(f"{name}: indices must be in [0, {rows - 1}], got values from {int(data.min())} to "
                         f"{int(data.max())}")
    return data


def embedding(index, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at integer ``index`` of any shape; the gradient of
    a repeated row accumulates, and row ``padding_idx`` gets none (PyTorch's)."""
    idx = _indices(index, weight, "embedding")
    out = getitem(weight, idx)
    if padding_idx is None:
        return out
    padding = padding_idx % weight.shape[0]
    fixed = Tensor._make(weight.data[idx], weight.device)  # the same values, cut from the graph
    return Where.apply(fixed, out, cond=(idx % weight.shape[0] == padding)[..., None])


def one_hot(index, num_classes: int = -1) -> Tensor:
    """int64 one-hot vectors along a new last axis (``num_classes=-1``: the largest index + 1)."""
    data = index.data if isinstance(index, Tensor) else np.asarray(index)
    device = index.device if isinstance(index, Tensor) else None
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {data.dtype}")
    xp = np if device is None else device.xp
    if num_classes < 0:
        num_classes = int(data.max()) + 1 if data.size else 0
    if data.size and (int(data.min()) < 0 or int(data.max()) >= num_classes):
        raise ValueError(f"one_hot: class values must be in [0, {num_classes - 1}], got values from "
                         f"{int(data.min())} to {int(data.max())}")
    out = (data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor(out) if device is None else Tensor._make(out, device)


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by integer index;
    initialised N(0, 1) (PyTorch's), row ``padding_idx`` zero and never trained."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, *,
                 generator=None, device=None, dtype=None, _weight=None):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive integer, got {value!r}")
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is outside [-{num_embeddings}, "
                             f"{num_embeddings - 1}]")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        if _weight is not None:
            self.weight = Parameter(_weight, device=device, dtype=dtype)
        else:
            self.weight = Parameter(zeros(num_embeddings, embedding_dim, device=device, dtype=dtype or DEFAULT_FLOAT))
            init_.normal_(self.weight, generator=generator)
            if self.padding_idx is not None:
                self.weight.data[self.padding_idx] = 0

    def forward(self, index) -> Tensor:
        return embedding(index, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
