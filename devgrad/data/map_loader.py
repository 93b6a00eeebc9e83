"""PyTorch's data loading over any map-style dataset (an object with ``__len__`` and
``__getitem__``): ``TensorDataset``, ``default_collate`` and the loader that
``DataLoader(dataset, batch_size=..., shuffle=...)`` gives.

Samples are fetched one index at a time and collated as PyTorch's ``default_collate`` does:
tensors and arrays stacked, numbers into one tensor (Python floats as float64, ints as int64),
tuples, lists and dicts field by field, anything else (strings) kept as a list. A
``TensorDataset`` is sliced a whole batch at once (the same values, without a Python loop).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from devgrad.backend import device as resolve_device
from devgrad.core import Tensor
from devgrad.ops.shape import stack
from devgrad.random import get_generator


class TensorDataset:
    """Samples that are the rows of tensors of one length: ``dataset[i] = (t1[i], t2[i], ...)``."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(np.asarray(t)) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first dimension, got shapes "
                             f"{[t.shape for t in tensors]}")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


def default_collate(batch: list, device=None):
    """One batch from a list of samples, structured like a sample (PyTorch's ``default_collate``)."""
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(batch) if device is None else stack(batch).to(device)
    if isinstance(first, np.ndarray | np.generic):
        return Tensor(np.stack([np.asarray(b) for b in batch]), device=device)
    if isinstance(first, bool | numbers.Number):
        dtype = np.bool_ if isinstance(first, bool) else np.int64 if isinstance(first, numbers.Integral) else np.float64
        return Tensor(np.asarray(batch, dtype=dtype), device=device)
    if isinstance(first, str | bytes):
        return list(batch)
    if isinstance(first, Mapping):
        return {key: default_collate([sample[key] for sample in batch], device) for key in first}
    if isinstance(first, Sequence):
        if any(len(sample) != len(first) for sample in batch):
            raise ValueError("default_collate: the samples of a batch have different numbers of fields")
        fields = [default_collate(list(group), device) for group in zip(*batch)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; pass collate_fn=")


def check_dataset(dataset) -> None:
    """A map-style dataset has ``__len__`` and ``__getitem__``."""
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"DataLoader: a dataset needs __len__ and __getitem__ (a map-style dataset); got "
                        f"{type(dataset).__name__}")


class MapLoader:
    """Batches of a map-style dataset, in order or shuffled (``generator``: a seed, a NumPy
    Generator, or devgrad's default generator), collated by ``collate_fn``."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 collate_fn: Callable | None = None, drop_last: bool = False, generator=None, device=None,
                 num_workers: int = 0):
        check_dataset(dataset)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer (or None), got {batch_size!r}")
        if num_workers:
            raise ValueError(f"DataLoader: num_workers={num_workers}: devgrad loads batches in the calling process; "
                             "use num_workers=0")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.collate_fn = collate_fn
        self.generator = generator
        # An int seed starts one generator that advances pass after pass, as PyTorch's does.
        self._rng = np.random.default_rng(int(generator)) if isinstance(generator, int | np.integer) else None
        self.device = resolve_device(device) if device is not None else None

    def __len__(self) -> int:
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return (self._rng if self._rng is not None else get_generator(self.generator)).permutation(n)

    def _batch(self, indices: np.ndarray):
        dataset = self.dataset
        if isinstance(dataset, TensorDataset) and self.collate_fn is None:
            rows = Tensor._make(dataset.tensors[0].device.put(indices), dataset.tensors[0].device)
            fields = tuple(t[rows] for t in dataset.tensors)
            return fields if self.device is None else tuple(f.to(self.device) for f in fields)
        samples = [dataset[int(i)] for i in indices]
        if self.collate_fn is not None:
            return self.collate_fn(samples)
        return default_collate(samples, self.device)

    def __iter__(self):
        order = self._order()
        if self.batch_size is None:  # no batching: each sample as it is
            for i in order:
                yield self.dataset[int(i)]
            return
        for start in range(0, len(order), self.batch_size):
            indices = order[start:start + self.batch_size]
            if len(indices) < self.batch_size and self.drop_last:
                return
            yield self._batch(indices)
