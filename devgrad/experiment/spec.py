"""Experiment specs: the schema, YAML loading with line numbers, validation and overrides.

A spec is validated completely before anything runs; every problem is reported at once
with its key path, its line in the YAML file and how to fix it.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devgrad.data.synthetic import GENERATORS

REQUIRED = object()

SYNTHETIC = tuple(GENERATORS)
FILE_SOURCES = ("csv", "npz", "idx")
SKLEARN = ("digits", "iris", "breast_cancer", "wine")
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "softplus", "identity")
INITS = ("default", "zeros", "normal", "uniform", "xavier_uniform", "xavier_normal", "glorot_uniform",
         "glorot_normal", "kaiming_uniform", "kaiming_normal", "he_uniform", "he_normal")
LOSSES = ("auto", "bce", "logistic", "cross_entropy", "mse", "hinge")
OPTIMIZER_OPTIONS = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False},
    "adamw": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
    "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    "adagrad": {"lr": 0.01, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10, "initial_accumulator_value": 0.0},
}
SCHEDULE_OPTIONS = {
    "none": {},
    "step": {"step_size": 30, "gamma": 0.1},
    "exponential": {"gamma": 0.95},
    "cosine": {"eta_min": 0.0, "t_max": None},
    "linear": {"start_factor": 1.0, "end_factor": 0.0, "total_epochs": None},
}
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
METRICS = ("accuracy",)


@dataclass
class Field:
    """One key of the schema: its type(s), default, allowed values and a check."""

    kinds: tuple
    default: Any = REQUIRED
    choices: tuple | None = None
    check: Any = None          # value -> error message or None
    doc: str = ""
    nullable: bool = False


def _positive(v):
    return None if v > 0 else f"must be > 0, got {v}"


def _non_negative(v):
    return None if v >= 0 else f"must be >= 0, got {v}"


def _fraction(v):
    return None if 0 <= v < 1 else f"must be in [0, 1), got {v}"


def _int_list(v):
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v):
        return f"must be a list of positive integers, got {v}"
    return None


def _split_fraction(v):
    return None if 0 <= v <= 1 else f"must be between 0 and 1, got {v}"


NUM = (int, float)

SCHEMA: dict = {
    "name": Field((str,), None, doc="run name (default: the spec file's name)", nullable=True),
    "description": Field((str,), "", doc="free text shown in reports"),
    "seed": Field((int,), 0, doc="seeds data, initial weights, shuffling and dropout"),
    "device": Field((str,), "auto", doc="auto | cpu | cuda | cuda:N"),
    "dtype": Field((str,), "float32", choices=("float32", "float64")),
    "data": {
        "source": Field((str,), REQUIRED, doc="a synthetic generator, csv, npz, idx, or sklearn:<name>"),
        "n_samples": Field((int,), 1000, check=_positive, doc="synthetic: number of points"),
        "noise": Field(NUM, 0.0, check=_non_negative, doc="synthetic: std of Gaussian jitter"),
        "n_classes": Field((int,), None, check=_positive, nullable=True, doc="spirals/blobs/classification"),
        "n_features": Field((int,), None, check=_positive, nullable=True, doc="classification: input size"),
        "path": Field((str,), None, nullable=True, doc="csv/npz: file path (relative to the spec)"),
        "target": Field((str,), None, nullable=True, doc="csv: name of the label column"),
        "images": Field((str,), None, nullable=True, doc="idx: images file (.gz ok)"),
        "labels": Field((str,), None, nullable=True, doc="idx: labels file (.gz ok)"),
        "split": {
            "train": Field(NUM, 0.7, check=_split_fraction),
            "val": Field(NUM, 0.15, check=_split_fraction),
            "test": Field(NUM, 0.15, check=_split_fraction),
        },
        "standardize": Field((bool,), True, doc="scale features with train-set mean/std"),
    },
    "model": {
        "hidden": Field((list,), [16], check=_int_list, doc="hidden layer sizes, [] = logistic regression"),
        "activation": Field((str,), "relu", choices=ACTIVATIONS),
        "init": Field((str,), "default", choices=INITS),
        "dropout": Field(NUM, 0.0, check=_fraction),
        "bias": Field((bool,), True),
    },
    "loss": Field((str, dict), "auto", doc="auto | bce | logistic | cross_entropy | mse | hinge, or {name: ..., "
                                            "label_smoothing: ..., pos_weight: ...}"),
    "optimizer": Field((str, dict), {"name": "adam"}, doc="{name: sgd|adam|adamw|rmsprop|adagrad, lr: ..., ...}"),
    "schedule": Field((str, dict, type(None)), {"name": "none"}, nullable=True,
                      doc="{name: none|step|exponential|cosine|linear, warmup_epochs: 0, ...}"),
    "train": {
        "epochs": Field((int,), 100, check=_positive),
        "batch_size": Field((int,), 32, check=_positive, nullable=True, doc="null: full batch"),
        "shuffle": Field((bool,), True),
        "clip_grad_norm": Field(NUM, None, check=_positive, nullable=True),
        "cuda_graph": Field((bool,), False, doc="on a GPU, replay each training step as one captured CUDA graph "
                                                 "(ignored on the CPU)"),
        "early_stopping": {
            "enabled": Field((bool,), False),
            "monitor": Field((str,), "val_loss", choices=MONITORS),
            "mode": Field((str,), "auto", choices=("auto", "min", "max")),
            "patience": Field((int,), 10, check=_non_negative),
            "min_delta": Field(NUM, 0.0, check=_non_negative),
            "restore_best": Field((bool,), False),
        },
        "checkpoint": {
            "every": Field((int,), 1, check=_positive, doc="write checkpoints/last.npz every N epochs"),
            "save_best": Field((bool,), True, doc="keep checkpoints/best.npz of the best monitored epoch"),
        },
    },
    "metrics": Field((list,), ["accuracy"], doc="metrics besides the loss: accuracy"),
}


class SpecError(Exception):
    """A spec with problems; ``problems`` lists each one (path, line, message)."""

    def __init__(self, problems: list[str], source: str = "spec"):
        self.problems = problems
        self.source = source
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"{self.source}: {len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        return head + "\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass
class Loaded:
    """A spec as read from YAML: the data, and the line of every key path."""

    data: dict
    lines: dict = field(default_factory=dict)
    path: Path | None = None
    overridden: set = field(default_factory=set)


def _walk_nodes(node, prefix: tuple, lines: dict, problems: list, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            path = (*prefix, key)
            if key in seen:
                problems.append(f"{'.'.join(path)} (line {line}): duplicate key, first defined on line "
                                f"{seen[key]}; keep one of them")
            seen[key] = line
            lines[path] = line
            _walk_nodes(value_node, path, lines, problems, source)


def load_yaml(path) -> Loaded:
    """Read a spec file with the safe loader, recording key lines and rejecting duplicate keys."""
    path = Path(path)
    if not path.exists():
        raise SpecError([f"file not found: {path} (check the path, relative to {Path.cwd()})"], str(path))
    if path.is_dir():
        raise SpecError([f"{path} is a folder, not a YAML spec file"], str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([f"{path} is not UTF-8 text (byte {exc.start}): save the spec as UTF-8 YAML"],
                        str(path)) from None
    except OSError as exc:
        raise SpecError([f"cannot read {path}: {exc.strerror or exc}"], str(path)) from None
    return loads(text, source=str(path), path=path)


def loads(text: str, source: str = "spec", path: Path | None = None) -> Loaded:
    """Parse spec text (see ``load_yaml``)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"invalid YAML at {where}: {problem}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([f"the spec must be a mapping of keys (name:, data:, model:, ...), got a "
                         f"{type(data).__name__}"], source)
    lines: dict = {}
    problems: list = []
    _walk_nodes(root, (), lines, problems, source)
    if problems:
        raise SpecError(problems, source)
    return Loaded(data, lines, path)


def _type_name(kinds) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "true/false", list: "list", dict: "mapping",
             type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _is_kind(value, kinds) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


class _Validator:
    def __init__(self, lines: dict, overridden: set = frozenset()):
        self.lines = lines
        self.overridden = overridden
        self.problems: list[str] = []

    def where(self, path: tuple) -> str:
        dotted = ".".join(str(p) for p in path)
        for cut in range(len(path), 0, -1):
            if tuple(path[:cut]) in self.overridden:
                return f"{dotted} (from --set)"
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return f"{dotted} (line {line})"
        return dotted

    def add(self, path: tuple, message: str) -> None:
        self.problems.append(f"{self.where(path)}: {message}")

    def sorted_problems(self) -> list[str]:
        """Problems in the order of their lines in the file (those without a line last)."""
        import re

        def line_of(text: str) -> int:
            match = re.search(r"\(line (\d+)\)", text)
            return int(match.group(1)) if match else 10**9

        return sorted(self.problems, key=line_of)

    def unknown(self, path: tuple, key, known) -> None:
        close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(map(str, known)))}"
        self.add((*path, key), f"unknown key{hint}")

    def section(self, schema: dict, data, path: tuple) -> dict:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.add(path, f"must be a mapping, got {type(data).__name__}")
            data = {}
        out = {}
        for key in data:
            if key not in schema:
                self.unknown(path, key, schema)
        for key, spec in schema.items():
            value = data.get(key, REQUIRED)
            if isinstance(spec, dict):
                out[key] = self.section(spec, None if value is REQUIRED else value, (*path, key))
                continue
            out[key] = self.field(spec, value, (*path, key))
        return out

    def field(self, spec: Field, value, path: tuple):
        if value is REQUIRED:
            if spec.default is REQUIRED:
                self.add(path, "is required")
                return None
            return copy.deepcopy(spec.default)
        if value is None and spec.nullable:
            return None
        if not _is_kind(value, spec.kinds):
            self.add(path, f"must be of type {_type_name(spec.kinds)}, got {type(value).__name__} {value!r}")
            return copy.deepcopy(spec.default) if spec.default is not REQUIRED else None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"must be a finite number, got {value}")
        if spec.choices is not None and value not in spec.choices:
            close = difflib.get_close_matches(str(value), spec.choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.add(path, f"unknown value {value!r}; choose one of {', '.join(spec.choices)}{hint}")
        if spec.check is not None:
            message = spec.check(value)
            if message:
                self.add(path, message)
        return value


def _like_default(value, default) -> bool:
    """Is ``value`` of the kind of an option whose default is ``default``?"""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(_is_kind(x, NUM) for x in value)
    if default is None:  # optional number, e.g. cosine's t_max
        return value is None or _is_kind(value, NUM)
    return _is_kind(value, NUM)


def _options(v: _Validator, raw, path: tuple, table: dict, kind: str) -> dict:
    """Validate a {name: ..., option: ...} block against the per-name option table."""
    if isinstance(raw, str):
        raw = {"name": raw}
    if raw is None:
        raw = {"name": "none"}
    name = raw.get("name")
    if not isinstance(name, str):
        v.add((*path, "name"), f"is required: one of {', '.join(table)}")
        return {"name": next(iter(table))}
    key = name.lower()
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        v.add((*path, "name"), f"unknown {kind} {name!r}; choose one of {', '.join(table)}{hint}")
        return {"name": key}
    defaults = dict(table[key])
    if kind == "schedule" and key != "none":
        defaults["warmup_epochs"] = 0
    out = {"name": key}
    for opt, value in raw.items():
        if opt == "name":
            continue
        if opt not in defaults:
            known = list(defaults) or ["(no options)"]
            close = difflib.get_close_matches(opt, list(defaults), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; {key} takes: {', '.join(known)}"
            v.add((*path, opt), f"unknown option for {kind} '{key}'{hint}")
            continue
        if not _like_default(value, defaults[opt]):
            v.add((*path, opt), f"must be like {defaults[opt]!r}, got {value!r}")
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0 and opt != "lr":
            v.add((*path, opt), f"must be >= 0, got {value}")
        out[opt] = value
    for opt, default in defaults.items():
        out.setdefault(opt, copy.deepcopy(default))
    if kind == "optimizer" and out.get("lr", 1) <= 0:
        v.add((*path, "lr"), f"must be > 0, got {out['lr']}")
    if key in {"adam", "adamw"}:
        betas = out["betas"]
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            v.add((*path, "betas"), f"must be two numbers in [0, 1), got {betas}")
    if key == "sgd" and out.get("nesterov") and (out["momentum"] <= 0 or out["dampening"] != 0):
        v.add((*path, "nesterov"), "needs momentum > 0 and dampening 0")
    return out


def _loss(v: _Validator, raw, path: tuple) -> dict:
    if isinstance(raw, str):
        raw = {"name": raw}
    out = {"name": "auto", "label_smoothing": 0.0, "pos_weight": None}
    for key, value in raw.items():
        if key not in out:
            v.unknown(path, key, out)
            continue
        out[key] = value
    if out["name"] not in LOSSES:
        close = difflib.get_close_matches(str(out["name"]), LOSSES, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        v.add((*path, "name") if "name" in raw and len(raw) > 1 else path,
              f"unknown loss {out['name']!r}; choose one of {', '.join(LOSSES)}{hint}")
    if not _is_kind(out["label_smoothing"], NUM) or not 0 <= out["label_smoothing"] < 1:
        v.add((*path, "label_smoothing"), f"must be in [0, 1), got {out['label_smoothing']!r}")
    if out["pos_weight"] is not None and (not _is_kind(out["pos_weight"], NUM) or out["pos_weight"] <= 0):
        v.add((*path, "pos_weight"), f"must be a positive number, got {out['pos_weight']!r}")
    return out


def validate(loaded: Loaded, source: str = "spec", check_files: bool = True) -> dict:
    """The resolved spec (defaults filled in), or SpecError listing every problem."""
    v = _Validator(loaded.lines, loaded.overridden)
    raw = _early_stopping_shorthand(loaded.data)
    top = {k: s for k, s in SCHEMA.items() if k not in ("loss", "optimizer", "schedule")}
    for key in raw:
        if key not in SCHEMA:
            v.unknown((), key, SCHEMA)
    spec = v.section(top, {k: raw[k] for k in raw if k in top}, ())
    spec["loss"] = _loss(v, _block(v, raw, "loss", "auto"), ("loss",))
    spec["optimizer"] = _options(v, _block(v, raw, "optimizer", {"name": "adam"}), ("optimizer",),
                                 OPTIMIZER_OPTIONS, "optimizer")
    spec["schedule"] = _options(v, _block(v, raw, "schedule", {"name": "none"}), ("schedule",),
                                SCHEDULE_OPTIONS, "schedule")
    if spec["name"] is None:
        spec["name"] = loaded.path.stem if loaded.path else "experiment"
    _check_name(v, spec["name"])
    _check_device(v, spec["device"])
    _check_data(v, spec["data"], loaded.path, check_files)
    _check_metrics(v, spec["metrics"])
    _check_cuda_graph(v, spec)
    if v.problems:
        raise SpecError(v.sorted_problems(), source)
    return {key: spec[key] for key in SCHEMA}


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


def _block(v: _Validator, raw: dict, key: str, default):
    """A block given as a bare name or a {name: ..., options} mapping."""
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str | dict):
        v.add((key,), f"must be a name or a mapping with name:, got {type(value).__name__} {value!r}")
        return default
    return value


def _check_cuda_graph(v: _Validator, spec: dict) -> None:
    dropout = spec["model"]["dropout"]
    if spec["train"]["cuda_graph"] and isinstance(dropout, int | float) and dropout > 0:
        v.add(("train", "cuda_graph"), f"cannot be used with model.dropout = {dropout}: a captured step would "
                                       "replay the same dropout mask every time; set model.dropout: 0 or "
                                       "train.cuda_graph: false")


def _check_name(v: _Validator, name: str) -> None:
    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        v.add(("name",), f"must be a plain folder name (no slashes), got {name!r}")


def _check_device(v: _Validator, device: str) -> None:
    import re

    if not re.fullmatch(r"(auto|cpu|cuda(:\d+)?)", device.strip().lower()):
        v.add(("device",), f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")


def _check_data(v: _Validator, data: dict, spec_path: Path | None, check_files: bool) -> None:
    source = data.get("source")
    if source is None:
        return
    base = spec_path.parent if spec_path else Path.cwd()
    if source.startswith("sklearn:"):
        name = source.split(":", 1)[1]
        if name not in SKLEARN:
            close = difflib.get_close_matches(name, SKLEARN, n=1)
            hint = f"; did you mean 'sklearn:{close[0]}'?" if close else ""
            v.add(("data", "source"), f"unknown scikit-learn dataset {name!r}; choose one of "
                                      f"{', '.join('sklearn:' + s for s in SKLEARN)}{hint}")
    elif source in FILE_SOURCES:
        needed = {"csv": ("path", "target"), "npz": ("path",), "idx": ("images", "labels")}[source]
        for key in needed:
            if data.get(key) is None:
                v.add(("data", key), f"is required when data.source is {source}")
            elif check_files and key != "target":
                file = (base / data[key]) if not Path(data[key]).is_absolute() else Path(data[key])
                if not file.exists():
                    v.add(("data", key), f"file not found: {file} (paths are relative to the spec file's folder)")
    elif source not in SYNTHETIC:
        options = [*SYNTHETIC, *FILE_SOURCES, "sklearn:<name>"]
        close = difflib.get_close_matches(source, [*SYNTHETIC, *FILE_SOURCES], n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        v.add(("data", "source"), f"unknown dataset {source!r}; choose one of {', '.join(options)}{hint}")
    split = data["split"]
    total = sum(split.values())
    if abs(total - 1.0) > 1e-6:
        v.add(("data", "split"), f"train + val + test must sum to 1, got {total:g}")
    if split["train"] <= 0:
        v.add(("data", "split", "train"), "must be > 0")


def _check_metrics(v: _Validator, metrics: list) -> None:
    for i, m in enumerate(metrics):
        if m not in METRICS:
            v.add(("metrics", i), f"unknown metric {m!r}; choose from {', '.join(METRICS)} (loss is always "
                                  "recorded)")


# -- overrides ----------------------------------------------------------------------------

def apply_overrides(loaded: Loaded, overrides) -> Loaded:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a loaded spec.

    Unknown top-level sections are rejected here; unknown keys inside known sections are
    caught by ``validate`` like any other unknown key.
    """
    data = copy.deepcopy(loaded.data)
    problems = []
    overridden = set(loaded.overridden)
    for item in overrides or ():
        if "=" not in item:
            problems.append(f"--set {item!r}: expected key.path=value, e.g. --set optimizer.lr=0.1")
            continue
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            problems.append(f"--set {item!r}: empty key")
            continue
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"--set {item!r}: the value is not valid YAML ({exc})")
            continue
        if parts[0] not in SCHEMA:
            close = difflib.get_close_matches(parts[0], list(SCHEMA), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"--set {key}: unknown key '{parts[0]}'{hint}")
            continue
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if isinstance(child, str) and part in ("optimizer", "schedule", "loss"):
                child = {"name": child}
            if not isinstance(child, dict):
                child = {}
            node[part] = child
            node = child
        node[parts[-1]] = value
        overridden.add(tuple(parts))
    if problems:
        raise SpecError(problems, "overrides")
    return Loaded(data, loaded.lines, loaded.path, overridden)


def resolve(spec_or_path, overrides=(), check_files: bool = True) -> dict:
    """A spec file path, YAML text or dict -> the validated, resolved spec dict."""
    if isinstance(spec_or_path, dict):
        loaded = Loaded(copy.deepcopy(spec_or_path))
        source = "spec"
    else:
        path = Path(spec_or_path)
        loaded = load_yaml(path)
        source = str(path)
    loaded = apply_overrides(loaded, overrides)
    spec = validate(loaded, source=source, check_files=check_files)
    base = loaded.path.parent.resolve() if loaded.path is not None else Path.cwd()
    for key in ("path", "images", "labels"):
        value = spec["data"].get(key)
        if value is not None and not Path(value).is_absolute():
            # Stored absolute, so the run folder's config.yaml works from anywhere.
            spec["data"][key] = str((base / value).resolve())
    return spec


def to_yaml(spec: dict) -> str:
    """The resolved spec as YAML."""
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)
