"""The experiment spec's keys and vocabulary: ``SCHEMA`` and the names and options it takes.

The vocabulary is not written here: activation and init names come from ``devgrad.nn``, loss
names from ``devgrad.nn.functional.LOSSES``, optimizer and schedule names from
``devgrad.optim``, and each optimizer's and schedule's options with their defaults from its
constructor's signature (``optimizer_options``, ``schedule_options``). The checks that need
more than one key at a time are ``devgrad.experiment.spec_checks``.
"""

from __future__ import annotations

import inspect
from typing import Any

from devgrad import nn, optim
from devgrad.backend.precision import PRECISIONS
from devgrad.data.files import SKLEARN_CLASSIFICATION, SKLEARN_REGRESSION
from devgrad.data.synthetic import GENERATORS
from devgrad.experiment.schema import NUM, REQUIRED, Field, options_of
from devgrad.nn import functional as F

SYNTHETIC = tuple(GENERATORS)
FILE_SOURCES = ("csv", "npz", "idx")
SKLEARN = (*SKLEARN_CLASSIFICATION, *SKLEARN_REGRESSION)
ACTIVATIONS = nn.HIDDEN_ACTIVATIONS
INITS = tuple(nn.init.INITIALIZERS)
LOSSES = ("auto", *F.LOSSES)
CLASSIFICATION_METRICS = ("accuracy",)
REGRESSION_METRICS = ("mse", "mae", "r2")
METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
MONITORS = tuple(f"{split}_{m}" for split in ("val", "train") for m in ("loss", *METRICS))
TASKS = ("auto", "classification", "regression")
NAME_BLOCKS = ("loss", "optimizer", "schedule")  # written as a bare name or as {name: ..., options}

# What a spec does not take from a constructor: what the runner passes itself, and maximize
# (a run minimises its loss).
OPTIMIZER_SKIP = ("params", "capturable", "maximize")
SCHEDULE_SKIP = ("optimizer", "last_epoch")
# A schedule in a run: None means "the run's length" (its epochs after warm-up), and a linear
# schedule decays to 0 over the run unless told otherwise (the class's defaults are PyTorch's).
SCHEDULE_RUN_DEFAULTS: dict[str, dict[str, Any]] = {
    "cosine": {"t_max": None}, "linear": {"start_factor": 1.0, "end_factor": 0.0, "total_iters": None},
    "onecycle": {"total_steps": None}}
# Options a run sets itself: onecycle steps once per epoch over the run (total_steps), plateau
# watches the run's monitored metric (train.early_stopping.monitor).
SCHEDULE_RUN_SKIP = {"onecycle": ("epochs", "steps_per_epoch")}
# Schedules a run steps on its own terms: no linear warm-up in front of them.
NO_WARMUP_SCHEDULES = ("plateau", "onecycle")
# Other spellings users write for an option, kept working: name -> {alias: option}.
SCHEDULE_ALIASES = {"cosine": {"T_max": "t_max"}, "linear": {"total_epochs": "total_iters"}}
RUN_LENGTH = object()  # stands for "the run's length" while checking a schedule's options


def optimizer_options(name: str) -> dict:
    """Option -> default of optimizer ``name``, from its constructor."""
    return options_of(optim.OPTIMIZERS[name], OPTIMIZER_SKIP)


def schedule_options(name: str) -> dict:
    """Option -> default of schedule ``name`` in a spec (its constructor's, then the run defaults)."""
    options = options_of(optim.SCHEDULES[name], SCHEDULE_SKIP + SCHEDULE_RUN_SKIP.get(name, ()))
    options.update(SCHEDULE_RUN_DEFAULTS.get(name, {}))
    options["warmup_epochs"] = 0
    return options


# The losses that use each loss option (a run passes an option to these losses only).
LOSS_OPTION_USERS = {"label_smoothing": ("cross_entropy",), "pos_weight": ("bce",), "delta": ("huber",)}
# The sources that read each data key ("synthetic": every generator) besides source, split and
# the standardisation, which all read; n_classes and n_features are the generators' own.
DATA_KEY_READERS = {"n_samples": ("synthetic",), "noise": ("synthetic",), "path": ("csv", "npz"),
                    "target": ("csv",), "images": ("idx",), "labels": ("idx",)}


def loss_options() -> dict:
    """The loss block's options, with the defaults of the loss functions that take them."""
    return {"label_smoothing": inspect.signature(F.cross_entropy).parameters["label_smoothing"].default,
            "pos_weight": inspect.signature(F.binary_cross_entropy_with_logits).parameters["pos_weight"].default,
            "delta": inspect.signature(F.huber_loss).parameters["delta"].default}


def _positive(v):
    return None if v > 0 else f"must be > 0, got {v}"


def _non_negative(v):
    return None if v >= 0 else f"must be >= 0, got {v}"


def _fraction(v):
    return None if 0 <= v < 1 else f"must be in [0, 1), got {v}"


def _threads(v):
    if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v > 0):
        return None
    return f"must be auto or a positive whole number, got {v!r}"


def _int_list(v):
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
        return f"must be a list of positive integers, got {v}"
    return None


def _split_fraction(v):
    return None if 0 <= v <= 1 else f"must be between 0 and 1, got {v}"



def _tracking(value) -> str | None:
    """The spec's ``tracking`` block: {} (off) or {mlflow: {uri, experiment, parent_run_id}}."""
    if not value:
        return None
    if set(value) != {"mlflow"} or not isinstance(value["mlflow"], (dict, type(None))):
        return "must be {mlflow: {uri: ..., experiment: ...}} (MLflow is the tracker devgrad logs to)"
    unknown = set(value["mlflow"] or {}) - {"uri", "experiment", "parent_run_id"}
    if unknown:
        return f"mlflow: unknown key {sorted(unknown)[0]!r}; it takes uri, experiment and parent_run_id"
    bad = [k for k, v in (value["mlflow"] or {}).items() if v is not None and not isinstance(v, str)]
    return f"mlflow.{bad[0]}: must be a string or null" if bad else None


SCHEMA: dict = {
    "name": Field((str,), None, doc="run name: runs go to runs/<name>/ (default: the spec file's name)", nullable=True),
    "description": Field((str,), "", doc="free text shown in reports"),
    "seed": Field((int,), 0, check=_non_negative,
                  doc="seeds the data, the initial weights (drawn on the host: the same on CPU and GPU), "
                      "shuffling and dropout"),
    "device": Field((str,), "auto", doc="auto (CUDA when usable, else the CPU with a notice), cpu, cuda or cuda:N; "
                                        "a spec without it takes $DEVGRAD_DEVICE when set; --device overrides it"),
    "dtype": Field((str,), "float32", choices=("float32", "float64"), doc="the dtype of the data and the weights"),
    "task": Field((str,), "auto", choices=TASKS,
                  doc="classification (the target's values are classes), regression (a continuous target: a linear "
                      "output, metrics in the target's units), or auto: regression when the loss is mse, mae or "
                      "huber and the target is continuous, else classification; train.log and summary.json "
                      "(task_reason) say which and why"),
    "data": {
        "source": Field((str,), REQUIRED, doc="a synthetic generator, csv, npz, idx, or sklearn:<name> (see the "
                                              "data sources below)"),
        "n_samples": Field((int,), 1000, check=_positive, doc="synthetic data: number of points"),
        "noise": Field(NUM, 0.0, check=_non_negative, doc="synthetic data: std of Gaussian jitter added after "
                                                           "labelling"),
        "n_classes": Field((int,), None, check=_positive, nullable=True,
                           doc="spirals, blobs, classification: number of classes (null: the generator's default)"),
        "n_features": Field((int,), None, check=_positive, nullable=True,
                            doc="classification: input size (null: the generator's default, 64)"),
        "path": Field((str,), None, nullable=True, doc="csv, npz: the file (relative to the spec file)"),
        "target": Field((str,), None, nullable=True, doc="csv: the label column's name (the header row names the "
                                                         "columns)"),
        "images": Field((str,), None, nullable=True, doc="idx: the MNIST-format images file (.gz accepted)"),
        "labels": Field((str,), None, nullable=True, doc="idx: the MNIST-format labels file (.gz accepted)"),
        "split": {
            "train": Field(NUM, 0.7, check=_split_fraction, doc="fraction of the rows for training (> 0)"),
            "val": Field(NUM, 0.15, check=_split_fraction, doc="fraction for validation (0 is allowed: no rows)"),
            "test": Field(NUM, 0.15, check=_split_fraction,
                          doc="fraction for the test (0: no rows, no test metrics); the three sum to 1, and each "
                              "row is in exactly one split"),
        },
        "standardize": Field((bool,), True, doc="scale the features by the train split's mean and std"),
        "standardize_target": Field((bool,), True,
                                    doc="regression: train on (y - mean) / std of the train split (predictions and "
                                        "metrics are in the target's units)"),
    },
    "model": {
        "hidden": Field((list,), [16], check=_int_list, doc="hidden layer sizes; [] is a linear model"),
        "activation": Field((str,), "relu", choices=ACTIVATIONS, doc="the hidden layers' activation"),
        "init": Field((str,), "default", choices=INITS,
                      doc="weight initialisation; default is PyTorch's U(±1/sqrt(fan_in))"),
        "dropout": Field(NUM, 0.0, check=_fraction, doc="dropout probability after each hidden activation"),
        "bias": Field((bool,), True, doc="a bias in every layer"),
        "norm": Field((str,), "none", choices=tuple(nn.NORMS),
                      doc="a LayerNorm (layer) or BatchNorm1d (batch) after each hidden Linear, before its "
                          "activation; none"),
    },
    "loss": Field((str, dict), "auto", doc="a loss name or {name: ..., label_smoothing: ..., pos_weight: ..., "
                                            "delta: ...} (see the losses below)"),
    "optimizer": Field((str, dict), {"name": "adam"}, doc="an optimizer name or {name: ..., lr: ..., ...} (see the "
                                                         "optimizers below)"),
    "schedule": Field((str, dict, type(None)), {"name": "none"}, nullable=True,
                      doc="a learning-rate schedule name or {name: ..., warmup_epochs: 0, ...} (see the schedules "
                          "below)"),
    "train": {
        "epochs": Field((int,), 100, check=_positive, doc="number of epochs"),
        "batch_size": Field((int,), 32, check=_positive, nullable=True, doc="rows per batch; null: full batch"),
        "shuffle": Field((bool,), True, doc="reshuffle the training rows every epoch"),
        "clip_grad_norm": Field(NUM, None, check=_positive, nullable=True,
                                doc="clip the global gradient norm to this value (null: no clipping)"),
        "capture": Field((bool, str), "auto", choices=(True, False, "auto"),
                         doc="record the training step once and replay it: as one CUDA graph on a GPU, as a flat "
                             "plan of NumPy calls into preallocated buffers on the CPU (bit-identical to eager "
                             "steps); auto (when the step allows it: not with model.dropout or model.norm: batch), "
                             "true (insist: an error with either), false; summary.json and train.log say what it "
                             "did and why "
                             "(train.cuda_graph is accepted as another name for it)"),
        "threads": Field((int, str), "auto", check=_threads,
                         doc="BLAS threads on the CPU: auto (1 when every layer has at most 512x512 weights, else "
                             "all), or a number; needs threadpoolctl (the progress extra)"),
        "matmul_precision": Field((str,), "highest", choices=PRECISIONS,
                                  doc="float32 GEMMs on a GPU: highest (true float32) or high (TF32 tensor cores: "
                                      "faster on large layers, relative error near 1e-3); the CPU ignores it"),
        "early_stopping": {
            "enabled": Field((bool,), False, doc="off by default; writing an early_stopping block (or true) turns "
                                                 "it on"),
            "monitor": Field((str,), "val_loss", choices=MONITORS, doc="the metric watched"),
            "mode": Field((str,), "auto", choices=("auto", "min", "max"),
                          doc="auto: max for accuracy and r2, min for the others"),
            "patience": Field((int,), 10, check=_non_negative,
                              doc="stop after this many epochs without an improvement larger than min_delta"),
            "min_delta": Field(NUM, 0.0, check=_non_negative, doc="the smallest change that counts as an "
                                                                   "improvement"),
            "restore_best": Field((bool,), False, doc="end with the weights of the best monitored epoch"),
        },
        "checkpoint": {
            "seconds": Field(NUM, 30.0, check=_non_negative,
                             doc="write checkpoints/last.npz (and best.npz) at most every N seconds, and always at "
                                 "the end, on Ctrl-C and on divergence; 0: every epoch"),
            "every": Field((int,), None, check=_positive, nullable=True,
                           doc="also write checkpoints/last.npz every N epochs"),
            "save_best": Field((bool,), True, doc="keep checkpoints/best.npz of the best monitored epoch"),
        },
    },
    "plots": {
        "enabled": Field((bool,), True, doc="draw plots/ at the end of the run (false: none, e.g. in a large sweep; "
                                            "devgrad plot draws them later)"),
        "animate": Field((bool,), False, doc="2-D classification runs: plots/training.gif, the decision boundary "
                                             "after every epoch (at most 120 frames)"),
    },
    "metrics": Field((list, str), "auto", doc="metrics besides the loss: accuracy (classification); mse, mae, r2 "
                                              "(regression, in the target's units); auto: those of the task"),
    "tracking": Field((dict,), {}, check=_tracking,
                      doc="{mlflow: {uri: null, experiment: null}} logs the run to MLflow (uri null: "
                          "$MLFLOW_TRACKING_URI, else MLflow's default; experiment null: the spec's name); "
                          "--track mlflow[=URI] sets it (docs/tracking.md)"),
}
