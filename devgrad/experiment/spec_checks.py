"""The checks of a spec as a whole (``validate``): every problem of a loaded spec, with its key
path and line, before anything runs.

Each key's own type, choices and range come from ``SCHEMA`` (``devgrad.experiment.spec_keys``);
here are the blocks written as a name or a mapping (loss, optimizer, schedule), the checks
across keys (data source and its files, metrics and the task, capture and dropout), and the
optimizer's and schedule's own validation, run by building them on a stand-in parameter.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import re
from pathlib import Path

from devgrad import optim
from devgrad.backend import parse_device
from devgrad.core import Tensor
from devgrad.data.synthetic import GENERATORS
from devgrad.experiment.schema import NUM, REQUIRED, Loaded, SpecError, Validator, did_you_mean, is_kind, like_default
from devgrad.experiment.spec_keys import (
    CLASSIFICATION_METRICS, DATA_KEY_READERS, FILE_SOURCES, LOSS_OPTION_USERS, LOSSES, METRICS, NO_WARMUP_SCHEDULES,
    REGRESSION_METRICS, SCHEDULE_ALIASES, SCHEMA, SKLEARN, SYNTHETIC, loss_options, optimizer_options,
    schedule_options,
)
from devgrad.nn import functional as F

__all__ = ["validate"]


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


def _loss(v: Validator, raw, path: tuple, task: str) -> dict:
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
    if not any(p.startswith(".".join(path)) for p in v.problems):
        _check_loss_users(v, out, path, task)
    return out


def _check_loss_users(v: Validator, loss: dict, path: tuple, task: str) -> None:
    """An option set for a loss that does not use it would be ignored: an error. Loss auto is mse
    for a regression, else bce or cross_entropy as the data's classes decide (the run checks those)."""
    name = loss["name"]
    chosen = "mse" if name == "auto" and task == "regression" else name
    for opt, default in loss_options().items():
        users = LOSS_OPTION_USERS[opt]
        if loss[opt] == default or chosen in users or (chosen == "auto" and {"bce", "cross_entropy"} & set(users)):
            continue
        what = f"loss {name}" if chosen == name else "loss auto (mse for a regression)"
        if chosen == "auto":
            what = "loss auto (bce or cross_entropy for classes)"
        fix = f", or set loss.name: {users[0]}" if task != "regression" or users[0] in F.REGRESSION_LOSSES else ""
        v.add((*path, opt), f"{what} does not use {opt}, which would be ignored: it is an option of "
                            f"{' and '.join(users)} only; remove it{fix}")


def validate(loaded: Loaded, source: str = "spec", check_files: bool = True) -> dict:
    """The resolved spec (defaults filled in), or SpecError listing every problem."""
    v = Validator(loaded.lines, loaded.overridden)
    raw = _capture_alias(v, _early_stopping_shorthand(loaded.data))
    top = {k: s for k, s in SCHEMA.items() if k not in ("loss", "optimizer", "schedule")}
    for key in raw:
        if key == "sweep":
            v.add(("sweep",), "this spec describes a sweep (a grid or a search of runs): run it with "
                              "'devgrad sweep SPEC' (devgrad run trains one spec; remove the sweep: block to run the "
                              "base spec alone)")
        elif key not in SCHEMA:
            v.unknown((), key, SCHEMA)
    if "device" not in raw and os.environ.get("DEVGRAD_DEVICE"):
        # No device in the spec: the default device of the library ($DEVGRAD_DEVICE), as dg.device() does.
        raw = {**raw, "device": os.environ["DEVGRAD_DEVICE"]}
        v.overridden = {**v.overridden, ("device",): "the environment variable DEVGRAD_DEVICE"}
    spec = v.section(top, {k: raw[k] for k in raw if k in top}, ())
    spec["loss"] = _loss(v, _block(v, raw, "loss", "auto"), ("loss",), spec["task"])
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
    _check_norm(v, spec)
    _check_run_schedule(v, spec)
    if v.problems:
        raise SpecError(v.sorted_problems(), source)
    return {key: spec[key] for key in SCHEMA}


def _check_norm(v: Validator, spec: dict) -> None:
    """model.norm normalises hidden layers: there must be some, and a batch norm needs batches of
    at least two rows to take statistics of."""
    norm = spec["model"]["norm"]
    if norm == "none":
        return
    if not spec["model"]["hidden"]:
        v.add(("model", "norm"), f"{norm} normalises the hidden layers, and model.hidden is empty (a linear model); "
                                 "add hidden layers or set model.norm: none")
    if norm == "batch" and spec["train"]["batch_size"] == 1:
        v.add(("model", "norm"), "batch takes each batch's mean and variance, and train.batch_size is 1 (one row "
                                 "has no variance); use train.batch_size >= 2 or model.norm: layer")


def _check_run_schedule(v: Validator, spec: dict) -> None:
    """plateau and onecycle step on their own terms (no warm-up in front); plateau's mode must
    match the direction of the metric it watches (train.early_stopping.monitor)."""
    schedule = spec["schedule"]
    name = schedule.get("name")
    if name not in NO_WARMUP_SCHEDULES or any(p.startswith("schedule") for p in v.problems):
        return
    if schedule.get("warmup_epochs"):
        v.add(("schedule", "warmup_epochs"), f"{name} sets the rate from the first epoch on its own and takes no "
                                             "warm-up; set warmup_epochs: 0" +
              (" (onecycle's pct_start is its warm-up)" if name == "onecycle" else ""))
    if name == "plateau":
        monitor = spec["train"]["early_stopping"]["monitor"]
        rising = monitor.endswith(("accuracy", "r2"))
        if schedule["mode"] != ("max" if rising else "min"):
            v.add(("schedule", "mode"), f"{schedule['mode']!r} would lower the rate while the watched metric "
                                        f"{monitor} (train.early_stopping.monitor) improves; set mode: "
                                        f"{'max' if rising else 'min'}")


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
    if spec["train"]["capture"] is True and spec["model"]["norm"] == "batch":
        v.add(("train", written), "cannot be used with model.norm: batch, whose running statistics change inside "
                                  "the forward pass; set train.capture: auto (or false), or model.norm: layer")
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
    _check_data_keys(v, data, source)
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


def _check_data_keys(v: Validator, data: dict, source: str) -> None:
    """A data key set (to other than its default) that the source does not read would be ignored:
    an error naming the sources that read it."""
    kind = "synthetic" if source in SYNTHETIC else source
    for key, readers in DATA_KEY_READERS.items():
        if kind in readers or data.get(key) == SCHEMA["data"][key].default:
            continue
        users = "a synthetic source" if readers == ("synthetic",) else f"data.source {' or '.join(readers)}"
        fix = "" if readers == ("synthetic",) else f", or set data.source: {' or '.join(readers)}"
        v.add(("data", key), f"data.source {source} does not read {key}, which would be ignored: it is for {users} "
                             f"only; remove it{fix}")


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
