"""A DataLoader that keeps the whole dataset on the device and slices batches there."""

from __future__ import annotations

import numpy as np

from devgrad.backend import device as resolve_device
from devgrad.core import Tensor
from devgrad.data.map_loader import MapLoader


class DataLoader:
    """Mini-batches of (X, y) tensors that live on ``device``.

    The arrays are copied to the device once. Each iteration, a permutation drawn from
    ``(seed, epoch)`` reorders the data with one gather on the device; batches are then plain
    slices. The epoch counts up by one per iteration, so each pass has a new order;
    ``set_epoch(e)`` pins the next pass to epoch ``e``'s order (what makes a resumed run
    shuffle exactly as an uninterrupted one).

    ``reuse_arrays=True`` (the runner's training loader, on the CPU): every batch of a size is
    copied into the same pair of arrays instead of being a new slice, so a captured step's plan
    keeps reading its inputs where they are (``Plan.feed``: the same array costs nothing, a new
    one re-points the plan). A batch then holds its values only until the next one is drawn. On
    other devices the batches stay slices.

    PyTorch's form, ``DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=None,
    drop_last=False, generator=None)`` over any map-style dataset (``__len__`` and
    ``__getitem__``, e.g. a ``TensorDataset``), gives a ``MapLoader`` (devgrad/data/map_loader.py).
    """

    def __new__(cls, X=None, y=None, *args, **kwargs):
        if "dataset" in kwargs:
            return MapLoader(*(a for a in (X, y) if a is not None), *args, **kwargs)
        if y is None or isinstance(y, int):  # no labels array: PyTorch's DataLoader(dataset, batch_size, ...)
            return MapLoader(X, *((y,) if y is not None else ()), *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, X, y, batch_size: int | None = None, shuffle: bool = True, device=None,
                 dtype=np.float32, seed: int = 0, drop_last: bool = False,
                 reuse_arrays: bool = False):
        self.device = resolve_device(device)
        self.X = Tensor._make(self.device.put(np.asarray(X, dtype=dtype)), self.device)
        self.y = Tensor._make(self.device.put(np.asarray(y)), self.device)
        if len(self.X.data) != len(self.y.data):
            raise ValueError(f"DataLoader: X has {len(self.X.data)} rows but y has {len(self.y.data)}")
        self.n = len(self.X.data)
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size <= 0):  # 0 would silently be one full batch
            raise ValueError(f"DataLoader: batch_size must be a positive integer (or None for one batch of all rows), "
                             f"got {batch_size!r}")
        self.batch_size = batch_size or self.n
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.reuse_arrays = reuse_arrays and self.device.is_host
        self._reused: dict = {}  # batch rows -> the (X, y) arrays its batches are copied into

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle order the next iteration uses (later ones count up from it)."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return (self.n + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        # The order is drawn (and the epoch advanced) when iter() is called, not at the first batch.
        epoch, self.epoch = self.epoch, self.epoch + 1
        return self._batches(epoch)

    def _batches(self, epoch: int):
        X, y = self.X.data, self.y.data
        if self.shuffle and self.n > 1:
            perm = np.random.default_rng([self.seed, 2, epoch]).permutation(self.n)
            perm_dev = self.device.put(perm)
            with self.device.activate():
                gather = self.device.kernels.gather_rows
                X, y = gather(X, perm_dev), gather(y, perm_dev)
        for start in range(0, self.n, self.batch_size):
            stop = start + self.batch_size
            if stop > self.n and self.drop_last:
                break
            xb, yb = X[start:stop], y[start:stop]
            if self.reuse_arrays:
                xb, yb = self._copied(xb, yb)
            yield Tensor._make(xb, self.device), Tensor._make(yb, self.device)

    def _copied(self, xb: np.ndarray, yb: np.ndarray) -> tuple:
        """A batch copied into the arrays kept for its number of rows (``reuse_arrays``)."""
        arrays = self._reused.get(len(xb))
        if arrays is None:
            arrays = self._reused[len(xb)] = (np.empty_like(xb), np.empty_like(yb))
        np.copyto(arrays[0], xb)
        np.copyto(arrays[1], yb)
        return arrays
