"""The task of a run: how labels, model outputs and the loss fit together."""

from __future__ import annotations

from dataclasses import dataclass


from devgrad.core import Tensor
from devgrad.experiment import _kernels  # noqa: F401 - registers the `targets` kernel used below
from devgrad.experiment.errors import RunError
from devgrad.experiment.spec_keys import LOSS_OPTION_USERS, loss_options
from devgrad.nn import functional as F

CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("mse", "mae", "r2")


@dataclass
class Task:
    """Classification or regression: the loss by name, the number of classes, the model's
    output width and the metrics that go with them."""

    loss: str
    n_classes: int
    out_features: int
    label_smoothing: float = 0.0
    pos_weight: float | None = None
    kind: str = "classification"
    metrics: tuple = ("accuracy",)
    delta: float = 1.0

    @property
    def regression(self) -> bool:
        return self.kind == "regression"

    @classmethod
    def from_spec(cls, spec, splits) -> Task:
        """The task of ``spec`` on data ``splits`` (a ``Splits``; a class count for classification)."""
        kind = getattr(splits, "task", "classification")
        n_classes = splits.n_classes if hasattr(splits, "n_classes") else int(splits)
        name = spec.loss.name
        metrics = spec.metrics
        if kind == "regression":
            if name == "auto":
                name = "mse"
            if name not in F.REGRESSION_LOSSES:
                raise RunError(f"loss '{name}' is a classification loss, but the task is regression "
                               f"({getattr(splits, 'task_reason', '')}); use loss: mse, mae or huber")
            metrics = REGRESSION_METRICS if metrics == "auto" else tuple(metrics)
            wrong = [m for m in metrics if m not in REGRESSION_METRICS]
            if wrong:
                raise RunError(f"metrics {wrong} are for classification, but the task is regression "
                               f"({getattr(splits, 'task_reason', '')}); use {', '.join(REGRESSION_METRICS)}")
            return cls(name, 0, 1, kind="regression", metrics=metrics, delta=spec.loss.delta)
        if name == "auto":
            name = "bce" if n_classes == 2 else "cross_entropy"
            unused = _unused_option(spec.loss, name, n_classes)
            if unused:
                raise RunError(unused)
        if name in F.BINARY_LOSSES and n_classes != 2:
            raise RunError(f"loss '{name}' is for two classes but the data has {n_classes}; "
                           "use loss: cross_entropy (or mse)")
        if name in F.REGRESSION_LOSSES and name != "mse":  # mse alone fits one-hot or 0/1 targets
            usable = "bce, logistic, hinge, cross_entropy or mse" if n_classes == 2 else "cross_entropy or mse"
            raise RunError(f"loss '{name}' is a regression loss, but the task is classification "
                           f"({getattr(splits, 'task_reason', '')}); use loss: {usable}, or set task: regression")
        metrics = CLASSIFICATION_METRICS if metrics == "auto" else tuple(metrics)
        wrong = [m for m in metrics if m not in CLASSIFICATION_METRICS]
        if wrong:
            raise RunError(f"metrics {wrong} are for regression, but the task is classification "
                           f"({getattr(splits, 'task_reason', '')}); use accuracy, or set task: regression")
        out = 1 if n_classes == 2 and name != "cross_entropy" else n_classes
        return cls(name, n_classes, out, spec.loss.label_smoothing, spec.loss.pos_weight, metrics=metrics)

    def targets(self, y: Tensor, dtype) -> Tensor:
        """Labels (int) or values in the form this loss wants, on their device (one of the
        device's kernels: on a GPU one launch, nothing for CuPy to compile)."""
        if self.loss == "cross_entropy" and not self.regression:
            return y
        if self.regression:
            mode = "value"
        elif self.loss in ("logistic", "hinge"):
            mode = "sign"
        elif self.loss == "mse" and self.out_features > 1:
            mode = "one_hot"
        else:
            mode = "value"
        return Tensor._make(y.device.kernels.targets(y.data, mode, self.n_classes, dtype), y.device)

    def loss_value(self, out: Tensor, target: Tensor) -> Tensor:
        """The loss of raw outputs against ``targets(...)``: the loss function named by the spec,
        given the options it uses (``LOSS_OPTION_USERS``)."""
        options = {opt: getattr(self, opt) for opt, users in LOSS_OPTION_USERS.items() if self.loss in users}
        if self.loss != "cross_entropy" and self.out_features == 1:
            out = out.reshape(-1)
        return F.LOSSES[self.loss](out, target, **options)

    @property
    def threshold(self) -> float:
        """A one-output model predicts class 1 where its output is above this: 0 for logits
        (and ±1 margins), 0.5 for an mse fit to 0/1."""
        return 0.5 if self.loss == "mse" else 0.0

    def probabilities(self, out_data, xp):
        """Class probabilities (n, n_classes) from raw outputs (for decision-boundary plots)."""
        if self.out_features > 1:
            e = xp.exp(out_data - out_data.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        flat = out_data.reshape(-1)
        p1 = xp.clip(flat, 0, 1) if self.loss == "mse" else 1 / (1 + xp.exp(-xp.clip(flat, -60, 60)))
        return xp.stack([1 - p1, p1], axis=1)


def _unused_option(loss, name: str, n_classes: int) -> str | None:
    """Why an option of ``loss`` (auto, which the data made ``name``) would be ignored, or None."""
    for opt, default in loss_options().items():
        value = getattr(loss, opt)
        users = LOSS_OPTION_USERS[opt]
        if value != default and name not in users:
            fix = f"set loss.name: {users[0]} to use it, or remove it" if users[0] != "bce" or n_classes == 2 else \
                f"remove it ({' and '.join(users)} is for two classes)"
            return (f"loss.{opt} is {value!r}, but loss auto is {name} for this data ({n_classes} classes), which "
                    f"does not use {opt} (an option of {' and '.join(users)} only), so it would be ignored; {fix}")
    return None
