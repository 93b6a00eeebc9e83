"""A search space: the spec keys a hyperparameter search varies and the distribution of each.

In a spec (``sweep.search.space``) a key maps to one distribution::

    optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
    model.dropout: {uniform: [0.0, 0.5]}
    train.batch_size: {int: [16, 256], log: true}
    model.hidden: {choice: [[32], [64, 64]]}

and on the command line ``--space 'optimizer.lr=loguniform(1e-4,1e-1)'``,
``--space 'model.hidden=choice([32],[64,64])'``, ``--space 'train.batch_size=int(16,256,log)'``.
Every dimension is checked before anything runs: its key against the spec, its bounds, and each
value it can take against the base spec (a choice the key does not accept is refused here).
Nothing here imports Optuna; ``Dimension.distribution`` builds Optuna's distribution on demand.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from devgrad.experiment.schema import Loaded, NUM, did_you_mean, is_kind
from devgrad.experiment.spec import SCHEMA, SpecError, resolve
from devgrad.experiment.grid import parse_grid_option

KINDS = ("uniform", "loguniform", "int", "choice")
EXAMPLE = "e.g. optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]} or model.hidden: {choice: [[32], [64, 64]]}"
# Optuna's categorical values must be plain scalars; other choices (lists) travel as JSON text.
_SCALARS = (type(None), bool, int, float, str)
MAX_GRID_VALUES = 10_000


@dataclass(frozen=True)
class Dimension:
    """One varied spec key: ``kind`` (uniform | loguniform | int | choice) and its range or choices."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple = ()

    def encoded(self) -> bool:
        """Whether the choices travel through Optuna as JSON text (they are not all plain scalars)."""
        return self.kind == "choice" and not all(isinstance(c, _SCALARS) for c in self.choices)

    def distribution(self, optuna):
        """Optuna's distribution for this dimension."""
        dist = optuna.distributions
        if self.kind == "uniform":
            return dist.FloatDistribution(self.low, self.high)
        if self.kind == "loguniform":
            return dist.FloatDistribution(self.low, self.high, log=True)
        if self.kind == "int":
            return dist.IntDistribution(self.low, self.high, log=self.log)
        return dist.CategoricalDistribution([json.dumps(c) for c in self.choices] if self.encoded()
                                            else list(self.choices))

    def value(self, optuna_value):
        """The spec value of what Optuna sampled (a JSON-encoded choice decoded)."""
        return json.loads(optuna_value) if self.encoded() else optuna_value

    def grid_values(self) -> list:
        """Every value, for Optuna's GridSampler (choices, or every whole number of an int range)."""
        if self.kind == "choice":
            return [json.dumps(c) for c in self.choices] if self.encoded() else list(self.choices)
        return list(self.int_range())

    def int_range(self) -> range:
        """Every whole number from ``low`` to ``high`` (both included)."""
        if self.low is None or self.high is None:
            raise ValueError(f"{self.key}: a {self.kind} dimension has no range")
        return range(int(self.low), int(self.high) + 1)

    def describe(self) -> dict:
        """The dimension as the spec writes it."""
        if self.kind == "choice":
            return {"choice": list(self.choices)}
        out: dict = {self.kind: [self.low, self.high]}
        if self.kind == "int" and self.log:
            out["log"] = True
        return out


def parse_space_option(text: str) -> tuple[str, dict]:
    """``key.path=kind(a,b,...)`` (as ``--space`` takes it) -> (key, {kind: [a, b]} or {int: [a, b], log: true})."""
    match = re.fullmatch(r"\s*([^=]+?)\s*=\s*([A-Za-z_]+)\s*\((.*)\)\s*", text, re.S)
    if not match:
        raise SpecError([f"--space {text!r}: expected key.path=kind(args) with kind one of {', '.join(KINDS)}, "
                         "e.g. --space 'optimizer.lr=loguniform(1e-4,1e-1)' or --space 'model.hidden=choice([32],"
                         "[64,64])'"], "--space")
    key, kind, args = match.groups()
    if kind not in KINDS:
        raise SpecError([f"--space {key}: unknown distribution {kind!r}; choose one of {', '.join(KINDS)}"
                         f"{did_you_mean(kind, KINDS)}"], "--space")
    if not args.strip():
        raise SpecError([f"--space {key}: {kind}() needs its arguments, e.g. {key}={kind}(1,10)"], "--space")
    values = parse_grid_option(f"{key}={args}")[1]
    log = False
    if kind == "int" and values and isinstance(values[-1], str) and values[-1].replace(" ", "") in ("log",
                                                                                                     "log=true"):
        log = True
        values = values[:-1]
    out: dict = {kind: values}
    if log:
        out["log"] = True
    return key, out


def parse_space_options(texts) -> dict:
    """Every ``--space`` option as one space {key: distribution}; a key given twice is refused."""
    space: dict = {}
    problems = []
    for text in texts:
        try:
            key, dist = parse_space_option(text)
        except SpecError as exc:
            problems += exc.problems
            continue
        if key in space:
            problems.append(f"--space {key} is given twice; give each key once")
        space[key] = dist
    if problems:
        raise SpecError(problems, "--space")
    return space


def _bounds(where: str, kind: str, raw, log: bool = False) -> list[str]:
    """Problems with the two bounds of a uniform, loguniform or int dimension (``log``: an int
    dimension sampled on a log scale)."""
    whole = kind == "int"
    if not isinstance(raw, list) or len(raw) != 2:
        return [f"{where}: {kind} takes two bounds [low, high], got {raw!r}"]
    low, high = raw
    ok = (lambda x: isinstance(x, int) and not isinstance(x, bool)) if whole else (lambda x: is_kind(x, NUM))
    if not (ok(low) and ok(high)):
        what = "whole numbers" if whole else "numbers"
        return [f"{where}: the bounds of {kind} must be {what}, got {raw!r}"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return [f"{where}: the bounds of {kind} must be finite, got {raw!r}"]
    if low > high:
        return [f"{where}: the bounds are in the wrong order ({low} > {high}); write [{high}, {low}]"]
    if kind == "loguniform" and low <= 0:
        return [f"{where}: loguniform needs a positive low bound (it samples the logarithm), got {low}"]
    if kind == "int" and log and low < 1:
        return [f"{where}: int with log needs a low bound of at least 1 (it samples the logarithm), got {low}; "
                f"give [1, {high}], or leave log out"]
    return []


def _dimension(key: str, raw, where: str) -> tuple[Dimension | None, list[str]]:
    """One dimension from its spec form, or the problems with it."""
    if not isinstance(raw, dict):
        return None, [f"{where}: must be a distribution like {{uniform: [0.0, 0.5]}}, got {raw!r} ({EXAMPLE})"]
    kinds = [k for k in raw if k in KINDS]
    extra = [k for k in raw if k not in KINDS and k != "log"]
    if len(kinds) != 1 or extra:
        unknown = extra[0] if extra else None
        hint = f"unknown distribution {unknown!r}{did_you_mean(unknown, KINDS)}; " if unknown else ""
        return None, [f"{where}: {hint}give exactly one of {', '.join(KINDS)} ({EXAMPLE})"]
    kind = kinds[0]
    if "log" in raw and (kind != "int" or not isinstance(raw["log"], bool)):
        return None, [f"{where}: log: true|false goes with int only (loguniform is the float one)"]
    if kind == "choice":
        choices = raw[kind]
        if not isinstance(choices, list) or not choices:
            return None, [f"{where}: choice takes a non-empty list of values, got {choices!r}"]
        return Dimension(key, kind, choices=tuple(choices)), []
    problems = _bounds(where, kind, raw[kind], raw.get("log", False))
    if problems:
        return None, problems
    low, high = raw[kind]
    return Dimension(key, kind, low, high, log=bool(raw.get("log", False))), []


def _spec_values(dim: Dimension) -> list:
    """The values of a dimension to try on the base spec: its choices, else its two bounds as the
    sampler gives them (floats from uniform and loguniform, whole numbers from int)."""
    if dim.kind == "choice":
        return list(dim.choices)
    if dim.kind == "int":
        return [dim.low, dim.high]
    return [float(dim.low), float(dim.high)]  # type: ignore[arg-type]


def _tried(base: Loaded, key: str, values: list, where: str) -> list[str]:
    """The problems of the base spec with ``key`` set to each of ``values``."""
    problems = []
    for value in values:
        try:
            resolve(base, [("--space", f"{key}={json.dumps(value)}")], check_files=False)
        except SpecError as exc:
            problems += [f"{where} value {json.dumps(value)}: {p}" for p in exc.problems]
    return problems


def _value_problems(dim: Dimension, base: Loaded, where: str, given: bool) -> list[str]:
    """The problems of the values ``dim`` gives its key; a float distribution on a key that takes
    whole numbers is one problem that names the int distribution to use instead."""
    problems = _tried(base, dim.key, _spec_values(dim), where)
    if not problems or dim.kind not in ("uniform", "loguniform"):
        return problems
    log = dim.kind == "loguniform"
    low, high = max(math.ceil(dim.low), 1 if log else -math.inf), math.floor(dim.high)  # type: ignore[arg-type]
    whole = [low, high] if low <= high else [round(dim.high)]  # type: ignore[arg-type]
    if _tried(base, dim.key, whole, where):
        return problems  # not (only) a question of whole numbers
    if low > high:
        return [f"{where}: {dim.key} takes whole numbers, and {dim.kind}({dim.low}, {dim.high}) holds none; "
                "give int(low,high) with whole-number bounds"]
    fix = f"--space '{dim.key}=int({low},{high}{',log' if log else ''})'" if given else \
        f"{dim.key}: {{int: [{low}, {high}]{', log: true' if log else ''}}}"
    return [f"{where}: {dim.key} takes whole numbers, and {dim.kind} samples fractional ones (every trial would "
            f"fail); use the int distribution instead: {fix}"]


def check_space(space, base: Loaded, origin: str = "sweep.search.space", given=(), source: str | None = None
                ) -> list[Dimension]:
    """The dimensions of ``space``, each checked against ``base`` (SpecError with every problem).
    ``given``: the keys that came from ``--space`` (the others name their line in the spec file)."""
    if not isinstance(space, dict) or not space:
        raise SpecError([f"{origin}: must map key.path to a distribution ({EXAMPLE})"], origin)
    dims, problems = [], []
    for key, raw in space.items():
        line = base.lines.get(("sweep", "search", "space", key))
        where = f"--space {key}" if key in given else f"{origin}.{key}" + (f" (line {line})" if line else "")
        top = key.split(".")[0] if isinstance(key, str) else None
        if not isinstance(key, str) or not key or top not in SCHEMA or top == "name":
            problems.append(f"{where}: unknown spec key '{top}'{did_you_mean(top, SCHEMA)} (a search varies keys "
                            "of the spec, e.g. optimizer.lr or model.hidden)")
            continue
        dim, found = _dimension(key, raw, where)
        problems += found
        if dim is None:
            continue
        problems += _value_problems(dim, base, where, key in given)
        dims.append(dim)
    if problems:
        raise SpecError(problems, source or origin)
    return dims


def check_grid_space(dims: list[Dimension], trials: int | None = None, origin: str = "sweep.search.trials") -> int:
    """Optuna's grid sampler walks a finite grid: every dimension a choice or a small int range,
    and at most one trial per point (``trials``, given as ``origin`` says). Returns the grid's size."""
    problems = [f"sweep.search.space.{d.key}: the grid sampler needs choice or int values, not {d.kind} "
                "(give a choice list, or use sampler tpe/random)" for d in dims if d.kind in ("uniform", "loguniform")]
    size = grid_size(dims) if not problems else 0
    if size > MAX_GRID_VALUES:
        problems.append(f"sweep.search.space: the grid has {size} points, more than {MAX_GRID_VALUES}; use "
                        "sampler tpe or random")
    elif size and trials is not None and trials > size:
        problems.append(f"{origin} {trials}: the grid sampler's grid has {size} point{'s' if size > 1 else ''}, "
                        f"and more trials would train points again as separate trials; give {size} or fewer, "
                        "or leave the trial count out (the grid sampler then runs every point once)")
    if problems:
        raise SpecError(problems, "sweep.search")
    return size


def grid_size(dims: list[Dimension]) -> int:
    """How many points the grid sampler's grid has."""
    return math.prod(len(d.choices) if d.kind == "choice" else len(d.int_range()) for d in dims)
