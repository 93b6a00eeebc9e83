"""The resolved spec, typed: frozen dataclasses, one per block, built from ``validate``'s dict."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


class _Section:
    __dataclass_fields__: ClassVar[dict[str, Any]]  # each section is a dataclass (for asdict)

    def to_dict(self) -> dict:
        """The section as plain data (what config.yaml holds)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Split(_Section):
    train: float
    val: float
    test: float


@dataclass(frozen=True)
class DataSpec(_Section):
    source: str
    n_samples: int
    noise: float
    n_classes: int | None
    n_features: int | None
    path: str | None
    target: str | None
    images: str | None
    labels: str | None
    split: Split
    standardize: bool
    standardize_target: bool = True


@dataclass(frozen=True)
class ModelSpec(_Section):
    hidden: list
    activation: str
    init: str
    dropout: float
    bias: bool
    norm: str


@dataclass(frozen=True)
class LossSpec(_Section):
    name: str
    label_smoothing: float
    pos_weight: float | None
    delta: float = 1.0


@dataclass(frozen=True)
class Choice(_Section):
    """A name from a registry (an optimizer, a schedule) and the options for its constructor."""

    name: str
    options: dict

    def to_dict(self) -> dict:
        return {"name": self.name, **copy.deepcopy(self.options)}


@dataclass(frozen=True)
class EarlyStopping(_Section):
    enabled: bool
    monitor: str
    mode: str
    patience: int
    min_delta: float
    restore_best: bool


@dataclass(frozen=True)
class PlotsSpec(_Section):
    enabled: bool = True
    animate: bool = False


@dataclass(frozen=True)
class Checkpointing(_Section):
    seconds: float
    every: int | None
    save_best: bool


@dataclass(frozen=True)
class TrainSpec(_Section):
    epochs: int
    batch_size: int | None
    shuffle: bool
    clip_grad_norm: float | None
    capture: bool | str
    threads: int | str
    matmul_precision: str
    early_stopping: EarlyStopping
    checkpoint: Checkpointing


@dataclass(frozen=True)
class Spec(_Section):
    """A validated spec with every default filled in: what a run is built from."""

    name: str
    description: str
    seed: int
    device: str
    dtype: str
    data: DataSpec
    model: ModelSpec
    loss: LossSpec
    optimizer: Choice
    schedule: Choice
    train: TrainSpec
    metrics: list | str
    task: str = "auto"
    plots: PlotsSpec = PlotsSpec()
    tracking: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: (v.to_dict() if isinstance(v, _Section) else copy.deepcopy(v)) for k, v in out.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Spec:
        """From the checked nested dict (``validate``'s result)."""
        data = {**d["data"], "split": Split(**d["data"]["split"])}
        train = {**d["train"], "early_stopping": EarlyStopping(**d["train"]["early_stopping"]),
                 "checkpoint": Checkpointing(**d["train"]["checkpoint"])}
        optimizer, schedule = dict(d["optimizer"]), dict(d["schedule"])
        return cls(name=d["name"], description=d["description"], seed=d["seed"], device=d["device"],
                   dtype=d["dtype"], data=DataSpec(**data), model=ModelSpec(**d["model"]), loss=LossSpec(**d["loss"]),
                   optimizer=Choice(optimizer.pop("name"), optimizer), schedule=Choice(schedule.pop("name"), schedule),
                   train=TrainSpec(**train),
                   metrics=d["metrics"] if isinstance(d["metrics"], str) else list(d["metrics"]), task=d["task"],
                   plots=PlotsSpec(**d["plots"]), tracking=copy.deepcopy(d.get("tracking") or {}))
