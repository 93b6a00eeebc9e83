"""Normalisation layers: LayerNorm and BatchNorm1d (running statistics, momentum, train/eval as
PyTorch's), and their functional forms ``F.layer_norm`` and ``F.batch_norm``.

Both are written with differentiable ops (mean, var, sqrt), so the gradient through the batch
statistics and every higher order follow. Running statistics are updated in place on the
device, outside the graph, with no host read: a training step stays capturable.
"""

from __future__ import annotations

import numpy as np

from devgrad.core import DEFAULT_FLOAT, Tensor, no_grad
from devgrad.creation import ones, zeros
from devgrad.nn.module import Module, Parameter
from devgrad.ops.elementwise import sqrt


def layer_norm(x: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x − mean) / √(var + eps) over the last ``len(normalized_shape)`` axes (population
    variance), then × weight + bias."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"layer_norm: the input's last axes {x.shape} do not end with normalized_shape {shape}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    y = centred / sqrt((centred * centred).mean(axis=axes, keepdims=True) + eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def _channel_shape(x: Tensor) -> tuple:
    """How a per-channel vector broadcasts against (N, C) or (N, C, L)."""
    return (1, -1) if x.ndim == 2 else (1, -1, 1)


def batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float | None = 0.1, eps: float = 1e-5,
               num_batches_tracked: Tensor | None = None) -> Tensor:
    """Normalise each channel (axis 1 of (N, C) or (N, C, L)) by the batch's statistics (training,
    or no running ones) or by the running ones; in training, the running statistics move by
    ``momentum`` towards the batch's (unbiased variance); ``momentum=None`` averages cumulatively."""
    if x.ndim not in (2, 3):
        raise ValueError(f"batch_norm: expected an input of shape (N, C) or (N, C, L), got {x.shape}")
    axes = (0,) if x.ndim == 2 else (0, 2)
    count = x.shape[0] * (1 if x.ndim == 2 else x.shape[2])
    view = _channel_shape(x)
    if training or running_mean is None:
        if count < 2 and training:
            raise ValueError(f"batch_norm: a training batch needs more than 1 value per channel, got input shape "
                             f"{x.shape}; use a larger batch, drop the last short batch, or eval()")
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        if training and running_mean is not None:
            _update_running(x, mean, var, count, running_mean, running_var, momentum, num_batches_tracked)
    else:
        assert running_mean is not None and running_var is not None  # batch statistics were used otherwise
        mean = running_mean.reshape(view)
        var = running_var.reshape(view)
        centred = x - mean
    y = centred / sqrt(var + eps)
    if weight is not None:
        y = y * weight.reshape(view)
    return y if bias is None else y + bias.reshape(view)


def _update_running(x, mean, var, count, running_mean, running_var, momentum, num_batches_tracked) -> None:
    with no_grad(), x.device.activate():
        if num_batches_tracked is not None:
            num_batches_tracked.data += 1
            num_batches_tracked._bump_version()
        if momentum is None:  # a cumulative average: 1/n of the n-th batch
            factor = 1.0 / num_batches_tracked.data.astype(running_mean.dtype)
        else:
            factor = float(momentum)
        batch_mean = mean.data.reshape(-1).astype(running_mean.dtype)
        batch_var = var.data.reshape(-1).astype(running_var.dtype) * (count / (count - 1))
        running_mean.data *= 1.0 - factor
        running_mean.data += factor * batch_mean
        running_var.data *= 1.0 - factor
        running_var.data += factor * batch_var
        running_mean._bump_version()
        running_var._bump_version()


class LayerNorm(Module):
    """Normalise over the last axes (``normalized_shape``), then a learned scale and shift."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        dtype = dtype or DEFAULT_FLOAT
        self.weight = Parameter(ones(self.normalized_shape, device=device, dtype=dtype)) if elementwise_affine \
            else None
        self.bias = Parameter(zeros(self.normalized_shape, device=device, dtype=dtype)) \
            if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class BatchNorm1d(Module):
    """Batch normalisation of (N, C) or (N, C, L) inputs: batch statistics in train(), running
    ones in eval() (with ``track_running_stats``); buffers running_mean, running_var and
    num_batches_tracked, as PyTorch's (their state_dict keys too)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__()
        if not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = dtype or DEFAULT_FLOAT
        self.weight = Parameter(ones(num_features, device=device, dtype=dtype)) if affine else None
        self.bias = Parameter(zeros(num_features, device=device, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device, dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device, dtype=dtype))
            self.register_buffer("num_batches_tracked", zeros((), device=device, dtype=np.int64))

    def reset_running_stats(self) -> None:
        """Running mean 0, variance 1, no batch tracked."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}): expected an input of shape (N, "
                             f"{self.num_features}) or (N, {self.num_features}, L), got {x.shape}")
        tracking = self.track_running_stats
        return batch_norm(x, self.running_mean if tracking else None, self.running_var if tracking else None,
                          self.weight, self.bias, self.training or not tracking, self.momentum, self.eps,
                          self.num_batches_tracked if tracking else None)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")
