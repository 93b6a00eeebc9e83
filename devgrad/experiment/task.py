"""The task of a run: how labels, model outputs and the loss fit together."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devgrad.core import Tensor
from devgrad.experiment.errors import RunError
from devgrad.nn import functional as F


@dataclass
class Task:
    """The loss by name, the number of classes and the model's output width that go with it."""

    loss: str
    n_classes: int
    out_features: int
    label_smoothing: float = 0.0
    pos_weight: float | None = None

    @classmethod
    def from_spec(cls, spec, n_classes: int) -> Task:
        name = spec.loss.name
        if name == "auto":
            name = "bce" if n_classes == 2 else "cross_entropy"
        if name in F.BINARY_LOSSES and n_classes != 2:
            raise RunError(f"loss '{name}' is for two classes but the data has {n_classes}; "
                           "use loss: cross_entropy (or mse)")
        out = 1 if n_classes == 2 and name != "cross_entropy" else n_classes
        return cls(name, n_classes, out, spec.loss.label_smoothing, spec.loss.pos_weight)

    def targets(self, y: Tensor, dtype) -> Tensor:
        """Labels (int) in the form this loss wants, on the labels' device."""
        xp = y.device.xp
        if self.loss == "cross_entropy":
            return y
        if self.loss in ("logistic", "hinge"):
            return Tensor._make((y.data * 2 - 1).astype(dtype), y.device)
        if self.loss == "mse" and self.out_features > 1:
            return Tensor._make(xp.eye(self.n_classes, dtype=dtype)[y.data], y.device)
        return Tensor._make(y.data.astype(dtype), y.device)

    def loss_value(self, out: Tensor, target: Tensor) -> Tensor:
        """The loss of raw outputs against ``targets(...)``: the loss function named by the spec."""
        options = {}
        if self.loss == "cross_entropy":
            options["label_smoothing"] = self.label_smoothing
        elif self.out_features == 1:
            out = out.reshape(-1)
        if self.loss == "bce":
            options["pos_weight"] = self.pos_weight
        return F.LOSSES[self.loss](out, target, **options)

    def predict(self, out_data, xp):
        """Predicted class indices from raw model outputs (device arrays, no sync)."""
        if self.out_features == 1:
            threshold = 0.5 if self.loss == "mse" else 0.0
            return (out_data.reshape(-1) > threshold).astype(np.int64)
        return xp.argmax(out_data, axis=1)

    def probabilities(self, out_data, xp):
        """Class probabilities (n, n_classes) from raw outputs (for decision-boundary plots)."""
        if self.out_features > 1:
            e = xp.exp(out_data - out_data.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        flat = out_data.reshape(-1)
        p1 = xp.clip(flat, 0, 1) if self.loss == "mse" else 1 / (1 + xp.exp(-xp.clip(flat, -60, 60)))
        return xp.stack([1 - p1, p1], axis=1)
