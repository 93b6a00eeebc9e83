"""A sweep's grid: ``--grid`` options and the spec's ``sweep:`` block read, the points expanded,
and every point validated and resolved before anything runs.

A grid (``{optimizer.lr: [0.1, 0.01], model.hidden: [[16], [64, 64]]}``) times ``seeds`` repeats
of every point gives the sweep's points; each carries its index, overrides, seed, folder name and
(once resolved) its spec as a plain dict, which is what a worker trains.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from pathlib import Path

import yaml

from devgrad.experiment.examples import spec_file
from devgrad.experiment.schema import Loaded, did_you_mean, load_yaml, parse_value
from devgrad.experiment.spec import SCHEMA, SpecError, resolve

__all__ = ["check_grid", "expand", "load_base", "parse_grid_option", "parse_grid_options", "resolve_points"]


def parse_grid_option(text: str) -> tuple[str, list]:
    """``key.path=v1,v2,...`` (as ``--grid`` takes it) -> (key, [values]); values are YAML, split at
    commas outside brackets and quotes: ``model.hidden=[16],[64,64]`` is two values."""
    if "=" not in text:
        raise SpecError([f"--grid {text!r}: expected key.path=value1,value2,... e.g. --grid optimizer.lr=0.1,0.01"])
    key, values = text.split("=", 1)
    parts = _split_top_level(values)
    out = []
    for part in parts:
        try:
            out.append(parse_value(part.strip()))
        except yaml.YAMLError as exc:
            raise SpecError([f"--grid {key}: {part.strip()!r} is not valid YAML ({exc})"]) from None
    if not key.strip() or not parts or any(p.strip() == "" for p in parts):
        raise SpecError([f"--grid {text!r}: every value must be non-empty, e.g. --grid optimizer.lr=0.1,0.01"])
    return key.strip(), out


def _split_top_level(values: str) -> list[str]:
    """``values`` split at the commas outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(values):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(values[start:i])
            start = i + 1
    parts.append(values[start:])
    return parts


def parse_grid_options(texts) -> dict:
    """Every ``--grid`` option as one grid {key: [values]}. A key given twice is refused: which
    of its value lists was meant cannot be guessed."""
    grid: dict = {}
    problems = []
    for text in texts:
        key, values = parse_grid_option(text)
        if key in grid:
            joined = ",".join(json.dumps(v) for v in [*grid[key], *values])
            problems.append(f"--grid {key} is given twice ({text!r} repeats it); give a key once with all its "
                            f"values, e.g. --grid {key}={joined}")
            continue
        grid[key] = values
    if problems:
        raise SpecError(problems, "--grid")
    return grid


def check_grid(grid: dict, seeds) -> list[str]:
    """The problems of a grid and a seed count (empty when there are none)."""
    problems = []
    if not isinstance(grid, dict):
        return [f"sweep.grid must map key.path to a list of values, got {grid!r}"]
    for key, values in grid.items():
        if not isinstance(key, str) or not key:
            problems.append(f"sweep.grid: {key!r} is not a key.path like optimizer.lr")
        elif key.split(".")[0] not in SCHEMA or key.split(".")[0] == "name":
            problems.append(f"grid axis {key}: unknown spec key '{key.split('.')[0]}'"
                            f"{did_you_mean(key.split('.')[0], SCHEMA)} (a grid varies keys of the spec, "
                            "e.g. optimizer.lr or model.hidden)")
        elif not isinstance(values, list) or not values:
            problems.append(f"sweep.grid.{key}: must be a non-empty list of values, got {values!r}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        problems.append(f"sweep.seeds: must be a whole number >= 1, got {seeds!r}")
    elif "seed" in grid and seeds > 1:
        problems.append(f"grid axis seed gives every point its seed, and seeds {seeds} (--seeds or sweep.seeds) "
                        "would repeat each point with other seeds: which seed a run has would be a guess. Keep one: "
                        "drop the seed axis and use --seeds N (seeds base, base+1, ...), or leave out --seeds")
    return problems


def _short(overrides: dict) -> str:
    """A folder-name-safe summary of a point's overrides: lr=0.01_hidden=64-64."""
    parts = []
    for key, value in overrides.items():
        text = json.dumps(value, separators=(",", ":")).strip('"')
        text = re.sub(r"[\[\]{}\"' ]", "", text).replace(",", "-")
        parts.append(f"{key.split('.')[-1]}={text}")
    name = re.sub(r"[^A-Za-z0-9=._+-]", "_", "_".join(parts)) or "base"
    return name[:80]


def expand(grid: dict, seeds: int, base_seed: int) -> list[dict]:
    """Every (grid point, seed): index, overrides {key: value}, seed and folder name."""
    keys = list(grid)
    points: list[dict] = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        overrides = dict(zip(keys, combo))
        for repeat in range(seeds):
            seed = overrides.get("seed", base_seed + repeat)  # a seed axis (check_grid: then one repeat)
            points.append({"index": len(points), "overrides": overrides, "seed": seed, "repeat": repeat,
                           "name": f"{len(points):03d}-{_short(overrides)}" + (f"-seed{seed}" if seeds > 1 else "")})
    return points


def _override_strings(point: dict) -> list:
    """The point as ``(origin, "key=value")`` overrides (values written as JSON, which is YAML); the
    seed from --seeds, unless the grid gives the point its own."""
    out = [("--grid", f"{k}={json.dumps(v)}") for k, v in point["overrides"].items()]
    return out if "seed" in point["overrides"] else [*out, ("--seeds", f"seed={point['seed']}")]


def resolve_points(base: Loaded, points: list, threads_given: bool) -> list[dict]:
    """Validate every point (all problems at once, SpecError); each point gets its resolved
    spec as a plain dict. BLAS runs single-threaded in each worker unless the spec says."""
    problems, failed = [], set()
    for point in points:
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in point["overrides"].items()) or "the base spec"
        if label in failed:  # another seed of a point already reported
            continue
        try:
            spec = resolve(base, _override_strings(point), check_files=True)
        except SpecError as exc:
            failed.add(label)
            problems += [f"grid point {label}: {p}" for p in exc.problems]
            continue
        spec_dict = spec.to_dict()
        if not threads_given:
            spec_dict["train"]["threads"] = 1  # several runs share the cores: one BLAS thread each
        point["spec"] = spec_dict
    if problems:
        raise SpecError(problems, "sweep")
    return points


def load_base(spec_or_path) -> tuple[Loaded, dict, Path | None]:
    """The base spec (its ``sweep:`` block taken out), that block, and the spec's file."""
    if isinstance(spec_or_path, dict):
        data = copy.deepcopy(spec_or_path)
        loaded = Loaded(data)
        path = None
    else:
        path = spec_file(spec_or_path)  # a path, else a spec devgrad ships, by name
        loaded = load_yaml(path)
        data = loaded.data
    block = data.pop("sweep", None) or {}
    if not isinstance(block, dict):
        raise SpecError([f"sweep: must be a block like {{grid: {{optimizer.lr: [0.1, 0.01]}}, seeds: 3}}, "
                         f"got {block!r}"], str(path or "spec"))
    unknown = set(block) - {"grid", "seeds"}
    if unknown:
        raise SpecError([f"sweep.{k}: unknown key; a sweep block takes grid and seeds" for k in sorted(unknown)],
                        str(path or "spec"))
    return loaded, block, path
