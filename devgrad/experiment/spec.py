"""devgrad's experiment spec: its keys, its vocabulary and its checks (``resolve``).

The generic machinery — YAML with line numbers, the validator, overrides — is
``devgrad.experiment.schema``. The vocabulary is not written here: activation and init
names come from ``devgrad.nn``, loss names from ``devgrad.nn.functional.LOSSES``, optimizer
and schedule names from ``devgrad.optim``, and each optimizer's and schedule's options with
their defaults from its constructor's signature; an option's value is then checked by
building the object, so its own validation is the spec's.
"""

from __future__ import annotations

import copy
import math
import dataclasses
import os
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from devgrad import nn, optim
from devgrad.backend import parse_device
from devgrad.backend.precision import PRECISIONS
from devgrad.core import Tensor
from devgrad.data.files import SKLEARN_CLASSIFICATION, SKLEARN_REGRESSION
from devgrad.data.synthetic import GENERATORS
from devgrad.experiment.examples import spec_file
from devgrad.experiment.schema import (
    NUM, REQUIRED, Field, Loaded, SpecError, Validator, apply_overrides, did_you_mean, is_kind, like_default,
    load_yaml, options_of, to_yaml,
)
from devgrad.nn import functional as F

__all__ = ["SCHEMA", "Spec", "SpecError", "resolve", "to_yaml", "validate"]

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
    "cosine": {"t_max": None}, "linear": {"start_factor": 1.0, "end_factor": 0.0, "total_iters": None}}
# Other spellings users write for an option, kept working: name -> {alias: option}.
SCHEDULE_ALIASES = {"cosine": {"T_max": "t_max"}, "linear": {"total_epochs": "total_iters"}}
RUN_LENGTH = object()  # stands for "the run's length" while checking a schedule's options


def optimizer_options(name: str) -> dict:
    """Option -> default of optimizer ``name``, from its constructor."""
    return options_of(optim.OPTIMIZERS[name], OPTIMIZER_SKIP)


def schedule_options(name: str) -> dict:
    """Option -> default of schedule ``name`` in a spec (its constructor's, then the run defaults)."""
    options = options_of(optim.SCHEDULES[name], SCHEDULE_SKIP)
    options.update(SCHEDULE_RUN_DEFAULTS.get(name, {}))
    options["warmup_epochs"] = 0
    return options


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
            "val": Field(NUM, 0.15, check=_split_fraction, doc="fraction for validation (0 is allowed)"),
            "test": Field(NUM, 0.15, check=_split_fraction, doc="fraction for the test; the three sum to 1"),
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
                             "steps); auto (when the step allows it: not with model.dropout), true (insist: an "
                             "error with dropout), false; summary.json and train.log say what it did and why "
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


def _options(v: Validator, raw, path: tuple, table, kind: str, defaults_of, aliases=None) -> dict:
    """A {name: ..., option: ...} block: the name from ``table``, the options and their defaults
    from ``defaults_of(name)``; values of the wrong kind are reported here, the rest by the
    class itself (see ``_check_by_building``)."""
    if isinstance(raw, str):
        raw = {"name": raw}
    name = raw.get("name")
    if not isinstance(name, str):
        v.add((*path, "name"), f"is required: one of {', '.join(table)}")
        return {"name": next(iter(table))}
    key = name.lower()
    if key not in table:
        v.add((*path, "name"), f"unknown {kind} {name!r}; choose one of {', '.join(table)}{did_you_mean(key, table)}")
        return {"name": key}
    defaults = defaults_of(key)
    renamed = (aliases or {}).get(key, {})
    out = {"name": key}
    for opt, value in raw.items():
        if opt == "name":
            continue
        opt = renamed.get(opt, opt)
        if opt not in defaults:
            hint = did_you_mean(opt, defaults) or f"; {key} takes: {', '.join(defaults) or '(no options)'}"
            v.add((*path, opt), f"unknown option for {kind} '{key}'{hint}")
            continue
        if not like_default(value, defaults[opt]):
            v.add((*path, opt), f"must be like {defaults[opt]!r}, got {value!r}")
            continue
        if isinstance(value, float) and not math.isfinite(value):  # lr: .inf trains to NaN
            v.add((*path, opt), f"must be a finite number, got {value}")
            continue
        out[opt] = value
    for opt, default in defaults.items():
        if opt not in out:
            if default is REQUIRED:
                v.add((*path, opt), f"is required for {kind} '{key}'")
            else:
                out[opt] = copy.deepcopy(default)
    return out


def _check_by_building(v: Validator, spec: dict) -> None:
    """Let the optimizer and the schedule judge their own options: build them on a stand-in
    parameter; whatever they refuse is reported at the option's key."""
    if any(p.startswith(("optimizer", "schedule")) for p in v.problems):
        return  # names or kinds already wrong: building would only repeat it
    options = {k: (tuple(x) if isinstance(x, list) else x) for k, x in spec["optimizer"].items() if k != "name"}
    try:
        opt = optim.OPTIMIZERS[spec["optimizer"]["name"]]([Tensor([0.0], requires_grad=True, device="cpu")], **options)
    except (ValueError, TypeError) as exc:
        v.add(("optimizer", _named_option(str(exc), options)), str(exc))
        return
    schedule = dict(spec["schedule"])
    name = schedule.pop("name")
    if name == "none":
        return
    warmup = schedule.pop("warmup_epochs")
    if not isinstance(warmup, int) or warmup < 0:
        v.add(("schedule", "warmup_epochs"), f"must be a whole number >= 0, got {warmup!r}")
    options = {k: (max(spec["train"]["epochs"] - (warmup or 0), 1) if x is None else x) for k, x in schedule.items()}
    try:
        optim.SCHEDULES[name](opt, **options)
    except (ValueError, TypeError) as exc:
        v.add(("schedule", _named_option(str(exc), options)), str(exc))


def _named_option(message: str, options: dict) -> str:
    """The option an error message is about (the first option name it mentions), else 'name'."""
    text = message.split(": ", 1)[-1]  # past the class name
    at = {opt: m.start() for opt in options if (m := re.search(rf"\b{re.escape(opt)}\b", text))}
    return min(at, key=at.__getitem__) if at else "name"


def _loss(v: Validator, raw, path: tuple) -> dict:
    if isinstance(raw, str):
        raw = {"name": raw}
    out = {"name": "auto", **loss_options()}
    for key, value in raw.items():
        if key not in out:
            v.unknown(path, key, out)
            continue
        out[key] = value
    if out["name"] not in LOSSES:
        v.add((*path, "name") if "name" in raw and len(raw) > 1 else path,
              f"unknown loss {out['name']!r}; choose one of {', '.join(LOSSES)}{did_you_mean(out['name'], LOSSES)}")
    if not is_kind(out["label_smoothing"], NUM) or not 0 <= out["label_smoothing"] < 1:
        v.add((*path, "label_smoothing"), f"must be in [0, 1), got {out['label_smoothing']!r}")
    if out["pos_weight"] is not None and (not is_kind(out["pos_weight"], NUM) or out["pos_weight"] <= 0):
        v.add((*path, "pos_weight"), f"must be a positive number, got {out['pos_weight']!r}")
    if not is_kind(out["delta"], NUM) or out["delta"] <= 0:
        v.add((*path, "delta"), f"must be a positive number (huber's threshold), got {out['delta']!r}")
    return out


def validate(loaded: Loaded, source: str = "spec", check_files: bool = True) -> dict:
    """The resolved spec (defaults filled in), or SpecError listing every problem."""
    v = Validator(loaded.lines, loaded.overridden)
    raw = _capture_alias(v, _early_stopping_shorthand(loaded.data))
    top = {k: s for k, s in SCHEMA.items() if k not in ("loss", "optimizer", "schedule")}
    for key in raw:
        if key == "sweep":
            v.add(("sweep",), "this spec describes a sweep (a grid of runs): run it with 'devgrad sweep SPEC' "
                              "(devgrad run trains one spec; remove the sweep: block to run the base spec alone)")
        elif key not in SCHEMA:
            v.unknown((), key, SCHEMA)
    if "device" not in raw and os.environ.get("DEVGRAD_DEVICE"):
        # No device in the spec: the default device of the library ($DEVGRAD_DEVICE), as dg.device() does.
        raw = {**raw, "device": os.environ["DEVGRAD_DEVICE"]}
    spec = v.section(top, {k: raw[k] for k in raw if k in top}, ())
    spec["loss"] = _loss(v, _block(v, raw, "loss", "auto"), ("loss",))
    spec["optimizer"] = _options(v, _block(v, raw, "optimizer", {"name": "adam"}), ("optimizer",),
                                 optim.OPTIMIZERS, "optimizer", optimizer_options)
    spec["schedule"] = _options(v, _block(v, raw, "schedule", {"name": "none"}), ("schedule",),
                                {"none": None, **optim.SCHEDULES}, "schedule",
                                lambda name: {} if name == "none" else schedule_options(name), SCHEDULE_ALIASES)
    if spec["name"] is None:
        spec["name"] = loaded.path.stem if loaded.path else "experiment"
    _check_name(v, spec["name"])
    _check_device(v, spec["device"])
    _check_data(v, spec["data"], loaded.path, check_files)
    _check_metrics(v, spec["metrics"], spec["task"], spec["loss"]["name"])
    train = loaded.data.get("train")
    _check_capture(v, spec, "cuda_graph" if isinstance(train, dict) and "cuda_graph" in train else "capture")
    _check_by_building(v, spec)
    if v.problems:
        raise SpecError(v.sorted_problems(), source)
    return {key: spec[key] for key in SCHEMA}


def _capture_alias(v: Validator, raw: dict) -> dict:
    """``train.cuda_graph`` (the older name) means ``train.capture``; both at once is a mistake."""
    train = raw.get("train")
    if not isinstance(train, dict) or "cuda_graph" not in train:
        return raw
    train = dict(train)
    old = train.pop("cuda_graph")
    if "capture" in train:
        v.add(("train", "cuda_graph"), "is the older name of train.capture, which is given too: keep only "
                                       "train.capture")
    else:
        train["capture"] = old
    return {**raw, "train": train}


def _early_stopping_shorthand(raw: dict) -> dict:
    """Writing an early_stopping block turns it on (``enabled`` defaults to true there);
    ``early_stopping: false`` or ``null`` turns it off, ``true`` on with the defaults."""
    train = raw.get("train")
    if not isinstance(train, dict) or "early_stopping" not in train:
        return raw
    block = train["early_stopping"]
    if block is None or isinstance(block, bool):
        block = {"enabled": bool(block)}
    elif isinstance(block, dict) and "enabled" not in block:
        block = {"enabled": True, **block}
    else:
        return raw
    return {**raw, "train": {**train, "early_stopping": block}}


def _block(v: Validator, raw: dict, key: str, default):
    """A block given as a bare name or a {name: ..., options} mapping."""
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | dict):
        v.add((key,), f"must be a name or a mapping with name:, got {type(value).__name__} {value!r}")
        return default
    return value


def _check_capture(v: Validator, spec: dict, written: str) -> None:
    """``written``: the key the spec used (capture, or its older name cuda_graph), named in the message."""
    dropout = spec["model"]["dropout"]
    if spec["train"]["capture"] is True and isinstance(dropout, int | float) and dropout > 0:
        v.add(("train", written), f"cannot be used with model.dropout = {dropout}: a captured step would "
                                  "replay the same dropout mask every time; set model.dropout: 0 or "
                                  f"train.{written}: false")


def _check_name(v: Validator, name: str) -> None:
    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        v.add(("name",), f"must be a plain folder name (no slashes), got {name!r}")


def _check_device(v: Validator, device: str) -> None:
    try:
        parse_device(device)  # the backend's own parser: the spelling only, whatever this machine has
    except ValueError as exc:
        v.add(("device",), str(exc))


def _check_data(v: Validator, data: dict, spec_path: Path | None, check_files: bool) -> None:
    source = data.get("source")
    if source is None:
        return
    base = spec_path.parent if spec_path else Path.cwd()
    if source.startswith("sklearn:"):
        name = source.split(":", 1)[1]
        if name not in SKLEARN:
            v.add(("data", "source"), f"unknown scikit-learn dataset {name!r}; choose one of "
                                      f"{', '.join('sklearn:' + s for s in SKLEARN)}"
                                      f"{did_you_mean('sklearn:' + name, ['sklearn:' + s for s in SKLEARN])}")
    elif source in FILE_SOURCES:
        needed = {"csv": ("path", "target"), "npz": ("path",), "idx": ("images", "labels")}[source]
        for key in needed:
            if data.get(key) is None:
                v.add(("data", key), f"is required when data.source is {source}")
            elif check_files and key != "target":
                file = (base / data[key]) if not Path(data[key]).is_absolute() else Path(data[key])
                if not file.exists():
                    v.add(("data", key), f"file not found: {file} (paths are relative to the spec file's folder)")
                elif file.is_dir():
                    v.add(("data", key), f"{file} is a folder; give the {source} file in it")
    elif source not in SYNTHETIC:
        options = [*SYNTHETIC, *FILE_SOURCES, "sklearn:<name>"]
        v.add(("data", "source"), f"unknown dataset {source!r}; choose one of {', '.join(options)}"
                                  f"{did_you_mean(source, [*SYNTHETIC, *FILE_SOURCES])}")
    _check_data_sizes(v, data, source)
    split = data["split"]
    total = sum(split.values())
    if abs(total - 1.0) > 1e-6:
        v.add(("data", "split"), f"train + val + test must sum to 1, got {total:g}")
    if split["train"] <= 0:
        v.add(("data", "split", "train"), "must be > 0")


def _check_data_sizes(v: Validator, data: dict, source: str) -> None:
    """data.n_classes / n_features only where the source makes them (never silently ignored), and
    enough generated rows for every class to be learned and measured."""
    takes = inspect.signature(GENERATORS[source]).parameters if source in GENERATORS else {}
    for key in ("n_classes", "n_features"):
        if data.get(key) is not None and key not in takes:
            users = [name for name, make in GENERATORS.items() if key in inspect.signature(make).parameters]
            v.add(("data", key), f"data.source {source} does not take {key} (its data decides it); it is for "
                                 f"{', '.join(users)}: remove it")
    if "n_classes" in takes and isinstance(data.get("n_samples"), int):
        classes = data.get("n_classes") or takes["n_classes"].default
        if isinstance(classes, int) and 2 * classes > data["n_samples"]:
            v.add(("data", "n_classes"), f"{classes} classes in {data['n_samples']} rows (data.n_samples): fewer "
                                         "than 2 rows per class cannot be both learned and measured; use fewer "
                                         "classes or more samples")


def _check_metrics(v: Validator, metrics, task: str, loss: str) -> None:
    if task == "regression" and loss not in ("auto", *F.REGRESSION_LOSSES):
        v.add(("loss",), f"{loss} is a classification loss, but task is regression; use "
                         f"{', '.join(F.REGRESSION_LOSSES)}")
    if isinstance(metrics, str):
        if metrics != "auto":
            v.add(("metrics",), f"must be a list of metrics or auto, got {metrics!r}")
        return
    for i, m in enumerate(metrics):
        if m not in METRICS:
            v.add(("metrics", i), f"unknown metric {m!r}; choose from {', '.join(METRICS)} (loss is always "
                                  "recorded)")
        elif task == "classification" and m in REGRESSION_METRICS:
            v.add(("metrics", i), f"{m} is a regression metric, but task is classification; use accuracy")
        elif task == "regression" and m in CLASSIFICATION_METRICS:
            v.add(("metrics", i), f"{m} is a classification metric, but task is regression; use "
                                  f"{', '.join(REGRESSION_METRICS)}")


# -- the resolved spec, typed ----------------------------------------------------------------

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


def resolve(spec_or_path, overrides=(), check_files: bool = True) -> Spec:
    """A spec file path or a dict (a Spec too) -> the validated, resolved, typed Spec."""
    if isinstance(spec_or_path, Spec):
        spec_or_path = spec_or_path.to_dict()
    if isinstance(spec_or_path, Loaded):  # already read (a sweep's base spec, its lines kept for messages)
        loaded = spec_or_path
        source = str(loaded.path) if loaded.path is not None else "spec"
    elif isinstance(spec_or_path, dict):
        loaded = Loaded(copy.deepcopy(spec_or_path))
        source = "spec"
    else:
        path = spec_file(spec_or_path)  # a path, else a spec devgrad ships, by name
        loaded = load_yaml(path)
        source = str(path)
    loaded = apply_overrides(loaded, overrides, SCHEMA, NAME_BLOCKS)
    spec = validate(loaded, source=source, check_files=check_files)
    base = loaded.path.parent.resolve() if loaded.path is not None else Path.cwd()
    for key in ("path", "images", "labels"):
        value = spec["data"].get(key)
        if value is not None and not Path(value).is_absolute():
            # Stored absolute, so the run folder's config.yaml works from anywhere.
            spec["data"][key] = str((base / value).resolve())
    return Spec.from_dict(spec)
