"""A sweep folder's files: its settings in ``sweep.yaml``; ``results.jsonl``, a line appended
durably per finished run, and the newest line of each run read back.

Kept apart from ``sweeps`` (which runs sweeps) so that the reports read a sweep folder without
importing the code that runs one: ``sweeps`` → ``commands`` → ``html_report`` → ``sweepdir``, no
circle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from devgrad.experiment import checkpoint as ckpt
from devgrad.experiment.errors import RunError

__all__ = ["append_line", "read_results", "read_sweep_yaml"]


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


def append_line(path: Path, line: dict) -> None:
    """Append one JSON line and make it durable before the sweep goes on."""
    data = (json.dumps(line, default=str) + "\n").encode()
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as fh:  # a line cut short by a kill: start on a line of our own
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
