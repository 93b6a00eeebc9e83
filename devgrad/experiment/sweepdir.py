"""Reading a sweep folder: its settings in ``sweep.yaml``, the newest line of each run in ``results.jsonl``.

Kept apart from ``sweeps`` (which runs sweeps and writes the folder) so that the reports read a
sweep folder without importing the code that runs one: ``sweeps`` → ``commands`` →
``html_report`` → ``sweepdir``, no circle.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.errors import RunError


def read_results(sweep_dir: Path) -> list[dict]:
    """results.jsonl's newest complete line of each run (a line torn by a kill is passed over; a
    run stopped by Ctrl-C and resumed later has two lines, its stop and its end)."""
    newest = {}
    for line in ckpt.read_jsonl(Path(sweep_dir) / "results.jsonl", after_torn="skip"):
        newest[line["index"]] = line
    return list(newest.values())


def read_sweep_yaml(sweep_dir: Path) -> dict:
    """sweep.yaml of a sweep folder (a grid sweep or a search); a folder without one, or with one
    that is not a mapping, is a RunError that says so: never read as some other kind of sweep."""
    path = Path(sweep_dir) / "sweep.yaml"
    if not path.exists():
        raise RunError(f"{sweep_dir} is not a sweep folder (no sweep.yaml); pass the folder 'devgrad sweep' printed")
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunError(f"{path} cannot be read ({type(exc).__name__}); the sweep cannot be resumed from it: "
                       "restore the file, or start the sweep again") from None
    if not isinstance(settings, dict) or ("points" not in settings and "search" not in settings):
        raise RunError(f"{path} is damaged (no points of a grid and no search settings in it); the sweep cannot be "
                       "resumed from it: restore the file, or start the sweep again")
    return settings
