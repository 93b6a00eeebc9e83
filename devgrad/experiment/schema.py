"""A small schema engine for YAML configuration: line-numbered loading, validation, overrides.

Nothing here knows about devgrad's experiments (that is ``devgrad.experiment.spec``): a schema
is a nested dict of ``Field``s, loading keeps the line of every key, ``Validator`` collects
every problem with its key path and line (or "(from --set)") before anything runs, and
``apply_overrides`` applies ``key.path=value`` strings. ``options_of`` reads a class's
keyword parameters, so a spec can take its option names and defaults from the classes it
builds.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REQUIRED = object()
NUM = (int, float)


def did_you_mean(value, choices) -> str:
    """'; did you mean 'x'?' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class _SpecLoader(yaml.SafeLoader):
    """The safe loader, reading numbers as a person (and YAML 1.2) writes them: every float
    spelling (``1e-3``, ``1E-3``, ``.5``, ``5.``), where YAML 1.1 wants a dot and a signed
    exponent (``1.0e-3``) and would read ``1e-3`` as a string; and integers in decimal, a leading
    zero included (``010`` is 10), where YAML 1.1 reads ``010`` as octal 8 and ``1:30`` as base
    60 (90): ``1:30`` is the text it looks like. ``0x`` (hex) and ``0b`` (binary) keep their
    prefixes' meaning."""


_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_INT = re.compile(r"^(?:[-+]?[0-9][0-9_]*|[-+]?0b[01_]+|[-+]?0x[0-9a-fA-F_]+)$")
_NUMBER_TAGS = ("tag:yaml.org,2002:float", "tag:yaml.org,2002:int")
_SpecLoader.yaml_implicit_resolvers = {k: [r for r in v if r[0] not in _NUMBER_TAGS]
                                       for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))


def _construct_int(loader: yaml.SafeLoader, node) -> int:
    """An integer scalar: decimal (leading zeros are not octal), or hex / binary by its prefix."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    return int(text, 0) if re.match(r"[-+]?0[xb]", text) else int(text, 10)


_SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_value(text: str):
    """A YAML scalar or flow value as a ``--set`` gives it (same number rules as spec files)."""
    return yaml.load(text, Loader=_SpecLoader) if text.strip() else None  # a SafeLoader subclass: safe


@dataclass
class Field:
    """One key of the schema: its type(s), default, allowed values and a check."""

    kinds: tuple
    default: Any = REQUIRED
    choices: tuple | None = None
    check: Any = None          # value -> error message or None
    doc: str = ""
    nullable: bool = False


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
    overridden: dict = field(default_factory=dict)  # key path -> where the value came from ("--set")


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
        root = yaml.compose(text, Loader=_SpecLoader)
        data = yaml.load(text, Loader=_SpecLoader)  # a SafeLoader subclass: safe
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


def is_kind(value, kinds) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if isinstance(value, int) and float in kinds:
        return True
    return isinstance(value, kinds)


class Validator:
    """Collects every problem of one spec, each with its key path and line."""

    def __init__(self, lines: dict, overridden: dict | None = None):
        self.lines = lines
        self.overridden = overridden or {}
        self.problems: list[str] = []

    def where(self, path: tuple) -> str:
        dotted = ".".join(str(p) for p in path)
        for cut in range(len(path), 0, -1):
            origin = self.overridden.get(tuple(path[:cut]))
            if origin is not None:
                return f"{dotted} (from {origin})"
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return f"{dotted} (line {line})"
        return dotted

    def add(self, path: tuple, message: str) -> None:
        self.problems.append(f"{self.where(path)}: {message}")

    def sorted_problems(self) -> list[str]:
        """Problems in the order of their lines in the file (those without a line last)."""

        def line_of(text: str) -> int:
            match = re.search(r"\(line (\d+)\)", text)
            return int(match.group(1)) if match else 10**9

        return sorted(self.problems, key=line_of)

    def unknown(self, path: tuple, key, known) -> None:
        inside = [f"{name}.{key}" for name, child in known.items() if isinstance(child, dict) and key in child] \
            if isinstance(known, dict) else []
        if inside:  # `epochs: 3` at the top of a spec belongs in train:
            hint = f"; did you mean {' or '.join(repr(k) for k in inside)} (under {inside[0].split('.')[0]}:)?"
        else:
            hint = did_you_mean(key, known) or f"; known keys: {', '.join(sorted(map(str, known)))}"
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
        if not is_kind(value, spec.kinds):
            self.add(path, f"must be of type {_type_name(spec.kinds)}, got {type(value).__name__} {value!r}")
            return copy.deepcopy(spec.default) if spec.default is not REQUIRED else None
        if isinstance(value, float) and not math.isfinite(value):
            self.add(path, f"must be a finite number, got {value}")
        if spec.choices is not None and value not in spec.choices:
            self.add(path, f"unknown value {value!r}; choose one of {', '.join(map(str, spec.choices))}"
                           f"{did_you_mean(value, spec.choices)}")
        if spec.check is not None:
            message = spec.check(value)
            if message:
                self.add(path, message)
        return value


def like_default(value, default) -> bool:
    """Is ``value`` of the kind of an option whose default is ``default``?"""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, str):  # a word, e.g. plateau's mode: the schedule checks which
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list) and all(is_kind(x, NUM) for x in value)
    if default is None:  # optional number, e.g. cosine's t_max
        return value is None or is_kind(value, NUM)
    return is_kind(value, NUM)


def options_of(cls, skip=()) -> dict:
    """The keyword parameters of ``cls``'s constructor with their defaults (REQUIRED where it has
    none), skipping ``skip`` and keyword-only aliases. Tuples become lists (YAML has no tuples)."""
    options = {}
    for name, param in inspect.signature(cls).parameters.items():
        if name in skip or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            continue
        default = param.default
        if default is param.empty:
            default = REQUIRED
        elif isinstance(default, tuple):
            default = list(default)
        options[name] = default
    return options


def apply_overrides(loaded: Loaded, overrides, top_keys, name_blocks=()) -> Loaded:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a loaded spec.

    Unknown top-level keys (not in ``top_keys``) are rejected here; unknown keys inside known
    sections are caught by validation like any other unknown key. ``name_blocks`` are keys
    that may be written as a bare name (``optimizer: adam``) and take options under it; a block
    the spec leaves out starts from its Field's default (``optimizer.lr=0.1`` sets the default
    optimizer's lr), so a misspelt option is judged, with a suggestion, like one in a file. An
    override may be ``(origin, "key=value")`` to name where it came from in messages (e.g.
    ``--device``); plain strings come from ``--set``.
    """
    data = copy.deepcopy(loaded.data)
    problems = []
    overridden = dict(loaded.overridden)
    if isinstance(overrides, str):  # run(spec, overrides="optimizer.lr=0.1"): one override, not its letters
        overrides = [overrides]
    for item in overrides or ():
        origin, item = item if isinstance(item, tuple) else ("--set", item)
        if "=" not in item:
            problems.append(f"{origin} {item!r}: expected key.path=value, e.g. {origin} optimizer.lr=0.1")
            continue
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            problems.append(f"{origin} {item!r}: empty key")
            continue
        try:
            value = parse_value(text)
        except yaml.YAMLError as exc:
            problems.append(f"{origin} {item!r}: the value is not valid YAML ({exc})")
            continue
        if parts[0] not in top_keys:
            problems.append(f"{origin} {key}: unknown key '{parts[0]}'{did_you_mean(parts[0], top_keys)}")
            continue
        node, schema = data, top_keys
        for part in parts[:-1]:
            child = node.get(part)
            entry = schema.get(part) if isinstance(schema, dict) else None
            if isinstance(child, str) and part in name_blocks:
                child = {"name": child}
            if child is None and isinstance(entry, Field) and isinstance(entry.default, dict):
                # A block the spec leaves out has its default ({name: adam}): an option set on it joins that
                child = copy.deepcopy(entry.default)
            if not isinstance(child, dict):
                child = {}
            node[part] = child
            node, schema = child, entry
        node[parts[-1]] = value
        overridden[tuple(parts)] = origin
    if problems:
        raise SpecError(problems, "overrides")
    return Loaded(data, loaded.lines, loaded.path, overridden)


class _PlainDumper(yaml.SafeDumper):
    """YAML for people: a value used twice is written twice, never as an anchor (``&id001``) and
    alias; text that the spec loader would read as a number (``08``, ``1e-3``) is quoted, so what
    is written reads back as it was."""

    def ignore_aliases(self, data) -> bool:
        return True


_PlainDumper.yaml_implicit_resolvers = _SpecLoader.yaml_implicit_resolvers


def to_yaml(data: dict) -> str:
    """A resolved spec (or any plain data) as YAML, without anchors."""
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False, default_flow_style=None)


def dotted(data: dict, prefix: str = "") -> dict:
    """A nested spec dict as {"a.b.c": value}; an empty block stays one key with its ``{}``."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(dotted(value, name + "."))
        else:
            out[name] = value
    return out
