"""The example specs devgrad ships (the lecture's and the tour's): listed, found by name, copied.

Their source is the repository's top-level ``experiments/`` folder; the package carries the
same files as package data (``devgrad/examples/``), so that a devgrad installed from a wheel
has them too. tests/experiment/test_examples.py keeps the two folders identical.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devgrad.experiment.errors import RunError
from devgrad.experiment.schema import SpecError, did_you_mean
from devgrad.io import atomic_write

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def names() -> list[str]:
    """The bundled specs' names (``devgrad run NAME`` takes each)."""
    return sorted(p.stem for p in EXAMPLES.glob("*.yaml"))


def describe() -> list[tuple[str, str]]:
    """(name, description) of every bundled spec, the description as its ``description:`` says."""
    rows = []
    for name in names():
        spec = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text(encoding="utf-8")) or {}
        rows.append((name, str(spec.get("description", ""))))
    return rows


def spec_file(spec) -> Path:
    """The spec file ``spec`` names: a path when one exists there, else a bundled spec by name
    (``triangle`` or ``triangle.yaml``); neither is a SpecError that lists the bundled names."""
    path = Path(spec)
    if path.exists():
        return path
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    bundled = EXAMPLES / f"{name}.yaml"
    if bundled.exists() and len(path.parts) == 1:
        return bundled
    if bundled.exists():
        hint = f"; devgrad ships a spec named {name}: give its name alone ({name}) to use that one"
    else:
        hint = (f"; nor is it one of the specs devgrad ships: {', '.join(names())}{did_you_mean(name, names())} "
                "(devgrad examples lists them)")
    raise SpecError([f"file not found: {path} (relative to {Path.cwd()}){hint}"], str(path))


def copy_to(folder) -> list[Path]:
    """Copy every bundled spec into ``folder`` (made if missing); returns the files written. A
    file of the same name with other content is never overwritten: nothing is copied then."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--copy {folder} is a file, not a folder: give the folder to copy the specs into")
    sources = [EXAMPLES / f"{name}.yaml" for name in names()]
    clashes = [folder / s.name for s in sources
               if (folder / s.name).exists() and (folder / s.name).read_bytes() != s.read_bytes()]
    if clashes:
        one = len(clashes) == 1
        raise RunError(f"{', '.join(map(str, clashes))} already exist{'s' if one else ''} with other content; nothing "
                       f"was copied: move {'it' if one else 'them'} aside or copy into another folder")
    return [atomic_write(folder / s.name, s.read_bytes()) for s in sources]
